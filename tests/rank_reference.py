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


def reference_canny(image, sigma, low, high):
    """Canny in float64 with scipy.ndimage for the linear steps, NumPy for the suppression (the
    magnitude interpolated where the gradient line leaves the sample's neighbourhood) and
    scipy.ndimage.label for hysteresis; 2-D or 3-D, zero border with bleed-over correction, the
    thresholds absolute (in the image's units)."""
    import scipy.ndimage as ndi

    x = np.asarray(image, dtype=np.float64)
    nd = x.ndim
    smoothed = ndi.gaussian_filter(x, sigma, mode="constant") / ndi.gaussian_filter(
        np.ones_like(x), sigma, mode="constant")
    grads = np.stack([ndi.sobel(smoothed, axis=a) for a in range(nd)])
    magnitude = np.sqrt((grads ** 2).sum(axis=0))
    top = np.abs(grads).max(axis=0)
    keep = np.zeros(x.shape, bool)
    inner = tuple(slice(1, -1) for _ in range(nd))
    padded = magnitude
    for index in zip(*np.nonzero(np.ones(x.shape, bool)[inner])):
        p = tuple(i + 1 for i in index)
        m = magnitude[p]
        if not (m >= max(low, 1e-30)) or top[p] == 0:
            continue
        step = grads[(slice(None),) + p] / top[p]
        ok = True
        for sign in (1, -1):
            q = np.array(p, float) + sign * step
            base = np.floor(q).astype(int)
            frac = q - base
            value = 0.0
            for corner in itertools_product(nd):
                weight = np.prod([f if c else 1 - f for f, c in zip(frac, corner)])
                if weight:
                    value += weight * padded[tuple(base + np.array(corner))]
            ok &= value <= m * (1 + 1e-9)
        keep[p] = ok
    weak = keep & (magnitude >= low)
    labels, count = ndi.label(weak, np.ones((3,) * nd, bool))
    strong_labels = np.unique(labels[weak & (magnitude >= high)])
    good = np.zeros(count + 1, bool)
    good[strong_labels] = True
    good[0] = False
    return good[labels]


def itertools_product(nd):
    import itertools

    return itertools.product((0, 1), repeat=nd)
