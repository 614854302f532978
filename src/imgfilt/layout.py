"""The one axis rule: which axes of an array a filter runs over, which holds channels.

Every entry point (:func:`imgfilt.apply`, :meth:`FilterBank.apply`, :meth:`Sequential.apply`,
:func:`imgfilt.dask.apply`, the ``imgfilt`` command) reads an array's layout through
:func:`resolve`, with two arguments that mean what they mean in the libraries imgfilt's users
know:

``channel_axis``
    scikit-image's meaning: the axis that holds colour channels (``None``: there is none).
``axes``
    scipy.ndimage's meaning: the axes the kernel runs over, one per spatial axis of the filter.
    Every other axis (but the channel axis) is a *batch* axis: each slice along it is filtered
    on its own.

Without them, a layout is taken only where one reading is possible:

* as many axes as the filter has spatial axes: one single-channel image;
* one more, channels last, when the last axis has 1, 3 or 4 entries and every other axis more
  than 4 (``(H, W, 3)``, ``(D, H, W, 4)``);
* one more, for a filter that mixes ``C_in`` channels, when exactly one end axis has ``C_in``
  entries;
* torch tensors follow torch's own contract, ``(C, *S)`` or ``(N, C, *S)``;
* an xarray DataArray whose dims name the spatial axes ``z``/``y``/``x`` (and a channel dim
  ``c``, ``channel``, ``band`` or ``rgb``).

Anything else raises a ValueError naming the readings that fit and the argument that picks
one. The module imports nothing from imgfilt: it is plain shape arithmetic.

Examples
--------
>>> resolve((480, 640, 3), 2)
Layout(shape=(480, 640, 3), spatial=(0, 1), channel=2, batch=())
>>> resolve((200, 25, 25), 2, axes=(1, 2))
Layout(shape=(200, 25, 25), spatial=(1, 2), channel=None, batch=(0,))
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

__all__ = ["Layout", "resolve", "NOT_GIVEN", "CHANNEL_DIM_NAMES", "SPATIAL_DIM_NAMES"]

#: The default of ``channel_axis`` (not given). ``None`` is a value of its own: no channel axis.
NOT_GIVEN: Any = ...

#: Channel counts that make ``(..., C)`` unmistakably channels last when every other axis is
#: longer than :data:`_MOST_CHANNELS`: grey, RGB, RGBA.
_CHANNEL_COUNTS = (1, 3, 4)
_MOST_CHANNELS = 4

#: xarray dim names read without being asked: spatial (last ``ndim`` of z, y, x) and channel.
SPATIAL_DIM_NAMES = ("z", "y", "x")
CHANNEL_DIM_NAMES = ("c", "channel", "channels", "band", "bands", "rgb")


@dataclass(frozen=True)
class Layout:
    """Where the spatial, channel and batch axes of an array are.

    Attributes
    ----------
    shape : tuple of int
        The array's shape.
    spatial : tuple of int
        The axes the kernel runs over, in the kernel's order (non-negative).
    channel : int or None
        The channel axis (non-negative), or None.
    batch : tuple of int
        Every other axis, in order: each slice along them is filtered on its own.
    """

    shape: Tuple[int, ...]
    spatial: Tuple[int, ...]
    channel: Optional[int]
    batch: Tuple[int, ...]

    @property
    def order(self) -> Tuple[int, ...]:
        """The axes as ``(*batch, channel, *spatial)`` (no channel entry when there is none):
        the transpose that brings the array into the engine's layout."""
        middle = () if self.channel is None else (self.channel,)
        return self.batch + middle + self.spatial

    @property
    def channels(self) -> int:
        """The number of channels (1 without a channel axis)."""
        return 1 if self.channel is None else self.shape[self.channel]

    @property
    def canonical(self) -> bool:
        """True when the array is already ``(*batch, channel, *spatial)`` (nothing to move)."""
        return self.order == tuple(range(len(self.shape)))


def _axis_index(value: Any, ndim: int, name: str, dims: Optional[Sequence[str]]) -> int:
    """One axis given as an int (negative counts from the end) or, with ``dims``, a dim name."""
    if isinstance(value, str):
        if dims is None:
            raise TypeError(f"{name}={value!r} names a dimension, but the input has no dim names "
                            "(only xarray DataArrays do); give an int")
        if value not in dims:
            raise ValueError(f"{name}={value!r} is not a dimension of the input; dims: "
                             f"{tuple(dims)}")
        return list(dims).index(value)
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int{' or a dim name' if dims else ''}, got {value!r}")
    try:
        index = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int{' or a dim name' if dims else ''}, got {value!r}"
        ) from None
    if not -ndim <= index < ndim:
        raise ValueError(f"{name}={index} is out of range for an input with {ndim} axes")
    return index % ndim


def _describe(shape: Tuple[int, ...], spatial: Tuple[int, ...], channel: Optional[int]) -> str:
    sizes = "x".join(str(shape[a]) for a in spatial)
    others = [a for a in range(len(shape)) if a not in spatial and a != channel]
    text = f"spatial axes {spatial} ({sizes})"
    if channel is not None:
        text += f", {shape[channel]} channels on axis {channel}"
    if others:
        text += f", batch axes {tuple(others)}"
    return text


def _pick(shape: Tuple[int, ...], ndim: int, channel: Optional[int],
          spatial: Tuple[int, ...]) -> Layout:
    batch = tuple(a for a in range(len(shape)) if a not in spatial and a != channel)
    return Layout(shape=shape, spatial=spatial, channel=channel, batch=batch)


def resolve(
    shape: Sequence[int],
    ndim: int,
    *,
    channel_axis: Any = NOT_GIVEN,
    axes: Any = None,
    in_channels: Optional[int] = None,
    convention: str = "numpy",
    dims: Optional[Sequence[str]] = None,
    what: str = "image",
) -> Layout:
    """The layout of an array of ``shape`` for a filter with ``ndim`` spatial axes.

    Parameters
    ----------
    shape : tuple of int
        The input's shape.
    ndim : int
        The filter's number of spatial axes (1, 2 or 3).
    channel_axis : int, str, None or NOT_GIVEN
        The channel axis; ``None`` for none; a dim name for xarray input.
    axes : sequence of int or str, optional
        The axes the kernel runs over, ``ndim`` of them, in the kernel's order.
    in_channels : int, optional
        For a filter that mixes channels: the channel count it needs (a channel axis is then
        required, and found by that count where only one axis can be it).
    convention : {'numpy', 'torch'}
        ``'torch'``: without ``axes``/``channel_axis``, ``(C, *S)`` or ``(N, C, *S)``.
    dims : sequence of str, optional
        An xarray DataArray's dim names (they may name ``axes`` and ``channel_axis``).
    what : str
        How the input is called in messages.

    Returns
    -------
    Layout

    Raises
    ------
    ValueError
        When the arguments do not fit the shape, or when more than one reading fits and no
        argument picks one (the message names both readings and the argument).

    Examples
    --------
    >>> resolve((3, 400, 600), 2)
    Traceback (most recent call last):
    ...
    ValueError: image of shape (3, 400, 600) with a 2-D filter fits two readings: ...
    >>> resolve((3, 400, 600), 2, channel_axis=0).spatial
    (1, 2)
    """
    shape = tuple(int(s) for s in shape)
    rank = len(shape)
    if 0 in shape:
        raise ValueError(f"{what} has an empty axis: shape {shape}")
    if axes is not None:
        return _with_axes(shape, ndim, channel_axis, axes, in_channels, dims, what)
    if channel_axis is not NOT_GIVEN:
        if channel_axis is None:
            if rank != ndim:
                raise ValueError(
                    f"{what} has shape {shape} and channel_axis=None, but the filter has {ndim} "
                    f"spatial axes: say which {ndim} axes to filter with axes= (the others are "
                    "filtered slice by slice)"
                )
            return _single(shape, in_channels, what)
        channel = _axis_index(channel_axis, rank, "channel_axis", dims)
        others = tuple(a for a in range(rank) if a != channel)
        if len(others) != ndim:
            raise ValueError(
                f"{what} has shape {shape}: with channel_axis={channel_axis!r} it has "
                f"{len(others)} other axes, but the filter has {ndim} spatial axes; say which "
                f"to filter with axes= (the others are filtered slice by slice)"
            )
        return _checked(_pick(shape, ndim, channel, others), in_channels, what)
    if dims is not None:
        named = _from_dim_names(shape, ndim, dims)
        if named is not None:
            return _checked(named, in_channels, what)
    if convention == "torch":
        if rank == ndim + 1:
            return _checked(_pick(shape, ndim, 0, tuple(range(1, rank))), in_channels, what)
        if rank == ndim + 2:
            return _checked(_pick(shape, ndim, 1, tuple(range(2, rank))), in_channels, what)
    if rank == ndim:
        return _single(shape, in_channels, what)
    if rank == ndim + 1:
        first = _pick(shape, ndim, 0, tuple(range(1, rank)))
        last = _pick(shape, ndim, rank - 1, tuple(range(rank - 1)))
        if in_channels is not None and in_channels > 1:
            fitting = [r for r in (last, first) if r.channels == in_channels]
            if len(fitting) == 1:
                return fitting[0]
            if not fitting:
                raise ValueError(
                    f"the filter mixes C_in = {in_channels} channels, but neither end axis of {what} "
                    f"shape {shape} has {in_channels} entries; say where the channels are with "
                    "channel_axis="
                )
        elif shape[-1] in _CHANNEL_COUNTS and min(shape[:-1]) > _MOST_CHANNELS:
            return last
        raise ValueError(
            f"{what} of shape {shape} with a {ndim}-D filter fits two readings: channels (or a "
            f"stack) first, {_describe(shape, first.spatial, None)} (say channel_axis=0 or "
            f"axes={first.spatial}); or channels last, {_describe(shape, last.spatial, rank - 1)} "
            f"(say channel_axis=-1 or axes={last.spatial})"
        )
    if rank < ndim:
        raise ValueError(
            f"{what} has shape {shape}, fewer axes than the filter's {ndim} spatial axes"
        )
    if shape[-1] in _CHANNEL_COUNTS:
        example = (f"axes={tuple(range(rank - ndim - 1, rank - 1))}, channel_axis=-1 for a stack "
                   f"of channels-last images, or axes={tuple(range(rank - ndim, rank))} for "
                   "channels (or a stack) first")
    else:
        example = f"axes={tuple(range(rank - ndim, rank))} to filter the last {ndim} axes"
    raise ValueError(
        f"{what} has shape {shape}, {rank} axes for a {ndim}-D filter: say which {ndim} axes to "
        f"filter with axes= (e.g. {example}) and, if one axis holds channels, channel_axis="
    )


def _single(shape: Tuple[int, ...], in_channels: Optional[int], what: str) -> Layout:
    if in_channels is not None and in_channels > 1:
        raise ValueError(
            f"the filter mixes C_in = {in_channels} channels, but {what} of shape {shape} has no "
            "channel axis"
        )
    return Layout(shape=shape, spatial=tuple(range(len(shape))), channel=None, batch=())


def _checked(layout: Layout, in_channels: Optional[int], what: str) -> Layout:
    if in_channels is not None and in_channels > 1:
        if layout.channel is None:
            raise ValueError(
                f"the filter mixes C_in = {in_channels} channels, but no channel axis of {what} shape "
                f"{layout.shape} was given; say which with channel_axis="
            )
        if layout.channels != in_channels:
            raise ValueError(
                f"the filter mixes C_in = {in_channels} channels, but {what} of shape {layout.shape} "
                f"has {layout.channels} on channel axis {layout.channel}"
            )
    return layout


def _with_axes(shape: Tuple[int, ...], ndim: int, channel_axis: Any, axes: Any,
               in_channels: Optional[int], dims: Optional[Sequence[str]], what: str) -> Layout:
    rank = len(shape)
    if isinstance(axes, (str, bytes)) or not hasattr(axes, "__iter__"):
        axes = (axes,)
    spatial = tuple(_axis_index(a, rank, "axes", dims) for a in axes)
    if len(spatial) != ndim:
        raise ValueError(
            f"axes={tuple(axes)} names {len(spatial)} axes, but the filter has {ndim} spatial "
            "axes: give one axis per kernel axis"
        )
    if len(set(spatial)) != len(spatial):
        raise ValueError(f"axes={tuple(axes)} names an axis twice")
    if channel_axis is NOT_GIVEN or channel_axis is None:
        channel = None
        if channel_axis is NOT_GIVEN and in_channels is not None and in_channels > 1:
            rest = [a for a in range(rank) if a not in spatial]
            if len(rest) != 1:
                raise ValueError(
                    f"the filter mixes C_in = {in_channels} channels: say which axis of {what} shape "
                    f"{shape} holds them with channel_axis= (axes {tuple(rest)} are not filtered)"
                )
            channel = rest[0]
    else:
        channel = _axis_index(channel_axis, rank, "channel_axis", dims)
        if channel in spatial:
            raise ValueError(f"channel_axis={channel_axis!r} is also one of axes={tuple(axes)}")
    return _checked(_pick(shape, ndim, channel, spatial), in_channels, what)


def _from_dim_names(shape: Tuple[int, ...], ndim: int, dims: Sequence[str]) -> Optional[Layout]:
    """A layout read from xarray dim names, or None when the names do not say."""
    lowered = [str(d).lower() for d in dims]
    wanted = SPATIAL_DIM_NAMES[len(SPATIAL_DIM_NAMES) - ndim:]
    if not all(name in lowered for name in wanted):
        return None
    spatial = tuple(lowered.index(name) for name in wanted)
    channels = [i for i, name in enumerate(lowered) if name in CHANNEL_DIM_NAMES]
    if len(channels) > 1:
        return None
    return _pick(shape, ndim, channels[0] if channels else None, spatial)
