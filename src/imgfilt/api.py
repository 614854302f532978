"""``imgfilt.apply``: any filter on any accepted input, the result in the input's type and layout.

The steps, each done in one place: the input is read by :mod:`imgfilt.arrays`, its axes placed by
:mod:`imgfilt.layout`, the filter run by :mod:`imgfilt.pipeline` (or by a FilterBank), and the
result given back in the input's type. A Dask array takes the lazy route of
:mod:`imgfilt.dask`, which registers itself here (:func:`register_lazy`), so this module never
imports the layer above it.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import arrays
from .bank import FilterBank, Sequential
from .filters import Filter, FilterLike, get_filter
from .layout import NOT_GIVEN, resolve
from .nonlinear import is_nonlinear
from .pipeline import filter_array, filter_pil

__all__ = ["apply", "as_filter", "register_lazy", "filter_options"]

#: Lazy array types: top-level module name -> module that provides ``apply`` for them. The
#: package's ``__init__`` names ``imgfilt.dask`` here; the module is imported on first use.
_LAZY_ROUTES: Dict[str, str] = {}


def register_lazy(top_module: str, provider: str) -> None:
    """Route arrays whose type lives in ``top_module`` to ``provider.apply`` (imported then).

    Examples
    --------
    >>> register_lazy("dask", "imgfilt.dask")
    """
    _LAZY_ROUTES[top_module] = provider


@functools.lru_cache(maxsize=256)
def _named_filter(name: str, params: Tuple[Tuple[str, Any], ...]) -> FilterLike:
    # A Filter is immutable data (its arrays are read-only), so one can serve every call.
    return get_filter(name, **dict(params))


def as_filter(filter: Any, params: Dict[str, Any]) -> FilterLike:
    """The filter a name (with its parameters), a filter or a bare kernel stands for: a
    :class:`Filter`, or a nonlinear filter (:mod:`imgfilt.nonlinear`)."""
    if isinstance(filter, str):
        try:
            key = tuple(sorted(params.items()))
            hash(key)
        except TypeError:  # unhashable parameters (a list sigma): made afresh each call
            return get_filter(filter, **params)
        return _named_filter(filter, key)
    if params:
        raise TypeError(
            f"filter parameters {sorted(params)} only go with a filter name, not with "
            f"{type(filter).__name__}"
        )
    if isinstance(filter, Filter) or is_nonlinear(filter):
        return filter
    if isinstance(filter, (np.ndarray, list, tuple)):
        return Filter(filter, name="kernel")
    raise TypeError(
        f"filter must be a name, a Filter, a FilterBank or an array, got {type(filter).__name__}"
    )


def filter_options(filt: FilterLike, **given: Any) -> Dict[str, Any]:
    """The filter's default options overridden by the ones given (None: not given)."""
    options = dict(filt.options)
    for key, value in given.items():
        if value is not None:
            options[key] = value
    return options


def apply(
    image: Any,
    filter: Any,
    *,
    padding_mode: Optional[str] = None,
    channel_axis: Any = NOT_GIVEN,
    axes: Any = None,
    stride: Any = None,
    dilation: Any = None,
    output: Optional[str] = None,
    **filter_params: Any,
) -> Any:
    """Filter an image, a volume, a signal or a stack of them; the result keeps the input's
    type and layout (and its size, at stride 1).

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image, torch.Tensor, xarray.DataArray or dask.array.Array
        An array-like; a Pillow image (modes in :data:`imgfilt.arrays.PIL_MODES`); a CPU torch
        tensor (read detached; a tensor comes back); a DataArray (dims, coords and attrs kept;
        dim names may name the axes); a Dask array (filtered lazily by
        :func:`imgfilt.dask.apply`, never computed here).
    filter : str, Filter, FilterBank or array_like
        A registered name (``'sobel'``), a :class:`~imgfilt.filters.Filter`, a
        :class:`~imgfilt.bank.FilterBank` or :class:`~imgfilt.bank.Sequential` (returns their
        feature maps, see :meth:`FilterBank.apply`), a bare kernel with 1-3 axes (run on each
        channel on its own), or an ``(C_out, C_in, *K)`` weight with 2-3 spatial axes.
    padding_mode : str, optional
        Border handling, default ``'reflect'`` (``cb|abcd|cb``); any of :func:`imgfilt.conv`'s
        modes. An axis of length 1 under ``'reflect'`` repeats its one sample (as numpy.pad and
        scipy's ``'mirror'`` do) instead of failing.
    channel_axis : int, str or None, optional
        Which axis holds channels (scikit-image's meaning); ``None``: none. A dim name for a
        DataArray.
    axes : tuple of int or str, optional
        The axes the kernel runs over (scipy.ndimage's meaning), one per spatial axis of the
        filter; every other axis but the channel axis is filtered slice by slice. Without
        ``channel_axis`` and ``axes`` the layout is taken only where one reading is possible
        (:mod:`imgfilt.layout`); otherwise a ValueError names the readings and the argument.
    stride, dilation : int or tuple of int, optional
        As in :func:`imgfilt.conv`, default 1. Padding is always 'same' as at stride 1, so a
        strided result is the stride-1 result sampled at 0, s, 2s, ...
    output : {'clip', 'rescale', 'abs', 'float'}, optional
        For integer images: ``'clip'`` (default) rounds half to even and saturates to the dtype,
        as OpenCV does; ``'rescale'`` stretches the result's min..max to the dtype's full range;
        ``'abs'`` takes the absolute value, then rounds and saturates; ``'float'`` returns the
        float result. Float images default to ``'float'``; for them ``'clip'`` clips to [0, 1],
        ``'rescale'`` stretches to [0, 1], ``'abs'`` takes the absolute value.
    **filter_params
        Parameters of a named filter, e.g. ``sigma=2`` for ``'gaussian'``.

    Returns
    -------
    same type as ``image``
        In the input's layout; a Pillow image in the same mode (alpha untouched;
        ``output='float'`` gives mode F for single-band images).

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> img = np.zeros((5, 5), np.uint8); img[:, 3:] = 100
    >>> imgfilt.apply(img, "sobel_x")[2].tolist()
    [0, 0, 255, 255, 0]
    >>> stack = np.random.rand(200, 25, 25)
    >>> imgfilt.apply(stack, "gaussian", axes=(1, 2)).shape
    (200, 25, 25)
    """
    lazy_route = _LAZY_ROUTES.get(type(image).__module__.partition(".")[0])
    if lazy_route is not None and arrays.is_lazy(image):
        lazy_apply: Callable[..., Any] = importlib.import_module(lazy_route).apply
        return lazy_apply(image, filter, padding_mode=padding_mode, channel_axis=channel_axis,
                          axes=axes, stride=stride, dilation=dilation, output=output,
                          **filter_params)
    if isinstance(filter, (FilterBank, Sequential)):
        if filter_params:
            raise TypeError(
                f"filter parameters {sorted(filter_params)} only go with a filter name"
            )
        if output is not None:
            raise TypeError(
                "output= does not apply to a FilterBank: its feature maps are always float"
            )
        options: dict[str, Any] = {
            k: v for k, v in (("padding_mode", padding_mode), ("stride", stride),
                              ("dilation", dilation)) if v is not None}
        return filter.apply(image, channel_axis=channel_axis, axes=axes, **options)
    filt = as_filter(filter, filter_params)
    options = filter_options(filt, padding_mode=padding_mode, stride=stride, dilation=dilation,
                             output=output)
    if arrays.is_pil(image):
        if channel_axis is not NOT_GIVEN or axes is not None:
            raise TypeError(
                "channel_axis and axes are for arrays; a Pillow image's bands are known from "
                "its mode"
            )
        return filter_pil(image, filt, **options)
    source = arrays.read(image)
    layout = resolve(source.array.shape, filt.ndim, channel_axis=channel_axis, axes=axes,
                     in_channels=None if filt.per_channel else filt.in_channels,
                     convention=source.convention, dims=source.dims)
    result = filter_array(source.array, filt, layout, **options)
    if source.kind == "numpy":
        return result
    steps = arrays.spatial_steps(
        layout.spatial, _strides(options.get("stride", 1), filt.ndim))
    if filt.per_channel or layout.channel is None:
        return source.give_back(result, steps=steps)
    # A filter that mixes channels replaces them: the channel axis keeps its name, not its
    # coordinates.
    axes_back: list = list(range(result.ndim))
    axes_back[layout.channel] = None
    name = source.dims[layout.channel] if source.dims else "channel"
    return source.give_back(result, axes=axes_back, steps=steps,
                            new_dims={layout.channel: (name, None)})


def _strides(stride: Any, ndim: int) -> Tuple[int, ...]:
    # Already checked by conv when this runs; an int or one per axis.
    if isinstance(stride, (tuple, list)):
        return tuple(int(s) for s in stride)
    return (int(stride),) * ndim
