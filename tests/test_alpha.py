"""Alpha done right: smoothing filters work on premultiplied colour and filter alpha; other
filters keep alpha. Checked against Pillow and a NumPy premultiplied reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageFilter

import imgfilt
from imgfilt import filters
from imgfilt.alpha import is_smoothing, premultiply, unpremultiply


def red_disc(size=31, radius=8):
    """A red disc on a fully transparent black background (the issue's case)."""
    pixels = np.zeros((size, size, 4), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    pixels[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius ** 2] = (255, 0, 0, 255)
    return Image.fromarray(pixels, "RGBA")


def test_red_disc_box_matches_pillow_premultiplied():
    """Pillow's BoxBlur filters the four bands straight; for a red disc on transparent black the
    straight red is also the premultiplied red, so Pillow's R band is our R * A / 255 and its
    alpha is our alpha. (BoxBlur extends the edge: our 'replicate'.)"""
    disc = red_disc()
    ours = np.asarray(imgfilt.apply(disc, "box", padding_mode="replicate")).astype(int)
    pillow = np.asarray(disc.filter(ImageFilter.BoxBlur(1))).astype(int)
    np.testing.assert_array_equal(ours[..., 3], pillow[..., 3])
    premultiplied = np.rint(ours[..., 0] * ours[..., 3] / 255)
    assert np.abs(premultiplied - pillow[..., 0]).max() <= 1
    # No dark ring: wherever anything shows, it is pure red.
    seen = ours[..., 3] > 0
    assert seen.sum() > 200
    assert np.all(ours[seen][:, 0] == 255) and np.all(ours[seen][:, 1:3] == 0)
    # The edge is soft: alpha takes intermediate values around the disc.
    assert len(np.unique(ours[..., 3])) > 3


def test_gaussian_on_random_rgba_equals_numpy_premultiplied_reference():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 27, 4), dtype=np.uint8)
    pixels[rng.random((24, 27)) < 0.3, 3] = 0  # some fully transparent pixels
    out = np.asarray(imgfilt.apply(Image.fromarray(pixels, "RGBA"), "gaussian", sigma=1.5))
    alpha = pixels[..., 3] / 255.0
    kernel = filters.gaussian(1.5)
    blur = [imgfilt.apply(plane, kernel, output="float") for plane in
            [pixels[..., c] * alpha for c in range(3)] + [alpha]]
    coverage = np.clip(blur[3], 0, 1)
    colour = np.stack([np.where(coverage > 0, b / np.where(coverage > 0, coverage, 1), 0)
                       for b in blur[:3]], axis=-1)
    expected = np.concatenate([colour, coverage[..., None] * 255], axis=-1)
    expected = np.clip(np.rint(expected), 0, 255)
    assert np.abs(out.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("name", ["sobel", "sobel_x", "laplacian", "sharpen", "identity"])
def test_non_smoothing_filters_keep_alpha(name):
    disc = red_disc()
    disc.putpixel((0, 0), (10, 20, 30, 0))  # a colour under full transparency
    out = np.asarray(imgfilt.apply(disc, name))
    np.testing.assert_array_equal(out[..., 3], np.asarray(disc)[..., 3])
    if name == "identity":  # nothing is lost, not even the colour under alpha 0
        np.testing.assert_array_equal(out, np.asarray(disc))


def test_la_and_stride():
    grey = np.dstack([np.full((12, 14), 200, np.uint8), np.zeros((12, 14), np.uint8)])
    grey[4:8, 4:8, 1] = 255
    image = Image.fromarray(grey, "LA")
    full = np.asarray(imgfilt.apply(image, "box"))
    assert np.all(full[full[..., 1] > 0][:, 0] == 200)  # the grey does not darken
    strided = np.asarray(imgfilt.apply(image, "box", stride=2))
    np.testing.assert_array_equal(strided, full[::2, ::2])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)),
              elements=st.floats(0, 10, allow_nan=False)))
def test_is_smoothing_rule(weights):
    total = weights.sum()
    if np.count_nonzero(weights) == 1:
        assert not is_smoothing(weights / total)  # one tap mixes no pixels
    elif total > 1e-3:
        assert is_smoothing(weights / total)
        assert not is_smoothing(weights / total * 1.01)  # sums to 1.01
        shifted = weights / total - weights.mean() / total
        if np.any(shifted < -1e-12):
            assert not is_smoothing(shifted)  # negative weights (sums to 0)
    assert not is_smoothing(np.ones((1, 1, 3, 3)) / 9, combine="magnitude")
    assert not is_smoothing(np.ones((2, 1, 3, 3)) / 9)  # two responses


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, (6, 3)), arrays(np.uint8, (6,)))
def test_premultiply_round_trip(colour, alpha):
    back = unpremultiply(premultiply(colour, alpha), alpha.astype(float), 255.0)
    seen = alpha > 0
    np.testing.assert_allclose(back[seen], colour[seen], atol=1e-9)
    assert np.all(back[~seen] == 0)
