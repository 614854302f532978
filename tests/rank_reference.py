"""The slow, obviously-correct NumPy oracle for imgfilt.rank: pad, gather every window, sort.

It pads with ``numpy.pad`` (no index maps, nothing shared with the compiled kernels), takes each
window with ``sliding_window_view``, keeps the footprint's samples and sorts them with
``numpy.sort`` (NaN last): the definition the kernels are tested against.
"""
from __future__ import annotations

import numpy as np

NUMPY_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


def reference_rank(x, k, footprint, mode="symmetric", cval=0, origin=0):
    """The ``k``-th smallest of every window; the last ``footprint.ndim`` axes are spatial."""
    x = np.asarray(x)
    footprint = np.asarray(footprint, dtype=bool)
    nd = footprint.ndim
    origins = (origin,) * nd if np.isscalar(origin) else tuple(origin)
    pads = [(0, 0)] * (x.ndim - nd)
    for length, o in zip(footprint.shape, origins):
        before = length // 2 + o
        pads.append((before, length - 1 - before))
    if mode == "zeros":
        padded = np.pad(x, pads, mode="constant", constant_values=cval)
    else:
        padded = np.pad(x, pads, mode=NUMPY_MODE[mode])
    windows = np.lib.stride_tricks.sliding_window_view(padded, footprint.shape,
                                                       axis=tuple(range(x.ndim - nd, x.ndim)))
    samples = windows[..., footprint]  # (..., count)
    return np.sort(samples, axis=-1)[..., k].astype(x.dtype)


# imgfilt mode -> scipy.ndimage mode (docs/semantics.md).
SCIPY_MODE = {
    "zeros": "constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "wrap",
    "symmetric": "reflect",
}
