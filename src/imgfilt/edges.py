"""Canny edge detection for 2-D images and 3-D volumes (the convolution layer, NumPy in and out).

The linear steps (Gaussian smoothing, Sobel gradients) run on the linear engine
(:func:`imgfilt.conv`); non-maximum suppression along the gradient direction and hysteresis by
connectivity run in the compiled nonlinear module. In 2-D it follows
``skimage.feature.canny`` step by step (docs/filters.md states where and by how much they differ);
in 3-D the same definition is carried one dimension further.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np

from .convolution import conv, get_num_threads
from .kernels import gaussian1d
from .padding import normalize_mode
from .rank import compiled

__all__ = ["canny"]

_EDGE = 3  # the compiled hysteresis' mark for a kept sample


def _full_range(dtype: np.dtype) -> float:
    """scikit-image's ``dtype_limits(..., clip_negative=False)[1]``: thresholds' unit."""
    if dtype == np.bool_:
        return 1.0
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


def _correlate_axis(volume: np.ndarray, taps: np.ndarray, axis: int, mode: str) -> np.ndarray:
    """Correlate one axis of a float32 (D, H, W) volume with 1-D ``taps`` (centred, odd)."""
    shape = [1, 1, 1]
    shape[axis] = taps.size
    weight = taps.astype(np.float32).reshape([1, 1] + shape)
    return conv(volume[None], weight, padding="same", padding_mode=mode)[0]


def _smooth(volume: np.ndarray, sigma: float, mode: str, axes_in_use: Sequence[int]) -> np.ndarray:
    taps = gaussian1d(sigma)
    smoothed = volume
    for axis in axes_in_use:
        smoothed = _correlate_axis(smoothed, taps, axis, mode)
    if mode == "zeros":
        # scikit-image divides by the smoothed image of ones ("bleed-over"): near the border the
        # weights that fell outside are given back to the samples inside. It is separable.
        radius = taps.size // 2
        cumulative = np.concatenate([[0.0], np.cumsum(taps)])
        for axis in axes_in_use:
            # The taps that land inside an axis of n samples, for every position.
            position = np.arange(volume.shape[axis])
            first = np.maximum(0, radius - position)
            stop = np.minimum(taps.size, radius + volume.shape[axis] - position)
            weights = (cumulative[stop] - cumulative[first]).astype(np.float32)
            shape = [1, 1, 1]
            shape[axis] = -1
            np.divide(smoothed, weights.reshape(shape), out=smoothed)  # our own array
    return smoothed


def _sobel(volume: np.ndarray, axis: int, axes_in_use: Sequence[int]) -> np.ndarray:
    """scipy.ndimage.sobel: a central difference along ``axis``, [1, 2, 1] along the others
    (scipy's default border, our "symmetric")."""
    result = _correlate_axis(volume, np.array([-1.0, 0.0, 1.0]), axis, "symmetric")
    for other in axes_in_use:
        if other != axis:
            result = _correlate_axis(result, np.array([1.0, 2.0, 1.0]), other, "symmetric")
    return result


def _canny_one(volume: np.ndarray, sigma: float, low: float, high: float,
               use_quantiles: bool, mode: str, unit: float) -> np.ndarray:
    axes_in_use = (0, 1, 2) if volume.shape[0] > 1 else (1, 2)
    smoothed = _smooth(volume, sigma, mode, axes_in_use)
    gy = _sobel(smoothed, 1, axes_in_use)
    gx = _sobel(smoothed, 2, axes_in_use)
    # sqrt(gz² + gy² + gx²) in one array, in place: the same float32 operations in the same
    # order, without a temporary a term.
    square = np.empty_like(gx)
    if volume.shape[0] > 1:
        gz = _sobel(smoothed, 0, axes_in_use)
        magnitude = np.multiply(gz, gz)
        magnitude += np.multiply(gy, gy, out=square)
    else:
        gz = gy
        magnitude = np.multiply(gy, gy)
    magnitude += np.multiply(gx, gx, out=square)
    np.sqrt(magnitude, out=magnitude)
    if use_quantiles:
        low_value, high_value = np.percentile(magnitude, [100.0 * low, 100.0 * high])
    else:
        low_value, high_value = low * unit, high * unit
    marks = np.empty(volume.shape, np.uint8)
    threads = 1 if volume.size < 1 << 16 else get_num_threads()
    compiled.canny_suppress(gz, gy, gx, np.ascontiguousarray(magnitude, np.float32),
                            float(low_value), float(high_value), marks, threads)
    compiled.canny_hysteresis(marks, np.empty(volume.size, np.intp))
    return marks == _EDGE


def canny(image, sigma: float = 1.0, low_threshold: Optional[float] = None,
          high_threshold: Optional[float] = None, *, use_quantiles: bool = False,
          mode: str = "constant", axes: Optional[Sequence[int]] = None) -> np.ndarray:
    """Canny edges of a 2-D image or a 3-D volume (``skimage.feature.canny``, also in 3-D).

    Steps: Gaussian smoothing (``sigma``); Sobel gradients; non-maximum suppression along the
    gradient direction (the magnitude interpolated linearly where the gradient line leaves the
    sample's 3 x 3 or 3 x 3 x 3 neighbourhood); hysteresis: samples >= ``low_threshold`` are
    kept when 8-connected (26 in 3-D) to one >= ``high_threshold``. The outermost samples are
    never edges.

    Parameters
    ----------
    image : array_like
        Real numbers (any dtype but 64-bit integers) or booleans.
    sigma : float
        Standard deviation of the Gaussian, in samples (> 0).
    low_threshold, high_threshold : float, optional
        Gradient magnitudes in the image's units (as scikit-image: 10 % and 20 % of the dtype's
        maximum, 1.0 for floats, by default); with ``use_quantiles``, quantiles of the
        magnitude in 0..1 (default 0.1 and 0.2).
    use_quantiles : bool
        Read the thresholds as quantiles.
    mode : str
        Border of the smoothing: "constant" (= "zeros", the default: as scikit-image, the
        weights falling outside are given back to the samples inside), or any padding mode.
    axes : sequence of int, optional
        The 2 or 3 spatial axes; other axes are a batch. Default: every axis of a 2-D or 3-D
        array.

    Returns
    -------
    numpy.ndarray
        Boolean edge map of ``image``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.edges import canny
    >>> square = np.zeros((9, 9)); square[2:7, 2:7] = 1
    >>> edges = canny(square)
    >>> edges[4].astype(int).tolist()
    [0, 0, 1, 0, 0, 0, 1, 0, 0]
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf" or image.dtype.itemsize > 8 or (
            image.dtype.kind in "iu" and image.dtype.itemsize == 8):
        raise TypeError(f"canny takes real numbers (not 64-bit integers) or booleans, got "
                        f"dtype {image.dtype}")
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"sigma must be a number, got {sigma!r}") from None
    if not sigma > 0 or not np.isfinite(sigma):
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if axes is None:
        if image.ndim not in (2, 3):
            raise ValueError(f"canny needs a 2-D image or a 3-D volume, got {image.ndim} "
                             "dimensions; name the spatial axes with axes=")
        axes = tuple(range(image.ndim))
    axes = tuple(a + image.ndim if a < 0 else a for a in axes)
    if (len(axes) not in (2, 3) or len(set(axes)) != len(axes)
            or any(not 0 <= a < image.ndim for a in axes)):
        raise ValueError(f"axes={axes!r} must name 2 or 3 distinct axes of a "
                         f"{image.ndim}-D array")
    canonical = normalize_mode(mode)
    if use_quantiles:
        low = 0.1 if low_threshold is None else float(low_threshold)
        high = 0.2 if high_threshold is None else float(high_threshold)
        if not (0 <= low <= 1 and 0 <= high <= 1):
            raise ValueError("quantile thresholds must lie in 0..1")
        unit = 1.0
    else:
        unit = _full_range(image.dtype)
        low = 0.1 if low_threshold is None else float(low_threshold) / unit
        high = 0.2 if high_threshold is None else float(high_threshold) / unit
    if high < low:
        raise ValueError(f"low_threshold ({low_threshold}) must not exceed high_threshold "
                         f"({high_threshold})")
    if image.size == 0:
        return np.zeros(image.shape, bool)
    if np.isnan(image).any() if image.dtype.kind == "f" else False:
        raise ValueError("canny: the image holds NaN (gradients there are undefined)")

    moved = np.moveaxis(image, axes, tuple(range(image.ndim - len(axes), image.ndim)))
    spatial_shape = moved.shape[image.ndim - len(axes):]
    batch = moved.reshape((-1,) + spatial_shape)
    edges = np.empty(batch.shape, bool)
    for index in range(batch.shape[0]):
        volume = np.ascontiguousarray(batch[index], dtype=np.float32)
        if volume.ndim == 2:
            volume = volume[None]
        edges[index] = _canny_one(volume, sigma, low, high, use_quantiles, canonical,
                                  unit).reshape(spatial_shape)
    result = edges.reshape(moved.shape)
    return np.moveaxis(result, tuple(range(image.ndim - len(axes), image.ndim)), axes)
