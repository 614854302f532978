"""``conv`` and ``convolve``: the convolution layer of the textbooks on NumPy arrays.

Every argument is normalised and checked here, once, into a :class:`Plan`; the compiled engine
(:mod:`imgfilt._engine`) only ever sees the plan's checked, contiguous, 3-D-shaped arrays.
"""
from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, SupportsIndex, Tuple, Union, cast

import numpy as np
from numpy.typing import DTypeLike

from .arrays import as_numpy
from .engine import load_engines
from .errors import MAX_BYTES
from .overlap import may_overlap
from .padding import fold, index_map, normalize_mode, output_length, same_padding

__all__ = ["conv", "convolve", "set_num_threads", "get_num_threads", "Plan", "plan",
           "checked_int", "MAX_INDEX"]

IntOrTuple = Union[int, Sequence[int]]
#: A rank-1 kernel's 1-D factors, one per spatial axis (their outer product is the kernel).
KernelFactors = List[np.ndarray]
Padding = Union[int, str, Sequence[Union[int, Sequence[int]]]]

METHODS = ("auto", "direct", "separable", "fft")

# A single array the plan would allocate beyond this many bytes is refused before allocation.
_MAX_BYTES = MAX_BYTES


# ---------------------------------------------------------------------------------------------
# Threads

_engines = load_engines()
#: Every build links the same OpenMP runtime: thread limits and the fork hook ask this one.
_baseline_engine = _engines["baseline"]


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _thread_limit() -> int:
    """The most threads the engine may be asked for: 4 per core (at least 64), within what the
    engine and the OpenMP runtime accept. libgomp crashes, aborts or hangs when asked for tens
    of thousands of threads, and more threads than cores only add waiting."""
    limit = max(64, 4 * max(_usable_cores(), os.cpu_count() or 1))
    return max(1, min(limit, _baseline_engine.max_threads(), _baseline_engine.omp_thread_limit()
                      if _baseline_engine.has_openmp() else limit))


#: The most threads :func:`set_num_threads` and ``IMGFILT_NUM_THREADS`` accept on this machine.
MAX_THREADS = _thread_limit()


def checked_threads(value: object, name: str) -> int:
    """``value`` as a thread count in ``1 .. MAX_THREADS``, or a TypeError/ValueError naming
    ``name`` and the limit."""
    number = checked_int(value, name, 1, maximum=2**200)  # the thread limit is said below
    if number > MAX_THREADS:
        raise ValueError(
            f"{name}={number} is more threads than imgfilt allows on this machine "
            f"(at most {MAX_THREADS}: 4 per core, at least 64)"
        )
    return number


def _default_threads() -> int:
    text = os.environ.get("IMGFILT_NUM_THREADS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if 1 <= value <= MAX_THREADS:
            return value
        # A bad setting should not make every import fail: say so and use all cores.
        warnings.warn(
            f"IMGFILT_NUM_THREADS={text!r} is not an integer from 1 to {MAX_THREADS}; "
            "using all cores",
            RuntimeWarning,
            stacklevel=2,
        )
    return _usable_cores()


_wanted_isa = os.environ.get("IMGFILT_SIMD", "").strip().lower()
if _wanted_isa and _wanted_isa not in _engines:
    warnings.warn(f"IMGFILT_SIMD={_wanted_isa!r} is not available on this CPU or build; "
                  f"choose from {sorted(_engines)}", RuntimeWarning, stacklevel=1)
_engine = _engines.get(_wanted_isa) or list(_engines.values())[-1]


def engine_isa() -> str:
    """The instruction set of the engine in use: "baseline", "avx2" or "avx512"."""
    return _engine.instruction_set()


_threads_lock = threading.Lock()
_num_threads = _default_threads()


# ---------------------------------------------------------------------------------------------
# fork(): libgomp's thread pool does not survive it. A child forked after a multi-threaded
# call would wait forever for the parent's workers (a fork-based multiprocessing.Pool, a PyTorch
# DataLoader). So the forking thread's pool is ended just before the fork (the next call, in the
# parent and the child, starts a new one); if the runtime cannot do that, the child runs the
# engine on one thread, which never touches the pool.

_single_threaded_after_fork = False


def _before_fork() -> None:
    global _pause_failed
    _pause_failed = _baseline_engine.pause_openmp() != 0


def _after_fork_in_child() -> None:
    global _single_threaded_after_fork
    if _pause_failed:
        _single_threaded_after_fork = True


_pause_failed = False
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
# A per-thread override of the global count: Dask runs many tasks at once in one process, and
# each should run the engine on its own thread count without racing on the global setting.
_thread_local = threading.local()


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads the engine uses from now on.

    Parameters
    ----------
    n : int
        Number of threads, from 1 to :data:`MAX_THREADS` (4 per core, at least 64; more
        raises ValueError). The default is ``IMGFILT_NUM_THREADS`` or all usable cores.

    Examples
    --------
    >>> import imgfilt
    >>> imgfilt.set_num_threads(1)
    >>> imgfilt.get_num_threads()
    1
    """
    global _num_threads
    value = checked_threads(n, "n")
    with _threads_lock:
        _num_threads = value


def get_num_threads() -> int:
    """Return the number of threads the engine uses (see :func:`set_num_threads`)."""
    if _single_threaded_after_fork:
        return 1
    override = getattr(_thread_local, "num_threads", None)
    return _num_threads if override is None else override


@contextlib.contextmanager
def threads_in_this_thread(n: int | None) -> Iterator[None]:
    """Within the block, engine calls made by the calling thread use ``n`` threads (None: the
    global setting). Other threads are not affected."""
    if n is None:
        yield
        return
    value = checked_threads(n, "threads")
    previous = getattr(_thread_local, "num_threads", None)
    _thread_local.num_threads = value
    try:
        yield
    finally:
        _thread_local.num_threads = previous


# ---------------------------------------------------------------------------------------------
# Argument normalisation


#: The largest integer argument (size, stride, dilation, padding, groups...) imgfilt accepts:
#: the largest index the compiled engine can hold (``numpy.intp``, a C ``ssize_t``).
MAX_INDEX = int(np.iinfo(np.intp).max)


def checked_int(value: object, name: str, minimum: int = 1, maximum: int = MAX_INDEX) -> int:
    """``value`` as an int in ``minimum..maximum``, or a TypeError/ValueError naming ``name``.

    Booleans, floats (even integral ones) and NaN are refused, as PyTorch refuses them. The
    range is checked on the exact integer, before anything converts it to a C type, so no
    ``OverflowError`` can escape: the default ``maximum`` is :data:`MAX_INDEX`.

    Examples
    --------
    >>> checked_int(np.int16(3), "stride")
    3
    >>> checked_int(2**64, "stride")
    Traceback (most recent call last):
    ...
    ValueError: stride must be <= 9223372036854775807 (the largest index the engine can use), got 18446744073709551616
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the boolean {value!r}")
    try:
        # Any object: operator.index raises the TypeError for what is not an integer.
        number = operator.index(cast(SupportsIndex, value))
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    if number > maximum:
        limit = " (the largest index the engine can use)" if maximum == MAX_INDEX else ""
        raise ValueError(f"{name} must be <= {maximum}{limit}, got {number}")
    return number


def _per_axis(value: IntOrTuple, name: str, ndim: int, minimum: int = 1) -> Tuple[int, ...]:
    """An int, or one int per spatial axis, as a tuple of ``ndim`` checked ints."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) != ndim:
            raise ValueError(
                f"{name} must be an int or {ndim} ints (one per spatial axis), got {value!r}"
            )
        return tuple(checked_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))
    return (checked_int(value, name, minimum),) * ndim


def _padding_pairs(
    padding: Padding,
    ndim: int,
    sizes: Tuple[int, ...],
    kernel: Tuple[int, ...],
    stride: Tuple[int, ...],
    dilation: Tuple[int, ...],
) -> Tuple[Tuple[int, int], ...]:
    """``(before, after)`` per spatial axis from any accepted spelling of ``padding``."""
    if isinstance(padding, str):
        word = padding.lower()
        if word == "valid":
            return ((0, 0),) * ndim
        if word == "same":
            return tuple(same_padding(*args) for args in zip(sizes, kernel, stride, dilation))
        raise ValueError(
            f"padding={padding!r} is not understood; allowed: 'valid', 'same', an int, "
            f"{ndim} ints, or {ndim} (before, after) pairs"
        )
    if isinstance(padding, (list, tuple, np.ndarray)):
        items = list(padding)
        if len(items) != ndim:
            raise ValueError(
                f"padding must have one entry per spatial axis ({ndim}), got {padding!r}"
            )
        pairs = []
        for axis, item in enumerate(items):
            if isinstance(item, (list, tuple, np.ndarray)):
                if len(item) != 2:
                    raise ValueError(
                        f"padding[{axis}] must be an int or a (before, after) pair, got {item!r}"
                    )
                pairs.append(
                    (
                        checked_int(item[0], f"padding[{axis}][0]", 0),
                        checked_int(item[1], f"padding[{axis}][1]", 0),
                    )
                )
            else:
                width = checked_int(item, f"padding[{axis}]", 0)
                pairs.append((width, width))
        return tuple(pairs)
    width = checked_int(padding, "padding", 0)
    return ((width, width),) * ndim




_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


def compute_dtype(dtype: DTypeLike) -> np.dtype:
    """The dtype imgfilt computes in (and ``conv`` returns) for input of ``dtype``: the one
    dtype rule of conv, apply, banks and the Dask adapter.

    float64 stays float64 (in either byte order), and so do the integers float32 cannot hold
    exactly (int32, uint32, int64, uint64: float32 has a 24-bit significand); every other real
    dtype (bool, 8- and 16-bit integers, float16, float32) computes in float32.

    Examples
    --------
    >>> compute_dtype("uint8"), compute_dtype("int32"), compute_dtype(">f8")
    (dtype('float32'), dtype('float64'), dtype('float64'))
    """
    resolved = np.dtype(dtype)
    if resolved.kind == "f":
        wide = resolved.itemsize == 8
    else:
        wide = resolved.kind in "iu" and resolved.itemsize >= 4
    return _FLOAT64 if wide else _FLOAT32


@dataclass(frozen=True)
class Plan:
    """Everything the engine needs for one call, checked.

    Attributes
    ----------
    ndim : int
        Number of spatial axes (1, 2 or 3).
    batched : bool
        Whether ``x`` had a leading batch axis.
    dtype : numpy.dtype
        The compute and output dtype (float32 or float64).
    batch, in_channels, out_channels, groups : int
        Sizes of the problem.
    in_shape, kernel_shape, out_shape : tuple of int
        Spatial sizes of input, kernel and output.
    stride, dilation : tuple of int
        Per spatial axis.
    padding : tuple of (int, int)
        ``(before, after)`` per spatial axis.
    padding_mode : str
        Canonical mode name.
    """

    ndim: int
    batched: bool
    dtype: np.dtype
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_shape: Tuple[int, ...]
    kernel_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    stride: Tuple[int, ...]
    dilation: Tuple[int, ...]
    padding: Tuple[Tuple[int, int], ...]
    padding_mode: str

    @property
    def result_shape(self) -> Tuple[int, ...]:
        """Shape of the result, in the batch form of ``x``."""
        lead = (self.batch,) if self.batched else ()
        return lead + (self.out_channels,) + self.out_shape


def _cache_key(value: object) -> object:
    """``value`` as a cache key that tells booleans (refused) from the ints they equal."""
    kind = type(value)
    if kind is int or kind is str:  # the common case, first
        return value
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (tuple, list)):
        return (kind.__name__,) + tuple(_cache_key(v) for v in value)
    return value


def plan(
    x_shape: Sequence[int],
    x_dtype: DTypeLike,
    weight_shape: Sequence[int],
    *,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    padding_mode: str = "zeros",
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Plan:
    """Check a problem's shapes and options and return its :class:`Plan`, allocating nothing.

    This is the one place where ``conv``'s arguments are validated; other modules (FilterBank
    shape arithmetic, the Dask adapter) call it to get the same answers and the same errors.

    Examples
    --------
    >>> plan((3, 64, 64), "uint8", (8, 3, 5, 5), padding="same").result_shape
    (8, 64, 64)
    """
    try:
        key = (tuple(x_shape), np.dtype(x_dtype), tuple(weight_shape), _cache_key(stride),
               _cache_key(padding), padding_mode, _cache_key(dilation), _cache_key(groups))
        hash(key)
    except TypeError:  # unhashable arguments (checked, and refused or planned, uncached)
        key = None
    # Every call re-plans the same few problems (a data loader filters one shape all day):
    # the checks run once per distinct problem, the allocation check every time (it depends on
    # the thread count).
    result = _cached_plan(key) if key is not None else _new_plan(
        x_shape, x_dtype, weight_shape, stride, padding, padding_mode, dilation, groups)
    _check_allocation(result)
    return result


@functools.lru_cache(maxsize=1024)
def _cached_plan(key: tuple) -> Plan:
    x_shape, x_dtype, weight_shape, stride, padding, padding_mode, dilation, groups = key
    return _new_plan(x_shape, x_dtype, weight_shape, _uncached(stride), _uncached(padding),
                     padding_mode, _uncached(dilation), _uncached(groups))


def _uncached(key: object) -> Any:
    """The argument a :func:`_cache_key` stands for (of whatever type it was given as)."""
    if isinstance(key, tuple) and key and key[0] == "bool":
        return bool(key[1])
    if isinstance(key, tuple) and key and key[0] in ("tuple", "list"):
        items = [_uncached(v) for v in key[1:]]
        return items if key[0] == "list" else tuple(items)
    return key


def _new_plan(x_shape: Sequence[int], x_dtype: DTypeLike, weight_shape: Sequence[int],
              stride: IntOrTuple, padding: Padding, padding_mode: str, dilation: IntOrTuple,
              groups: int) -> Plan:
    weight_shape = tuple(checked_int(s, f"weight_shape[{i}]", 0)
                         for i, s in enumerate(weight_shape))
    x_shape = tuple(checked_int(s, f"x_shape[{i}]", 0) for i, s in enumerate(x_shape))
    wdim = len(weight_shape)
    if wdim not in (3, 4, 5):
        raise ValueError(
            f"weight must have shape (C_out, C_in/groups, *K) with 1, 2 or 3 spatial axes "
            f"(3 to 5 dimensions), got shape {weight_shape}"
        )
    ndim = wdim - 2
    if len(x_shape) == ndim + 1:
        batched, batch, rest = False, 1, x_shape
    elif len(x_shape) == ndim + 2:
        batched, batch, rest = True, x_shape[0], x_shape[1:]
    else:
        raise ValueError(
            f"x must have shape (C_in, *S) or (N, C_in, *S) with {ndim} spatial axes to match "
            f"weight {weight_shape}, i.e. {ndim + 1} or {ndim + 2} dimensions; got shape {x_shape}"
        )
    in_channels, sizes = rest[0], rest[1:]
    axes = ("W",) if ndim == 1 else ("H", "W") if ndim == 2 else ("D", "H", "W")
    layout = "(" + ", ".join((("N",) if batched else ()) + ("C_in",) + axes) + ")"
    out_channels, group_in, kernel = weight_shape[0], weight_shape[1], weight_shape[2:]
    if 0 in x_shape:
        raise ValueError(f"x has an empty axis: shape {x_shape}")
    if 0 in weight_shape:
        raise ValueError(f"weight has an empty axis: shape {weight_shape}")
    groups = checked_int(groups, "groups")
    stride_t = _per_axis(stride, "stride", ndim)
    dilation_t = _per_axis(dilation, "dilation", ndim)
    mode = normalize_mode(padding_mode)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide both C_in={in_channels} and C_out={out_channels}"
        )
    if group_in * groups != in_channels:
        raise ValueError(
            f"weight {weight_shape} expects C_in/groups = {group_in} input channels per group, "
            f"so C_in = {group_in * groups} with groups={groups}; x has C_in = {in_channels} "
            f"(shape {x_shape} read as {layout})"
        )
    pads = _padding_pairs(padding, ndim, sizes, kernel, stride_t, dilation_t)
    out_sizes = []
    for axis in range(ndim):
        before, after = pads[axis]
        if mode == "reflect" and sizes[axis] == 1 and (before or after):
            raise ValueError(
                f"padding_mode='reflect' is undefined on spatial axis {axis}, which has length 1 "
                "(reflect needs 2 samples); use 'symmetric' or 'replicate', or pad 0 on that axis"
            )
        padded = sizes[axis] + before + after
        length = output_length(padded, kernel[axis], stride_t[axis], dilation_t[axis])
        if length < 1:
            span = dilation_t[axis] * (kernel[axis] - 1) + 1
            raise ValueError(
                f"the kernel (size {kernel[axis]}, dilation {dilation_t[axis]}: span {span}) is "
                f"larger than the padded input on spatial axis {axis} ({sizes[axis]} + "
                f"{before} + {after} = {padded}); pad more or use a smaller kernel"
            )
        out_sizes.append(length)
    dtype = compute_dtype(x_dtype)
    result = Plan(
        ndim=ndim,
        batched=batched,
        dtype=dtype,
        batch=batch,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        in_shape=tuple(sizes),
        kernel_shape=tuple(kernel),
        out_shape=tuple(out_sizes),
        stride=stride_t,
        dilation=dilation_t,
        padding=pads,
        padding_mode=mode,
    )
    return result


# Rows kept per (input channel, kernel plane) in the ring: the whole row span when it is at most
# this many rows, so consecutive output rows reuse the padded rows already built.
_MAX_RING_ROWS = 64
# Multiply-adds below which a call runs on one thread (about 0.1-0.2 ms of work on one core).
_MIN_PARALLEL_WORK = 1 << 22


def _ring_rows(kernel_h: int, dilation_h: int) -> int:
    """Rows of the per-thread ring for each (input channel, kernel plane)."""
    span = dilation_h * (kernel_h - 1) + 1
    return span if span <= max(kernel_h, _MAX_RING_ROWS) else kernel_h


def _check_allocation(p: Plan) -> None:
    """Refuse, before allocating, a problem whose arrays could never be allocated."""
    _checked_allocation(p, get_num_threads())


@functools.lru_cache(maxsize=1024)
def _checked_allocation(p: Plan, threads: int) -> None:
    out_bytes = math.prod(p.result_shape) * p.dtype.itemsize
    padded = [_read_length(s + b + a, o, st, k, d) for s, (b, a), o, st, k, d in
              zip(p.in_shape, p.padding, p.out_shape, p.stride, p.kernel_shape, p.dilation)]
    map_bytes = sum(padded) * np.dtype(np.intp).itemsize
    kernel3 = (1,) * (3 - p.ndim) + p.kernel_shape
    dilation_h = ((1,) * (3 - p.ndim) + p.dilation)[1]
    ring_bytes = (threads * (p.in_channels // p.groups) * kernel3[0]
                  * _ring_rows(kernel3[1], dilation_h) * (padded[-1] + _engine.strip_width())
                  * p.dtype.itemsize)
    for what, size in (("output", out_bytes), ("padding", map_bytes), ("row buffer", ring_bytes)):
        if size > _MAX_BYTES:
            raise ValueError(
                f"the {what} of this call would need {size / 2**30:.3g} GiB (output shape "
                f"{p.result_shape}, padding {p.padding}, kernel {p.kernel_shape}, stride "
                f"{p.stride}, dilation {p.dilation}); reduce the padding, the dilation or the "
                "input"
            )


# ---------------------------------------------------------------------------------------------
# The entry points



def _compacted(padded: int, out: int, stride: int, kernel: int) -> bool:
    """Whether an axis is given to the engine as only the ``kernel`` runs of positions the
    outputs read (see :func:`_axis_map`): when that is under half the padded axis."""
    return kernel > 1 and 2 * kernel * ((out - 1) * stride + 1) < padded


def _read_length(padded: int, out: int, stride: int, kernel: int, dilation: int) -> int:
    """How many positions of a padded axis the engine is given (see :func:`_compacted`)."""
    return kernel * ((out - 1) * stride + 1) if _compacted(padded, out, stride, kernel) else padded


def _axis_map(size: int, before: int, after: int, mode: str, out: int, stride: int,
              kernel: int, dilation: int) -> Tuple[np.ndarray, int]:
    """The index map of one padded axis and the dilation to read it with.

    Normally the whole padded axis and ``dilation``. When the taps are far apart (a dilation of
    10**8 on 5 samples), the outputs read only ``kernel`` runs of ``(out - 1) * stride + 1``
    positions, one per tap: the map then holds just those runs back to back, read with a
    dilation of one run. The same samples are read in the same order, so the result is the
    same bits, and the cost follows the work that reaches the output, not the padding.
    """
    padded = size + before + after
    if not _compacted(padded, out, stride, kernel):
        return index_map(size, before, after, mode), dilation
    run = (out - 1) * stride + 1
    positions = (np.arange(kernel, dtype=np.intp)[:, None] * dilation
                 + np.arange(run, dtype=np.intp)).reshape(-1) - before
    return fold(positions, size, mode), run


def _engine_inputs(x5: np.ndarray, pads3, mode: str, out3, stride3, kernel3, dilation3,
                   interleave: int = 1):
    """``(x5, maps, pad_left, dilation3)`` for :func:`_call_engine`: one index map per axis
    (see :func:`_axis_map`); ``interleave=C``: rows of ``C`` interleaved channels.

    The engine copies a row's input columns straight into its padded row after ``pad_left``
    columns, so a compacted column map (which has no such stretch) is applied here instead: the
    columns the outputs read are gathered into a new, narrower input.
    """
    maps, dilations = [], list(dilation3)
    for a in range(2):
        index, dilations[a] = _axis_map(x5.shape[2 + a], pads3[a][0], pads3[a][1], mode,
                                        out3[a], stride3[a], kernel3[a], dilation3[a])
        maps.append(index)
    width = x5.shape[4] // interleave
    pixels, step = _axis_map(width, pads3[2][0], pads3[2][1], mode, out3[2] // interleave,
                             stride3[2], kernel3[2], dilation3[2])
    dilations[2] = step * interleave
    if not _compacted(width + pads3[2][0] + pads3[2][1], out3[2] // interleave, stride3[2],
                      kernel3[2]):  # the whole padded axis: its (cached, shared) map
        columns = pixels if interleave == 1 else _interleaved_map(
            width, pads3[2][0], pads3[2][1], mode, interleave)
        return x5, maps + [columns], pads3[2][0] * interleave, tuple(dilations)
    columns = _interleave(pixels, interleave)
    gathered = np.take(x5, np.maximum(columns, 0), axis=4)
    if (columns < 0).any():
        gathered[..., columns < 0] = 0
    identity = np.arange(columns.shape[0], dtype=np.intp)
    return np.ascontiguousarray(gathered), maps + [identity], 0, tuple(dilations)


def _run_direct(x5: np.ndarray, w5: np.ndarray, b: np.ndarray, out5: np.ndarray, p: Plan) -> None:
    pads3 = ((0, 0),) * (3 - p.ndim) + p.padding
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    x5, maps, pad_left, dilation3 = _engine_inputs(x5, pads3, p.padding_mode, out5.shape[2:],
                                                   stride3, w5.shape[2:], dilation3)
    _call_engine(x5, w5, b, out5, maps, pad_left, p.groups, stride3, dilation3)


class _BusyMachine:
    """Run on one thread for a while when the machine is too busy for two.

    On a machine whose cores are all taken by other processes, an OpenMP worker can wait a
    scheduler period (milliseconds) before it starts, and the call waits for it at the end:
    measured at load 12 on 2 cores, a 2 ms Sobel took 35 ms on two threads. The engine reports
    when its last thread arrived; when that was more than a quarter of the call (and over
    1 ms), the next calls run on one thread, 4 at first, doubling while it keeps happening
    (up to 256), and a multi-threaded call then probes again. Results do not depend on the
    thread count (the same bits), so this only changes the time.
    """

    def __init__(self) -> None:
        self.single_calls_left = 0
        self.backoff = 0

    def observe(self, lag: float, total: float) -> None:
        # Over 1 ms: a sleeping worker (the passive wait, see imgfilt.engine) takes 0.05-0.3 ms
        # to wake on a quiet machine, which must not count as busy; a core another process
        # holds costs a scheduler slice, milliseconds.
        if lag > 0.25 * total and lag > 1e-3:
            self.backoff = min(max(2 * self.backoff, 4), 256)
            self.single_calls_left = self.backoff
        else:
            self.backoff = 0


_busy = _BusyMachine()


def _call_engine(x5: np.ndarray, w5: np.ndarray, b: np.ndarray, out5: np.ndarray,
                 maps: Sequence[np.ndarray], pad_left: int, groups: int,
                 stride3: Tuple[int, ...], dilation3: Tuple[int, ...],
                 combine_magnitude: bool = False) -> None:
    """Allocate the per-thread scratch and run the engine on 5-D arrays and index maps.

    ``stride3`` and ``dilation3`` have one entry per axis of the 3-D problem (the engine
    refuses other lengths).

    ``x5`` is in the compute dtype or uint8 (read as is); a uint8 ``out5`` gets the results
    rounded and clipped to 0..255 (what apply's ``output="clip"`` does to 8-bit images).
    ``combine_magnitude``: ``out5`` has one channel, the magnitude of ``w5``'s 2 to 4 responses
    (one group, stride 1 along rows), with the bits :func:`magnitude` gives them.
    """
    kd, kh, kw = w5.shape[2:]
    ring_rows = _ring_rows(kh, dilation3[1])
    items = x5.shape[0] * groups * out5.shape[2] * out5.shape[3]
    # A small call runs on one thread: waking a second costs more than it saves, and a busy
    # machine may not run it for milliseconds (measured: 0.2 ms on one thread, 12 ms on two).
    work = out5.size * w5.shape[0] // out5.shape[1] * (x5.shape[1] // groups) * kd * kh * kw
    threads = 1 if work < _MIN_PARALLEL_WORK else max(1, min(get_num_threads(), items))
    if threads > 1 and _busy.single_calls_left > 0:
        _busy.single_calls_left -= 1
        threads = 1
    slots = (x5.shape[1] // groups) * kd * ring_rows
    ring, tags = _scratch(threads, slots, maps[2].shape[0] + _engine.strip_width(), w5.dtype)
    saturate = out5.dtype == np.uint8
    timing = np.zeros(2)
    _engine.correlate(
        x5, w5.reshape(w5.shape[0], -1), (kd, kh, kw), b, None if saturate else out5,
        out5 if saturate else None, maps[0], maps[1], maps[2], pad_left, groups, stride3,
        dilation3, ring, tags, ring_rows, threads, timing, combine_magnitude,
    )
    if threads > 1:
        _busy.observe(timing[0], timing[1])


#: Scratch rings up to this size are kept per Python thread and reused by its next call (a
#: small call would otherwise spend as long allocating and zeroing its ring as filtering).
_REUSED_SCRATCH_BYTES = 1 << 22
_scratch_store = threading.local()


def _scratch(threads: int, slots: int, width: int, dtype: np.dtype
             ) -> Tuple[np.ndarray, np.ndarray]:
    """The engine's per-thread ring ``(threads, slots * width)`` and tags ``(threads, slots)``.

    The ring is zero-filled when made: a strip may read (and discard) a few columns past the
    padded row, and zeros there can never be slow (denormal) or NaN. A reused ring holds only
    values its own rows put there, which are discarded the same way; the tags are reset to -1
    (no row resident) on every call.
    """
    key = (threads, slots, width, dtype)
    if threads * slots * width * dtype.itemsize > _REUSED_SCRATCH_BYTES:
        return (np.zeros((threads, slots * width), dtype=dtype),
                np.full((threads, slots), -1, dtype=np.intp))
    # A few shapes are kept: a separable call alternates between its two passes' rings.
    kept = getattr(_scratch_store, "kept", None)
    if kept is None:
        kept = _scratch_store.kept = {}
    pair = kept.pop(key, None)
    if pair is None:
        pair = (np.zeros((threads, slots * width), dtype=dtype),
                np.empty((threads, slots), dtype=np.intp))
    kept[key] = pair  # most recent last
    while len(kept) > 4:
        del kept[next(iter(kept))]
    pair[1].fill(-1)
    return pair


def magnitude(responses: np.ndarray, axis: int, saturate: bool = False) -> np.ndarray:
    """``sqrt(sum(responses**2, axis))``: the gradient magnitude of a stack of responses.

    float32 and float64 responses are reduced by the engine in one parallel pass (NumPy's
    square, sum and sqrt make three passes and two temporaries), the same arithmetic whatever
    the axis (it is moved first), so every path that combines gets the same bits; other dtypes
    go through NumPy. ``saturate=True`` returns uint8: the magnitudes rounded (ties to even) and
    clipped to 0..255 in the same pass (for 8-bit images; the responses must be finite).

    Examples
    --------
    >>> magnitude(np.array([[3.0, 0.0], [4.0, 2.0]]), 0)
    array([5., 2.])
    """
    responses = np.asarray(responses)
    if responses.ndim == 0 or responses.shape[axis] == 0:
        raise ValueError(f"magnitude needs at least one response along axis {axis}, got shape "
                         f"{responses.shape}")
    if saturate and responses.dtype in (np.float32, np.float64):
        pass
    elif saturate:
        return np.clip(np.rint(magnitude(responses, axis)), 0, 255).astype(np.uint8)
    if responses.dtype not in (np.float32, np.float64):
        # Integers would overflow when squared: those are summed in float64.
        work = responses if responses.dtype.kind in "fc" else responses.astype(np.float64)
        return np.sqrt(np.sum(np.square(work), axis=axis))
    stacked = np.ascontiguousarray(np.moveaxis(responses, axis, 0))
    out = np.empty(stacked.shape[1:], dtype=np.uint8 if saturate else stacked.dtype)
    threads = 1 if out.size < _MIN_PARALLEL_WORK else get_num_threads()
    if saturate:
        _engine.magnitude_u8(stacked.reshape(stacked.shape[0], -1), out.reshape(-1), threads)
    else:
        _engine.magnitude(stacked.reshape(stacked.shape[0], -1), out.reshape(-1), threads)
    return out


def _source_dtype(x_arr: np.ndarray, p: Plan) -> np.dtype:
    """The dtype the engine reads ``x`` in: uint8 as is, everything else in the compute dtype."""
    return np.dtype(np.uint8) if x_arr.dtype == np.uint8 else p.dtype


def _interleave(pixel_map: np.ndarray, channels: int) -> np.ndarray:
    """Column map over rows of pixels of ``channels`` interleaved samples each: padded pixel
    ``j``, channel ``c`` -> ``pixel_map[j] * channels + c`` (-1 stays a zero)."""
    if channels == 1:
        return pixel_map
    interleaved = pixel_map[:, None] * channels + np.arange(channels)
    return np.where(pixel_map[:, None] >= 0, interleaved, -1).reshape(-1).astype(np.intp)


@functools.lru_cache(maxsize=128)
def _interleaved_map(width: int, before: int, after: int, mode: str, channels: int) -> np.ndarray:
    """Column map over rows of ``width`` pixels of ``channels`` interleaved samples each:
    padded pixel ``j``, channel ``c`` -> ``map[j] * channels + c`` (-1 stays a zero).
    Read-only and shared between calls, as :func:`imgfilt.padding.index_map`'s maps are."""
    pixel_map = index_map(width, before, after, mode)
    interleaved = pixel_map[:, None] * channels + np.arange(channels)
    column_map = np.where(pixel_map[:, None] >= 0, interleaved, -1).reshape(-1).astype(np.intp)
    column_map.setflags(write=False)
    return column_map


def correlate_channels_last(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    padding_mode: str = "zeros",
    dilation: IntOrTuple = 1,
    method: str = "auto",
    saturate: bool = False,
    combine: Optional[str] = None,
) -> np.ndarray:
    """Filter every channel of channels-last data ``(*S, C)`` with each kernel of ``weight``.

    The result is ``(F, *S_out, C)`` for ``weight (F, 1, *K)``: what
    ``conv(x_c[None], weight, bias, ...)`` gives for each channel ``x_c``, computed without moving
    the channels. A row of ``W`` pixels of ``C`` channels is one row of ``W * C`` samples whose
    taps are ``C`` apart (OpenCV's way with interleaved images), so the stride along the last
    spatial axis must be 1; arguments mean what they mean for :func:`conv`, and every method
    gives what :func:`conv` gives with it, bit for bit. ``saturate=True`` returns uint8: the
    results rounded (ties to even) and clipped to 0..255 in the same pass, for 8-bit images
    (the weights and bias must be finite). ``combine="magnitude"`` returns ``(1, *S_out, C)``, the
    gradient magnitude ``sqrt(sum_f response_f**2)`` of the ``F`` responses, with the bits of
    :func:`magnitude` applied to the responses (with ``saturate``: then rounded and clipped);
    for 2 to 4 responses on the direct method no response is ever stored (a 48-megapixel
    photo's Sobel needs no memory beyond its output).

    Examples
    --------
    >>> rgb = np.random.rand(48, 64, 3).astype(np.float32)
    >>> box = np.full((1, 1, 3, 3), 1 / 9, np.float32)
    >>> correlate_channels_last(rgb, box, padding="same", padding_mode="reflect").shape
    (1, 48, 64, 3)
    >>> gradients = np.stack([np.outer([1, 2, 1], [-1, 0, 1])] * 2)[:, None].astype(np.float32)
    >>> gradients[1, 0] = gradients[0, 0].T
    >>> correlate_channels_last(rgb, gradients, padding="same", combine="magnitude").shape
    (1, 48, 64, 3)
    """
    x_arr = as_numpy(x, "x")
    if x_arr.ndim < 2 or x_arr.ndim > 4:
        raise ValueError(f"x must be (*S, C) with 1 to 3 spatial axes, got shape {x_arr.shape}")
    check_method(method)
    channels = x_arr.shape[-1]
    if channels == 0:
        raise ValueError(f"x has no channels: shape {x_arr.shape} (channels last)")
    spatial = x_arr.shape[:-1]
    w_arr = as_numpy(weight, "weight")
    p = plan((1,) + spatial, x_arr.dtype, w_arr.shape, stride=stride, padding=padding,
             padding_mode=padding_mode, dilation=dilation)
    if p.stride[-1] != 1:
        raise ValueError(f"correlate_channels_last needs stride 1 along the last spatial axis, "
                         f"got stride {p.stride}")
    _check_allocation(p)
    w5 = np.ascontiguousarray(w_arr, dtype=p.dtype).reshape(
        (p.out_channels, 1) + (1,) * (3 - p.ndim) + p.kernel_shape)
    b = _checked_bias(bias, p)
    chosen, factors = choose_method(method, w5, p)  # the compute dtype: same factors everywhere
    if saturate and not (np.all(np.isfinite(w5)) and np.all(np.isfinite(b))):
        raise ValueError("saturate=True needs finite weights and bias")
    if combine not in (None, "magnitude"):
        raise ValueError(f"combine must be None or 'magnitude', got {combine!r}")
    fused = combine == "magnitude" and chosen == "direct" and 2 <= p.out_channels <= 4
    if combine == "magnitude" and not fused:
        # Other methods and response counts: the responses first, then one combining pass.
        responses = correlate_channels_last(x_arr, w_arr, bias, stride=stride, padding=padding,
                                            padding_mode=padding_mode, dilation=dilation,
                                            method=chosen)
        return np.expand_dims(magnitude(responses, 0, saturate=saturate), 0)
    if chosen == "fft":  # spectra need planes: move the channels, then back
        planes = np.moveaxis(x_arr, -1, 0)[:, None]
        result = conv(planes, w_arr, bias, stride=stride, padding=padding,
                      padding_mode=padding_mode, dilation=dilation, method="fft")
        result = np.moveaxis(result, 0, -1)
        return np.clip(np.rint(result), 0, 255).astype(np.uint8) if saturate else result
    # Converted only now: the fft route above reads x as given.
    x5 = np.ascontiguousarray(x_arr, dtype=_source_dtype(x_arr, p)).reshape(
        (1, 1) + (1,) * (3 - p.ndim) + spatial[:-1] + (spatial[-1] * channels,))
    pads3 = ((0, 0),) * (3 - p.ndim) + p.padding
    out_spatial = p.result_shape[1:]
    out_planes = 1 if fused else p.out_channels
    out = np.empty((out_planes,) + out_spatial + (channels,),
                   dtype=np.uint8 if saturate else p.dtype)
    out5 = out.reshape((1, out_planes) + (1,) * (3 - p.ndim) + out_spatial[:-1]
                       + (out_spatial[-1] * channels,))
    if factors is not None:  # exactly when chosen == "separable"
        _run_separable(x5, factors, b, out5, p, interleave=channels)
        return out
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    x5, maps, pad_left, dilation3 = _engine_inputs(x5, pads3, p.padding_mode, out5.shape[2:],
                                                   stride3, w5.shape[2:], dilation3, channels)
    _call_engine(x5, w5, b, out5, maps, pad_left, 1, stride3, dilation3, fused)
    return out


# ---------------------------------------------------------------------------------------------
# Methods: which algorithm, and the two besides "direct"

#: "auto" runs a rank-1 kernel as 1-D passes when the kernel has at least this many taps more
#: than the passes. Each pass reads and writes the whole array, so the passes win only once the
#: direct sum is compute-bound: measured on 1080p RGB float32, direct was faster up to 9x9
#: (81 taps, saving 63) and the passes from 15x15 (saving 195); see docs/performance.md.
SEPARABLE_MIN_SAVING = 90
#: "auto" multiplies spectra when one output sums at least this many taps (C_in/groups * prod(K))
#: and the kernel is not separable. Measured with the float64 scipy.fft route on 1080p RGB
#: float32 per channel, 2 threads (benchmarks/method_crossovers.py, docs/performance.md): direct
#: 119 ms against fft 149 ms at 35x35 (1,225 taps), 166 against 185 at 41x41 (1,681), 251
#: against 135 at 51x51 (2,601); the crossover lies between, about 2,000 taps (45x45).
FFT_MIN_TAPS = 2000


def rank1_factors(kernel: np.ndarray, rtol: float) -> Optional[KernelFactors]:
    """1-D factors whose outer product is ``kernel`` (1 to 3 axes), or None if it is not rank 1.

    Found by SVD of the unfoldings, then checked: the outer product of the factors must equal
    the kernel to ``rtol`` times its largest magnitude.

    Examples
    --------
    >>> f = rank1_factors(np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0]), 1e-12)
    >>> np.allclose(np.outer(*f), np.outer([1, 2, 1], [-1, 0, 1]))
    True
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    scale = float(np.max(np.abs(kernel))) if kernel.size else 0.0
    if scale == 0.0:
        return [np.zeros(kernel.shape[0])] + [np.ones(k) for k in kernel.shape[1:]]
    factors: KernelFactors = []
    rest = kernel / scale
    for _ in range(kernel.ndim - 1):
        left, values, right = np.linalg.svd(rest.reshape(rest.shape[0], -1), full_matrices=False)
        if values.size > 1 and values[1] > rtol * values[0]:
            return None
        factors.append(left[:, 0] * values[0])
        rest = right[0].reshape(rest.shape[1:])
    factors.append(rest * scale)
    product = factors[0]
    for factor in factors[1:]:
        product = np.multiply.outer(product, factor)
    if np.max(np.abs(product - kernel)) > rtol * scale:
        return None
    return factors


def choose_method(method: str, weight: np.ndarray,
                  p: Plan) -> Tuple[str, Optional[List[KernelFactors]]]:
    """The method :func:`conv` runs for ``method`` on this kernel, and the kernel's factors
    exactly when that method is ``'separable'`` (one list of 1-D factors per output channel;
    None otherwise).

    The choice depends on the kernel and options only, never on the input's size.
    """
    if method == "direct":
        return "direct", None
    group_in = p.in_channels // p.groups
    taps = int(np.prod(p.kernel_shape))
    saving = taps - sum(p.kernel_shape)
    factors: Optional[List[KernelFactors]] = None
    # The SVDs only where the passes could be chosen (they cost ~20 us per output channel);
    # a kernel with NaN or infinity is never rank 1 here (and would stop the SVD).
    wanted = method == "separable" or (method == "auto" and saving >= SEPARABLE_MIN_SAVING)
    if group_in == 1 and wanted and np.all(np.isfinite(weight)):
        rtol = 1e-6 if p.dtype == np.float32 else 1e-12
        w64 = np.asarray(weight, dtype=np.float64).reshape((p.out_channels,) + p.kernel_shape)
        found: List[KernelFactors] = []
        for kernel in w64:
            one = rank1_factors(kernel, rtol)
            if one is None:
                break
            found.append(one)
        else:
            factors = found
    if method == "separable":
        if factors is None:
            raise ValueError(
                "method='separable' needs every kernel to be finite and rank 1 (an outer product "
                "of 1-D kernels) and one input channel per group; got weight "
                f"{tuple(weight.shape)} with groups={p.groups}: use method='direct' or 'auto'"
            )
        return "separable", factors
    if method == "fft":
        _check_fft_size(p)
        return "fft", None
    if factors is not None:  # found only when the saving passed the threshold
        return "separable", factors
    if (group_in * taps >= FFT_MIN_TAPS and max(p.stride) == 1
            and fft_bytes(p) <= _FFT_MAX_BYTES):
        return "fft", None
    return "direct", None


def _run_separable(x5: np.ndarray, factors: List[KernelFactors], b: np.ndarray, out5: np.ndarray,
                   p: Plan, interleave: int = 1) -> None:
    """One 1-D pass per axis (the last axis first) through the engine; bias in the last pass.

    Padding one axis at a time is exact: every mode's padded array is the input indexed by one
    map per axis. Each pass keeps one intermediate array alive besides the input and output.
    ``interleave=C``: the rows hold ``C`` channels interleaved (see correlate_channels_last).
    """
    pad3 = ((0, 0),) * (3 - p.ndim) + p.padding
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    lead = 3 - p.ndim
    # Factors per axis as (C_out, k) arrays; the length-1 axes' scalars fold into a real pass.
    per_axis = [np.array([f[axis] for f in factors]) for axis in range(p.ndim)]
    passes = [axis for axis in range(p.ndim)
              if per_axis[axis].shape[1] > 1 or any(pad3[lead + axis]) or p.stride[axis] > 1]
    if not passes:
        passes = [p.ndim - 1]
    for axis in range(p.ndim):
        if axis not in passes:
            per_axis[passes[-1]] = per_axis[passes[-1]] * per_axis[axis]
    zeros_bias = np.zeros_like(b)
    if (passes == [p.ndim - 2, p.ndim - 1] and x5.shape[0] * p.out_channels == 1
            and x5.shape[2] == 1 and out5.shape[2] == 1):
        row_weight, column_weight = (np.ascontiguousarray(
            per_axis[axis].reshape((p.out_channels, 1, 1) + shape), dtype=p.dtype)
            for axis, shape in ((p.ndim - 2, (-1, 1)), (p.ndim - 1, (1, -1))))
        if _run_rows_in_bands(x5, column_weight, row_weight, b, zeros_bias, out5, p, pad3,
                              stride3, dilation3, interleave):
            return
    current = x5
    for number, axis in enumerate(reversed(passes)):
        axis3 = lead + axis
        last = number == len(passes) - 1
        kernel3 = [1, 1, 1]
        kernel3[axis3] = per_axis[axis].shape[1]
        w5 = np.ascontiguousarray(per_axis[axis].reshape(
            (p.out_channels, 1) + tuple(kernel3)), dtype=p.dtype)
        shape = list(current.shape)
        shape[1] = p.out_channels
        shape[2 + axis3] = out5.shape[2 + axis3]
        target = out5 if last else np.empty(shape, dtype=p.dtype)
        pads = tuple(pad3[a] if a == axis3 else (0, 0) for a in range(3))
        stride = tuple(stride3[a] if a == axis3 else 1 for a in range(3))
        dilation = tuple(dilation3[a] if a == axis3 else 1 for a in range(3))
        groups = current.shape[1]  # the first pass fans each input out to its outputs
        source, maps, pad_left, dilation = _engine_inputs(
            current, pads, p.padding_mode, target.shape[2:], stride, kernel3, dilation,
            interleave)
        _call_engine(source, w5, b if last else zeros_bias, target, maps, pad_left, groups,
                     stride, dilation)
        current = target


#: Bytes of the row pass's result a band holds (see :func:`_run_rows_in_bands`): about what the
#: cores' L2 caches hold, so the column pass reads it from there.
_BAND_BYTES = 1 << 21


def _run_rows_in_bands(x5: np.ndarray, column_weight: np.ndarray, row_weight: np.ndarray,
                       b: np.ndarray, zeros_bias: np.ndarray, out5: np.ndarray, p: Plan,
                       pad3, stride3, dilation3, interleave: int) -> bool:
    """The two 1-D passes of a 2-D separable kernel, a band of output rows at a time: the pass
    along rows (``column_weight``, ``(1, 1, 1, 1, kw)``) over the padded rows the band reads,
    then the pass along columns (``row_weight``, ``(1, 1, 1, kh, 1)``) into the band's output rows.

    The intermediate then never leaves the cache and never exists for the whole image. The
    padded rows come through the image's own row map, sliced per band, so the borders (every
    mode) and each sample's arithmetic are those of the whole-image passes: the same bits.
    Returns False (nothing done) where this does not apply: a compacted row map (a huge
    dilation), fewer than two bands, or a non-contiguous output band.
    """
    mode = p.padding_mode
    (top, bottom), sh, dh = pad3[1], stride3[1], dilation3[1]
    kh = row_weight.shape[3]
    in_h, out_h = x5.shape[3], out5.shape[3]
    if _compacted(in_h + top + bottom, out_h, sh, kh):
        return False
    # The row pass: columns padded and read as the whole-image pass reads them.
    row_shape = x5.shape[:2] + (1, 1, out5.shape[4])
    source, maps, pad_left, row_dilation = _engine_inputs(
        x5, ((0, 0), (0, 0), pad3[2]), mode, row_shape[2:], (1, 1, stride3[2]),
        (1, 1, column_weight.shape[4]), (1, 1, dilation3[2]), interleave)
    if source is not x5:  # a compacted column map: gathered input, leave it to the full passes
        return False
    row_map = index_map(in_h, top, bottom, mode)
    width = out5.shape[4]
    rows_per_band = max(1, _BAND_BYTES // (width * p.dtype.itemsize) - dh * (kh - 1))
    rows_per_band = max(rows_per_band // sh, 16)
    if rows_per_band >= out_h:
        return False
    columns = np.arange(width, dtype=np.intp)
    span = (rows_per_band - 1) * sh + dh * (kh - 1) + 1
    scratch = np.empty((span, width), p.dtype)
    done_start = done_stop = 0  # the padded rows the scratch holds, from its first row
    for first in range(0, out_h, rows_per_band):
        last = min(first + rows_per_band, out_h)
        start, stop = first * sh, (last - 1) * sh + dh * (kh - 1) + 1
        # Rows the previous band passed along already move up; only the new ones are computed.
        kept = max(0, done_stop - start)
        if kept:
            scratch[:kept] = scratch[start - done_start:done_stop - done_start]
        band = scratch[:stop - start].reshape((1, 1, 1, stop - start, width))
        _call_engine(x5, column_weight, zeros_bias, band[:, :, :, kept:],
                     [maps[0], row_map[start + kept:stop], maps[2]], pad_left, 1,
                     (1, 1, stride3[2]), row_dilation)
        done_start, done_stop = start, stop
        _call_engine(band, row_weight, b, out5[:, :, :, first:last],
                     [maps[0], np.arange(stop - start, dtype=np.intp), columns], 0, 1,
                     (1, sh, 1), (1, dh, 1))
    return True


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: sizes pocketfft transforms fastest."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < n:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def _fft_functions():
    """``(rfftn, irfftn, takes_workers)``: scipy.fft when installed (threads, pocketfft's
    float64 transforms), else numpy.fft (one thread)."""
    try:
        import scipy.fft as module
    except ImportError:  # scipy is optional at run time
        return np.fft.rfftn, np.fft.irfftn, False
    return module.rfftn, module.irfftn, True


#: Beyond this many bytes, an explicit ``method="fft"`` is refused (a dilated kernel can make
#: the transforms far larger than the input); ``"auto"`` then runs the direct method.
_FFT_MAX_BYTES = 1 << 32


def _fft_shape(p: Plan) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """The padded spatial shape (3-D) and the transform sizes of the transformed axes."""
    pad3 = ((0, 0),) * (3 - p.ndim) + p.padding
    sizes3 = (1,) * (3 - p.ndim) + p.in_shape
    kernel3 = (1,) * (3 - p.ndim) + p.kernel_shape
    padded = tuple(s + b + a for s, (b, a) in zip(sizes3, pad3))
    sizes = tuple(_fft_size(padded[a]) for a in range(3) if padded[a] > 1 or kernel3[a] > 1)
    return padded, sizes


def fft_bytes(p: Plan) -> int:
    """Bytes the ``"fft"`` method holds at its peak for this plan (float64 padded input, complex
    spectra of input, kernel and product, the inverse transform).

    Examples
    --------
    >>> fft_bytes(plan((1, 64, 64), "float32", (1, 1, 3, 3))) > 0
    True
    """
    padded, sizes = _fft_shape(p)
    transform = int(np.prod(sizes, dtype=object)) if sizes else 1
    spectrum = transform // max(sizes[-1], 1) * (sizes[-1] // 2 + 1) * 16 if sizes else 16
    group_in = p.in_channels // p.groups
    real = int(np.prod(padded, dtype=object)) * 8 * p.batch * p.in_channels
    spectra = spectrum * (p.batch * p.in_channels + p.out_channels * group_in
                          + p.batch * p.out_channels)
    return real + spectra + transform * 8 * p.batch * p.out_channels


def _check_fft_size(p: Plan) -> None:
    size = fft_bytes(p)
    if size > _FFT_MAX_BYTES:
        raise ValueError(
            f"method='fft' would need {size / 2**30:.3g} GiB for its transforms (kernel "
            f"{p.kernel_shape} with dilation {p.dilation} on input {p.in_shape}, padding "
            f"{p.padding}); the limit is {_FFT_MAX_BYTES / 2**30:.3g} GiB: use method='direct'"
        )


def _window_counts(indicator: np.ndarray, p: Plan) -> np.ndarray:
    """For each output sample, how many of the samples its window reads (over the group's input
    channels) are set in ``indicator``, a ``(N, C_in, D, H, W)`` array of the padded input.

    Exact integer sums, one axis at a time (the window is a product of one window per axis): a
    cumulative sum along the axis, taken in steps of the dilation. Returns
    ``(N, groups, Do, Ho, Wo)`` int32.
    """
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    kernel3 = (1,) * (3 - p.ndim) + p.kernel_shape
    n = indicator.shape[0]
    group_in = p.in_channels // p.groups
    counts = indicator.reshape((n, p.groups, group_in) + indicator.shape[2:])
    # int32 holds any count: a window never reads more than 2**31 samples here (the plan's
    # allocation checks bound the kernel far below that).
    counts = counts.sum(axis=2, dtype=np.int32)
    out3 = _out_shape3(p)
    for a in range(3):
        axis = 2 + a
        k, d, s, o = kernel3[a], dilation3[a], stride3[a], out3[a]
        if k == 1 and s == 1 and counts.shape[axis] == o:
            continue
        length = counts.shape[axis]
        rows = -(-length // d)
        # steps[q] = the sum of counts[q'] for q' < q with q' = q (mod d), along the axis.
        shape = list(counts.shape)
        shape[axis] = (rows + 1) * d
        steps = np.zeros(shape, np.int32)
        inner = [slice(None)] * 5
        inner[axis] = slice(d, d + length)
        steps[tuple(inner)] = counts
        view = steps.reshape(shape[:axis] + [rows + 1, d] + shape[axis + 1:])
        np.cumsum(view, axis=axis, out=view)
        upper = [slice(None)] * 5
        upper[axis] = slice(k * d, k * d + (o - 1) * s + 1, s)
        lower = [slice(None)] * 5
        lower[axis] = slice(0, (o - 1) * s + 1, s)
        counts = steps[tuple(upper)] - steps[tuple(lower)]
    return counts


def _out_shape3(p: Plan) -> Tuple[int, ...]:
    return (1,) * (3 - p.ndim) + p.out_shape


def _run_fft(x5: np.ndarray, w5: np.ndarray, b: np.ndarray, out5: np.ndarray, p: Plan) -> None:
    """Correlation as a product of spectra of the padded input and the kernel, in float64.

    The input is padded once through the index maps (so every mode works), the kernel is
    dilated with zeros, and ``irfft(X * conj(K))`` gives the correlation; its valid part,
    sampled at the stride, is the result. Channels are summed in the frequency domain.

    An FFT spreads every sample's rounding error over the whole output. So the transforms run
    in float64 (the error is ~1e-16 of the image's largest values, far below float32 rounding
    of any window more than 1e-9 as bright), non-finite samples are transformed as zeros and
    the outputs whose windows hold one are computed again by the direct method (NaN and
    infinity stay in their windows, as with "direct"), and outputs whose windows read only
    zeros are exactly the bias. A non-finite kernel runs "direct" (every window is non-finite).
    """
    if not np.all(np.isfinite(w5)):
        _run_direct(x5, w5, b, out5, p)
        return
    pad3 = ((0, 0),) * (3 - p.ndim) + p.padding
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    if p.padding_mode == "zeros":  # the input in a frame of zeros: no gather needed
        padded = np.zeros(x5.shape[:2] + tuple(s + b + a for s, (b, a) in
                                                zip(x5.shape[2:], pad3)), np.float64)
        padded[(Ellipsis,) + tuple(slice(b, b + s) for s, (b, a) in
                                   zip(x5.shape[2:], pad3))] = x5
    else:
        padded = x5.astype(np.float64)
        for a in range(3):
            index = index_map(x5.shape[2 + a], pad3[a][0], pad3[a][1], p.padding_mode)
            if index.shape[0] != x5.shape[2 + a] or not np.array_equal(
                    index, np.arange(index.shape[0])):
                padded = np.take(padded, index, axis=2 + a)
    finite = np.isfinite(padded)
    all_finite = bool(finite.all())
    if not all_finite:
        nonfinite = ~finite
        padded[nonfinite] = 0.0
    del finite
    zeros = padded == 0
    any_zero = bool(zeros.any())
    if not any_zero:
        del zeros
    spatial = padded.shape[2:]
    axes = tuple(a + 2 for a in range(3) if spatial[a] > 1 or w5.shape[2 + a] > 1)
    sizes = [_fft_size(spatial[a - 2]) for a in axes]
    dilated_shape = tuple((k - 1) * d + 1 for k, d in zip(w5.shape[2:], dilation3))
    kernel = np.zeros(w5.shape[:2] + dilated_shape, dtype=np.float64)
    kernel[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation3)] = w5
    rfftn, irfftn, takes_workers = _fft_functions()
    extra = {"workers": get_num_threads()} if takes_workers else {}
    if not axes:  # every spatial axis has length 1: nothing to transform
        spectrum_x, spectrum_w, sizes = padded, kernel, []
    else:
        spectrum_x = rfftn(padded, s=sizes, axes=axes, **extra)
        spectrum_w = np.conj(rfftn(kernel, s=sizes, axes=axes, **extra))
    n, groups = x5.shape[0], p.groups
    group_in, group_out = p.in_channels // groups, p.out_channels // groups
    freq = spectrum_x.shape[2:]
    spectrum_x = spectrum_x.reshape((n, groups, group_in) + freq)
    spectrum_w = spectrum_w.reshape((groups, group_out, group_in) + freq)
    if group_in == 1:  # a broadcast product; einsum is several times slower here
        product = spectrum_x[:, :, :1] * spectrum_w[None, :, :, 0]
    else:
        product = np.einsum("ngi...,goi...->ngo...", spectrum_x, spectrum_w)
    del spectrum_x
    product = product.reshape((n, p.out_channels) + freq)
    full = irfftn(product, s=sizes, axes=axes, **extra) if axes else product
    del product
    valid = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out5.shape[2:], stride3))
    np.add(full[(Ellipsis,) + valid], b.reshape((1, -1, 1, 1, 1)), out=out5,
           casting="unsafe")
    del full
    out6 = out5.reshape((n, groups, group_out) + out5.shape[2:])
    if any_zero:
        # Windows of zeros only: exactly the bias, as the direct sum gives (not +-1e-12).
        silent = _window_counts(~zeros, p) == 0
        del zeros
        if silent.any():
            bias6 = np.broadcast_to(b.reshape((1, groups, group_out, 1, 1, 1)), out6.shape)
            where = np.broadcast_to(silent[:, :, None], out6.shape)
            out6[where] = bias6[where]
    if not all_finite:
        del padded
        _redo_windows_directly(x5, w5, b, out6, p, _window_counts(nonfinite, p) > 0)


def _redo_windows_directly(x5: np.ndarray, w5: np.ndarray, b: np.ndarray, out6: np.ndarray,
                           p: Plan, touched: np.ndarray) -> None:
    """Compute again with the direct method the outputs marked in ``touched`` (N, groups,
    Do, Ho, Wo): one box of outputs per batch item and group (the bounding box of the marked
    outputs), from the input window that box reads."""
    stride3 = (1,) * (3 - p.ndim) + p.stride
    dilation3 = (1,) * (3 - p.ndim) + p.dilation
    kernel3 = (1,) * (3 - p.ndim) + p.kernel_shape
    pad3 = ((0, 0),) * (3 - p.ndim) + p.padding
    group_in = p.in_channels // p.groups
    group_out = p.out_channels // p.groups
    w6 = w5.reshape((p.groups, group_out) + w5.shape[1:])
    b2 = b.reshape(p.groups, group_out)
    for n, g in zip(*np.nonzero(touched.any(axis=(2, 3, 4)))):
        marked = np.nonzero(touched[n, g])
        lo = [int(m.min()) for m in marked]
        hi = [int(m.max()) + 1 for m in marked]
        # The padded positions the box reads, through the index maps (any mode, any pad).
        maps = []
        for a in range(3):
            first = lo[a] * stride3[a]
            last = (hi[a] - 1) * stride3[a] + dilation3[a] * (kernel3[a] - 1)
            positions = np.arange(first, last + 1) - pad3[a][0]
            maps.append(fold(positions, x5.shape[2 + a], p.padding_mode))
        window = x5[n:n + 1, g * group_in:(g + 1) * group_in].astype(p.dtype)
        for a, index in enumerate(maps):
            window = np.take(window, np.maximum(index, 0), axis=2 + a)
            if (index < 0).any():
                shape = [1] * 5
                shape[2 + a] = index.shape[0]
                window = np.where((index >= 0).reshape(shape), window, 0).astype(p.dtype)
        box = np.empty((1, group_out) + tuple(h - l for l, h in zip(lo, hi)), dtype=p.dtype)
        identity = [np.arange(length, dtype=np.intp) for length in window.shape[2:]]
        _call_engine(np.ascontiguousarray(window), np.ascontiguousarray(w6[g]),
                     np.ascontiguousarray(b2[g]), box, identity, 0, 1, stride3, dilation3)
        region = tuple(slice(l, h) for l, h in zip(lo, hi))
        out6[(n, g, slice(None)) + region] = box[0]


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    padding_mode: str = "zeros",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    method: str = "auto",
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Cross-correlate a multi-channel 1-D, 2-D or 3-D input with a bank of filters.

    This is the convolution layer of the textbooks and of PyTorch's ``conv1d/2d/3d``::

        out[o, y, x] = bias[o] + sum_i sum_m sum_n w[o, i, m, n] * xpad[g(o) * C_in/groups + i,
                                                                      y*s + m*d, x*s + n*d]

    Parameters
    ----------
    x : array_like
        ``(C_in, *S)`` or a batch ``(N, C_in, *S)``, with 1, 2 or 3 spatial axes ``S``.
    weight : array_like
        ``(C_out, C_in // groups, *K)``: PyTorch's layout; ``len(K)`` is the number of spatial axes.
    bias : array_like, optional
        ``(C_out,)``, added to each output channel.
    stride, dilation : int or tuple of int
        One int for every spatial axis, or one per axis; >= 1.
    padding : int, tuple, 'valid' or 'same'
        An int; one int per axis; one ``(before, after)`` pair per axis; ``'valid'`` (no padding);
        ``'same'`` (output ``ceil(S / stride)``; an even kernel's extra pad goes after).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}
        numpy.pad's ``constant``, ``reflect``, ``edge``, ``wrap``, ``symmetric``, for any pad
        width. Aliases: ``constant``, ``edge``, ``nearest``, ``wrap``, ``mirror``. Note that
        scipy.ndimage's ``'reflect'`` is our ``'symmetric'``.
    groups : int
        Input and output channels are split into this many groups; output group ``g`` sees input
        group ``g`` only (``groups == C_in``: depthwise).
    method : {'auto', 'direct', 'separable', 'fft'}
        The algorithm; all give the same result up to rounding. ``'direct'`` sums the taps;
        ``'separable'`` runs one 1-D pass per axis and needs every kernel to be rank 1 (an outer
        product of 1-D kernels, found by SVD) with one input channel per group; ``'fft'``
        multiplies spectra (numpy.fft) of the padded input and is for large kernels. ``'auto'``
        chooses by the kernel alone (never by the input's size, so chunks of a Dask array make
        the same choice as the whole array): see docs/performance.md for the measured rule.
    out : numpy.ndarray, optional
        An array of the result's shape and dtype to write into. It may be strided, and it may
        share memory with ``x``, ``weight`` or ``bias`` (or bytes of a file with them, through
        another ``numpy.memmap``): then the result is computed into a new array and copied into
        ``out`` once every input has been read, so it is right either way.

    Returns
    -------
    numpy.ndarray
        ``(C_out, *S_out)`` or ``(N, C_out, *S_out)``; float64 for float64 ``x``, float32 for
        every other real dtype.

    Examples
    --------
    The 3x3 example of *Dive into Deep Learning* (section 7.2):

    >>> import numpy as np, imgfilt
    >>> x = np.arange(9.0).reshape(1, 3, 3)
    >>> k = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> imgfilt.conv(x, k)
    array([[[19., 25.],
            [37., 43.]]])
    """
    x_arr = as_numpy(x, "x")
    w_arr = as_numpy(weight, "weight")
    check_method(method)
    p = plan(
        x_arr.shape, x_arr.dtype, w_arr.shape,
        stride=stride, padding=padding, padding_mode=padding_mode,
        dilation=dilation, groups=groups,
    )
    b = _checked_bias(bias, p)

    inputs = {} if out is None else {"x": x_arr, "weight": w_arr}
    if out is not None and bias is not None:
        inputs["bias"] = as_numpy(bias, "bias")
    lead = (p.batch, p.in_channels) if p.batched else (1, p.in_channels)
    pad3 = (1,) * (3 - p.ndim)
    # One conversion at most: to the compute dtype, native byte order, C order (8-bit input is
    # read as is: the engine converts each row as it reads it).
    x5 = np.ascontiguousarray(x_arr, dtype=_source_dtype(x_arr, p)).reshape(
        lead + pad3 + p.in_shape)
    w5 = np.ascontiguousarray(w_arr, dtype=p.dtype).reshape(
        (p.out_channels, p.in_channels // p.groups) + pad3 + p.kernel_shape
    )
    result = _output_array(out, p, inputs)
    out5 = result.reshape((lead[0], p.out_channels) + pad3 + p.out_shape)
    chosen, factors = choose_method(method, w5, p)  # the compute dtype: same factors everywhere
    if factors is not None:  # exactly when chosen == "separable"
        _run_separable(x5, factors, b, out5, p)
    elif chosen == "fft":
        _run_fft(x5, w5, b, out5, p)
    else:
        _run_direct(x5, w5, b, out5, p)
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _checked_bias(bias: Optional[np.ndarray], p: Plan) -> np.ndarray:
    """The bias as a contiguous ``(C_out,)`` array of the compute dtype (zeros when None)."""
    if bias is None:
        return np.zeros(p.out_channels, dtype=p.dtype)
    b_arr = as_numpy(bias, "bias")
    if b_arr.shape != (p.out_channels,):
        raise ValueError(
            f"bias must have shape (C_out,) = ({p.out_channels},), got shape {b_arr.shape}"
        )
    return np.ascontiguousarray(b_arr, dtype=p.dtype)


def check_method(method: object) -> None:
    """Raise ValueError unless ``method`` is one :func:`conv` accepts."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"method={method!r} is not a method; allowed: {', '.join(METHODS)}"
        )


def _output_array(out: Optional[np.ndarray], p: Plan, inputs: dict) -> np.ndarray:
    """The array the engine writes: ``out`` itself when it can, else a new one.

    ``out`` is written through a new array (copied into ``out`` at the end, when every input
    has been read) when it is strided, or when it may share memory or the bytes of a mapped
    file with any of ``inputs`` (name -> array): the engine would otherwise read values it has
    already overwritten.
    """
    if out is None:
        return np.empty(p.result_shape, dtype=p.dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != p.result_shape or out.dtype != p.dtype:
        raise ValueError(
            f"out must have shape {p.result_shape} and dtype {p.dtype}, got shape {out.shape} "
            f"and dtype {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    overlapping = any(may_overlap(out, array) for array in inputs.values())
    if out.flags.c_contiguous and out.dtype.isnative and not overlapping:
        return out
    return np.empty(p.result_shape, dtype=p.dtype)


def convolve(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray] = None,
    **options,
) -> np.ndarray:
    """True convolution: :func:`conv` with the kernel flipped on every spatial axis.

    Takes exactly the arguments of :func:`conv`. ``convolve(x, w, ...)`` equals
    ``conv(x, w[..., ::-1, ::-1], ...)`` (2-D), padding included: for an even kernel and
    ``padding='same'`` the extra pad still goes after, which differs from scipy.ndimage.convolve's
    centring (see docs/semantics.md).

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> imgfilt.convolve(np.array([[0.0, 1.0, 0.0, 0.0]]), np.array([[[1.0, 2.0, 3.0]]]),
    ...                  padding="same")
    array([[1., 2., 3., 0.]])
    """
    w_arr = as_numpy(weight, "weight")
    if w_arr.ndim not in (3, 4, 5):
        # Let conv's own check word the error.
        return conv(x, w_arr, bias, **options)
    flipped = w_arr[(Ellipsis,) + (slice(None, None, -1),) * (w_arr.ndim - 2)]
    return conv(x, flipped, bias, **options)
