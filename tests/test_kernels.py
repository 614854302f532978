"""Kernel factories against literal textbook kernels and scipy.ndimage impulse responses.

A correlation kernel ``k`` answers a unit impulse with ``k`` flipped; scipy's filters correlate
too, so scipy's response to an impulse, flipped, is the kernel scipy uses: an independent source.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from imgfilt import kernels as K


def impulse(ndim, size=11):
    x = np.zeros((size,) * ndim)
    x[(size // 2,) * ndim] = 1.0
    return x


def kernel_of(response, shape):
    """The centred ``shape`` window of a correlation's impulse response, flipped back."""
    centre = response.shape[0] // 2
    window = tuple(slice(centre - s // 2, centre + s // 2 + 1) for s in shape)
    flip = (slice(None, None, -1),) * response.ndim
    return response[window][flip]


def test_sobel_x_is_the_textbook_kernel():
    assert np.array_equal(K.sobel_x(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert np.array_equal(K.sobel_y(), K.sobel_x().T)


@pytest.mark.parametrize("axis", [0, 1])
def test_sobel_and_prewitt_match_scipy(axis):
    d = impulse(2)
    assert np.array_equal(kernel_of(ndimage.sobel(d, axis=axis), (3, 3)), K.sobel(axis, 2))
    expected = K.prewitt_x() if axis == 1 else K.prewitt_y()
    assert np.array_equal(kernel_of(ndimage.prewitt(d, axis=axis), (3, 3)), expected)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sobel3d_axes_match_scipy(axis):
    assert np.array_equal(kernel_of(ndimage.sobel(impulse(3, 7), axis=axis), (3, 3, 3)),
                          K.sobel(axis, 3))


def test_scharr_is_opencvs_kernel():
    assert np.array_equal(K.scharr_x(), [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
    assert np.array_equal(K.scharr_y(), K.scharr_x().T)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_laplacian_matches_scipy(ndim):
    expected = kernel_of(ndimage.laplace(impulse(ndim, 7)), (3,) * ndim)
    assert np.array_equal(K.laplacian(ndim), expected)
    assert K.laplacian(ndim).sum() == 0


def test_laplacian_2d_literal():
    assert np.array_equal(K.laplacian(), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7, (1.0, 2.5)])
def test_gaussian_matches_scipy(sigma):
    k = K.gaussian(sigma)
    sigmas = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    radii = [int(4 * s + 0.5) for s in sigmas]
    assert k.shape == tuple(2 * r + 1 for r in radii)
    response = ndimage.gaussian_filter(impulse(2, 31), sigma, mode="constant")
    np.testing.assert_allclose(kernel_of(response, k.shape), k, rtol=1e-12, atol=1e-15)
    assert math.isclose(k.sum(), 1.0, rel_tol=1e-12)


def test_gaussian_radius_and_1d():
    taps = K.gaussian1d(2.0, radius=3)
    assert taps.shape == (7,)
    response = ndimage.gaussian_filter1d(impulse(1, 21), 2.0, radius=3, mode="constant")
    np.testing.assert_allclose(kernel_of(response, (7,)), taps, rtol=1e-12)


def test_gaussian_sigma_zero_is_identity():
    assert np.array_equal(K.gaussian(0.0), [[1.0]])


def test_box():
    k = K.box(5)
    assert k.shape == (5, 5) and np.allclose(k, 1 / 25)
    assert K.box(3, ndim=3).shape == (3, 3, 3)


def test_sharpen_is_identity_minus_laplacian():
    expected = -K.laplacian()
    expected[1, 1] += 1
    assert np.array_equal(K.sharpen(), expected)
    assert np.array_equal(K.sharpen(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])


def test_emboss_keeps_flat_grey():
    k = K.emboss()
    assert np.array_equal(k, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    relief = k - np.pad([[1.0]], 1)  # what is left after the identity: antisymmetric
    assert np.array_equal(relief[::-1, ::-1], -relief)


def test_unsharp_is_image_plus_amount_times_detail():
    sigma, amount = 1.5, 0.7
    g = K.gaussian(sigma)
    delta = np.zeros_like(g)
    delta[g.shape[0] // 2, g.shape[1] // 2] = 1
    np.testing.assert_allclose(K.unsharp(sigma, amount), delta + amount * (delta - g))


@pytest.mark.parametrize("channel,index", [("r", 0), ("g", 1), ("b", 2), (2, 2), ("G", 1)])
@pytest.mark.parametrize("direction,expected", [
    ("vertical", K.sobel_x()), ("horizontal", K.sobel_y()),
    ("diagonal", np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]])),
])
def test_edge_has_one_nonzero_slice(channel, index, direction, expected):
    w = K.edge(channel, direction)
    assert w.shape == (1, 3, 3, 3)
    for c in range(3):
        assert np.array_equal(w[0, c], expected if c == index else np.zeros((3, 3)))


def test_edge_all_sums_every_channel():
    w = K.edge("all", "vertical")
    assert all(np.array_equal(w[0, c], K.sobel_x()) for c in range(3))


def test_gradient1d_is_numpy_gradient_inside():
    signal = np.random.default_rng(0).normal(size=20)
    k = K.gradient1d()
    correlated = np.array([np.dot(k, signal[i - 1: i + 2]) for i in range(1, 19)])
    np.testing.assert_allclose(correlated, np.gradient(signal)[1:-1])


@pytest.mark.parametrize("kind", ["sobel", "prewitt", "scharr"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_derivative_factors_are_rank_one(kind, ndim):
    for axis in range(ndim):
        factors = K.derivative_factors(kind, axis, ndim)
        assert len(factors) == ndim and all(f.ndim == 1 for f in factors)
        assert K.outer(factors).shape == (3,) * ndim


@settings(max_examples=30)
@given(sigma=st.floats(0.05, 4.0), ndim=st.integers(1, 3))
def test_gaussian_factors_multiply_to_the_kernel(sigma, ndim):
    factors = K.gaussian_factors(sigma, ndim=ndim)
    kernel = K.gaussian(sigma, ndim=ndim)
    np.testing.assert_allclose(K.outer(factors), kernel, rtol=1e-12)
    assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-9)
    assert all(np.allclose(f, f[::-1]) for f in factors)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_sigma_is_named(bad):
    with pytest.raises(ValueError, match="sigma"):
        K.gaussian(bad)


def test_bad_parameters():
    with pytest.raises(TypeError, match="sigma"):
        K.gaussian("big")
    with pytest.raises(ValueError, match=r"sigma\[1\]"):
        K.gaussian((1.0, -2.0))
    with pytest.raises(ValueError, match="sigma must be a number or 2"):
        K.gaussian((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="radius"):
        K.gaussian(1.0, radius=-1)
    for size in (0, 2, 4):
        with pytest.raises(ValueError, match="size must be an odd"):
            K.box(size)
    with pytest.raises(TypeError, match="size"):
        K.box(2.5)
    with pytest.raises(ValueError, match="ndim"):
        K.box(3, ndim=4)
    with pytest.raises(ValueError, match="amount"):
        K.unsharp(1.0, -1.0)
    with pytest.raises(ValueError, match="sigma"):
        K.unsharp(0.0, 1.0)
    with pytest.raises(ValueError, match="direction"):
        K.edge("r", "sideways")
    with pytest.raises(ValueError, match="channel"):
        K.edge("alpha")
    with pytest.raises(ValueError, match="channel"):
        K.edge(3)
