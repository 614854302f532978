"""The gradient magnitude computed in the engine's pass (no response stored): the same bits as
the responses computed alone and combined by ``magnitude``, the oracle's values within
rounding, OpenCV's 8-bit Sobel pipeline within one grey level, and no float responses in
memory for a big photo."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgfilt
from imgfilt.convolution import correlate_channels_last, magnitude

from reference import reference_conv
from strategies import MODES, examples


@st.composite
def magnitude_problems(draw):
    """Channels-last data, 2 to 4 responses (and 1 and 5, which take the unfused route)."""
    ndim = draw(st.integers(1, 3))
    cap = 7 if ndim == 3 else 12
    sizes = list(draw(st.lists(st.integers(1, cap), min_size=ndim, max_size=ndim)))
    if ndim < 3 and draw(st.booleans()):
        # Rows longer than a strip (up to 128 samples with the channels), and a tail.
        sizes[-1] = draw(st.integers(30, 90))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim - 1, max_size=ndim - 1))) + (1,)
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    return {
        "sizes": tuple(sizes),
        "channels": draw(st.integers(1, 4)),
        "responses": draw(st.sampled_from([2, 2, 3, 4, 1, 5])),
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "padding": draw(st.sampled_from(["same", "valid", 2])),
        "mode": draw(st.sampled_from(MODES)),
        "dtype": draw(st.sampled_from(["uint8", "float32", "float64"])),
        "bias": draw(st.booleans()),
        "integer_weights": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _arrays(problem):
    rng = np.random.default_rng(problem["seed"])
    shape = problem["sizes"] + (problem["channels"],)
    if problem["dtype"] == "uint8":
        x = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        x = (rng.normal(size=shape) * 50).astype(problem["dtype"])
    wshape = (problem["responses"], 1) + problem["kernel"]
    weight = (rng.integers(-3, 4, wshape).astype(float) if problem["integer_weights"]
              else rng.normal(size=wshape))
    bias = rng.normal(size=problem["responses"]) * 5 if problem["bias"] else None
    return x, weight, bias


@settings(max_examples=examples(60), deadline=None)
@given(magnitude_problems())
def test_the_fused_magnitude_has_the_bits_of_responses_then_magnitude(problem):
    x, weight, bias = _arrays(problem)
    options = dict(stride=problem["stride"], padding=problem["padding"],
                   padding_mode=problem["mode"], dilation=problem["dilation"], method="direct")
    try:
        responses = correlate_channels_last(x, weight, bias, **options)
    except ValueError:  # a padding wider than the mode allows: both must refuse
        with pytest.raises(ValueError):
            correlate_channels_last(x, weight, bias, combine="magnitude", **options)
        return
    fused = correlate_channels_last(x, weight, bias, combine="magnitude", **options)
    expected = magnitude(responses, 0)
    assert fused.shape == (1,) + expected.shape and fused.dtype == expected.dtype
    np.testing.assert_array_equal(fused[0], expected)
    # Against the oracle (float64, numpy.pad), channel by channel.
    planes = np.moveaxis(x, -1, 0)[:, None]
    oracle = np.stack([reference_conv(plane, weight, bias, stride=problem["stride"],
                                      padding=problem["padding"], padding_mode=problem["mode"],
                                      dilation=problem["dilation"]) for plane in planes], -1)
    oracle = np.sqrt((oracle ** 2).sum(axis=0))
    scale = np.abs(x.astype(float)).max() * np.abs(weight).reshape(len(weight), -1).sum(1).max()
    scale += 0 if bias is None else np.abs(bias).max()
    eps = np.finfo(fused.dtype).eps
    np.testing.assert_allclose(fused[0], oracle, rtol=0,
                               atol=16 * weight[0].size * eps * max(scale, 1.0) * 2)
    if problem["dtype"] == "uint8":
        # 8-bit: rounded (ties to even) and clipped in the same pass, as numpy.rint and clip.
        saturated = correlate_channels_last(x, weight, bias, combine="magnitude", saturate=True,
                                            **options)
        assert saturated.dtype == np.uint8
        np.testing.assert_array_equal(
            saturated[0], np.clip(np.rint(expected), 0, 255).astype(np.uint8))


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(1, 40), st.integers(1, 140), st.sampled_from([1, 3, 4]),
       st.sampled_from(["sobel", "scharr", "prewitt"]), st.sampled_from(MODES),
       st.integers(0, 2**32 - 1))
def test_8_bit_gradient_magnitude_is_the_float_result_rounded_and_clipped(
        height, width, channels, name, mode, seed):
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    ours = imgfilt.apply(photo, name, padding_mode=mode, channel_axis=-1)
    as_float = imgfilt.apply(photo, name, padding_mode=mode, output="float",
                             channel_axis=-1)
    assert ours.dtype == np.uint8 and as_float.dtype == np.float32
    np.testing.assert_array_equal(ours, np.clip(np.rint(as_float), 0, 255).astype(np.uint8))


CV2_BORDERS = {"reflect": "BORDER_REFLECT_101", "replicate": "BORDER_REPLICATE",
               "zeros": "BORDER_CONSTANT", "symmetric": "BORDER_REFLECT"}


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(2, 40), st.integers(2, 140), st.sampled_from([1, 3, 4]),
       st.sampled_from(sorted(CV2_BORDERS)), st.sampled_from(["uint8", "float32"]),
       st.integers(0, 2**32 - 1))
def test_the_sobel_magnitude_matches_opencvs_pipeline(height, width, channels, mode, dtype, seed):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        photo = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    else:
        photo = rng.random((height, width, channels), dtype=np.float32)
    border = getattr(cv2, CV2_BORDERS[mode])
    gx = cv2.Sobel(photo, cv2.CV_32F, 1, 0, ksize=3, borderType=border)
    gy = cv2.Sobel(photo, cv2.CV_32F, 0, 1, ksize=3, borderType=border)
    theirs = cv2.magnitude(gx, gy).reshape(photo.shape)
    if dtype == "uint8":
        ours = imgfilt.apply(photo, "sobel", padding_mode=mode, channel_axis=-1)
        assert ours.dtype == np.uint8
        difference = np.abs(ours.astype(int) - cv2.convertScaleAbs(theirs).reshape(photo.shape))
        assert difference.max() <= 1
    else:
        ours = imgfilt.apply(photo, "sobel", padding_mode=mode, output="float",
                             channel_axis=-1)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_a_big_photos_magnitude_allocates_its_output_and_no_responses():
    photo = np.random.default_rng(3).integers(0, 256, (1200, 1000, 3), dtype=np.uint8)
    imgfilt.apply(photo[:8], "sobel")  # warm caches (plans, maps) outside the measurement
    tracemalloc.start()
    try:
        result = imgfilt.apply(photo, "sobel", padding_mode="reflect")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.dtype == np.uint8
    # Two float32 responses would be 8x the output; the output and scratch rings only.
    assert peak <= result.nbytes + 4 * 2**20, (peak, result.nbytes)


def test_combine_names_what_is_allowed():
    with pytest.raises(ValueError, match="combine"):
        correlate_channels_last(np.zeros((4, 4, 1), np.float32), np.ones((2, 1, 3, 3)),
                                combine="sum")


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(17, 70), st.integers(1, 50), st.integers(1, 3), st.integers(1, 6),
       st.integers(1, 6), st.integers(1, 2), st.integers(1, 3), st.sampled_from(MODES),
       st.sampled_from(["same", "valid", 3]), st.sampled_from(["uint8", "float32", "float64"]),
       st.integers(0, 2**32 - 1))
def test_separable_passes_in_bands_of_rows_give_the_whole_image_bits(
        height, width, channels, kh, kw, stride, dilation, mode, padding, dtype, seed):
    """Bands of 16 rows (the least) against one band: the seams, every border mode, strides
    and dilations down the columns, 8-bit input; and the oracle."""
    from imgfilt import convolution

    rng = np.random.default_rng(seed)
    shape = (height, width, channels)
    x = (rng.integers(0, 256, shape).astype(dtype) if dtype == "uint8"
         else rng.normal(size=shape).astype(dtype))
    weight = np.multiply.outer(rng.normal(size=kh), rng.normal(size=kw))[None, None]
    bias = rng.normal(size=1)
    options = dict(stride=(stride, 1), padding=padding, padding_mode=mode,
                   dilation=(dilation, 1), method="separable")
    try:
        whole = correlate_channels_last(x, weight, bias, **options)
    except ValueError:  # a pad wider than the mode allows
        return
    saved = convolution._BAND_BYTES
    try:
        convolution._BAND_BYTES = 1
        banded = correlate_channels_last(x, weight, bias, **options)
    finally:
        convolution._BAND_BYTES = saved
    np.testing.assert_array_equal(banded, whole)
    planes = np.moveaxis(x, -1, 0)[:, None]
    oracle = np.stack([reference_conv(plane, weight, bias, stride=(stride, 1), padding=padding,
                                      padding_mode=mode, dilation=(dilation, 1))[0]
                       for plane in planes], -1)
    scale = np.abs(x.astype(float)).max() * np.abs(weight).sum() + np.abs(bias).max()
    np.testing.assert_allclose(banded[0], oracle, rtol=0,
                               atol=32 * (kh + kw) * np.finfo(banded.dtype).eps * max(scale, 1))


def test_a_big_gaussian_allocates_no_whole_image_intermediate():
    photo = np.random.default_rng(4).random((1200, 1000, 3), dtype=np.float32)
    imgfilt.apply(photo[:40], "gaussian", sigma=3.0, output="float")
    tracemalloc.start()
    try:
        result = imgfilt.apply(photo, "gaussian", sigma=3.0, output="float")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output, a band of the row pass (2 MiB) and rings: not a second image.
    assert peak <= result.nbytes + 4 * 2**20, (peak, result.nbytes)
