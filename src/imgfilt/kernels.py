"""Kernel factories: plain functions returning NumPy arrays, nothing else.

Every kernel here is written for *correlation* (the engine's operation, :func:`imgfilt.conv`):
``out[y, x] = sum_m sum_n k[m, n] * img[y + m - cy, x + n - cx]``. So ``sobel_x()`` has its
positive column on the right and measures the derivative along x (increasing to the right), as
``scipy.ndimage.sobel(axis=-1)`` and ``cv2.Sobel(dx=1)`` do.

Axes follow NumPy order: a 2-D kernel is ``(rows, columns)`` = ``(y, x)``, a 3-D kernel is
``(z, y, x)``. Rank-1 kernels have a ``*_factors`` companion returning the 1-D vectors whose
outer product is the kernel, one per axis, for two-pass (separable) evaluation.

Examples
--------
>>> from imgfilt import kernels
>>> kernels.sobel_x()
array([[-1.,  0.,  1.],
       [-2.,  0.,  2.],
       [-1.,  0.,  1.]])
"""
from __future__ import annotations

import decimal
import math
import numbers
from typing import Sequence, Tuple, Union

import numpy as np

from .errors import MAX_BYTES

__all__ = [
    "outer",
    "identity",
    "box",
    "box_factors",
    "gaussian",
    "gaussian_factors",
    "gaussian1d",
    "gaussian_radius",
    "derivative_factors",
    "sobel_x",
    "sobel_y",
    "sobel",
    "scharr_x",
    "scharr_y",
    "prewitt_x",
    "prewitt_y",
    "laplacian",
    "sharpen",
    "emboss",
    "unsharp",
    "edge",
    "gradient1d",
]

Sigma = Union[float, Sequence[float]]

# 1-D pieces of the first-derivative filters: a central difference along one axis, a smoothing
# vector along every other axis.
_DIFFERENCE = np.array([-1.0, 0.0, 1.0])
_SMOOTHING = {
    "sobel": np.array([1.0, 2.0, 1.0]),
    "prewitt": np.array([1.0, 1.0, 1.0]),
    "scharr": np.array([3.0, 10.0, 3.0]),
}


# ---------------------------------------------------------------------------------------------
# Parameter checks (shared with imgfilt.filters, which calls these factories)


def _check_ndim(ndim: object, allowed: Tuple[int, ...] = (1, 2, 3)) -> int:
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in allowed:
        raise ValueError(f"ndim must be one of {allowed}, got {ndim!r}")
    return int(ndim)


def _check_odd_size(size: object, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"{name} must be an odd integer >= 1, got {type(size).__name__} {size!r}")
    if size < 1 or size % 2 == 0:
        # Odd only: an even box has no centre pixel, so the result would shift by half a pixel.
        raise ValueError(f"{name} must be an odd integer >= 1 (so the kernel has a centre), got {size}")
    return int(size)


def _check_real(value: object, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if number < minimum or (strict and number == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum:g}, got {value!r}")
    return number


def _per_axis_sigma(sigma: Sigma, ndim: int) -> Tuple[float, ...]:
    if isinstance(sigma, (list, tuple, np.ndarray)):
        values = list(np.asarray(sigma).ravel()) if isinstance(sigma, np.ndarray) else list(sigma)
        if len(values) != ndim:
            raise ValueError(
                f"sigma must be a number or {ndim} numbers (one per axis), got {sigma!r}"
            )
        return tuple(_check_real(v, f"sigma[{i}]") for i, v in enumerate(values))
    return (_check_real(sigma, "sigma"),) * ndim


# ---------------------------------------------------------------------------------------------
# Building blocks


def outer(factors: Sequence[np.ndarray]) -> np.ndarray:
    """The outer product of 1-D vectors: the N-D kernel of a rank-1 (separable) filter.

    Parameters
    ----------
    factors : sequence of 1-D arrays
        One vector per axis, in axis order.

    Returns
    -------
    numpy.ndarray
        ``k[i, j, ...] = factors[0][i] * factors[1][j] * ...``

    Examples
    --------
    >>> outer([np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])])[0]
    array([-1.,  0.,  1.])
    """
    vectors = [np.asarray(vector, dtype=np.float64) for vector in factors]
    shape = tuple(vector.size for vector in vectors)
    if not vectors or 0 in shape or any(vector.ndim != 1 for vector in vectors):
        raise ValueError(f"factors must be one or more non-empty 1-D vectors, got shapes "
                         f"{[vector.shape for vector in vectors]}")
    _check_kernel_bytes(shape, "the outer product of the factors")
    result = np.ones((), dtype=np.float64)
    for vector in vectors:
        result = np.multiply.outer(result, vector)
    return result


def _check_kernel_bytes(shape: Tuple[int, ...], what: str) -> None:
    """Refuse, before allocating, a float64 kernel larger than :data:`imgfilt.errors.MAX_BYTES`."""
    size = 8 * math.prod(shape)
    if size > MAX_BYTES:
        sizes = ", ".join(f"{decimal.Decimal(n):.3e}" if n > 10**9 else str(n) for n in shape)
        raise ValueError(f"{what} would be a kernel of shape ({sizes}), "
                         f"{decimal.Decimal(size) / 2**30:.3e} GiB; at most "
                         f"{MAX_BYTES // 2**30} GiB is allowed")


def identity(ndim: int = 2) -> np.ndarray:
    """The 1x1 (or 1, or 1x1x1) kernel that returns its input unchanged.

    Examples
    --------
    >>> identity()
    array([[1.]])
    """
    ndim = _check_ndim(ndim)
    return np.ones((1,) * ndim)


def box_factors(size: int = 3, ndim: int = 2) -> Tuple[np.ndarray, ...]:
    """The 1-D factors of :func:`box`: ``ones(size) / size`` on every axis."""
    size = _check_odd_size(size)
    ndim = _check_ndim(ndim)
    _check_kernel_bytes((size,) * ndim, f"size={size}")
    return tuple(np.full(size, 1.0 / size) for _ in range(ndim))


def box(size: int = 3, ndim: int = 2) -> np.ndarray:
    """The mean filter: a ``size``-wide cube of equal weights summing to 1.

    Parameters
    ----------
    size : int
        Odd width along every axis (odd so the kernel has a centre and does not shift the image).
    ndim : {1, 2, 3}
        Number of axes.

    Examples
    --------
    >>> float(box(3).sum())
    1.0
    """
    return outer(box_factors(size, ndim))


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """scipy.ndimage's radius for a Gaussian: ``int(truncate * sigma + 0.5)``.

    Examples
    --------
    >>> gaussian_radius(1.0)
    4
    """
    sigma = _check_real(sigma, "sigma")
    radius = truncate * sigma + 0.5
    if 8 * (2 * radius + 1) > MAX_BYTES:  # checked as a float: int(inf) would overflow
        raise ValueError(f"sigma={sigma:g} gives a Gaussian of radius {radius:.3g}, a kernel of "
                         f"more than {MAX_BYTES // 2**30} GiB; use a smaller sigma")
    return int(radius)


def gaussian1d(sigma: float = 1.0, radius: Union[int, None] = None) -> np.ndarray:
    """A sampled, normalised 1-D Gaussian of ``2 * radius + 1`` taps.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, >= 0 (0 gives the identity ``[1.]``).
    radius : int, optional
        Half-width; default ``int(4 * sigma + 0.5)``, scipy.ndimage's truncation.

    Returns
    -------
    numpy.ndarray
        Weights summing to 1, exactly as ``scipy.ndimage.gaussian_filter1d`` uses them.

    Examples
    --------
    >>> gaussian1d(1.0).shape
    (9,)
    """
    sigma = _check_real(sigma, "sigma")
    if radius is None:
        radius = gaussian_radius(sigma)
    elif isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0 or None, got {radius!r}")
    radius = int(radius)
    _check_kernel_bytes((2 * radius + 1,), f"radius={decimal.Decimal(radius):.3e}"
                        if radius > 10**9 else f"radius={radius}")
    if sigma == 0.0:
        # The limit of a Gaussian as sigma -> 0: all weight on the centre tap.
        taps = np.zeros(2 * radius + 1)
        taps[radius] = 1.0
        return taps
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def gaussian_factors(
    sigma: Sigma = 1.0, radius: Union[int, None] = None, ndim: int = 2
) -> Tuple[np.ndarray, ...]:
    """The 1-D factors of :func:`gaussian`, one per axis."""
    ndim = _check_ndim(ndim)
    sigmas = _per_axis_sigma(sigma, ndim)
    return tuple(gaussian1d(s, radius) for s in sigmas)


def gaussian(sigma: Sigma = 1.0, radius: Union[int, None] = None, ndim: int = 2) -> np.ndarray:
    """A normalised Gaussian kernel, the outer product of :func:`gaussian1d` on every axis.

    Parameters
    ----------
    sigma : float or sequence of float
        Standard deviation in pixels, one for all axes or one per axis; >= 0.
    radius : int, optional
        Half-width on every axis; default ``int(4 * sigma + 0.5)`` per axis (scipy's truncation).
    ndim : {1, 2, 3}
        Number of axes.

    Examples
    --------
    >>> k = gaussian(1.0)
    >>> k.shape, round(float(k.sum()), 12)
    ((9, 9), 1.0)
    """
    return outer(gaussian_factors(sigma, radius, ndim))


def derivative_factors(kind: str, axis: int, ndim: int = 2) -> Tuple[np.ndarray, ...]:
    """1-D factors of a Sobel/Prewitt/Scharr derivative along ``axis`` of an ``ndim``-D kernel.

    Parameters
    ----------
    kind : {'sobel', 'prewitt', 'scharr'}
        Which smoothing vector is used across the other axes.
    axis : int
        The axis of differentiation (negative counts from the end: -1 is x).
    ndim : {1, 2, 3}
        Number of axes.

    Examples
    --------
    >>> [f.tolist() for f in derivative_factors("sobel", -1)]
    [[1.0, 2.0, 1.0], [-1.0, 0.0, 1.0]]
    """
    if kind not in _SMOOTHING:
        raise ValueError(f"kind must be one of {sorted(_SMOOTHING)}, got {kind!r}")
    ndim = _check_ndim(ndim)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [-{ndim}, {ndim - 1}], got {axis}")
    axis %= ndim
    return tuple(
        _DIFFERENCE.copy() if a == axis else _SMOOTHING[kind].copy() for a in range(ndim)
    )


def sobel_x() -> np.ndarray:
    """Sobel derivative along x (columns): ``[[-1,0,1],[-2,0,2],[-1,0,1]]``.

    Examples
    --------
    >>> sobel_x()[1]
    array([-2.,  0.,  2.])
    """
    return outer(derivative_factors("sobel", -1, 2))


def sobel_y() -> np.ndarray:
    """Sobel derivative along y (rows, downwards): ``[[-1,-2,-1],[0,0,0],[1,2,1]]``.

    Examples
    --------
    >>> sobel_y()[:, 1]
    array([-2.,  0.,  2.])
    """
    return outer(derivative_factors("sobel", 0, 2))


def sobel(axis: int, ndim: int = 2) -> np.ndarray:
    """Sobel derivative along any ``axis`` of an ``ndim``-D kernel (3-D: ``sobel(0, 3)`` is z).

    Examples
    --------
    >>> sobel(0, 3).shape
    (3, 3, 3)
    """
    return outer(derivative_factors("sobel", axis, ndim))


def scharr_x() -> np.ndarray:
    """Scharr derivative along x, OpenCV's scale: ``[[-3,0,3],[-10,0,10],[-3,0,3]]``.

    Examples
    --------
    >>> scharr_x()[1]
    array([-10.,   0.,  10.])
    """
    return outer(derivative_factors("scharr", -1, 2))


def scharr_y() -> np.ndarray:
    """Scharr derivative along y: the transpose of :func:`scharr_x`.

    Examples
    --------
    >>> scharr_y()[:, 1]
    array([-10.,   0.,  10.])
    """
    return outer(derivative_factors("scharr", 0, 2))


def prewitt_x() -> np.ndarray:
    """Prewitt derivative along x: ``[[-1,0,1],[-1,0,1],[-1,0,1]]``.

    Examples
    --------
    >>> prewitt_x()[0]
    array([-1.,  0.,  1.])
    """
    return outer(derivative_factors("prewitt", -1, 2))


def prewitt_y() -> np.ndarray:
    """Prewitt derivative along y: the transpose of :func:`prewitt_x`.

    Examples
    --------
    >>> prewitt_y()[:, 0]
    array([-1.,  0.,  1.])
    """
    return outer(derivative_factors("prewitt", 0, 2))


def laplacian(ndim: int = 2) -> np.ndarray:
    """The nearest-neighbour Laplacian, the sum of ``[1, -2, 1]`` along every axis.

    In 2-D the 4-neighbour ``[[0,1,0],[1,-4,1],[0,1,0]]``; in 3-D the 6-neighbour stencil with
    -6 at the centre; in 1-D ``[1, -2, 1]``. Equals ``scipy.ndimage.laplace``.

    Examples
    --------
    >>> laplacian()
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    ndim = _check_ndim(ndim)
    kernel = np.zeros((3,) * ndim)
    centre = (1,) * ndim
    for axis in range(ndim):
        for offset in (0, 2):
            index = list(centre)
            index[axis] = offset
            kernel[tuple(index)] = 1.0
    kernel[centre] = -2.0 * ndim
    return kernel


def sharpen() -> np.ndarray:
    """Identity minus the Laplacian: ``[[0,-1,0],[-1,5,-1],[0,-1,0]]`` (sums to 1).

    Examples
    --------
    >>> sharpen()[1]
    array([-1.,  5., -1.])
    """
    kernel = -laplacian(2)
    kernel[1, 1] += 1.0
    return kernel


def emboss() -> np.ndarray:
    """The classic emboss ``[[-2,-1,0],[-1,1,1],[0,1,2]]``: light from the top left, sums to 1.

    Because the weights sum to 1, flat regions keep their grey level (Pillow's EMBOSS instead
    sums to 0 and adds an offset of 128).

    Examples
    --------
    >>> float(emboss().sum())
    1.0
    """
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def unsharp(sigma: float = 1.0, amount: float = 1.0, ndim: int = 2) -> np.ndarray:
    """Unsharp masking as one kernel: ``identity + amount * (identity - gaussian(sigma))``.

    Parameters
    ----------
    sigma : float
        Standard deviation of the blur that is subtracted, > 0.
    amount : float
        Strength, >= 0 (0 returns the image unchanged).

    Examples
    --------
    >>> round(float(unsharp(1.0, 1.5).sum()), 12)
    1.0
    """
    sigma = _check_real(sigma, "sigma", strict=True)
    amount = _check_real(amount, "amount")
    kernel = -amount * gaussian(sigma, ndim=ndim)
    centre = tuple(s // 2 for s in kernel.shape)
    kernel[centre] += 1.0 + amount
    return kernel


_EDGE_KERNELS = {
    # Vertical edges are where the intensity changes along x.
    "vertical": sobel_x,
    "horizontal": sobel_y,
    # Derivative along the main diagonal (top-left to bottom-right).
    "diagonal": lambda: np.array([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]]),
}
EDGE_DIRECTIONS = tuple(_EDGE_KERNELS)
EDGE_CHANNELS = ("r", "g", "b", "all")


def edge(channel: Union[str, int] = "r", direction: str = "vertical") -> np.ndarray:
    """A ``(1, 3, 3, 3)`` weight that sees edges in one colour channel (or all of them summed).

    Parameters
    ----------
    channel : {'r', 'g', 'b', 'all'} or {0, 1, 2}
        The input channel whose slice holds the edge kernel; ``'all'`` puts it in every slice,
        so the response is the edge response of ``r + g + b``.
    direction : {'vertical', 'horizontal', 'diagonal'}
        Sobel x (vertical edges), Sobel y (horizontal edges) or the diagonal Sobel.

    Examples
    --------
    >>> w = edge("g", "horizontal")
    >>> w.shape, float(abs(w[0, 0]).sum()), float(abs(w[0, 1]).sum())
    ((1, 3, 3, 3), 0.0, 8.0)
    """
    if direction not in _EDGE_KERNELS:
        raise ValueError(f"direction must be one of {EDGE_DIRECTIONS}, got {direction!r}")
    if isinstance(channel, str):
        key = channel.lower()
        if key not in EDGE_CHANNELS:
            raise ValueError(
                f"channel must be one of {EDGE_CHANNELS} or 0, 1, 2, got {channel!r}"
            )
        slices = range(3) if key == "all" else [EDGE_CHANNELS.index(key)]
    elif isinstance(channel, numbers.Integral) and not isinstance(channel, bool) and 0 <= channel < 3:
        slices = [int(channel)]
    else:
        raise ValueError(f"channel must be one of {EDGE_CHANNELS} or 0, 1, 2, got {channel!r}")
    weight = np.zeros((1, 3, 3, 3))
    for index in slices:
        weight[0, index] = _EDGE_KERNELS[direction]()
    return weight


def gradient1d() -> np.ndarray:
    """The central difference ``[-0.5, 0, 0.5]``: numpy.gradient's interior rule.

    Examples
    --------
    >>> gradient1d()
    array([-0.5,  0. ,  0.5])
    """
    return 0.5 * _DIFFERENCE
