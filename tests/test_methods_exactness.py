"""Every method keeps the direct method's promises: NaN and infinity stay in the windows that
hold them, and each output is accurate relative to its own window's magnitude (a dark region
beside a bright block), not to the brightest value in the image."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_conv
from strategies import examples

import imgfilt

CONV = __import__("sys").modules["imgfilt.convolution"]
MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


def separable_weight(rng, out_channels, size):
    """Rank-1 non-negative kernels with no zero tap (every window sees every sample)."""
    rows = rng.uniform(0.5, 1.5, (out_channels, size))
    cols = rng.uniform(0.5, 1.5, (out_channels, size))
    return np.einsum("oi,oj->oij", rows, cols)[:, None]


@pytest.mark.parametrize("method", ["direct", "separable", "fft", "auto"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_stay_in_their_windows(method, mode, bad):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 1, 13, 15))
    x[0, 0, 6, 7] = bad
    x[1, 0, 0, 14] = bad  # a corner: reaches the other side only through the padding
    weight = separable_weight(rng, 3, 5)
    for dtype in (np.float64, np.float32):
        result = imgfilt.conv(x.astype(dtype), weight, padding="same", padding_mode=mode,
                              method=method)
        expected = reference_conv(x, weight, padding="same", padding_mode=mode)
        assert np.array_equal(np.isnan(result), np.isnan(expected))
        assert np.array_equal(np.isposinf(result), np.isposinf(expected))
        assert np.array_equal(np.isneginf(result), np.isneginf(expected))
        finite = np.isfinite(expected)
        assert 0 < finite.sum() < finite.size
        np.testing.assert_allclose(result[finite], expected[finite], rtol=1e-4, atol=1e-4)


@settings(max_examples=examples(40), deadline=None)
@given(st.data())
def test_fft_non_finite_locality_matches_the_oracle(data):
    """Random shapes, groups, strides, dilations and modes; a few non-finite samples."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    groups = data.draw(st.sampled_from([1, 2]))
    group_in = data.draw(st.integers(1, 2))
    group_out = data.draw(st.integers(1, 2))
    size = (data.draw(st.integers(3, 14)), data.draw(st.integers(3, 14)))
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    stride = data.draw(st.integers(1, 2))
    dilation = data.draw(st.integers(1, 2))
    mode = data.draw(st.sampled_from(MODES))
    x = rng.normal(size=(2, groups * group_in) + size)
    for _ in range(data.draw(st.integers(1, 3))):
        index = tuple(rng.integers(0, n) for n in x.shape)
        x[index] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    weight = rng.uniform(0.5, 1.5, (groups * group_out, group_in) + kernel)
    bias = rng.normal(size=groups * group_out)
    options = dict(padding=(kernel[0] - 1) * dilation, padding_mode=mode, stride=stride,
                   dilation=dilation, groups=groups)
    try:
        expected = reference_conv(x, weight, bias, **options)
    except ValueError:
        return
    result = imgfilt.conv(x, weight, bias, method="fft", **options)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(np.isnan(result), np.isnan(expected))
        assert np.array_equal(np.isinf(result) & (result > 0), np.isposinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(result[finite], expected[finite], rtol=1e-9, atol=1e-9)


def window_magnitude(x, weight, **options):
    """sum |w| |x| over each output's window, in float64."""
    return imgfilt.conv(np.abs(x).astype(np.float64), np.abs(weight).astype(np.float64),
                        method="direct", **options)


@pytest.mark.parametrize("method", ["direct", "separable", "fft", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dark_region_beside_a_bright_block_keeps_its_own_precision(method, dtype):
    rng = np.random.default_rng(11)
    x = rng.uniform(0.5, 1.0, (1, 96, 120))
    x[:, :, 64:] = 1e5          # a bright block
    x[:, :20] = 0.0             # and a black band, dark and bright side
    weight = separable_weight(rng, 1, 35)  # 1,225 taps: "auto" is separable, fft on request
    options = dict(padding="same", padding_mode="reflect")
    result = imgfilt.conv(x.astype(dtype), weight.astype(dtype), method=method, **options)
    exact = reference_conv(x.astype(dtype).astype(np.float64), weight.astype(dtype), **options)
    magnitude = window_magnitude(x.astype(dtype), weight.astype(dtype), **options)
    error = np.abs(result.astype(np.float64) - exact)
    # float32 rounds each of 1,225 terms: a few units of 6e-8 per term, relative to the window.
    # The FFT (float64) errs by ~1e-16 of the brightest window, 1e-10 of the darkest here.
    relative = 1e-5 if dtype == np.float32 or method == "fft" else 1e-12
    bound = relative * magnitude
    assert (error <= bound).all(), (error / np.maximum(magnitude, 1e-300)).max()
    assert (result >= 0).all()   # a non-negative image and kernel: nothing negative
    black = magnitude == 0
    assert black.any() and (result[black] == 0).all()


def test_the_fft_of_a_non_separable_kernel_is_accurate_in_dark_windows():
    rng = np.random.default_rng(12)
    x = rng.uniform(0.5, 1.0, (5, 80, 90)).astype(np.float32)
    x[:, :, 50:] = 1e5
    weight = rng.uniform(0.0, 1.0, (2, 5, 21, 21)).astype(np.float32)  # 2,205 taps per output
    assert CONV.choose_method("auto", weight, CONV.plan(x.shape, x.dtype, weight.shape,
                                                        padding="same"))[0] == "fft"
    result = imgfilt.conv(x, weight, padding="same")
    exact = reference_conv(x.astype(np.float64), weight.astype(np.float64), padding="same")
    magnitude = window_magnitude(x, weight, padding="same")
    assert (np.abs(result - exact) <= 1e-5 * magnitude).all()
    assert (result >= 0).all()


def test_the_fft_runs_without_scipy(monkeypatch):
    # scipy is optional at run time: numpy.fft then computes the same thing.
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 30, 31))
    x[1, 3, 4] = np.nan
    weight = rng.normal(size=(2, 2, 5, 6))
    with_scipy = imgfilt.conv(x, weight, padding="same", method="fft")
    monkeypatch.setattr(CONV, "_fft_functions",
                        lambda: (np.fft.rfftn, np.fft.irfftn, False))
    without = imgfilt.conv(x, weight, padding="same", method="fft")
    np.testing.assert_allclose(without, with_scipy, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.array_equal(np.isnan(without), np.isnan(with_scipy))


def test_a_non_finite_kernel_on_the_fft_route_gives_what_direct_gives():
    x = np.random.default_rng(14).normal(size=(1, 12, 12))
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 1, 1] = np.inf
    fft = imgfilt.conv(x, weight, padding="same", method="fft")
    direct = imgfilt.conv(x, weight, padding="same", method="direct")
    np.testing.assert_array_equal(fft, direct)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_saturated_magnitude_is_numpys_round_and_clip(dtype):
    rng = np.random.default_rng(15)
    responses = (rng.normal(size=(2, 40, 50, 3)) * 200).astype(dtype)
    responses[0, 0, :4, 0] = [0.5, 1.5, 2.5, 254.5]  # ties go to even, as numpy.rint
    responses[1, 0, :4, 0] = 0
    expected = np.clip(np.rint(CONV.magnitude(responses, 0)), 0, 255).astype(np.uint8)
    got = CONV.magnitude(responses, 0, saturate=True)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    assert got[0, :4, 0].tolist() == [0, 2, 2, 254]


def test_the_sobel_magnitude_of_an_8_bit_photo_matches_opencvs_pipeline():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(16)
    photo = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    ours = imgfilt.apply(photo, "sobel", padding_mode="reflect")
    gx = cv2.Sobel(photo, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(photo, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    theirs = cv2.convertScaleAbs(cv2.magnitude(gx, gy))
    assert ours.dtype == np.uint8
    difference = np.abs(ours.astype(int) - theirs)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    as_float = imgfilt.apply(photo, "sobel", padding_mode="reflect", output="float")
    np.testing.assert_array_equal(ours, np.clip(np.rint(as_float), 0, 255).astype(np.uint8))
