"""imgfilt on Dask arrays: images, volumes and videos larger than memory, on one machine or many.

:func:`conv` and :func:`apply` take Dask arrays and return lazy Dask arrays equal, bit for bit, to
what :func:`imgfilt.conv` and :func:`imgfilt.apply` return for the whole array in memory, for
every padding mode, stride and dilation, whatever the chunks (smaller than the kernel's halo too).
:func:`filter_file` filters a ``.npy`` or multi-page TIFF into a ``.npy`` in bounded memory.

How the seams are made exact: the output's chunks are chosen first (each output sample goes with
the input chunk that holds the centre of its window, so chunks follow the input's). For each
output block, the window of padded positions it reads is folded onto input indices with the
padding mode's index map (:func:`imgfilt.padding.fold`: reflections, wrap-around and pads
wider than a chunk or the whole axis included); the block's task gathers exactly those samples
from the input chunks that hold them and runs the engine with ``padding=0`` on them. Each
output sample is the engine's fixed-order sum over the same values as in memory, hence the
same bits. Dask's own ``map_overlap`` boundaries are not used: its ``'reflect'`` is numpy's
``'symmetric'`` and it needs every chunk to be at least the halo deep.

Rank filters and grey morphology (:class:`imgfilt.nonlinear.RankFilter`) go through the same
gathering (:func:`_blockwise`, the one place the seams are made): each pass of the operation's
:class:`imgfilt.rank.Recipe` is a graph of its own, reading the previous pass's blocks with
that pass's halo and padding them by the mode and ``cval`` exactly as the in-memory chain pads
its intermediate; a window's k-th value is one of its samples, chosen by an order that does not
depend on the block (:func:`imgfilt.rank.needs_keys`), hence the same bits. Canny runs only on
blocks that hold whole images (its hysteresis and quantile thresholds are global).

Requires Dask (``pip install 'imgfilt[dask]'``); ``scheduler=`` in :func:`filter_file` needs
``distributed`` too.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Union

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError(
        "imgfilt.dask needs Dask; install it with: pip install 'imgfilt[dask]'"
    ) from None

from . import api
from .arrays import as_numpy
from .bank import FilterBank, Sequential
from .convolution import (check_method, checked_int, checked_threads, compute_dtype, plan,
                          threads_in_this_thread)
from .convolution import conv as engine_conv
from .filters import COMBINES, Filter
from .errors import file_errors
from .layout import NOT_GIVEN, resolve
from .nonlinear import CannyFilter, RankFilter
from .padding import fold, normalize_mode, output_length, reflect_fallback
from .pipeline import (check_nonlinear_options, check_output, convert_output, finish_nonlinear,
                       run_nonlinear, same_padding)
from .rank import Pass, difference, rank_window, typed_cval
from .tiff import TiffPageReader

__all__ = ["apply", "conv", "convolve", "filter_file"]

PathLike = Union[str, "os.PathLike[str]"]
Chunks = Union[int, str, Sequence[int]]

# The longest span of positions one block's window may cover along an axis (a dilation far
# beyond the input makes the window mostly padding).
_MAX_WINDOW = 1 << 24

# A piece of an input chunk smaller than this fraction of the chunk is cut and copied by a task of
# its own; a larger one is cut inside the block's task from the whole chunk.
_COPY_FRACTION = 0.5


# ---------------------------------------------------------------------------------------------
# Geometry of one spatial axis


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a problem: input size, pads, mode, kernel, stride, dilation."""

    size: int
    before: int
    after: int
    mode: str
    kernel: int
    stride: int
    dilation: int

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    @property
    def out_len(self) -> int:
        return output_length(self.size + self.before + self.after, self.kernel, self.stride,
                             self.dilation)

    def output_chunks(self, in_chunks: tuple[int, ...]) -> tuple[int, ...]:
        """Output chunk sizes: output ``j`` goes with the input chunk holding its window's centre.

        Output ``j`` reads padded positions ``j*s .. j*s + span - 1``, i.e. input positions from
        ``j*s - before``; its centre is input position ``j*s + (span-1)//2 - before``. At stride 1
        with 'same' padding that is ``j`` itself, so output chunks equal input chunks. Output
        indices are global, so a chunk that does not start on the stride grid still starts its
        output where the global grid says.
        """
        centre = (self.span - 1) // 2 - self.before
        bounds = [0]
        start = 0
        for length in in_chunks[:-1]:
            start += length
            first = -(-(start - centre) // self.stride)  # first j whose centre is >= start
            bounds.append(min(max(first, 0), self.out_len))
        bounds.append(self.out_len)
        return tuple(b - a for a, b in zip(bounds, bounds[1:]) if b > a)

    def window(self, first: int, stop: int) -> np.ndarray:
        """Input indices (-1: a zero) of the padded positions outputs ``first..stop-1`` read."""
        low = first * self.stride - self.before
        high = (stop - 1) * self.stride + self.span - self.before
        return fold(np.arange(low, high, dtype=np.intp), self.size, self.mode)


Indexer = Union[slice, np.ndarray]


def _compact(indices: np.ndarray) -> Indexer:
    """A slice when ``indices`` are consecutive (the usual case: plain copies), else the array."""
    if indices.size and indices[-1] - indices[0] == indices.size - 1 and (
        indices.size == 1 or bool(np.all(np.diff(indices) == 1))
    ):
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices


def _as_indices(indexer: Indexer) -> np.ndarray:
    if isinstance(indexer, slice):
        return np.arange(indexer.start, indexer.stop, dtype=np.intp)
    return indexer


@dataclass(frozen=True)
class _Part:
    """The samples one output block takes from one input chunk, along one axis."""

    chunk: int          # index of the input chunk along this axis
    take: slice         # the piece cut from that chunk (chunk coordinates)
    dst: Indexer        # positions in the block's padded window
    src: Indexer        # positions in the piece


def _axis_parts(window: np.ndarray, in_chunks: tuple[int, ...]) -> tuple[_Part, ...]:
    """Which input chunks feed ``window`` (folded input indices), and where each sample goes."""
    starts = np.concatenate([[0], np.cumsum(in_chunks)]).astype(np.intp)
    present = window >= 0
    positions = np.flatnonzero(present)
    indices = window[present]
    owner = np.searchsorted(starts, indices, side="right") - 1
    parts = []
    for chunk in np.unique(owner):
        mine = owner == chunk
        sel = indices[mine]
        low, high = int(sel.min()), int(sel.max()) + 1
        chunk_start = int(starts[chunk])
        parts.append(
            _Part(
                chunk=int(chunk),
                take=slice(low - chunk_start, high - chunk_start),
                dst=_compact(positions[mine]),
                src=_compact(sel - low),
            )
        )
    return tuple(parts)


@dataclass(frozen=True)
class _Block:
    """What one output block's task needs besides its pieces and the shared values."""

    window: tuple[int, ...]                  # padded window size per spatial axis
    parts: tuple[tuple[_Part, ...], ...]     # per spatial axis
    zeros: bool                              # some window position is outside (padding value)
    fill: Any                                # the padding value of those positions
    cuts: tuple[tuple[slice, ...] | None, ...]  # per piece: cut in the task, or None: cut
    dtype: np.dtype
    run: Any                                 # run(padded window, *shared) -> the output block


def _cut_piece(chunk: np.ndarray, index: tuple[slice, ...]) -> np.ndarray:
    return np.array(chunk[index])  # a copy, so the chunk itself can be released


def _gather(pieces: list[np.ndarray], lead: tuple[int, ...], block: _Block) -> np.ndarray:
    """Assemble the padded window of one output block from its pieces.

    ``lead`` is the block's shape along the non-spatial axes: a window that lies wholly in the
    padding has no pieces to take it from.
    """
    if block.zeros:
        padded = np.full(lead + block.window, block.fill, dtype=block.dtype)
    else:  # every position is written below
        padded = np.empty(lead + block.window, dtype=block.dtype)
    combos = itertools.product(*(range(len(parts)) for parts in block.parts))
    for piece, cut, combo in zip(pieces, block.cuts, combos):
        if cut is not None:
            piece = piece[cut]
        dst = [block.parts[a][i].dst for a, i in enumerate(combo)]
        src = [block.parts[a][i].src for a, i in enumerate(combo)]
        if all(isinstance(s, slice) for s in dst + src):
            padded[(Ellipsis, *dst)] = piece[(Ellipsis, *src)]
        else:  # a reflected or wrapped edge: an outer product of index arrays
            dst_ix = np.ix_(*map(_as_indices, dst))
            src_ix = np.ix_(*map(_as_indices, src))
            padded[(Ellipsis, *dst_ix)] = piece[(Ellipsis, *src_ix)]  # type: ignore[index, arg-type]
    return padded


def _run_block(block: _Block, pieces: list[np.ndarray], lead: tuple[int, ...],
               *shared: Any) -> np.ndarray:
    return block.run(_gather(pieces, lead, block), *shared)


def _conv_run(padded: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *,
              lead_ndim: int, conv_options: tuple[tuple[str, Any], ...],
              threads: int | None) -> np.ndarray:
    """The engine on one padded window ``(*lead, C_in, *window)`` with no padding."""
    batch = padded.reshape((-1,) + padded.shape[lead_ndim:])
    with threads_in_this_thread(threads):
        result = engine_conv(batch, weight, bias, padding=0, **dict(conv_options))
    return result.reshape(padded.shape[:lead_ndim] + result.shape[1:])


def _blockwise(
    x: da.Array,
    axes: Sequence[_Axis],
    out_chunks: Sequence[tuple[int, ...]],
    *,
    lead_ndim: int,
    out_lead_chunks: Sequence[tuple[int, ...]],
    dtype: np.dtype,
    out_dtype: np.dtype,
    fill: Any,
    run: Any,
    shared: dict[str, Any],
    label: str,
    token: str,
) -> da.Array:
    """The graph of a windowed filter: the one place the seams are made.

    ``x`` is ``(*lead, *S)``; every output block ``(*lead block, *out block)`` is
    ``run(window, *shared)`` on the padded window its outputs read, gathered from the input
    chunks through the padding index maps (``fill`` where the mode pads with a constant).
    ``out_lead_chunks`` has as many chunks per lead axis as ``x`` (their sizes may differ:
    conv's channel axis). ``shared`` values are stored once in the graph.
    """
    lead_chunks = x.chunks[:lead_ndim]
    in_chunks = x.chunks[lead_ndim:]
    name = f"imgfilt-{label}-" + token
    piece_name = "imgfilt-halo-" + token
    graph: dict[Any, Any] = {}
    shared_keys = []
    for what, value in shared.items():
        graph[f"imgfilt-{what}-" + token] = value
        shared_keys.append(f"imgfilt-{what}-" + token)

    for index, axis in enumerate(axes):
        if axis.span > _MAX_WINDOW:
            # The in-memory engine reads only the taps' own positions (its cost follows the
            # work); a block's window here is every position between them.
            raise ValueError(
                f"dilation={axis.dilation} spreads the kernel of spatial axis {index} over "
                f"{axis.span} samples, more than imgfilt.dask gathers for one block "
                f"({_MAX_WINDOW}); compute it in memory with imgfilt.apply / imgfilt.conv, or "
                "use a smaller dilation"
            )
    # Per axis and output chunk: the window's parts (computed once, shared by all blocks).
    axis_blocks = []
    for axis, chunks_out, chunks_in in zip(axes, out_chunks, in_chunks):
        blocks = []
        first = 0
        for length in chunks_out:
            window = axis.window(first, first + length)
            blocks.append((window.size, bool((window < 0).any()),
                           _axis_parts(window, chunks_in)))
            first += length
        axis_blocks.append(blocks)

    in_sizes = [np.asarray(c) for c in in_chunks]
    lead_index = (slice(None),) * lead_ndim
    for out_index in itertools.product(*(range(len(c)) for c in out_chunks)):
        per_axis = [axis_blocks[a][i] for a, i in enumerate(out_index)]
        parts = tuple(b[2] for b in per_axis)
        # A piece that is most of its chunk goes to the block's task as the chunk itself (cut
        # there); a thin halo is cut and copied by a task of its own, so that only the halo,
        # not the whole neighbouring chunk, is held for (or sent to) this block.
        cuts = []
        for combo in itertools.product(*parts):
            piece_len = np.prod([p.take.stop - p.take.start for p in combo])
            chunk_len = np.prod([in_sizes[a][p.chunk] for a, p in enumerate(combo)])
            whole = piece_len >= _COPY_FRACTION * chunk_len
            cuts.append(lead_index + tuple(p.take for p in combo) if whole else None)
        block = _Block(
            window=tuple(b[0] for b in per_axis),
            parts=parts,
            zeros=any(b[1] for b in per_axis),
            fill=fill,
            cuts=tuple(cuts),
            dtype=dtype,
            run=run,
        )
        task = partial(_run_block, block)
        for lead_block in itertools.product(*(range(len(c)) for c in lead_chunks)):
            lead = tuple(lead_chunks[a][i] for a, i in enumerate(lead_block))
            piece_keys = []
            for combo, cut in zip(itertools.product(*block.parts), block.cuts):
                chunk_key = (x.name,) + lead_block + tuple(p.chunk for p in combo)
                if cut is not None:
                    piece_keys.append(chunk_key)
                    continue
                key = (piece_name,) + lead_block + out_index + tuple(p.chunk for p in combo)
                graph[key] = (
                    partial(_cut_piece, index=lead_index + tuple(p.take for p in combo)),
                    chunk_key,
                )
                piece_keys.append(key)
            graph[(name,) + lead_block + out_index] = (task, piece_keys, lead, *shared_keys)
    # dask.Array vs its own protocol (a typing quirk, not a bug)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=[x])  # type: ignore[list-item]
    chunks = tuple(out_lead_chunks) + tuple(out_chunks)
    return da.Array(hlg, name, chunks, meta=np.empty((0,) * len(chunks), dtype=out_dtype))


def _correlate(
    x: da.Array,
    weight: np.ndarray,
    bias: np.ndarray | None,
    axes: Sequence[_Axis],
    *,
    lead_ndim: int,
    dtype: np.dtype,
    groups: int,
    method: str,
    threads: int | None,
) -> da.Array:
    """The graph: ``x (*lead, C_in, *S)``, channel axis in one chunk, checked by the caller."""
    conv_options = (
        ("stride", tuple(a.stride for a in axes)),
        ("dilation", tuple(a.dilation for a in axes)),
        ("groups", groups),
        ("method", method),
    )
    token = tokenize(x.name, weight, bias, axes, lead_ndim, str(dtype), conv_options, threads)
    out_chunks = [axis.output_chunks(chunks)
                  for axis, chunks in zip(axes, x.chunks[lead_ndim + 1:])]
    run = partial(_conv_run, lead_ndim=lead_ndim, conv_options=conv_options, threads=threads)
    return _blockwise(x, axes, out_chunks, lead_ndim=lead_ndim + 1,
                      out_lead_chunks=x.chunks[:lead_ndim] + ((weight.shape[0],),),
                      dtype=dtype, out_dtype=dtype, fill=dtype.type(0), run=run,
                      shared={"weight": weight, "bias": bias}, label="conv", token=token)


# ---------------------------------------------------------------------------------------------
# Rank filters, grey morphology and Canny (imgfilt.nonlinear)


def _rank_run(padded: np.ndarray, *, one: Pass, threads: int | None) -> np.ndarray:
    """One rank pass on a padded window: every output whose window lies inside it is computed
    from the window's samples alone (the border, padded again here, is cut off)."""
    nd = one.footprint.ndim
    spatial = tuple(range(padded.ndim - nd, padded.ndim))
    with threads_in_this_thread(threads):
        result = rank_window(padded, one.k, one.footprint, spatial, mode="replicate",
                             origin=one.origin)
    inside = tuple(slice(before, length - after)
                   for (before, after), length in zip(one.pads, padded.shape[padded.ndim - nd:]))
    return np.ascontiguousarray(result[(Ellipsis,) + inside])


def _rank_pass(x: da.Array, one: Pass, lead_ndim: int, modes: Sequence[str], cval: Any,
               threads: int | None) -> da.Array:
    """One pass of a recipe on ``x (*lead, *S)``: the output's chunks are the input's."""
    sizes = x.shape[lead_ndim:]
    axes = [_Axis(size, before, after, mode, before + after + 1, 1, 1)
            for size, (before, after), mode in zip(sizes, one.pads, modes)]
    token = tokenize(x.name, one.k, one.footprint, one.origin, modes, cval, lead_ndim, threads)
    return _blockwise(x, axes, x.chunks[lead_ndim:], lead_ndim=lead_ndim,
                      out_lead_chunks=x.chunks[:lead_ndim], dtype=x.dtype, out_dtype=x.dtype,
                      fill=cval, run=partial(_rank_run, one=one, threads=threads), shared={},
                      label="rank", token=token)


def _rank_lazy(x: da.Array, filt: RankFilter, lead_ndim: int, mode: str,
               threads: int | None) -> da.Array:
    """What ``filt.run`` gives on ``x (*lead, *S)``, in ``x``'s dtype, pass by pass.

    Each pass pads its own input (the image, or the previous pass's result) by the mode and
    ``cval``, as the in-memory chain does, so each is exact on its own; an axis of one sample
    under ``'reflect'`` repeats it (``reflect_fallback``), as :func:`imgfilt.apply` does.
    """
    sizes = x.shape[lead_ndim:]
    modes = [reflect_fallback(mode, size) for size in sizes]
    cval = typed_cval(filt.cval, x.dtype)[0]
    plan = filt.recipe

    def chain(source: da.Array, passes: Sequence[Pass]) -> da.Array:
        for one in passes:
            source = _rank_pass(source, one, lead_ndim, modes, cval, threads)
        return source

    first = chain(x, plan.first)
    if plan.second is None:
        return first
    return da.map_blocks(difference, first, chain(x, plan.second), dtype=x.dtype)


def _canny_run(block: np.ndarray, filt: CannyFilter, spatial: tuple[int, ...], mode: str,
               threads: int | None) -> np.ndarray:
    with threads_in_this_thread(threads):
        return run_nonlinear(block, filt, spatial, mode)


def _canny_lazy(x: da.Array, filt: CannyFilter, lead_ndim: int, mode: str,
                threads: int | None, space: Sequence[int]) -> da.Array:
    """Canny on ``x (*lead, *S)`` block by block, each block holding whole images."""
    split = [(axis, len(chunks)) for axis, chunks in zip(space, x.chunks[lead_ndim:])
             if len(chunks) > 1]
    if split:
        axes_text = ", ".join(f"axis {axis} ({count} chunks)" for axis, count in split)
        rechunk = "{" + ", ".join(f"{axis}: -1" for axis in space) + "}"
        raise ValueError(
            f"Canny cannot run on tiles: its hysteresis follows edges across the whole image "
            f"and use_quantiles thresholds are the whole image's, so no finite halo makes the "
            f"seams exact. The image's spatial axes are split: {axes_text}. Rechunk each "
            f"spatial axis to one chunk, e.g. image.rechunk({rechunk}); other axes (frames of "
            "a video, channels) may stay chunked"
        )
    spatial = tuple(range(lead_ndim, x.ndim))
    # dask types map_blocks as a method (a typing quirk, not a bug)
    return x.map_blocks(_canny_run, filt, spatial, mode, threads,  # type: ignore[arg-type]
                        dtype=x.dtype)


def _apply_nonlinear(array: da.Array, filt: RankFilter | CannyFilter, options: dict[str, Any],
                     channel_axis: Any, axes: Any, threads: int | None) -> da.Array:
    """:func:`apply` for :mod:`imgfilt.nonlinear` filters (same steps as
    :func:`imgfilt.pipeline.filter_nonlinear`)."""
    check_nonlinear_options(filt, options.get("stride", 1), options.get("dilation", 1))
    output = check_output(options.get("output"), array.dtype)
    mode = normalize_mode(options.get("padding_mode", "reflect"))
    layout = resolve(array.shape, filt.ndim, channel_axis=channel_axis, axes=axes)
    space = list(layout.spatial)
    order = list(layout.batch) + ([] if layout.channel is None else [layout.channel]) + space
    x = array if order == sorted(order) else array.transpose(order)  # (*lead, *S)
    lead = x.ndim - len(space)
    if any(size == 0 for size in x.shape):
        raw = x
    elif isinstance(filt, RankFilter):
        raw = _rank_lazy(x, filt, lead, mode, _threads(threads))
    else:
        raw = _canny_lazy(x, filt, lead, mode, _threads(threads), space)
    if output == "rescale":
        floats_dtype = finish_nonlinear(np.empty(0, raw.dtype), array.dtype, "float").dtype
        # dask types map_blocks as a method (a typing quirk, not a bug)
        floats = raw.map_blocks(finish_nonlinear, array.dtype, "float",  # type: ignore[arg-type]
                                dtype=floats_dtype)
        finite = da.isfinite(floats)
        smallest = da.where(finite, floats, np.inf).min()
        largest = da.where(finite, floats, -np.inf).max()
        result = floats.map_blocks(_rescale_block, smallest, largest, array.dtype,
                                   dtype=array.dtype.newbyteorder("="))
    else:
        out_dtype = finish_nonlinear(np.empty(0, raw.dtype), array.dtype, output).dtype
        result = raw.map_blocks(finish_nonlinear, array.dtype, output,  # type: ignore[arg-type]
                                dtype=out_dtype)
    if order == sorted(order):
        return result
    return result.transpose(list(np.argsort(order)))


# ---------------------------------------------------------------------------------------------
# conv


def _as_dask(x: Any, name: str) -> da.Array:
    array = x if isinstance(x, da.Array) else da.asarray(x)
    if array.dtype.kind not in "biuf" or array.dtype.itemsize > 8:
        raise TypeError(
            f"{name} has dtype {array.dtype}; allowed: bool, integers, float16, float32, float64"
        )
    if any(np.isnan(s) for s in array.shape):
        raise ValueError(f"{name} has unknown chunk sizes {array.shape}; call compute_chunk_sizes()")
    return array


def _threads(threads: int | None) -> int | None:
    return None if threads is None else checked_threads(threads, "threads")


def conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    padding_mode: str = "zeros",
    dilation: Any = 1,
    groups: int = 1,
    method: str = "auto",
    threads: int | None = 1,
) -> da.Array:
    """:func:`imgfilt.conv` on a Dask array: lazy, chunk by chunk, equal to the in-memory result.

    Parameters
    ----------
    x : dask.array.Array or array_like
        ``(C_in, *S)`` or ``(N, C_in, *S)`` with 1-3 spatial axes, chunked in any way (the channel
        axis is rechunked to one block if needed; chunks may be smaller than the kernel).
    weight, bias, stride, padding, padding_mode, dilation, groups, method
        Exactly as :func:`imgfilt.conv` (NumPy arrays for ``weight`` and ``bias``).
    threads : int or None
        Engine threads inside each Dask task. Default 1: Dask already runs one task per core, so
        more would oversubscribe; ``None`` uses :func:`imgfilt.get_num_threads`.

    Returns
    -------
    dask.array.Array
        ``(C_out, *S_out)`` or ``(N, C_out, *S_out)`` (float64 for float64 ``x``, else float32);
        the batch axis keeps ``x``'s chunks, the output channels are one chunk, and spatial chunks
        follow the input's (equal to them at stride 1 with ``'same'`` padding).

    Examples
    --------
    >>> import numpy as np, dask.array as da, imgfilt, imgfilt.dask
    >>> x = np.random.rand(1, 100, 100)
    >>> w = np.random.rand(2, 1, 5, 5)
    >>> lazy = imgfilt.dask.conv(da.from_array(x, chunks=(1, 30, 40)), w, padding="same",
    ...                          padding_mode="reflect")
    >>> lazy.chunks[1:]
    ((30, 30, 30, 10), (40, 40, 20))
    >>> bool(np.array_equal(lazy.compute(), imgfilt.conv(x, w, padding="same",
    ...                                                  padding_mode="reflect")))
    True
    """
    x = _as_dask(x, "x")
    w_arr = as_numpy(weight, "weight")
    check_method(method)
    p = plan(x.shape, x.dtype, w_arr.shape, stride=stride, padding=padding,
              padding_mode=padding_mode, dilation=dilation, groups=groups)
    b = None
    if bias is not None:
        b_arr = as_numpy(bias, "bias")
        if b_arr.shape != (p.out_channels,):
            raise ValueError(
                f"bias must have shape (C_out,) = ({p.out_channels},), got shape {b_arr.shape}"
            )
        b = np.ascontiguousarray(b_arr, dtype=p.dtype)
    w_arr = np.ascontiguousarray(w_arr, dtype=p.dtype)
    lead_ndim = 1 if p.batched else 0
    if len(x.chunks[lead_ndim]) > 1:
        x = x.rechunk({lead_ndim: -1})
    axes = [
        _Axis(size, before, after, p.padding_mode, k, s, d)
        for size, (before, after), k, s, d in zip(p.in_shape, p.padding, p.kernel_shape,
                                                  p.stride, p.dilation)
    ]
    return _correlate(x, w_arr, b, axes, lead_ndim=lead_ndim, dtype=p.dtype, groups=p.groups,
                      method=method, threads=_threads(threads))


def convolve(x: Any, weight: Any, bias: Any = None, **options: Any) -> da.Array:
    """:func:`imgfilt.convolve` on a Dask array: :func:`conv` with the kernel flipped.

    Examples
    --------
    >>> import numpy as np, dask.array as da, imgfilt.dask
    >>> imgfilt.dask.convolve(da.from_array(np.array([[0.0, 1.0, 0.0, 0.0]]), chunks=(1, 2)),
    ...                       np.array([[[1.0, 2.0, 3.0]]]), padding="same").compute()
    array([[1., 2., 3., 0.]])
    """
    w_arr = as_numpy(weight, "weight")
    if w_arr.ndim in (3, 4, 5):
        w_arr = w_arr[(Ellipsis,) + (slice(None, None, -1),) * (w_arr.ndim - 2)]
    return conv(x, w_arr, bias, **options)


# ---------------------------------------------------------------------------------------------
# apply


def _combine_block(responses: np.ndarray, combine: str, axis: int, keep: bool) -> np.ndarray:
    result = COMBINES[combine](responses, axis)
    return np.expand_dims(result, axis) if keep else result


def _rescale_block(block: np.ndarray, smallest: Any, largest: Any, dtype: np.dtype
                   ) -> np.ndarray:
    return convert_output(block, dtype, "rescale", extremes=(float(smallest), float(largest)))


def apply(
    image: Any,
    filter: Any,
    *,
    padding_mode: str | None = None,
    channel_axis: Any = NOT_GIVEN,
    axes: Any = None,
    stride: Any = None,
    dilation: Any = None,
    output: str | None = None,
    threads: int | None = 1,
    **filter_params: Any,
) -> da.Array:
    """:func:`imgfilt.apply` on a Dask array: lazy, equal to the in-memory result.

    Parameters
    ----------
    image : dask.array.Array or array_like
        Laid out as :func:`imgfilt.apply` takes arrays, by the same axis rule
        (:func:`imgfilt.layout.resolve`): a stack of frames, e.g. a video ``(T, H, W, C)`` with
        a 2-D filter, says ``axes=(1, 2)`` (and ``channel_axis=-1``); the other axes are
        filtered one frame at a time.
    filter : str, Filter, RankFilter, CannyFilter or array_like
        As :func:`imgfilt.apply` (a FilterBank: use :func:`conv` with its weight). Rank
        filters and grey morphology take any chunks; Canny needs each spatial axis in one
        chunk (a video ``(T, H, W)`` chunked along ``T`` only), else a ValueError says how to
        rechunk.
    padding_mode, channel_axis, axes, stride, dilation, output, **filter_params
        As :func:`imgfilt.apply`. ``output='rescale'`` needs the result's global minimum and
        maximum, so computing it runs the filter twice.
    threads : int or None
        Engine threads inside each Dask task (default 1; see :func:`conv`).

    Returns
    -------
    dask.array.Array
        In the input's layout; spatial chunks follow the input's.

    Examples
    --------
    >>> import numpy as np, dask.array as da, imgfilt, imgfilt.dask
    >>> img = (np.random.rand(300, 200, 3) * 255).astype(np.uint8)
    >>> lazy = imgfilt.dask.apply(da.from_array(img, chunks=(64, 64, 3)), "gaussian", sigma=2)
    >>> lazy.dtype, bool(np.array_equal(lazy.compute(), imgfilt.apply(img, "gaussian", sigma=2)))
    (dtype('uint8'), True)
    >>> opened = imgfilt.dask.apply(da.from_array(img, chunks=(40, 30, 3)), "opening", size=5)
    >>> bool(np.array_equal(opened.compute(), imgfilt.apply(img, "opening", size=5)))
    True
    """
    if isinstance(filter, (FilterBank, Sequential)):
        raise TypeError(
            "imgfilt.dask.apply takes a filter name, a Filter or a kernel; for a FilterBank use "
            "imgfilt.dask.conv(x, bank.weight, bank.bias, padding='same', ...) on (C_in, *S)"
        )
    filt = api.as_filter(filter, filter_params)
    options = api.filter_options(filt, padding_mode=padding_mode, stride=stride,
                                 dilation=dilation, output=output)
    array = _as_dask(image, "image")
    if isinstance(filt, (RankFilter, CannyFilter)):
        return _apply_nonlinear(array, filt, options, channel_axis, axes, threads)
    if not isinstance(filt, Filter):
        raise TypeError(f"imgfilt.dask.apply runs Filters, rank filters and Canny; got "
                        f"{type(filt).__name__}")
    output = check_output(options.get("output"), array.dtype)
    layout = resolve(array.shape, filt.ndim, channel_axis=channel_axis, axes=axes,
                     in_channels=None if filt.per_channel else filt.in_channels)
    frames, channel, space = list(layout.batch), layout.channel, list(layout.spatial)

    # (*frames, C, *S), C a single chunk.
    if channel is None:
        x = da.expand_dims(array.transpose(frames + space), len(frames))
    else:
        x = array.transpose(frames + [channel] + space)
    lead = len(frames)
    channels = x.shape[lead]
    if not filt.per_channel and channels != filt.in_channels:
        raise ValueError(
            f"filter {filt.name!r} mixes {filt.in_channels} channels (weight "
            f"{filt.weight.shape}) but the image has {channels} (shape {array.shape})"
        )
    if filt.per_channel:
        x = da.expand_dims(x, lead + 1)  # each channel is one item of the batch
        lead += 1
    elif len(x.chunks[lead]) > 1:
        x = x.rechunk({lead: -1})

    # Padding as imgfilt.apply pads, by the same rule (imgfilt.pipeline.same_padding).
    dilation_value = options.get("dilation", 1)
    stride_value = options.get("stride", 1)
    sizes = x.shape[lead + 1:]
    compute = compute_dtype(array.dtype)
    unit = (filt.weight.shape[1],) + sizes
    pads, modes = same_padding(sizes, filt.weight.shape, stride_value, dilation_value,
                               options.get("padding_mode", "reflect"))
    p = plan(unit, compute, filt.weight.shape, stride=stride_value, padding=pads,
             dilation=dilation_value)
    block_axes = [
        _Axis(size, before, after, mode, k, s, d)
        for size, (before, after), mode, k, s, d in zip(sizes, pads, modes, p.kernel_shape,
                                                        p.stride, p.dilation)
    ]
    weight = np.ascontiguousarray(filt.weight, dtype=p.dtype)
    bias = None if filt.bias is None else np.ascontiguousarray(filt.bias, dtype=p.dtype)
    responses = _correlate(x, weight, bias, block_axes, lead_ndim=lead, dtype=p.dtype,
                           groups=1, method="auto", threads=_threads(threads))

    # Combine the responses as imgfilt.apply does, block by block (responses are one chunk).
    axis = lead  # the response axis
    if filt.per_channel:
        if filt.combine is None:
            result = responses[(slice(None),) * axis + (0,)]
        else:
            # dask types map_blocks as a method (a typing quirk, not a bug)
            result = responses.map_blocks(_combine_block, filt.combine, axis, False,  # type: ignore[arg-type]
                                          drop_axis=axis, dtype=p.dtype)
    elif filt.combine is not None:
        chunks = responses.chunks[:axis] + ((1,),) + responses.chunks[axis + 1:]
        result = responses.map_blocks(_combine_block, filt.combine, axis, True,  # type: ignore[arg-type]
                                      chunks=chunks, dtype=p.dtype)
    else:
        result = responses
    # result: (*frames, C_result, *S_out)
    out_dtype = result.dtype if output == "float" else array.dtype
    if output == "rescale":
        finite = da.isfinite(result)
        smallest = da.where(finite, result, np.inf).min()
        largest = da.where(finite, result, -np.inf).max()
        result = result.map_blocks(_rescale_block, smallest, largest, array.dtype,
                                   dtype=out_dtype)
    elif output != "float":
        result = result.map_blocks(convert_output, array.dtype, output, dtype=out_dtype)

    if channel is None:
        result = result[(slice(None),) * len(frames) + (0,)]
        order = frames + space
    else:
        order = frames + [channel] + space
    if order == sorted(order):
        return result
    return result.transpose(list(np.argsort(order)))


# ---------------------------------------------------------------------------------------------
# Files larger than memory


class _NpyFile:
    """A ``.npy`` file read and written block by block with plain file reads and writes.

    A block is a tuple of unit-step slices; it is moved as the contiguous runs it is made of in
    the file. Unlike a memory map, this leaves no file pages in the process's resident memory,
    so a run's RSS is its chunks and nothing else. Only the path and header travel to Dask
    workers.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(handle)
            else:
                header = np.lib.format.read_array_header_2_0(handle)
            self.offset = handle.tell()
        self.shape, fortran_order, self.dtype = header
        if fortran_order:
            raise ValueError("Fortran-ordered .npy files are not supported; save it C-ordered")
        if self.dtype.hasobject:
            raise ValueError(f"dtype {self.dtype} holds Python objects")
        self.ndim = len(self.shape)

    def _runs(self, index: Any) -> tuple[tuple[int, ...], Iterator[tuple[int, tuple[Any, ...]]]]:
        """The block's shape and, for each contiguous run, its byte offset and place in it."""
        if not isinstance(index, tuple):
            index = (index,)
        index = index + (slice(None),) * (self.ndim - len(index))
        ranges = [range(n)[s] for n, s in zip(self.shape, index)]
        if any(r.step != 1 for r in ranges):
            raise ValueError("only unit-step slices are supported")
        block = tuple(len(r) for r in ranges)
        # The run is the last axes that are whole, plus the one before them.
        split = self.ndim - 1
        while split > 0 and block[split] == self.shape[split]:
            split -= 1
        strides = [int(np.prod(self.shape[a + 1:], dtype=np.int64)) for a in range(self.ndim)]

        def runs() -> Iterator[tuple[int, tuple[Any, ...]]]:
            for outer in itertools.product(*(range(len(r)) for r in ranges[:split])):
                element = sum((ranges[a][i]) * strides[a] for a, i in enumerate(outer))
                element += sum(r.start * strides[a + split] for a, r in enumerate(ranges[split:]))
                yield self.offset + element * self.dtype.itemsize, outer

        return block, runs()

    def __getitem__(self, index: Any) -> np.ndarray:
        block, runs = self._runs(index)
        result = np.empty(block, dtype=self.dtype)
        if result.size == 0:
            return result
        with open(self.path, "rb") as handle:
            for offset, outer in runs:
                handle.seek(offset)
                view = memoryview(result[outer].reshape(-1)).cast("B")
                if handle.readinto(view) != view.nbytes:
                    raise ValueError(f"{self.path}: the file is shorter than its header says")
        return result

    def __setitem__(self, index: Any, values: np.ndarray) -> None:
        block, runs = self._runs(index)
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != block:
            raise ValueError(f"block of shape {values.shape} written to a {block} region")
        with open(self.path, "r+b") as handle:
            for offset, outer in runs:
                handle.seek(offset)
                handle.write(memoryview(values[outer].reshape(-1)).cast("B"))


def _source(path: str) -> _NpyFile | TiffPageReader:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        with file_errors(path, ".npy"):  # object arrays, a broken header
            return _NpyFile(path)
    if suffix in (".tif", ".tiff"):
        with file_errors(path, "TIFF"):
            return TiffPageReader(path)
    raise ValueError(f"{path}: the input must be a .npy or a multi-page .tif/.tiff file")


def _slabs(shape: tuple[int, ...], itemsize: int, budget: int) -> tuple[int, ...]:
    """Chunks of at most ``budget`` bytes that are slabs along the first axis (whole rows,
    planes or frames), splitting later axes only when one row, plane or frame is too large.

    A filter streams through slabs with the fewest chunks alive at once: a task needs its slab
    and the halo of the two next to it, whereas square tiles make the scheduler keep a few whole
    rows of tiles in memory.
    """
    chunks = list(shape)
    for axis in range(len(shape)):
        inner = itemsize * int(np.prod(shape[axis + 1:], dtype=np.int64))
        if inner <= budget:
            chunks[axis] = max(1, min(shape[axis], budget // inner))
            break
        chunks[axis] = 1
    return tuple(chunks)


def _chunks_for(shape: tuple[int, ...], dtype: np.dtype, chunks: Chunks) -> Any:
    """``chunks`` as Dask takes it: an int is an edge length for every axis, a string a byte
    budget per chunk (e.g. ``'64MiB'``: slabs, see :func:`_slabs`), a tuple one entry per axis."""
    if isinstance(chunks, str):
        from dask.utils import parse_bytes

        try:
            budget = parse_bytes(chunks)
        except (ValueError, TypeError):
            raise ValueError(
                f"chunks={chunks!r} is not a size such as '64MiB' or an edge length"
            ) from None
        return _slabs(shape, np.dtype(dtype).itemsize, budget)
    if isinstance(chunks, (list, tuple)):
        if len(chunks) != len(shape):
            raise ValueError(f"chunks must have one entry per axis of {shape}, got {chunks!r}")
        return tuple(checked_int(c, f"chunks[{i}]") for i, c in enumerate(chunks))
    return checked_int(chunks, "chunks")


@contextlib.contextmanager
def _local_progress(enabled: bool) -> Iterator[None]:
    """A tqdm bar on stderr counting the tasks of a computation on a local scheduler."""
    if not enabled:
        yield
        return
    from dask.callbacks import Callback
    from tqdm import tqdm

    class _Bar(Callback):
        def _start_state(self, dsk: Any, state: Any) -> None:
            self.bar = tqdm(total=sum(len(state[k]) for k in ("ready", "waiting", "running")),
                            unit="task", file=sys.stderr, desc="imgfilt")

        def _posttask(self, *args: Any) -> None:
            self.bar.update(1)

        def _finish(self, *args: Any) -> None:
            self.bar.close()

    with _Bar():
        yield


def filter_file(
    source: PathLike,
    target: PathLike,
    filter: Any,
    *,
    chunks: Chunks = 2048,
    scheduler: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    threads: int | None = 1,
    **apply_options: Any,
) -> str:
    """Filter a ``.npy`` or multi-page TIFF larger than memory into a ``.npy``, in bounded memory.

    The input is read lazily, chunk by chunk (``.npy`` by plain file reads at the offsets a
    memory map would use, TIFF page by page through tifffile from each page's own offset, so a
    chunk's cost does not depend on its depth in the file), the filter runs through :func:`apply`,
    and each result chunk is written into its place in a ``.npy`` created (by
    ``numpy.lib.format.open_memmap``) beside ``target`` under a temporary name, renamed to
    ``target`` when complete: a failure leaves no partial file, and ``source`` is never
    overwritten. The result can be opened with ``numpy.load(target, mmap_mode="r")``.

    Parameters
    ----------
    source : str or os.PathLike
        ``.npy`` (any layout :func:`imgfilt.apply` takes) or ``.tif``/``.tiff`` (pages
        ``(D, H, W[, C])``). A TIFF with a 2-D filter is a stack of frames, each filtered on its
        own; with a 3-D filter it is a volume.
    target : str or os.PathLike
        The ``.npy`` to write (the result of :func:`imgfilt.apply` for the whole input).
    filter : str, Filter or array_like
        As :func:`imgfilt.apply`.
    chunks : int, str or tuple of int
        Chunk edge length on every axis (``2048``), a byte budget per input chunk (``'64MiB'``),
        or one length per axis. Each task holds a few chunks' worth of memory at a time.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``'tcp://host:8786'``); its workers must
        see ``source`` and ``target`` at the same paths. Default: Dask's local threads.
    progress : bool
        Show a progress bar on stderr.
    overwrite : bool
        Replace an existing ``target``.
    threads : int or None
        Engine threads per task (default 1; see :func:`conv`).
    **apply_options
        :func:`imgfilt.apply`'s options and the filter's parameters (``sigma=2``).

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import os, tempfile, numpy as np, imgfilt.dask
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "big.npy"), np.random.rand(500, 400).astype(np.float32))
    >>> out = imgfilt.dask.filter_file(os.path.join(folder, "big.npy"),
    ...                                os.path.join(folder, "out.npy"), "gaussian", sigma=2,
    ...                                chunks=128, progress=False)
    >>> np.load(out, mmap_mode="r").shape
    (500, 400)
    """
    source_path, target_path = os.fspath(source), os.fspath(target)
    if os.path.splitext(target_path)[1].lower() != ".npy":
        raise ValueError(f"{target_path}: the output must be a .npy file")
    if not os.path.isfile(source_path):
        raise ValueError(f"{source_path}: no such file")
    if os.path.exists(target_path):
        if os.path.samefile(target_path, source_path):
            raise ValueError(f"{target_path}: refusing to overwrite the input")
        if not overwrite:
            raise ValueError(f"{target_path}: exists (pass overwrite=True to replace it)")
    try:
        reader = _source(source_path)
    except OSError as error:
        raise ValueError(f"{source_path}: cannot read ({error})") from None
    array = da.from_array(reader, chunks=_chunks_for(reader.shape, reader.dtype, chunks),
                          asarray=False, fancy=False, name="imgfilt-read-" + tokenize(
                              source_path, os.path.getmtime(source_path), chunks))
    if (isinstance(reader, TiffPageReader) and reader.ndim in (3, 4)
            and not {"channel_axis", "axes"} & set(apply_options)):
        # A TIFF's pages: with a 2-D filter each page is an image (the file says so), filtered
        # on its own; a 3-D filter reads the pages as a volume.
        filt = api.as_filter(filter, {k: v for k, v in apply_options.items()
                                      if k not in _APPLY_OPTIONS})
        if filt.ndim == 2:
            apply_options = {**apply_options, "axes": (1, 2)}
    try:
        result = apply(array, filter, threads=threads, **apply_options)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{source_path}: {error}") from None

    directory = os.path.dirname(os.path.abspath(target_path))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(target_path) + ".", suffix=".tmp"
    )
    os.close(descriptor)
    try:
        created = np.lib.format.open_memmap(temporary, mode="w+", dtype=result.dtype,
                                            shape=result.shape)
        del created  # the header and a sparse body; blocks are written by the tasks
        _permissions_as_open(temporary)
        # a write target numpy types not (a typing quirk, not a bug)
        stored = da.store(result, _NpyFile(temporary), lock=False, compute=False)  # type: ignore[arg-type]
        if scheduler is None:
            with _local_progress(progress):
                dask.compute(stored, scheduler="threads")
        else:
            _compute_on_cluster(stored, scheduler, progress)
        os.replace(temporary, target_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target_path


def _permissions_as_open(path: str) -> None:
    """Give a file made by mkstemp (0600) the permissions open() would have given (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


# Keyword arguments of apply that are not filter parameters.
_APPLY_OPTIONS = ("padding_mode", "channel_axis", "axes", "stride", "dilation", "output")


def _compute_on_cluster(stored: Any, address: str, progress: bool) -> None:
    try:
        from distributed import Client
        from distributed import progress as distributed_progress
    except ImportError:
        raise ImportError(
            "scheduler= needs dask.distributed: pip install 'imgfilt[dask]'"
        ) from None
    with Client(address, set_as_default=False) as client:
        future = client.compute(stored)
        if progress:
            distributed_progress(future)
        future.result()
