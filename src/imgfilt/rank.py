"""Rank filters and grey morphology on NumPy arrays: the convolution layer's nonlinear half.

Every function takes an array whose last one to three axes are spatial (or the axes named by
``axes=``; every other axis is a batch or channel axis, filtered independently) and returns an
array of the same shape and dtype. The window is a box of ``size`` or a boolean ``footprint``,
centred as in scipy.ndimage (centre index ``n // 2 + origin`` along an axis of length ``n``).

Padding uses imgfilt's mode names (docs/semantics.md): ``"symmetric"`` (the default, scipy's
``"reflect"``), ``"reflect"`` (numpy's, scipy's ``"mirror"``), ``"replicate"`` (``"nearest"``),
``"circular"`` (``"wrap"``), ``"zeros"``/``"constant"`` (pads with ``cval``).

NaN sorts above every number, as in :func:`numpy.sort`: a window's k-th value is the k-th of its
samples sorted that way, so :func:`maximum` is NaN where a window holds a NaN and :func:`minimum`
ignores NaN unless the whole window is NaN (docs/filters.md).

The compiled kernels (``_rank_core.pxi``) choose among a selection network (small windows), a
sliding histogram (8- and 16-bit data, large windows) and van Herk / Gil-Werman (min/max over
a box); ``method=`` forces one.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .convolution import get_num_threads
from .engine import load_nonlinear
from .padding import index_map, normalize_mode

__all__ = [
    "median", "rank", "percentile", "minimum", "maximum",
    "erosion", "dilation", "opening", "closing", "gradient", "white_tophat", "black_tophat",
    "rank_window", "window_pads", "METHODS", "choose_method", "typed_cval", "needs_keys",
    "OPERATIONS", "Pass", "Recipe", "percentile_rank", "recipe", "run_chain", "run_recipe",
    "difference",
]

Size = Union[int, Sequence[int], None]
Axes = Optional[Sequence[int]]


#: Values of ``method=``: "auto" chooses (see :func:`choose_method`).
METHODS = ("auto", "network", "columns", "histogram", "box", "van-herk", "scan")

# Window kernels of the compiled module (its ``method`` codes).
(_TAPS_MIN, _TAPS_MAX, _BOX_MIN, _BOX_MAX, _NETWORK, _HISTOGRAM, _COLUMNS_3X3, _VAN_HERK_MIN,
 _VAN_HERK_MAX, _COLUMNS_5X5, _BOX_ROWS_MIN, _BOX_ROWS_MAX) = range(12)

# The "box" kernel keeps its rows (reduced along the row, and down the columns by doubling)
# between output rows when they take at most this many bytes a thread; else it recombines the
# window's rows for every output row.
_BOX_ROWS_BYTES = 32 << 20

# Below this many sample-comparisons a call runs on one thread (waking a second costs more).
_MIN_PARALLEL_WORK = 1 << 20

#: Largest footprint (samples) the selection network handles for 8- and 16-bit data under
#: method="auto"; larger ones use the sliding histogram. Measured with
#: benchmarks/rank_crossovers.py (docs/performance.md): the network wins up to 9 x 9.
NETWORK_LIMIT = {np.dtype(np.uint8): 100, np.dtype(np.uint16): 100}

# The sliding histogram's fine bins and coarse-bin shift, by key dtype.
_HISTOGRAM_BINS = {np.dtype(np.uint8): (256, 4), np.dtype(np.uint16): (65536, 8)}


#: The compiled nonlinear module in use (rank kernels and Canny's; imgfilt.edges uses it too).
#: ``IMGFILT_SIMD=baseline`` forces the baseline build, as it does for the linear engine.
compiled = load_nonlinear(os.environ.get("IMGFILT_SIMD", "").strip().lower())


# ---------------------------------------------------------------------------------------------
# Selection networks


def _batcher_pairs(n: int) -> list:
    """Batcher's odd-even merge sorting network for ``n`` wires (comparators ``(low, high)``).

    Built for the next power of two; comparators touching wires ``>= n`` are dropped, which is
    exact because those wires can be taken to hold +infinity (a comparator never moves them).
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        low, high = i + j, i + j + k
                        if high < n:
                            pairs.append((low, high))
            k //= 2
        p *= 2
    return pairs


@functools.lru_cache(maxsize=64)
def selection_network(n: int, k: int) -> np.ndarray:
    """Comparators ``(M, 2)`` that put the ``k``-th smallest of ``n`` values on wire ``k``.

    Batcher's sorting network pruned backwards to the comparators wire ``k`` depends on.

    Examples
    --------
    >>> net = selection_network(9, 4)
    >>> values = np.array([5, 1, 9, 3, 7, 2, 8, 6, 4])
    >>> for a, b in net:
    ...     values[[a, b]] = sorted(values[[a, b]])
    >>> int(values[4])
    5
    """
    if not 0 <= k < n:
        raise ValueError(f"rank {k} is outside 0..{n - 1}")
    needed = {k}
    kept = []
    for low, high in reversed(_batcher_pairs(n)):
        if low in needed or high in needed:
            kept.append((low, high))
            needed.update((low, high))
    kept.reverse()
    network = np.array(kept, dtype=np.intp).reshape(-1, 2)
    network.setflags(write=False)
    return network


# ---------------------------------------------------------------------------------------------
# Keys: every dtype as one the kernels order correctly


def needs_keys(x: np.ndarray) -> bool:
    """Whether float ``x`` holds a NaN or a negative zero.

    Then the kernels compare its IEEE bits mapped to ordered unsigned integers (NaN above
    +inf, -0.0 below +0.0), else the floats themselves. Without either value the two orders
    agree sample for sample (no two different floats compare equal), so the answer does not
    depend on how much of an image one call sees: a Dask block decides for itself and still
    gets the bits of the in-memory call.
    """
    if x.dtype.kind != "f":
        return False
    if np.isnan(x).any():
        return True
    negative_zero = np.array(-0.0, x.dtype).view(f"u{x.dtype.itemsize}")
    return bool((x.view(f"u{x.dtype.itemsize}") == negative_zero).any())


def _key_rule(x: np.ndarray, cval_keys: bool) -> str:
    """How ``x`` becomes a kernel dtype whose order is ``x``'s (NaN last, -0.0 below +0.0)."""
    dtype = x.dtype
    if dtype == np.bool_:
        return "bool"
    if dtype.kind == "u":
        return "same"
    if dtype.kind == "i":
        return "signed"
    if dtype.kind == "f":
        nan = cval_keys or needs_keys(x)
        if dtype == np.float16:
            return "float16-keys" if nan else "float16"
        return "float-keys" if nan else "same"
    raise TypeError(f"rank filters take real numbers or booleans, got dtype {dtype}")


def _float_keys(x: np.ndarray) -> np.ndarray:
    """IEEE bits as unsigned integers ordered like the numbers, every NaN above +inf."""
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    top = unsigned.type(1 << (8 * x.dtype.itemsize - 1))
    bits = np.where(np.isnan(x), np.array(np.nan, x.dtype), x).view(unsigned)
    return np.where(bits & top, ~bits, bits | top)


def _to_keys(x: np.ndarray, how: str) -> np.ndarray:
    if how == "same":
        return x
    if how == "bool":
        return x.view(np.uint8)
    if how == "signed":
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        return x.view(unsigned) ^ unsigned.type(1 << (8 * x.dtype.itemsize - 1))
    if how == "float16":
        return x.astype(np.float32)
    if how == "float16-keys":
        return _float_keys(x.astype(np.float32))
    return _float_keys(x)


def _from_keys(keys: np.ndarray, how: str, dtype: np.dtype) -> np.ndarray:
    if how == "same":
        return keys
    if how == "bool":
        return keys.view(np.bool_)
    if how == "signed":
        sign = keys.dtype.type(1 << (8 * keys.dtype.itemsize - 1))
        return (keys ^ sign).view(dtype)
    if how == "float16":
        return keys.astype(np.float16)
    if how == "float16-keys":
        return _from_keys(keys, "float-keys", np.dtype(np.float32)).astype(np.float16)
    top = keys.dtype.type(1 << (8 * keys.dtype.itemsize - 1))
    return np.where(keys & top, keys ^ top, ~keys).view(dtype)


# ---------------------------------------------------------------------------------------------
# Arguments


def _spatial_axes(ndim_data: int, axes: Axes, window_ndim: Optional[int]) -> tuple[int, ...]:
    if axes is not None:
        if isinstance(axes, (int, np.integer)):
            axes = (int(axes),)
        try:
            normalized = tuple(int(a) + ndim_data if int(a) < 0 else int(a) for a in axes)
        except TypeError:
            raise TypeError(f"axes must be a sequence of integers, got {axes!r}") from None
        if (not normalized or len(set(normalized)) != len(normalized)
                or any(not 0 <= a < ndim_data for a in normalized)):
            raise ValueError(
                f"axes={tuple(axes)!r} must name 1 to 3 distinct axes of an array with "
                f"{ndim_data} dimensions")
        if len(normalized) > 3:
            raise ValueError(f"axes={tuple(axes)!r}: rank filters take 1 to 3 spatial axes")
        if window_ndim is not None and window_ndim != len(normalized):
            raise ValueError(
                f"the window has {window_ndim} dimensions but axes={tuple(axes)!r} names "
                f"{len(normalized)}")
        return normalized
    if window_ndim is None:
        if ndim_data > 3:
            raise ValueError(
                f"an integer size on a {ndim_data}-D array is ambiguous: give axes= (the 1 to 3 "
                "spatial axes), a size per spatial axis, or a footprint")
        window_ndim = ndim_data
    if not 1 <= window_ndim <= 3:
        raise ValueError(f"rank filters take 1 to 3 spatial axes, the window has {window_ndim}")
    if window_ndim > ndim_data:
        raise ValueError(
            f"the window has {window_ndim} dimensions, the array only {ndim_data}")
    return tuple(range(ndim_data - window_ndim, ndim_data))


def _footprint(size: Size, footprint, axes: Axes, ndim_data: int):
    """The boolean footprint and the spatial axes it slides over."""
    if footprint is not None:
        if size is not None:
            raise ValueError("give size or footprint, not both")
        fp = np.asarray(footprint)
        if fp.dtype != np.bool_:
            if fp.dtype.kind not in "biuf" or not np.isin(fp, (0, 1)).all():
                raise ValueError("footprint must be boolean (or hold only 0 and 1)")
            fp = fp.astype(bool)
        if fp.ndim == 0 or 0 in fp.shape:
            raise ValueError(f"footprint must be a non-empty 1-D to 3-D array, got shape {fp.shape}")
        if not fp.any():
            raise ValueError("footprint selects no sample")
        spatial = _spatial_axes(ndim_data, axes, fp.ndim)
        return fp, spatial
    if size is None:
        raise ValueError("give size (an int or one per spatial axis) or a boolean footprint")
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        spatial = _spatial_axes(ndim_data, axes, None)
        sizes = (int(size),) * len(spatial)
    else:
        if isinstance(size, (str, bytes)) or isinstance(size, (bool, np.bool_, float)):
            raise TypeError(f"size must be an int or a sequence of ints, got {size!r}")
        try:
            sizes = tuple(int(s) for s in size)
        except TypeError:
            raise TypeError(f"size must be an int or a sequence of ints, got {size!r}") from None
        if any(isinstance(s, (bool, np.bool_, float)) for s in size):
            raise TypeError(f"size must hold integers, got {size!r}")
        spatial = _spatial_axes(ndim_data, axes, len(sizes))
    if any(s < 1 for s in sizes):
        raise ValueError(f"size must be >= 1 along every axis, got {size!r}")
    return np.ones(sizes, dtype=bool), spatial


def _origins(origin, ndim: int) -> tuple[int, ...]:
    if isinstance(origin, (int, np.integer)):
        return (int(origin),) * ndim
    origins = tuple(int(o) for o in origin)
    if len(origins) != ndim:
        raise ValueError(f"origin={origin!r} needs one value per spatial axis ({ndim})")
    return origins


def typed_cval(cval, dtype: np.dtype) -> np.ndarray:
    """``cval`` as a one-element array of ``dtype``; it must be a value of that dtype."""
    try:
        value = np.array(cval)
    except (TypeError, ValueError):
        raise TypeError(f"cval must be a real number, got {cval!r}") from None
    if value.ndim or value.dtype.kind not in "biuf":
        raise TypeError(f"cval must be one real number, got {cval!r}")
    if dtype.kind in "uib":
        low, high = (0, 1) if dtype == np.bool_ else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        number = value.item()
        if not (np.isfinite(number) and float(number).is_integer() and low <= number <= high):
            raise ValueError(
                f"cval={cval!r} is not a value of the input's dtype {dtype} "
                f"(integers {low}..{high})")
        return np.array([int(number)], dtype=dtype)
    return np.array([value.item()], dtype=dtype)


def window_pads(shape: Sequence[int], origin) -> tuple[tuple[int, int], ...]:
    """``(before, after)``: how far a window of ``shape`` centred at ``origin`` reaches on each
    side along each axis (the centre is ``n // 2 + origin``, as in scipy.ndimage).

    Examples
    --------
    >>> window_pads((3, 4), 0), window_pads((4,), -1)
    (((1, 1), (2, 1)), ((1, 2),))
    """
    pads = []
    for length, offset in zip(shape, _origins(origin, len(shape))):
        before = length // 2 + offset
        if not 0 <= before < length:
            raise ValueError(
                f"origin={origin!r}: along an axis of length {length} it must lie in "
                f"{-(length // 2)}..{(length - 1) // 2}")
        pads.append((before, length - 1 - before))
    return tuple(pads)


def choose_method(dtype: np.dtype, footprint: np.ndarray, k: int) -> str:
    """The window kernel ``method="auto"`` uses for the ``k``-th smallest over ``footprint``.

    Minimum and maximum: ``"box"`` (van Herk / Gil-Werman) for a full box, else ``"scan"``.
    The median of a 3 x 3 or 5 x 5 box: ``"columns"`` (sorted columns). Other ranks:
    ``"histogram"`` for 8- and 16-bit data whose footprint exceeds :data:`NETWORK_LIMIT`, else
    ``"network"``.
    """
    count = int(footprint.sum())
    if k in (0, count - 1):
        return "box" if footprint.all() else "scan"
    if _sorted_columns_box(footprint, k):
        return "columns"
    limit = NETWORK_LIMIT.get(np.dtype(dtype))
    if limit is not None and count > limit:
        return "histogram"
    return "network"


def _sorted_columns_box(footprint: np.ndarray, k: int) -> int:
    """3 or 5 when this is the median of a 3 x 3 or 5 x 5 box (the sorted-columns kernels), else 0."""
    shape = footprint.shape
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    if shape in ((3, 3), (5, 5)) and k == shape[0] ** 2 // 2 and footprint.all():
        return shape[0]
    return 0


# ---------------------------------------------------------------------------------------------
# The one entry point to the kernels


def rank_window(x, k: int, footprint: np.ndarray, spatial: tuple[int, ...], *,
                mode: str = "symmetric", cval=0, origin=0, method: str = "auto") -> np.ndarray:
    """The ``k``-th smallest sample (0-based) of every window: the rank filters' one path.

    Parameters
    ----------
    x : array_like
        Real numbers or booleans.
    k : int
        Rank within the window, ``0 <= k < footprint.sum()``.
    footprint : numpy.ndarray
        Boolean, one dimension per spatial axis.
    spatial : tuple of int
        The (non-negative, distinct) spatial axes of ``x``, 1 to 3 of them.
    mode, cval, origin, method
        As in :func:`rank`.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.

    Examples
    --------
    >>> rank_window(np.array([3, 1, 2, 9, 5], np.uint8), 1, np.ones(3, bool), (0,)).tolist()
    [3, 2, 2, 5, 5]
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.dtype.itemsize > 8:
        raise TypeError(f"rank filters take real numbers or booleans, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("rank filters need at least one axis, got a 0-d array")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    canonical = normalize_mode(mode)
    count = int(footprint.sum())
    if not 0 <= k < count:
        raise ValueError(f"rank {k} is outside the footprint's {count} samples")
    pads = window_pads(footprint.shape, origin)
    if x.size == 0:
        return x.copy()

    cval_typed = typed_cval(cval, x.dtype)
    how = _key_rule(x, needs_keys(cval_typed))
    keys = _to_keys(x, how)
    cval_key = np.ascontiguousarray(_to_keys(cval_typed, how))
    kernel = (1,) * (3 - footprint.ndim) + footprint.shape
    pads3 = ((0, 0),) * (3 - footprint.ndim) + tuple(pads)
    fp3 = footprint.reshape(kernel)
    chosen = choose_method(keys.dtype, fp3, k) if method == "auto" else method
    nd = len(spatial)
    channels = x.shape[-1]
    if (chosen in ("network", "columns", "scan", "box") and x.ndim > nd and channels > 1
            and spatial == tuple(range(x.ndim - 1 - nd, x.ndim - 1))):
        # Channels last (..., H, W, C): a row of W pixels of C channels is read as one row of
        # W * C samples whose window taps lie C apart, so the image is never transposed.
        data = np.ascontiguousarray(keys).reshape(
            (-1, 1) + (1,) * (3 - nd) + x.shape[x.ndim - 1 - nd: x.ndim - 2]
            + (x.shape[-2] * channels,))
        maps = [index_map(size, before, after, canonical)
                for size, (before, after) in zip(data.shape[2:4], pads3[:2])]
        pad_before, pad_after = pads3[2]
        columns = index_map(x.shape[-2], pad_before, pad_after, canonical)
        interleaved = np.where(columns[:, None] >= 0,
                               columns[:, None] * channels + np.arange(channels), -1)
        maps.append(np.ascontiguousarray(interleaved.reshape(-1), dtype=np.intp))
        out = np.empty(data.shape, dtype=data.dtype)
        _run(data, out, cval_key, fp3, k, maps, pads3[2][0] * channels, chosen, channels)
        return _from_keys(out, how, x.dtype).reshape(x.shape)

    # Spatial axes last, everything else one batch axis, unit axes up to 3-D.
    moved = np.moveaxis(keys, spatial, tuple(range(x.ndim - nd, x.ndim)))
    batch_shape = moved.shape[: x.ndim - nd]
    spatial_shape = moved.shape[x.ndim - nd:]
    data = np.ascontiguousarray(moved.reshape((-1, 1) + (1,) * (3 - nd) + spatial_shape))
    maps = [index_map(size, before, after, canonical)
            for size, (before, after) in zip(data.shape[2:], pads3)]
    out = np.empty(data.shape, dtype=data.dtype)
    _run(data, out, cval_key, fp3, k, maps, pads3[2][0], chosen, 1)
    result = _from_keys(out, how, x.dtype).reshape(batch_shape + spatial_shape)
    return np.moveaxis(result, tuple(range(x.ndim - nd, x.ndim)), spatial)


def _run(keys: np.ndarray, out: np.ndarray, cval_key: np.ndarray, fp3: np.ndarray, k: int,
         maps: list, pad_left: int, method: str, step: int) -> None:
    """Check ``method`` against the problem, lay out the taps and scratch, call the kernels.

    ``step`` is the distance between a window's neighbouring columns in a row (1, or the channel
    count of interleaved channels-last rows).
    """
    count = int(fp3.sum())
    extreme = k in (0, count - 1)
    if method in ("box", "van-herk", "scan") and not extreme:
        raise ValueError(f"method={method!r} computes minimum and maximum only, not rank {k}")
    if method == "columns" and not _sorted_columns_box(fp3, k):
        raise ValueError("method='columns' computes the median of a 3 x 3 or 5 x 5 box only")
    if method in ("box", "van-herk") and not fp3.all():
        raise ValueError(f"method={method!r} needs a full box footprint (size=, or all True)")
    if method == "histogram" and keys.dtype not in _HISTOGRAM_BINS:
        raise ValueError(
            "method='histogram' needs 8- or 16-bit data (uint8, int8, uint16, int16, bool)")
    kd, kh, kw = fp3.shape
    taps = np.argwhere(fp3)  # C order: row by row, columns increasing
    tap_row = np.ascontiguousarray(taps[:, 0] * kh + taps[:, 1], dtype=np.intp)
    tap_col = np.ascontiguousarray(taps[:, 2] * step, dtype=np.intp)
    empty = np.zeros(0, dtype=np.intp)
    add_row = add_col = rem_row = rem_col = empty
    network = np.zeros((0, 2), dtype=np.intp)
    threads_wanted = get_num_threads()
    items = keys.shape[0] * out.shape[2] * out.shape[3]
    work_estimate = out.size * (count if method in ("scan", "network") else 8)
    threads = 1 if work_estimate < _MIN_PARALLEL_WORK else max(1, min(threads_wanted, items))
    lanes = compiled.lanes()
    padded_w = maps[2].shape[0]
    work_width = 3 * padded_w
    hist = np.zeros((1, 1), dtype=np.intc)
    level_tags = 0
    if method == "network":
        code = _NETWORK
        network = selection_network(count, k)
        work_width = max(work_width, count * lanes)
    elif method == "histogram":
        code = _HISTOGRAM
        bins, shift = _HISTOGRAM_BINS[keys.dtype]
        hist = np.zeros((threads, bins + (bins >> shift)), dtype=np.intc)
        left = np.zeros_like(fp3[..., :1])
        before = np.concatenate([left, fp3[..., :-1]], axis=-1)
        after = np.concatenate([fp3[..., 1:], left], axis=-1)
        entering = np.argwhere(fp3 & ~after)  # the last of each run: enters on a step
        leaving = np.argwhere(fp3 & ~before)  # the first of each run: leaves on a step
        add_row = np.ascontiguousarray(entering[:, 0] * kh + entering[:, 1], dtype=np.intp)
        add_col = np.ascontiguousarray(entering[:, 2], dtype=np.intp)
        rem_row = np.ascontiguousarray(leaving[:, 0] * kh + leaving[:, 1], dtype=np.intp)
        rem_col = np.ascontiguousarray(leaving[:, 2] - 1, dtype=np.intp)
    elif method == "columns":
        code = _COLUMNS_3X3 if kh == 3 else _COLUMNS_5X5
        work_width = max(work_width, 5 * padded_w)
    elif method == "box":
        code = _BOX_MAX if k == count - 1 else _BOX_MIN
        box_levels = kh.bit_length()
        kept = box_levels * kd * kh * out.shape[-1]
        if kh > 1 and kept * keys.itemsize <= _BOX_ROWS_BYTES:
            # The rows reduced along the row and down the columns, kept between output rows.
            code = _BOX_ROWS_MAX if k == count - 1 else _BOX_ROWS_MIN
            work_width = max(work_width, 2 * padded_w + kept)
            level_tags = box_levels * kd * kh
    elif method == "van-herk":
        code = _VAN_HERK_MAX if k == count - 1 else _VAN_HERK_MIN
    else:
        code = _TAPS_MAX if k == count - 1 and count > 1 else _TAPS_MIN
    rows = kd * kh
    ring = np.zeros((threads, rows * (padded_w + lanes)), dtype=keys.dtype)
    tags = np.full((threads, rows), -1, dtype=np.intp)
    work = np.empty((threads, work_width), dtype=keys.dtype)
    offsets = np.full((threads, rows + count + len(add_row) + len(rem_row) + level_tags), -1,
                      dtype=np.intp)
    compiled.rank_rows(keys, out, cval_key, (kd, kh, (kw - 1) * step + 1), tap_row, tap_col, code, k, network,
                       add_row, add_col, rem_row, rem_col, maps[0], maps[1], maps[2], pad_left,
                       ring, tags, work, hist, offsets, threads, step)


# ---------------------------------------------------------------------------------------------
# Public filters


def rank(x, rank: int, size: Size = None, footprint=None, *, mode: str = "symmetric",
         cval: float = 0, origin: Union[int, Sequence[int]] = 0, axes: Axes = None,
         method: str = "auto") -> np.ndarray:
    """The ``rank``-th smallest value of every window (scipy.ndimage.rank_filter).

    Parameters
    ----------
    x : array_like
        Real numbers or booleans; the result has its shape and dtype.
    rank : int
        0-based rank within the window; negative counts from the largest (-1: the maximum).
    size : int or sequence of int, optional
        Box window, one length per spatial axis (an int: the same along each).
    footprint : array_like of bool, optional
        Window shape (instead of ``size``); its dimensions are the spatial axes.
    mode : str
        Padding: "symmetric" (default; scipy's "reflect"), "reflect" ("mirror"), "replicate"
        ("nearest"), "circular" ("wrap"), "zeros" / "constant" (pads with ``cval``).
    cval : number
        The padding value of "zeros"/"constant" (a value of ``x``'s dtype).
    origin : int or sequence of int
        Shift of the window's centre, as in scipy.ndimage.
    axes : sequence of int, optional
        The spatial axes (default: the last ``footprint.ndim`` or ``len(size)`` axes; with an
        integer size, every axis of an array of at most 3 dimensions).
    method : {"auto", "network", "columns", "histogram", "box", "van-herk", "scan"}
        Window kernel (docs/filters.md); every one gives the same result.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import rank
    >>> rank(np.array([5, 1, 4, 2, 3], np.uint8), 1, size=3).tolist()
    [5, 4, 2, 3, 3]
    """
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    count = int(fp.sum())
    k = int(rank)
    if k < 0:
        k += count
    if not 0 <= k < count:
        raise ValueError(f"rank={rank} is outside the window's {count} samples")
    return rank_window(x, k, fp, spatial, mode=mode, cval=cval, origin=origin, method=method)


def median(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
           origin: Union[int, Sequence[int]] = 0, axes: Axes = None,
           method: str = "auto") -> np.ndarray:
    """The median of every window (scipy.ndimage.median_filter).

    For a window of an even number of samples it is the upper median (rank ``n // 2``), as in
    scipy.ndimage; no averaging, so the result stays in the input's dtype. Arguments as in
    :func:`rank`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import median
    >>> median(np.array([[0, 0, 0], [0, 9, 0], [0, 0, 0]], np.uint8), size=3).tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    """
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    return rank_window(x, int(fp.sum()) // 2, fp, spatial, mode=mode, cval=cval,
                       origin=origin, method=method)


def percentile(x, percentile: float, size: Size = None, footprint=None, *,
               mode: str = "symmetric", cval: float = 0,
               origin: Union[int, Sequence[int]] = 0, axes: Axes = None,
               method: str = "auto") -> np.ndarray:
    """The ``percentile``-th percentile of every window (scipy.ndimage.percentile_filter).

    The rank is scipy's: ``int(n * percentile / 100)`` (``n - 1`` at 100) for a window of ``n``
    samples, no interpolation; a negative percentile counts from 100. Arguments as in
    :func:`rank`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import percentile
    >>> percentile(np.arange(5, dtype=np.float32), 100, size=3).tolist()
    [1.0, 2.0, 3.0, 4.0, 4.0]
    """
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    k = percentile_rank(percentile, int(fp.sum()))
    return rank_window(x, k, fp, spatial, mode=mode, cval=cval, origin=origin, method=method)


def percentile_rank(percentile: float, count: int) -> int:
    """scipy's rank of the ``percentile``-th percentile among ``count`` samples:
    ``int(count * percentile / 100)``, ``count - 1`` at 100; a negative percentile counts
    from 100.

    Examples
    --------
    >>> percentile_rank(50, 9), percentile_rank(100, 9), percentile_rank(-25, 8)
    (4, 8, 6)
    """
    try:
        value = float(percentile)
    except (TypeError, ValueError):
        raise TypeError(f"percentile must be a number, got {percentile!r}") from None
    if value < 0:
        value += 100.0
    if not 0 <= value <= 100:
        raise ValueError(f"percentile={percentile!r} must lie in -100..100")
    return count - 1 if value == 100 else int(count * value / 100.0)


def minimum(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
            origin: Union[int, Sequence[int]] = 0, axes: Axes = None,
            method: str = "auto") -> np.ndarray:
    """The minimum of every window (scipy.ndimage.minimum_filter); arguments as in :func:`rank`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import minimum
    >>> minimum(np.array([3, 1, 2, 9, 5], np.int16), size=3).tolist()
    [1, 1, 1, 2, 5]
    """
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    return rank_window(x, 0, fp, spatial, mode=mode, cval=cval, origin=origin, method=method)


def maximum(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
            origin: Union[int, Sequence[int]] = 0, axes: Axes = None,
            method: str = "auto") -> np.ndarray:
    """The maximum of every window (scipy.ndimage.maximum_filter); arguments as in :func:`rank`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import maximum
    >>> maximum(np.array([3, 1, 2, 9, 5], np.int16), size=3).tolist()
    [3, 3, 9, 9, 9]
    """
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    return rank_window(x, int(fp.sum()) - 1, fp, spatial, mode=mode, cval=cval, origin=origin,
                       method=method)


# ---------------------------------------------------------------------------------------------
# Grey morphology with a flat structuring element (scipy.ndimage.grey_* conventions), as recipes

#: What :func:`recipe` makes (and a :class:`~imgfilt.nonlinear.RankFilter` computes): the k-th
#: smallest over a footprint, or a grey morphology composed of minima and maxima.
OPERATIONS = ("rank", "erosion", "dilation", "opening", "closing", "gradient", "white_tophat",
              "black_tophat")


@dataclass(frozen=True)
class Pass:
    """One rank pass: the ``k``-th smallest over ``footprint``, centred at ``origin``."""

    k: int
    footprint: np.ndarray
    origin: tuple[int, ...]

    @property
    def pads(self) -> tuple[tuple[int, int], ...]:
        """How far its windows reach, ``(before, after)`` per spatial axis (:func:`window_pads`)."""
        return window_pads(self.footprint.shape, self.origin)


@dataclass(frozen=True)
class Recipe:
    """A rank filter or grey morphology as passes: the chain ``first`` (each pass reading the
    previous one's result, padded again by the same mode and ``cval``, as scipy does), or, with
    ``second``, :func:`difference` of the two chains' results (an empty chain is the input).

    The one statement of what each operation is: the in-memory functions below run it
    (:func:`run_recipe`) and the Dask adapter plans its halos from it.
    """

    first: tuple[Pass, ...]
    second: Optional[tuple[Pass, ...]] = None


def recipe(operation: str, footprint: np.ndarray, *, k: int = 0, origin=0) -> Recipe:
    """The passes of ``operation`` (one of :data:`OPERATIONS`) over a boolean ``footprint``.

    Erosion is the minimum; dilation the maximum over the footprint reflected through its
    centre with the origin negated (one more for an even length: scipy's convention, making it
    the adjoint of erosion); opening is erosion then dilation, closing the reverse; gradient is
    dilation minus erosion; the top-hats are ``x - opening`` and ``closing - x``.

    Examples
    --------
    >>> plan = recipe("opening", np.ones(3, bool))
    >>> [p.k for p in plan.first], plan.second
    ([0, 2], None)
    """
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
    ndim = footprint.ndim
    origins = _origins(origin, ndim)
    top = int(footprint.sum()) - 1
    erode = Pass(0, footprint, origins)
    reflected = footprint[(slice(None, None, -1),) * ndim]
    dilate = Pass(top, reflected, tuple(-o - (1 - length % 2)
                                        for o, length in zip(origins, footprint.shape)))
    recipes = {
        "rank": Recipe((Pass(int(k), footprint, origins),)),
        "erosion": Recipe((erode,)),
        "dilation": Recipe((dilate,)),
        "opening": Recipe((erode, dilate)),
        "closing": Recipe((dilate, erode)),
        "gradient": Recipe((dilate,), (erode,)),
        "white_tophat": Recipe((), (erode, dilate)),
        "black_tophat": Recipe((dilate, erode), ()),
    }
    return recipes[operation]


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` in their dtype, as scipy's gradient and top-hats compute it (integers wrap);
    ``a ^ b`` for booleans.

    Examples
    --------
    >>> difference(np.array([5, 0], np.uint8), np.array([2, 1], np.uint8)).tolist()
    [3, 255]
    """
    if a.dtype == np.bool_:
        return a ^ b
    return np.subtract(a, b, out=np.empty(np.broadcast_shapes(a.shape, b.shape), a.dtype),
                       casting="unsafe")


def run_chain(x, passes: Sequence[Pass], spatial: tuple[int, ...], *, mode: str = "symmetric",
              cval=0, method: str = "auto") -> np.ndarray:
    """Run ``passes`` one after the other (each pads its input by ``mode`` and ``cval``)."""
    result = np.asarray(x)
    for one in passes:
        result = rank_window(result, one.k, one.footprint, spatial, mode=mode, cval=cval,
                             origin=one.origin, method=method)
    return result


def run_recipe(x, plan: Recipe, spatial: tuple[int, ...], *, mode: str = "symmetric",
               cval=0, method: str = "auto") -> np.ndarray:
    """What ``plan`` computes on ``x`` (see :class:`Recipe`).

    Examples
    --------
    >>> x = np.array([0, 9, 0, 4, 4, 4, 0], np.uint8)
    >>> run_recipe(x, recipe("white_tophat", np.ones(3, bool)), (0,)).tolist()
    [0, 9, 0, 0, 0, 0, 0]
    """
    first = run_chain(x, plan.first, spatial, mode=mode, cval=cval, method=method)
    if plan.second is None:
        return first
    return difference(first, run_chain(x, plan.second, spatial, mode=mode, cval=cval,
                                       method=method))


def _morphology(operation: str, x, size: Size, footprint, mode: str, cval, origin,
                axes: Axes) -> np.ndarray:
    x = np.asarray(x)
    fp, spatial = _footprint(size, footprint, axes, x.ndim)
    return run_recipe(x, recipe(operation, fp, origin=origin), spatial, mode=mode, cval=cval)


def erosion(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
            origin: Union[int, Sequence[int]] = 0, axes: Axes = None) -> np.ndarray:
    """Grey erosion by a flat footprint: :func:`minimum` (scipy.ndimage.grey_erosion).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import erosion
    >>> erosion(np.array([0, 5, 5, 5, 0], np.uint8), size=3).tolist()
    [0, 0, 5, 0, 0]
    """
    return _morphology("erosion", x, size, footprint, mode, cval, origin, axes)


def dilation(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
             origin: Union[int, Sequence[int]] = 0, axes: Axes = None) -> np.ndarray:
    """Grey dilation by a flat footprint (scipy.ndimage.grey_dilation).

    As in scipy, the footprint is reflected through its centre and the origin negated (an even
    length shifts the centre by one more), so that dilation is the adjoint of erosion: the
    maximum over ``x[p - s]`` for the footprint's offsets ``s``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import dilation
    >>> dilation(np.array([0, 0, 5, 0, 0], np.uint8), footprint=[1, 1, 0]).tolist()
    [0, 5, 5, 0, 0]
    """
    return _morphology("dilation", x, size, footprint, mode, cval, origin, axes)


def opening(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
            origin: Union[int, Sequence[int]] = 0, axes: Axes = None) -> np.ndarray:
    """Grey opening: :func:`erosion` then :func:`dilation` (scipy.ndimage.grey_opening).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import opening
    >>> opening(np.array([0, 9, 0, 4, 4, 4, 0], np.uint8), size=3).tolist()
    [0, 0, 0, 4, 4, 4, 0]
    """
    return _morphology("opening", x, size, footprint, mode, cval, origin, axes)


def closing(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
            origin: Union[int, Sequence[int]] = 0, axes: Axes = None) -> np.ndarray:
    """Grey closing: :func:`dilation` then :func:`erosion` (scipy.ndimage.grey_closing).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import closing
    >>> closing(np.array([9, 0, 9, 9, 0, 0, 9], np.uint8), size=3).tolist()
    [9, 9, 9, 9, 9, 9, 9]
    """
    return _morphology("closing", x, size, footprint, mode, cval, origin, axes)


def gradient(x, size: Size = None, footprint=None, *, mode: str = "symmetric", cval: float = 0,
             origin: Union[int, Sequence[int]] = 0, axes: Axes = None) -> np.ndarray:
    """Morphological gradient: dilation minus erosion (scipy.ndimage.morphological_gradient).

    Computed in the input's dtype, as scipy does (never negative: dilation >= erosion when the
    footprint holds its centre; for signed integers a difference beyond the dtype wraps, as in
    scipy).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import gradient
    >>> gradient(np.array([0, 0, 5, 5, 5], np.uint8), size=3).tolist()
    [0, 5, 5, 0, 0]
    """
    return _morphology("gradient", x, size, footprint, mode, cval, origin, axes)


def white_tophat(x, size: Size = None, footprint=None, *, mode: str = "symmetric",
                 cval: float = 0, origin: Union[int, Sequence[int]] = 0,
                 axes: Axes = None) -> np.ndarray:
    """White top-hat: ``x`` minus its :func:`opening` (scipy.ndimage.white_tophat).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import white_tophat
    >>> white_tophat(np.array([0, 9, 0, 4, 4, 4, 0], np.uint8), size=3).tolist()
    [0, 9, 0, 0, 0, 0, 0]
    """
    return _morphology("white_tophat", x, size, footprint, mode, cval, origin, axes)


def black_tophat(x, size: Size = None, footprint=None, *, mode: str = "symmetric",
                 cval: float = 0, origin: Union[int, Sequence[int]] = 0,
                 axes: Axes = None) -> np.ndarray:
    """Black top-hat: the :func:`closing` minus ``x`` (scipy.ndimage.black_tophat).

    Examples
    --------
    >>> import numpy as np
    >>> from imgfilt.rank import black_tophat
    >>> black_tophat(np.array([9, 0, 9, 9, 0, 0, 9], np.uint8), size=3).tolist()
    [0, 9, 0, 0, 9, 9, 0]
    """
    return _morphology("black_tophat", x, size, footprint, mode, cval, origin, axes)
