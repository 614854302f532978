"""imgfilt.apply and Image.filter: Pillow modes, output ranges, layouts, against scipy.ndimage.

References are computed in float64 with scipy (mode "mirror" = our "reflect") and converted the
way the docs promise (round half to even, saturate); our engine computes 8/16-bit images in
float32, so rounded values may differ by one where the float64 value sits near a half.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from scipy import ndimage

import imgfilt
from imgfilt import PillowFilter, filters
from imgfilt.arrays import array_to_pil, pil_to_array
from cli_support import SAMPLES
from strategies import examples

RNG = np.random.default_rng(7)
GREY = RNG.integers(0, 256, size=(20, 24), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, size=(20, 24), dtype=np.uint8)


def sobel_magnitude(x):
    x = np.asarray(x, dtype=np.float64)
    return np.hypot(ndimage.sobel(x, 1, mode="mirror"), ndimage.sobel(x, 0, mode="mirror"))


def saturate(values, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max)


def assert_within_one(actual, expected):
    difference = np.abs(np.asarray(actual, dtype=np.float64) - expected)
    assert difference.max() <= 1, difference.max()


# ---- Pillow modes ---------------------------------------------------------------------------

def test_l_image_filter_with_a_filter_object():
    img = Image.fromarray(GREY)
    out = img.filter(PillowFilter(filters.sobel()))
    assert out.mode == "L" and out.size == img.size
    assert_within_one(np.asarray(out), saturate(sobel_magnitude(GREY), np.uint8))


def test_apply_and_image_filter_agree():
    img = Image.fromarray(COLOUR)
    assert np.array_equal(np.asarray(imgfilt.apply(img, "gaussian", sigma=1.5)),
                          np.asarray(img.filter(PillowFilter(filters.gaussian(1.5)))))


def test_rgb_runs_per_channel():
    out = Image.fromarray(COLOUR).filter(PillowFilter(filters.box(3)))
    assert out.mode == "RGB"
    for c in range(3):
        expected = ndimage.uniform_filter(COLOUR[..., c].astype(float), 3, mode="mirror")
        assert_within_one(np.asarray(out)[..., c], saturate(expected, np.uint8))


@pytest.mark.parametrize("mode,colour", [("RGBA", COLOUR), ("LA", GREY[..., None])])
def test_alpha_is_passed_through_untouched(mode, colour):
    pixels = np.concatenate([colour, ALPHA[..., None]], axis=-1)
    img = Image.fromarray(pixels)
    assert img.mode == mode
    for out in (img.filter(PillowFilter(filters.sobel())), imgfilt.apply(img, "sobel")):
        assert out.mode == mode
        result = np.asarray(out)
        assert np.array_equal(result[..., -1], ALPHA)
        for c in range(colour.shape[-1]):
            assert_within_one(result[..., c], saturate(sobel_magnitude(colour[..., c]), np.uint8))


def test_i16_stays_16_bit():
    pixels = RNG.integers(0, 60000, size=(18, 21)).astype(np.uint16)
    img = array_to_pil(pixels)
    assert img.mode == "I;16"
    out = img.filter(PillowFilter(filters.gaussian(1.0)))
    assert out.mode == "I;16"
    expected = ndimage.gaussian_filter(pixels.astype(float), 1.0, mode="mirror")
    assert_within_one(np.asarray(out), saturate(expected, np.uint16))
    edges = np.asarray(img.filter(PillowFilter(filters.sobel())))
    assert edges.max() == 65535  # saturated, not wrapped


def test_mode_i_keeps_negative_values():
    pixels = RNG.integers(-100000, 100000, size=(15, 16)).astype(np.int32)
    img = Image.fromarray(pixels)
    assert img.mode == "I"
    out = img.filter(PillowFilter(filters.laplacian()))
    assert out.mode == "I"
    expected = ndimage.laplace(pixels.astype(float), mode="mirror")
    assert np.array_equal(np.asarray(out), saturate(expected, np.int32))


def test_mode_f_is_filtered_in_float():
    pixels = RNG.normal(size=(15, 16)).astype(np.float32)
    out = Image.fromarray(pixels).filter(PillowFilter(filters.laplacian()))
    assert out.mode == "F"
    np.testing.assert_allclose(np.asarray(out), ndimage.laplace(pixels.astype(float), mode="mirror"),
                               rtol=1e-5, atol=1e-5)


def test_palette_becomes_rgb():
    img = Image.fromarray(COLOUR).quantize(16)
    assert img.mode == "P"
    expected = imgfilt.apply(img.convert("RGB"), "box")
    for out in (img.filter(PillowFilter(filters.box())), imgfilt.apply(img, "box")):
        assert out.mode == "RGB"
        assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_palette_with_transparency_becomes_rgba_in_apply():
    img = Image.fromarray(COLOUR).quantize(16)
    img.info["transparency"] = 0
    out = imgfilt.apply(img, "box")
    assert out.mode == "RGBA"
    # A smoothing filter filters alpha too (imgfilt.alpha): the box of the palette's alpha.
    alpha = np.asarray(img.convert("RGBA"))[..., 3]
    expected = imgfilt.apply(alpha.astype(np.float64), "box", output="float")
    assert_within_one(np.asarray(out)[..., 3], saturate(expected, np.uint8))


def test_one_bit_images_become_l():
    img = Image.fromarray(GREY > 128)
    assert img.mode == "1"
    out = img.filter(PillowFilter(filters.box()))
    assert out.mode == "L"
    expected = ndimage.uniform_filter(np.where(GREY > 128, 255.0, 0.0), 3, mode="mirror")
    assert_within_one(np.asarray(out), saturate(expected, np.uint8))


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "HSV"])
def test_unsupported_modes_say_which_work(mode):
    img = Image.fromarray(COLOUR).convert(mode)
    with pytest.raises(ValueError, match="supported modes: L, LA, RGB, RGBA"):
        img.filter(PillowFilter(filters.sobel()))
    with pytest.raises(ValueError, match="convert"):
        imgfilt.apply(img, "sobel")


def test_channel_mixing_filter_on_rgba_gives_la():
    pixels = np.concatenate([COLOUR, ALPHA[..., None]], axis=-1)
    out = imgfilt.apply(Image.fromarray(pixels), "edge", channel="g", direction="horizontal")
    assert out.mode == "LA"
    assert np.array_equal(np.asarray(out)[..., 1], ALPHA)
    expected = ndimage.sobel(COLOUR[..., 1].astype(float), 0, mode="mirror")
    assert_within_one(np.asarray(out)[..., 0], saturate(expected, np.uint8))


def test_pil_output_float_gives_f_or_a_clear_error():
    out = imgfilt.apply(Image.fromarray(GREY), "sobel_x", output="float")
    assert out.mode == "F"
    np.testing.assert_allclose(np.asarray(out), ndimage.sobel(GREY.astype(float), 1, mode="mirror"),
                               atol=1e-3)
    with pytest.raises(ValueError, match="float"):
        imgfilt.apply(Image.fromarray(COLOUR), "sobel", output="float")


def test_pil_rejects_3d_filters_and_channel_axis():
    with pytest.raises(ValueError, match="2-D"):
        imgfilt.apply(Image.fromarray(GREY), "gaussian3d")
    with pytest.raises(TypeError, match="channel_axis"):
        imgfilt.apply(Image.fromarray(GREY), "box", channel_axis=0)


def test_stride_subsamples_image_and_alpha():
    pixels = np.concatenate([COLOUR, ALPHA[..., None]], axis=-1)
    full = np.asarray(imgfilt.apply(Image.fromarray(pixels), "box"))
    strided = imgfilt.apply(Image.fromarray(pixels), "box", stride=2)
    assert strided.size == (12, 10)
    assert np.array_equal(np.asarray(strided), full[::2, ::2])


def test_pil_array_round_trip_per_mode():
    for pixels in (GREY, COLOUR, np.dstack([COLOUR, ALPHA]), GREY.astype(np.uint16) * 200,
                   GREY.astype(np.int32) - 300, GREY.astype(np.float32) / 7):
        back = pil_to_array(array_to_pil(pixels))
        assert back.dtype == pixels.dtype and np.array_equal(back, pixels)
    with pytest.raises(ValueError, match="no Pillow mode"):
        array_to_pil(np.zeros((4, 4, 3), np.uint16))


# ---- outputs --------------------------------------------------------------------------------

def test_clip_rounds_half_to_even_and_saturates():
    pixels = np.array([[1, 3, 5, 7, 200]], dtype=np.uint8)
    half = imgfilt.apply(pixels, np.array([[0.5]]))  # 0.5, 1.5, 2.5, 3.5, 100
    assert half.dtype == np.uint8 and half.tolist() == [[0, 2, 2, 4, 100]]
    doubled = imgfilt.apply(pixels, np.array([[2.0]]))
    assert doubled.tolist() == [[2, 6, 10, 14, 255]]
    negative = imgfilt.apply(pixels, np.array([[-1.0]]))
    assert negative.tolist() == [[0, 0, 0, 0, 0]]


def test_rescale_abs_and_float_outputs():
    expected = ndimage.sobel(GREY.astype(float), 1, mode="mirror")
    floats = imgfilt.apply(GREY, "sobel_x", output="float")
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats, expected, atol=1e-3)
    stretched = imgfilt.apply(GREY, "sobel_x", output="rescale")
    assert stretched.dtype == np.uint8 and stretched.min() == 0 and stretched.max() == 255
    reference = (expected - expected.min()) / (expected.max() - expected.min()) * 255
    assert_within_one(stretched, np.rint(reference))
    magnitude = imgfilt.apply(GREY, "sobel_x", output="abs")
    assert_within_one(magnitude, saturate(np.abs(expected), np.uint8))
    with pytest.raises(ValueError, match="output must be one of"):
        imgfilt.apply(GREY, "sobel_x", output="wrap")


def test_float_images_default_to_float_and_clip_to_unit_range():
    pixels = RNG.random((12, 13))
    result = imgfilt.apply(pixels, "laplacian")
    assert result.dtype == np.float64 and result.min() < 0
    clipped = imgfilt.apply(pixels, "laplacian", output="clip")
    np.testing.assert_allclose(clipped, np.clip(ndimage.laplace(pixels, mode="mirror"), 0, 1))
    stretched = imgfilt.apply(pixels.astype(np.float32), "laplacian", output="rescale")
    assert stretched.dtype == np.float32
    assert stretched.min() == 0 and abs(stretched.max() - 1) < 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_arrays_keep_their_dtype(dtype):
    pixels = (GREY // 2).astype(dtype)
    assert imgfilt.apply(pixels, "gaussian").dtype == dtype


def test_bool_images_give_float32():
    result = imgfilt.apply(GREY > 100, "box")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, ndimage.uniform_filter((GREY > 100) * 1.0, 3, mode="mirror"),
                               atol=1e-6)


# ---- layouts --------------------------------------------------------------------------------

def test_channel_axis_positions():
    first = np.moveaxis(COLOUR, -1, 0)
    last = imgfilt.apply(COLOUR, "box", output="float")
    assert np.array_equal(imgfilt.apply(first, "box", channel_axis=0, output="float"),
                          np.moveaxis(last, -1, 0))
    assert np.array_equal(imgfilt.apply(COLOUR, "box", channel_axis=-1, output="float"), last)
    single = imgfilt.apply(GREY, "box", channel_axis=None, output="float")
    assert single.shape == GREY.shape


def test_layout_errors_are_explained():
    with pytest.raises(ValueError, match="channel_axis"):
        imgfilt.apply(np.zeros((2, 3, 4, 5)), "box")
    with pytest.raises(ValueError, match="channel_axis=None"):
        imgfilt.apply(COLOUR, "box", channel_axis=None)
    with pytest.raises(ValueError, match="out of range"):
        imgfilt.apply(COLOUR, "box", channel_axis=5)
    with pytest.raises(ValueError, match="mixes C_in = 3 channels"):
        imgfilt.apply(GREY, "edge")
    with pytest.raises(TypeError, match="dtype"):
        imgfilt.apply(GREY.astype(complex), "box")
    with pytest.raises(TypeError, match="only go with a filter name"):
        imgfilt.apply(GREY, filters.box(), size=5)
    with pytest.raises(TypeError, match="filter must be"):
        imgfilt.apply(GREY, 3)


def test_volumes_with_3d_filters():
    volume = RNG.normal(size=(7, 8, 9))
    np.testing.assert_allclose(imgfilt.apply(volume, "gaussian3d", sigma=0.8),
                               ndimage.gaussian_filter(volume, 0.8, mode="mirror"), atol=1e-12)
    stacked = np.stack([volume, 2 * volume], axis=-1)
    with pytest.raises(ValueError, match="two readings"):  # 2 channels, or 7 volumes 8x9x2?
        imgfilt.apply(stacked, "box3d")
    result = imgfilt.apply(stacked, "box3d", channel_axis=-1)
    assert result.shape == stacked.shape
    np.testing.assert_allclose(result[..., 1], ndimage.uniform_filter(2 * volume, 3, mode="mirror"),
                               atol=1e-12)


def test_bare_kernel_per_channel_and_weight_mixing():
    kernel = RNG.normal(size=(3, 5))
    result = imgfilt.apply(COLOUR.astype(float), kernel)
    for c in range(3):
        np.testing.assert_allclose(result[..., c],
                                   ndimage.correlate(COLOUR[..., c].astype(float), kernel, mode="mirror"))
    weight = RNG.normal(size=(2, 3, 3, 3))
    mixed = imgfilt.apply(COLOUR.astype(float), weight)
    assert mixed.shape == (20, 24, 2)
    expected = sum(ndimage.correlate(COLOUR[..., i].astype(float), weight[1, i], mode="mirror")
                   for i in range(3))
    np.testing.assert_allclose(mixed[..., 1], expected)


def test_reflect_on_one_pixel_axis_repeats_it_like_scipy_mirror():
    row = RNG.normal(size=(1, 17))
    np.testing.assert_allclose(imgfilt.apply(row, "gaussian", sigma=1.0),
                               ndimage.gaussian_filter(row, 1.0, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(imgfilt.apply(row.T, "sobel"), sobel_magnitude(row.T), atol=1e-12)


def test_dilation_and_stride_match_conv_semantics():
    pixels = RNG.normal(size=(16, 18))
    full = imgfilt.apply(pixels, "sobel_x")
    np.testing.assert_allclose(imgfilt.apply(pixels, "sobel_x", stride=(2, 3)), full[::2, ::3])
    dilated = np.zeros((5, 5))
    dilated[::2, ::2] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    np.testing.assert_allclose(imgfilt.apply(pixels, "sobel_x", dilation=2),
                               ndimage.correlate(pixels, dilated, mode="mirror"), atol=1e-12)


@settings(max_examples=25)
@given(
    pixels=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=12)),
    size=st.sampled_from([1, 3, 5]),
)
def test_box_on_random_uint8_images_matches_scipy(pixels, size):
    result = imgfilt.apply(pixels, "box", size=size)
    expected = ndimage.uniform_filter(pixels.astype(float), size, mode="mirror")
    assert result.dtype == np.uint8 and result.shape == pixels.shape
    assert_within_one(result, saturate(expected, np.uint8))


def test_sample_photo_edges():
    img = Image.open(SAMPLES / "chelsea.png").convert("RGB").resize((60, 40))
    out = img.filter(PillowFilter(filters.sobel()))
    assert out.mode == "RGB" and out.size == img.size
    for c in range(3):
        assert_within_one(np.asarray(out)[..., c],
                          saturate(sobel_magnitude(np.asarray(img)[..., c]), np.uint8))


def test_wide_integers_saturate_without_wrapping():
    big = np.array([[2**62, -(2**62), 5]], dtype=np.int64)
    doubled = imgfilt.apply(big, np.array([[3.0]]))
    assert doubled.dtype == np.int64
    assert doubled[0, 0] > 2**63 - 2048 and doubled[0, 1] == -(2**63) and doubled[0, 2] == 15


def test_banks_refuse_output_conversion():
    bank = imgfilt.FilterBank([filters.box()])
    np.testing.assert_allclose(imgfilt.apply(GREY, bank)[0], imgfilt.apply(GREY, "box", output="float"))
    with pytest.raises(TypeError, match="output"):
        imgfilt.apply(GREY, bank, output="clip")


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(1, 40), st.integers(1, 300), st.sampled_from([None, 1, 3, 4]),
       st.sampled_from(["box", "gaussian", "sharpen", "laplacian", "sobel_x", "emboss"]),
       st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]),
       st.integers(0, 2**32 - 1))
def test_uint8_images_take_the_8bit_path_bit_for_bit(height, width, channels, name, mode, seed):
    """8-bit in, 8-bit out (read and clipped inside the engine) equals the float route."""
    shape = (height, width) if channels is None else (height, width, channels)
    image = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    try:
        got = imgfilt.apply(image, name, padding_mode=mode)
    except ValueError:  # e.g. reflect on a one-pixel axis the filter's span cannot cover
        with pytest.raises(ValueError):
            imgfilt.apply(image.astype(np.float32), name, padding_mode=mode, output="float")
        return
    floats = imgfilt.apply(image.astype(np.float32), name, padding_mode=mode, output="float")
    assert got.dtype == np.uint8 and got.shape == image.shape
    np.testing.assert_array_equal(got, np.clip(np.rint(floats), 0, 255).astype(np.uint8))


def test_uint8_rounding_is_numpys_ties_to_even():
    image = np.array([[1, 2, 3, 4, 5, 255]], dtype=np.uint8)
    half = imgfilt.filters.Filter(np.array([[[[0.5]]]]), name="half")
    np.testing.assert_array_equal(imgfilt.apply(image, half), [[0, 1, 2, 2, 2, 128]])
    double = imgfilt.filters.Filter(np.array([[[[2.0]]]]), name="double")
    np.testing.assert_array_equal(imgfilt.apply(image, double), [[2, 4, 6, 8, 10, 255]])
    minus = imgfilt.filters.Filter(np.array([[[[-1.0]]]]), name="minus")
    np.testing.assert_array_equal(imgfilt.apply(image, minus), [[0, 0, 0, 0, 0, 0]])
