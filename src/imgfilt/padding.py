"""Padding modes and pad widths: the only place that knows what a mode's name means.

The compiled engine never pads an image. It reads each padded axis through an *index map*: for
every position of the padded axis, the index of the input sample it shows, or -1 for a zero.
Every mode is a closed-form fold of the padded index, valid for any pad width (wider than the
axis too, where the pattern keeps bouncing exactly as ``numpy.pad`` does).
"""
from __future__ import annotations

import functools

import numpy as np

#: The canonical modes, each with numpy.pad's name for the same thing.
NUMPY_NAMES = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}

#: Other libraries' names that mean exactly one of ours. scipy.ndimage's "reflect" is *not* here:
#: it means our "symmetric", while our "reflect" is numpy's and PyTorch's (docs/padding.md).
ALIASES = {
    "constant": "zeros",
    "edge": "replicate",
    "nearest": "replicate",
    "wrap": "circular",
    "mirror": "reflect",
}

MODES = tuple(NUMPY_NAMES)


def normalize_mode(padding_mode: object) -> str:
    """Return the canonical name of ``padding_mode``, or raise naming the allowed ones."""
    if not isinstance(padding_mode, str):
        raise TypeError(
            f"padding_mode must be a string, got {type(padding_mode).__name__} {padding_mode!r}"
        )
    name = padding_mode.lower()
    name = ALIASES.get(name, name)
    if name not in NUMPY_NAMES:
        allowed = ", ".join(repr(m) for m in MODES)
        aliases = ", ".join(f"{a!r} (= {c!r})" for a, c in ALIASES.items())
        raise ValueError(
            f"padding_mode={padding_mode!r} is not a padding mode; allowed: {allowed}; "
            f"aliases: {aliases}"
        )
    return name


def index_map(length: int, before: int, after: int, mode: str) -> np.ndarray:
    """Map each position of a padded axis to the input index it shows (-1: a zero).

    Parameters
    ----------
    length : int
        Length of the input axis, >= 1.
    before, after : int
        Pad widths, >= 0, of any size.
    mode : str
        A canonical mode name (see :func:`normalize_mode`).

    Returns
    -------
    numpy.ndarray
        ``intp`` array of ``before + length + after`` indices (read-only: shared between calls).

    Examples
    --------
    >>> index_map(4, 2, 2, "reflect").tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    """
    if mode == "reflect" and length == 1 and (before or after):
        raise ValueError("reflect padding of an axis of length 1 is undefined")
    if length + before + after <= _CACHED_MAP_LENGTH:
        return _cached_index_map(int(length), int(before), int(after), mode)
    return fold(np.arange(-before, length + after, dtype=np.intp), length, mode)


#: Maps up to this length are kept (read-only, shared) for the calls that need them again: a
#: pipeline that filters one image size all day builds each map once.
_CACHED_MAP_LENGTH = 1 << 16


@functools.lru_cache(maxsize=256)
def _cached_index_map(length: int, before: int, after: int, mode: str) -> np.ndarray:
    indices = fold(np.arange(-before, length + after, dtype=np.intp), length, mode)
    indices.setflags(write=False)
    return indices


def fold(position: np.ndarray, length: int, mode: str) -> np.ndarray:
    """The input index each position of an axis of ``length`` shows under ``mode`` (-1: a zero).

    ``position`` holds any integers, outside ``[0, length)`` too: :func:`index_map` is ``fold``
    over a whole padded axis; the Dask adapter folds just the window one output block reads.

    Examples
    --------
    >>> fold(np.array([-2, -1, 0, 4, 5]), 4, "circular").tolist()
    [2, 3, 0, 0, 1]
    """
    position = np.asarray(position, dtype=np.intp)
    if mode == "zeros":
        return np.where((position >= 0) & (position < length), position, -1)
    if mode == "replicate":
        return np.clip(position, 0, length - 1)
    if mode == "circular":
        return position % length
    if mode == "reflect":
        if length == 1:
            if np.any(position != 0):
                raise ValueError("reflect padding of an axis of length 1 is undefined")
            return position
        period = 2 * length - 2  # abcd -> abcdcb, repeated
        folded = position % period
        return np.where(folded >= length, period - folded, folded)
    if mode == "symmetric":
        period = 2 * length  # abcd -> abcddcba, repeated
        folded = position % period
        return np.where(folded >= length, period - 1 - folded, folded)
    raise ValueError(f"unknown canonical padding mode {mode!r}")


def reflect_fallback(mode: str, length: int) -> str:
    """The mode an axis of ``length`` is padded with under ``mode``: ``'reflect'`` on one sample
    is undefined (there is nothing to reflect), and numpy.pad and scipy's ``'mirror'`` repeat
    the sample there, i.e. ``'replicate'``. The one place that rule lives (:func:`imgfilt.conv`
    itself refuses instead; :func:`imgfilt.apply`, banks and the Dask adapter use this).

    Examples
    --------
    >>> reflect_fallback("reflect", 1), reflect_fallback("reflect", 5)
    ('replicate', 'reflect')
    """
    return "replicate" if mode == "reflect" and length == 1 else mode


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Pad widths ``(before, after)`` for ``padding="same"`` on one axis.

    The output has ``ceil(size / stride)`` samples. The total pad is TensorFlow's ``SAME`` rule
    (``d·(k-1)`` at stride 1), placed ``total // 2`` before and the rest after, so an even kernel
    gets its extra row at the bottom/right, as in PyTorch and TensorFlow.
    """
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def output_length(padded: int, kernel: int, stride: int, dilation: int) -> int:
    """Number of outputs along an axis of ``padded`` samples (0 or less: the kernel does not fit)."""
    span = dilation * (kernel - 1) + 1
    return (padded - span) // stride + 1 if padded >= span else 0
