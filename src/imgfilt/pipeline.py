"""The array pipeline: one :class:`~imgfilt.filters.Filter` over an array whose layout is known.

:func:`filter_array` is what :func:`imgfilt.apply` runs on every input once the adapter
(:mod:`imgfilt.arrays`) has read it and the axis rule (:mod:`imgfilt.layout`) has placed its
axes; :func:`filter_pil` is the same for Pillow images (bands, alpha, modes). The pieces the
Dask adapter needs to give the same bits block by block (:func:`same_padding`,
:func:`combine_responses`, :func:`convert_output`) are public here, so there is one copy of
each rule.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from . import alpha as alpha_rule
from .arrays import array_to_pil, normalised_pil
from .convolution import (
    compute_dtype,
    conv,
    correlate_channels_last,
    plan,
)
from .filters import COMBINES, Filter, FilterLike
from .layout import Layout
from .nonlinear import is_nonlinear
from .padding import normalize_mode, reflect_fallback

__all__ = [
    "OUTPUTS",
    "check_output",
    "convert_output",
    "stretch",
    "same_padding",
    "correlate_same",
    "combine_responses",
    "filter_array",
    "filter_nonlinear",
    "check_nonlinear_options",
    "run_nonlinear",
    "finish_nonlinear",
    "filter_pil",
]

#: The accepted values of ``output``.
OUTPUTS = ("clip", "rescale", "abs", "float")

_ALPHA_MODES = ("LA", "RGBA")


def check_output(output: Optional[str], dtype: np.dtype) -> str:
    """``output`` checked; None becomes the default for ``dtype`` ('clip' for integers)."""
    if output is None:
        return "clip" if dtype.kind in "ui" else "float"
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def stretch(
    values: np.ndarray, low: float, high: float, extremes: Optional[Tuple[float, float]] = None
) -> np.ndarray:
    """Map the finite min..max of ``values`` (or the given ``extremes``, for a part of a larger
    result, as the Dask adapter has) linearly onto ``low..high``."""
    if extremes is None:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return np.full_like(values, low)
        smallest, largest = float(finite.min()), float(finite.max())
    else:
        smallest, largest = (float(v) for v in extremes)
        if not (np.isfinite(smallest) and np.isfinite(largest)):  # no finite value at all
            return np.full_like(values, low)
    if largest == smallest:
        # A constant result has no contrast to stretch: it maps to the bottom of the range.
        return np.full_like(values, low)
    scale = (high - low) / (largest - smallest)
    return (values - smallest) * scale + low


def convert_output(
    result: np.ndarray,
    dtype: np.dtype,
    output: str,
    extremes: Optional[Tuple[float, float]] = None,
) -> np.ndarray:
    """The float ``result`` as ``output`` says, for an input of ``dtype``.

    Integer inputs: 'clip' rounds half to even and saturates to the dtype, 'abs' takes the
    absolute value first, 'rescale' stretches min..max to the dtype's range; 'float' returns
    ``result``. Float inputs: 'clip' clips to [0, 1], 'rescale' stretches to [0, 1].
    """
    if output == "float":
        return result
    if output == "abs":
        result = np.abs(result)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        low, high = float(info.min), float(info.max)
        if dtype.itemsize == 8:
            # float64 cannot hold 2**63 - 1; stay below it so the cast cannot overflow.
            high = float(np.nextafter(high, 0))
        work = result.astype(np.float64) if dtype.itemsize >= 4 else result
        if output == "rescale":
            work = stretch(work, low, high, extremes)
        return np.clip(np.rint(work), low, high).astype(dtype)
    if output == "rescale":
        return stretch(result, 0.0, 1.0, extremes)
    if output == "clip":
        return np.clip(result, 0.0, 1.0)
    return result


def same_padding(
    sizes: Sequence[int], weight_shape: Sequence[int], stride: Any, dilation: Any,
    padding_mode: str, *, centred: bool = True, groups: int = 1,
) -> Tuple[Tuple[Tuple[int, int], ...], Tuple[str, ...]]:
    """``'same'`` pad widths and the padding mode of each spatial axis.

    ``centred=True`` (what :func:`imgfilt.apply` uses) pads as at stride 1, so a strided result
    is the stride-1 result sampled at 0, s, 2s, ...; ``centred=False`` keeps conv's own
    ``'same'`` (TensorFlow's rule at stride > 1). The mode of an axis is ``padding_mode``, but
    for ``'reflect'`` on an axis of one sample, where :func:`imgfilt.padding.reflect_fallback`
    gives numpy.pad's answer (the sample repeated).
    """
    mode = normalize_mode(padding_mode)
    unit = (weight_shape[1] * groups,) + tuple(sizes)
    shape_plan = plan(unit, np.float32, weight_shape, stride=1 if centred else stride,
                      padding="same", padding_mode="zeros", dilation=dilation, groups=groups)
    modes = tuple(reflect_fallback(mode, size) for size in sizes)
    return shape_plan.padding, modes


def correlate_same(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray],
    padding_mode: str,
    stride: Any = 1,
    dilation: Any = 1,
    *,
    centred: bool = True,
    groups: int = 1,
    channels_last: bool = False,
    saturate: bool = False,
    combine: Optional[str] = None,
) -> np.ndarray:
    """:func:`imgfilt.conv` with ``'same'`` padding, ``'reflect'`` defined on 1-sample axes.

    ``x`` is ``(C_in, *S)`` or ``(N, C_in, *S)``; with ``channels_last``, ``x`` is ``(*S, C)``,
    ``weight`` is ``(F, 1, *K)`` and the result is ``(F, *S_out, C)`` (each channel filtered
    alone, by :func:`imgfilt.correlate_channels_last`, which with ``saturate`` returns uint8 for
    uint8 ``x``; with ``combine='magnitude'``, the one plane of the responses' magnitude). See
    :func:`same_padding` for ``centred``.
    """
    sizes = x.shape[:-1] if channels_last else x.shape[x.ndim - (weight.ndim - 2):]
    pads, modes = same_padding(sizes, weight.shape, stride, dilation, padding_mode,
                               centred=centred, groups=groups)
    mode = normalize_mode(padding_mode)
    if any(m != mode for m in modes):
        # The engine takes one mode for all axes: pad the 1-sample axes here, by repetition.
        lead = 0 if channels_last else x.ndim - len(sizes)
        widths = [(0, 0)] * lead + [p if m != mode else (0, 0) for p, m in zip(pads, modes)]
        if channels_last:
            widths.append((0, 0))
        x = np.pad(x, widths, mode="edge")
        pads = tuple((0, 0) if m != mode else p for p, m in zip(pads, modes))
    if channels_last:
        return correlate_channels_last(x, weight, bias, stride=stride, padding=tuple(pads),
                                       padding_mode=mode, dilation=dilation, saturate=saturate,
                                       combine=combine)
    return conv(x, weight, bias, stride=stride, padding=tuple(pads), padding_mode=mode,
                dilation=dilation, groups=groups)


def combine_responses(responses: np.ndarray, filt: Filter, axis: int) -> np.ndarray:
    """A filter's responses along ``axis`` reduced as it says (kept as they are without a
    combining step; a per-channel filter then has exactly one)."""
    if filt.combine is None:
        return responses
    return np.expand_dims(COMBINES[filt.combine](responses, axis), axis)


def _unit_last(stride: Any, ndim: int) -> bool:
    """True when ``stride`` (an int or one per axis) is 1 along the last spatial axis.

    Anything else (including invalid strides, which conv then reports) takes the general path.
    """
    if isinstance(stride, (tuple, list)) and len(stride) == ndim:
        stride = stride[-1]
    return isinstance(stride, (int, np.integer)) and not isinstance(stride, bool) and stride == 1


def filter_array(
    array: np.ndarray,
    filt: FilterLike,
    layout: Layout,
    *,
    padding_mode: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    output: Optional[str] = None,
) -> np.ndarray:
    """Filter ``array`` laid out as ``layout`` says; the result keeps the array's layout.

    Every slice along the batch axes (and, for a per-channel filter, every channel) is
    filtered on its own; a filter that mixes channels replaces the channel axis by its outputs.
    Integer input is computed in :func:`imgfilt.convolution.compute_dtype` and converted back
    as ``output`` says (:func:`convert_output`).
    """
    output = check_output(output, array.dtype)
    native = array.dtype.newbyteorder("=")
    if is_nonlinear(filt):
        return filter_nonlinear(array, filt, layout, padding_mode=padding_mode, stride=stride,
                                dilation=dilation, output=output)
    if not isinstance(filt, Filter):
        raise TypeError(f"filter must be a Filter or a nonlinear filter (imgfilt.nonlinear), "
                        f"got {type(filt).__name__}")
    ndim = filt.ndim
    simple = layout.spatial == tuple(range(ndim)) and not layout.batch
    if filt.per_channel and simple and _unit_last(stride, ndim):
        # Channels last (or none), as images come: filter the interleaved rows where they are.
        # 8-bit pixels are read as they are and, clipped, written as 8-bit in the same pass.
        x = array if layout.channel is not None else array[..., None]
        if x.dtype != np.uint8:
            x = x.astype(compute_dtype(array.dtype), copy=False)
        # (A Filter's weight and bias are finite: checked when it is made.) A magnitude (the
        # Sobel of a photo) is combined in the engine's pass, its responses never stored; for
        # 8-bit images rounded and clipped there too: the same bits as convert_output.
        fused = filt.combine == "magnitude"
        saturate = (array.dtype == np.uint8 and output == "clip"
                    and filt.combine in (None, "magnitude"))
        responses = correlate_same(x, filt.weight, filt.bias, padding_mode, stride, dilation,
                                   channels_last=True, saturate=saturate,
                                   combine="magnitude" if fused else None)
        result = responses[0] if fused else combine_responses(responses, filt, 0)[0]
        if not saturate:  # native byte order, as NumPy's own functions return results
            result = convert_output(result, native, output)
        return result if layout.channel is not None else result[..., 0]
    moved = array if layout.canonical else array.transpose(layout.order)
    batch_shape = moved.shape[: len(layout.batch)]
    channels = layout.channels
    x = moved.reshape((-1, channels) + moved.shape[moved.ndim - ndim:])
    x = x.astype(compute_dtype(array.dtype), copy=False)
    if filt.per_channel:
        x = x.reshape((-1, 1) + x.shape[2:])  # a batch of one-channel images
    elif channels != filt.in_channels:
        raise ValueError(
            f"filter {filt.name!r} mixes {filt.in_channels} channels (weight "
            f"{filt.weight.shape}) but the image has {channels} (shape {array.shape})"
        )
    responses = combine_responses(
        correlate_same(x, filt.weight, filt.bias, padding_mode, stride, dilation), filt, 1)
    out_channels = channels if filt.per_channel else responses.shape[1]
    keep = () if layout.channel is None else (out_channels,)
    result = responses.reshape(batch_shape + keep + responses.shape[2:])
    result = convert_output(result, native, output)
    return result if layout.canonical else result.transpose(np.argsort(layout.order))


def filter_nonlinear(
    array: np.ndarray,
    filt: Any,
    layout: Layout,
    *,
    padding_mode: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    output: str = "clip",
) -> np.ndarray:
    """Run a nonlinear filter (:mod:`imgfilt.nonlinear`) over ``layout``'s spatial axes.

    Every other axis (batch, channels) is filtered slice by slice. The result keeps the input's
    dtype under ``output='clip'`` (a rank of integers is an integer); other outputs convert it
    as :func:`convert_output` does. ``'reflect'`` on an axis of one sample repeats that sample,
    as for linear filters.
    """
    check_nonlinear_options(filt, stride, dilation)
    result = run_nonlinear(array, filt, tuple(layout.spatial), padding_mode)
    return finish_nonlinear(result, array.dtype, output)


def check_nonlinear_options(filt: Any, stride: Any, dilation: Any) -> None:
    """Nonlinear filters run at stride 1 and dilation 1 only; anything else is refused."""
    for label, value in (("stride", stride), ("dilation", dilation)):
        if not (value == 1 or (isinstance(value, (tuple, list)) and all(v == 1 for v in value))):
            raise ValueError(f"{label}={value!r}: nonlinear filters ({filt.name}) run at "
                             f"{label} 1 only")


def run_nonlinear(array: np.ndarray, filt: Any, spatial: Tuple[int, ...],
                  padding_mode: str) -> np.ndarray:
    """``filt.run`` over the ``spatial`` axes, in the input's dtype, with ``'reflect'`` on an
    axis of one sample repeating the sample (:func:`imgfilt.padding.reflect_fallback`)."""
    mode = normalize_mode(padding_mode)
    x = np.asarray(array)
    pads = []
    for axis, length in zip(spatial, filt.kernel_shape):
        if x.shape[axis] == 1 and reflect_fallback(mode, 1) != mode:
            pads.append((axis, length // 2, length - 1 - length // 2))
    for axis, before, after in pads:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (before, after)
        x = np.pad(x, widths, mode="edge")
    result = filt.run(x, spatial, mode)
    for axis, before, _ in pads:
        result = np.take(result, [before], axis=axis)
    return result


def finish_nonlinear(result: np.ndarray, dtype: np.dtype, output: str,
                     extremes: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """A nonlinear filter's ``result`` (in the input's ``dtype``) as ``output`` says: kept under
    ``'clip'`` for integers and booleans, else as floats through :func:`convert_output`
    (``extremes``: the whole result's, for a part of it, as the Dask adapter has)."""
    native = np.dtype(dtype).newbyteorder("=")
    if output == "clip" and native.kind in "uib":
        return result.astype(native, copy=False)
    floats = result if result.dtype.kind == "f" else result.astype(compute_dtype(native))
    return convert_output(floats, native, output, extremes)


def filter_pil(
    img: Image.Image,
    filt: FilterLike,
    *,
    padding_mode: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    output: Optional[str] = None,
) -> Image.Image:
    """Filter a Pillow image: colour bands filtered, alpha by :mod:`imgfilt.alpha`'s rule
    (smoothing filters: premultiplied, alpha filtered too; others: alpha kept); the result in
    the same mode.

    ``output='float'`` gives mode F for single-band images.
    """
    if filt.ndim != 2:
        raise ValueError(
            f"a Pillow image is 2-D but filter {filt.name!r} has {filt.ndim} spatial axes"
        )
    img = normalised_pil(img)
    pixels = np.asarray(img)
    alpha = None
    if img.mode in _ALPHA_MODES:
        pixels, alpha = pixels[..., :-1], pixels[..., -1]
    elif pixels.ndim == 2:
        pixels = pixels[..., None]
    output = check_output(output, pixels.dtype)
    layout = Layout(shape=pixels.shape, spatial=(0, 1), channel=2, batch=())
    # --- alpha hook (issue 14, imgfilt.alpha): a smoothing filter (weights >= 0, sum 1, two
    # taps or more) filters premultiplied colour and alpha together; every other filter keeps
    # alpha (below). docs/images.md, "Alpha".
    # Nonlinear filters (a median...) have no weights: their alpha is kept.
    if (alpha is not None and output != "float" and isinstance(filt, Filter)
            and alpha_rule.is_smoothing(filt.weight, filt.combine)):
        def correlate(stacked: np.ndarray) -> np.ndarray:
            both = Layout(shape=stacked.shape, spatial=(0, 1), channel=2, batch=())
            return filter_array(stacked, filt, both, padding_mode=padding_mode, stride=stride,
                                dilation=dilation, output="float")

        colour, coverage = alpha_rule.filter_premultiplied(pixels, alpha, correlate)
        colour = convert_output(colour, pixels.dtype, output)
        coverage = convert_output(coverage, alpha.dtype, "clip")
        return array_to_pil(np.concatenate([colour, coverage[..., None]], axis=-1))
    # --- end of the alpha hook ----------------------------------------------------------------
    result = filter_array(pixels, filt, layout, padding_mode=padding_mode, stride=stride,
                          dilation=dilation, output=output)
    colours = result.shape[-1]
    if output == "float":
        if colours != 1 or alpha is not None:
            raise ValueError(
                f"output='float' gives {colours} float band(s)"
                f"{' and alpha' if alpha is not None else ''} from a {img.mode} image; Pillow's "
                "only float mode F has one band. Filter np.asarray(img) instead to get a float "
                "array"
            )
        return array_to_pil(result[..., 0].astype(np.float32))
    if colours not in ((1, 3) if result.dtype == np.uint8 else (1,)):
        raise ValueError(
            f"filter {filt.name!r} gives {colours} channels of {result.dtype} from a {img.mode} "
            "image, which no Pillow mode holds; filter np.asarray(img) instead"
        )
    if alpha is not None:
        # The output grid samples the input every `stride` pixels from the first ('same'
        # padding centres odd kernels), so the alpha that belongs to it is alpha[::stride].
        step = plan((1,) + alpha.shape, alpha.dtype, (1, 1, 1, 1), stride=stride).stride
        result = np.concatenate([result, alpha[:: step[0], :: step[1], None]], axis=-1)
    return array_to_pil(result)
