"""Images with alpha: which filters see transparency, and how (NumPy only).

The rule (docs/images.md, "Alpha"):

* A **smoothing** kernel, one whose weights are all >= 0 and sum to 1, with two taps or more
  (box, Gaussian, any average), filters **premultiplied colour and alpha together**, as Pillow's resampling and
  every compositor do: a transparent pixel contributes nothing to its neighbours' colour, and
  the edge of a shape fades out softly. The colour is divided by the filtered alpha
  afterwards (un-premultiplied); where the filtered alpha is 0 the colour is 0.
* Every other filter (derivatives, whose weights sum to 0; sharpening, with negative weights;
  the identity and shifts, which mix no pixels; channel-mixing and nonlinear filters) filters the colour as it is and **keeps alpha
  unfiltered**: an edge map or a sharpened picture keeps the shape's outline.

:func:`is_smoothing` decides; :func:`premultiply`, :func:`unpremultiply` and
:func:`filter_premultiplied` do the work on arrays, for any integer or float dtype.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["is_smoothing", "premultiply", "unpremultiply", "filter_premultiplied",
           "alpha_scale"]

#: How far from 1 a smoothing kernel's sum may be (rounding of a sampled Gaussian).
_SUM_TOLERANCE = 1e-6


def is_smoothing(weight: Any, combine: Any = None) -> bool:
    """True for a per-channel kernel whose weights are all >= 0 and sum to 1, with more than one
    non-zero tap.

    Parameters
    ----------
    weight : array_like
        A bare kernel (1-3 axes) or a filter weight ``(R, C_in, *K)``; a weight that mixes
        channels (``C_in > 1``) or holds several responses (``R > 1``) is not smoothing.
    combine : str or None
        A filter's ``combine`` (``'magnitude'``...): any combination is not smoothing.

    Examples
    --------
    >>> is_smoothing(np.full((3, 3), 1 / 9))
    True
    >>> is_smoothing(np.array([[-1, 0, 1]] * 3))   # a derivative: sums to 0
    False
    >>> is_smoothing(np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]))   # sharpen
    False
    """
    array = np.asarray(weight, dtype=np.float64)
    if combine is not None:
        return False
    if array.ndim >= 4:  # (R, C_in, *K)
        if array.shape[0] != 1 or array.shape[1] != 1:
            return False
        array = array[0, 0]
    if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array < 0):
        return False
    # One tap (identity, a shift) mixes no pixels: nothing to premultiply for.
    return int(np.count_nonzero(array)) > 1 and abs(float(array.sum()) - 1.0) <= _SUM_TOLERANCE


def alpha_scale(dtype: Any) -> float:
    """The alpha that means opaque: the integer maximum (255 for uint8), or 1.0 for floats.

    Examples
    --------
    >>> alpha_scale(np.uint8), alpha_scale(np.float32)
    (255.0, 1.0)
    """
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def premultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour * alpha / opaque`` in float64, ``colour`` ``(..., C)`` and ``alpha`` ``(...)``.

    Examples
    --------
    >>> premultiply(np.array([[200, 100]], np.uint8), np.array([128], np.uint8)).round(2)
    array([[100.39,  50.2 ]])
    """
    weight = np.asarray(alpha, dtype=np.float64) / alpha_scale(np.asarray(alpha).dtype)
    return np.asarray(colour, dtype=np.float64) * weight[..., None]


def unpremultiply(premultiplied: np.ndarray, alpha: np.ndarray, opaque: float) -> np.ndarray:
    """The straight colour of premultiplied colour: ``premultiplied * opaque / alpha``, 0 where
    ``alpha`` is 0 (a fully transparent pixel has no colour).

    Examples
    --------
    >>> unpremultiply(np.array([[100.0, 50.0], [3.0, 3.0]]), np.array([127.5, 0.0]), 255.0)
    array([[200., 100.],
           [  0.,   0.]])
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    seen = alpha > 0
    factor = np.divide(opaque, alpha, out=np.zeros_like(alpha), where=seen)
    return np.asarray(premultiplied, dtype=np.float64) * factor[..., None]


def filter_premultiplied(colour: np.ndarray, alpha: np.ndarray,
                         correlate: Callable[[np.ndarray], np.ndarray]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Filter colour and alpha together, premultiplied: ``(colour, alpha)`` as float64 in the
    input's range (0..255 for uint8), before rounding.

    Parameters
    ----------
    colour : numpy.ndarray
        ``(H, W, C)`` straight (not premultiplied) colour.
    alpha : numpy.ndarray
        ``(H, W)``, same dtype; opaque is :func:`alpha_scale`.
    correlate : callable
        Filters a float ``(H, W, C + 1)`` array channel by channel and returns the float
        result (``(H', W', C + 1)``: a stride may shrink it).

    Examples
    --------
    >>> colour = np.zeros((1, 3, 3), np.uint8); colour[0, 1] = (255, 0, 0)
    >>> alpha = np.array([[0, 255, 0]], np.uint8)
    >>> mean = lambda x: np.repeat(x.mean(axis=1, keepdims=True), 3, axis=1)
    >>> out, a = filter_premultiplied(colour, alpha, mean)
    >>> out[0, 0].tolist(), a.tolist()       # the red stays red; alpha is averaged
    ([255.0, 0.0, 0.0], [[85.0, 85.0, 85.0]])
    """
    opaque = alpha_scale(np.asarray(alpha).dtype)
    stacked = np.concatenate(
        [premultiply(colour, alpha), np.asarray(alpha, np.float64)[..., None] / opaque], axis=-1)
    filtered = np.asarray(correlate(stacked), dtype=np.float64)
    coverage = np.clip(filtered[..., -1], 0.0, 1.0)
    straight = unpremultiply(filtered[..., :-1], coverage, 1.0)
    return straight, coverage * opaque
