"""Images in, images out: :func:`apply`, channel layouts, output ranges and Pillow modes.

This module is the one place that converts between Pillow images and NumPy arrays
(:func:`pil_to_array`, :func:`array_to_pil`); :class:`imgfilt.filters.Filter` reaches Pillow's
``Image.filter`` through :func:`filter_core`.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np
from PIL import Image

# The submodule by name: the package attribute imgfilt.conv is the function, not the module.
from .convolution import conv as _engine_conv, correlate_channels_last as _correlate_channels_last
from .convolution import plan as _plan
from .padding import normalize_mode
from .filters import COMBINES, Filter, get_filter
from . import alpha as alpha_rule

__all__ = ["apply", "pil_to_array", "array_to_pil", "filter_core", "OUTPUTS", "PIL_MODES"]

#: The accepted values of ``output``.
OUTPUTS = ("clip", "rescale", "abs", "float")

#: Pillow modes :func:`apply` and ``Image.filter`` accept, and what each becomes first.
PIL_MODES = {
    "L": "L",
    "LA": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "I;16": "I;16",
    "I": "I",
    "F": "F",
    "P": "RGB or RGBA (RGBA when the palette has transparency)",
    "PA": "RGBA",
    "1": "L (0 and 255)",
}

_ALPHA_MODES = ("LA", "RGBA")

# An int, None (no channel axis) or ... (decide from the number of axes); Python 3.9 has no
# EllipsisType to spell that.
ChannelAxis = Any


# ---------------------------------------------------------------------------------------------
# Pillow <-> NumPy, in one place


def _normalised_pil(img: Image.Image) -> Image.Image:
    """The image in a mode whose pixels are plain numbers per channel, or a ValueError."""
    mode = img.mode
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode == "PA":
        return img.convert("RGBA")
    if mode == "1":
        # Filtering 1-bit pixels and thresholding back would throw the result away; L keeps it.
        return img.convert("L")
    if mode in ("I;16L", "I;16N") and np.little_endian:
        return img  # the same pixels as I;16 on this machine
    if mode not in PIL_MODES:
        raise ValueError(
            f"image mode {mode!r} is not supported; supported modes: "
            f"{', '.join(PIL_MODES)}. Convert first, e.g. img.convert('RGB')"
        )
    return img


def pil_to_array(img: Image.Image) -> np.ndarray:
    """The pixels of a Pillow image as an array: ``(H, W)`` or ``(H, W, bands)``.

    P and PA images become RGB(A), 1-bit images become L (0/255); CMYK, YCbCr, HSV, LAB and the
    premultiplied modes raise ValueError. Dtypes: uint8 (L, LA, RGB, RGBA), uint16 (I;16),
    int32 (I), float32 (F).

    Examples
    --------
    >>> pil_to_array(Image.new("RGBA", (4, 3))).shape
    (3, 4, 4)
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"img must be a PIL.Image.Image, got {type(img).__name__}")
    return np.asarray(_normalised_pil(img))


def array_to_pil(array: np.ndarray, mode: Optional[str] = None) -> Image.Image:
    """A Pillow image from an ``(H, W)`` or ``(H, W, bands)`` array.

    Parameters
    ----------
    array : numpy.ndarray
        uint8 with 1-4 bands (L, LA, RGB, RGBA); uint16 (I;16), int32 (I) or float32 (F) with one.
    mode : str, optional
        Only ``'I;16'`` needs saying (for uint16; the default for uint16 is I;16 too); other modes
        follow from dtype and bands.

    Examples
    --------
    >>> array_to_pil(np.zeros((3, 4), np.uint16)).mode
    'I;16'
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    bands = 1 if array.ndim == 2 else array.shape[2]
    if array.ndim not in (2, 3):
        raise ValueError(f"array must be (H, W) or (H, W, bands), got shape {array.shape}")
    if array.dtype == np.uint16 and bands == 1 and mode in (None, "I;16"):
        height, width = array.shape
        data = np.ascontiguousarray(array, dtype="<u2").tobytes()
        return Image.frombuffer("I;16", (width, height), data, "raw", "I;16", 0, 1)
    allowed = {np.dtype(np.uint8): (1, 2, 3, 4), np.dtype(np.int32): (1,), np.dtype(np.float32): (1,)}
    if array.dtype not in allowed or bands not in allowed[array.dtype]:
        raise ValueError(
            f"no Pillow mode holds an array of dtype {array.dtype} with {bands} band(s); Pillow "
            "has uint8 with 1-4 bands (L, LA, RGB, RGBA) and single-band uint16 (I;16), int32 (I) "
            "and float32 (F)"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def filter_core(core: Any, filt: Filter) -> Any:
    """What :meth:`Filter.filter` does for Pillow: ImagingCore in, ImagingCore out."""
    if core.mode == "P":
        # Pillow hands filters the bare core: its palette is there, its info['transparency'] is
        # not, so P becomes RGB here (imgfilt.apply, which sees the Image, gives RGBA if needed).
        core = core.convert("RGB")
    image = Image.Image()._new(core)
    return _apply_pil(image, filt, **filt.options).im


# ---------------------------------------------------------------------------------------------
# apply


def apply(
    image: Union[Image.Image, np.ndarray],
    filter: Any,
    *,
    padding_mode: Optional[str] = None,
    channel_axis: ChannelAxis = ...,
    stride: Any = None,
    dilation: Any = None,
    output: Optional[str] = None,
    **filter_params: Any,
) -> Union[Image.Image, np.ndarray]:
    """Filter an image or a volume; the output has the input's size (at stride 1) and layout.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A Pillow image (modes in :data:`PIL_MODES`) or an array: ``(H, W)``, ``(H, W, C)``,
        volumes ``(D, H, W)`` / ``(D, H, W, C)``, signals ``(N,)`` / ``(N, C)``.
    filter : str, Filter, FilterBank or array_like
        A registered name (``'sobel'``), a :class:`~imgfilt.filters.Filter`, a
        :class:`~imgfilt.bank.FilterBank` (returns its feature maps, see
        :meth:`FilterBank.apply`), a bare kernel with 1-3 axes (run on each channel on its own), or
        an ``(C_out, C_in, *K)`` weight with 2-3 spatial axes (mixes channels).
    padding_mode : str, optional
        Border handling, default ``'reflect'`` (``cb|abcd|cb``); any of :func:`imgfilt.conv`'s
        modes. An axis of length 1 under ``'reflect'`` repeats its one sample (as numpy.pad and
        scipy's ``'mirror'`` do) instead of failing.
    channel_axis : int or None, optional
        Which axis of an ndarray holds channels (scikit-image's convention); ``None``: no channel
        axis. By default an array with one more axis than the filter has spatial axes is
        channel-last and one with as many is single-channel. Not used for Pillow images.
    stride, dilation : int or tuple of int, optional
        As in :func:`imgfilt.conv`, default 1. Padding is always 'same' as at stride 1, so a
        strided result is the stride-1 result sampled at 0, s, 2s, ... (``ceil(size / stride)``
        samples per axis; conv's own ``padding='same'`` follows TensorFlow at stride > 1).
    output : {'clip', 'rescale', 'abs', 'float'}, optional
        For integer images: ``'clip'`` (default) rounds half to even and saturates to the dtype,
        as OpenCV does; ``'rescale'`` stretches the result's min..max to the dtype's full range;
        ``'abs'`` takes the absolute value, then rounds and saturates; ``'float'`` returns the
        float result unconverted. Float images default to ``'float'``; for them ``'clip'`` clips
        to [0, 1], ``'rescale'`` stretches to [0, 1], ``'abs'`` takes the absolute value.
    **filter_params
        Parameters of a named filter, e.g. ``sigma=2`` for ``'gaussian'``.

    Returns
    -------
    PIL.Image.Image or numpy.ndarray
        A Pillow image for a Pillow image (same mode, with alpha untouched; ``output='float'``
        gives mode F for single-band images), an array in the input's layout for an array.

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> img = np.zeros((5, 5), np.uint8); img[:, 3:] = 100
    >>> imgfilt.apply(img, "sobel_x")[2].tolist()
    [0, 0, 255, 255, 0]
    >>> imgfilt.apply(img, "gaussian", sigma=0.5, output="float").dtype
    dtype('float32')
    """
    from .bank import FilterBank, Sequential  # bank.py builds on this module

    if isinstance(filter, (FilterBank, Sequential)):
        if filter_params:
            raise TypeError(
                f"filter parameters {sorted(filter_params)} only go with a filter name"
            )
        if output is not None:
            raise TypeError(
                "output= does not apply to a FilterBank: its feature maps are always float"
            )
        options = {k: v for k, v in (("padding_mode", padding_mode), ("stride", stride),
                                      ("dilation", dilation)) if v is not None}
        return filter.apply(image, channel_axis=channel_axis, **options)
    filt = _as_filter(filter, filter_params)
    options = dict(filt.options)
    for key, value in (("padding_mode", padding_mode), ("stride", stride),
                       ("dilation", dilation), ("output", output)):
        if value is not None:
            options[key] = value
    if isinstance(image, Image.Image):
        if channel_axis is not ...:
            raise TypeError(
                "channel_axis is for ndarrays; a Pillow image's bands are known from its mode"
            )
        return _apply_pil(image, filt, **options)
    return _apply_ndarray(image, filt, channel_axis=channel_axis, **options)


def _as_filter(filter: Any, params: dict) -> Filter:
    if isinstance(filter, str):
        return get_filter(filter, **params)
    if params:
        raise TypeError(
            f"filter parameters {sorted(params)} only go with a filter name, not with "
            f"{type(filter).__name__}"
        )
    if isinstance(filter, Filter):
        return filter
    if isinstance(filter, (np.ndarray, list, tuple)):
        return Filter(filter, name="kernel")
    raise TypeError(
        f"filter must be a name, a Filter, a FilterBank or an array, got {type(filter).__name__}"
    )


def _apply_pil(
    img: Image.Image,
    filt: Filter,
    *,
    padding_mode: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    output: Optional[str] = None,
) -> Image.Image:
    if filt.ndim != 2:
        raise ValueError(
            f"a Pillow image is 2-D but filter {filt.name!r} has {filt.ndim} spatial axes"
        )
    img = _normalised_pil(img)
    pixels = np.asarray(img)
    alpha = None
    if img.mode in _ALPHA_MODES:
        pixels, alpha = pixels[..., :-1], pixels[..., -1]
    elif pixels.ndim == 2:
        pixels = pixels[..., None]
    output = _check_output(output, pixels.dtype)
    # --- alpha hook (issue 14, imgfilt.alpha): a smoothing filter (weights >= 0, sum 1) ------
    # filters premultiplied colour and alpha together; every other filter keeps alpha (below).
    if alpha is not None and output != "float" and alpha_rule.is_smoothing(filt.weight,
                                                                            filt.combine):
        def correlate(stacked: np.ndarray) -> np.ndarray:
            return _apply_ndarray(stacked, filt, channel_axis=-1, padding_mode=padding_mode,
                                  stride=stride, dilation=dilation, output="float")

        colour, coverage = alpha_rule.filter_premultiplied(pixels, alpha, correlate)
        colour = _convert_output(colour, pixels.dtype, output)
        coverage = _convert_output(coverage, alpha.dtype, "clip")
        return array_to_pil(np.concatenate([colour, coverage[..., None]], axis=-1))
    # --- end of the alpha hook ------------------------------------------------------------------
    result = _apply_ndarray(
        pixels, filt, channel_axis=-1, padding_mode=padding_mode, stride=stride,
        dilation=dilation, output=output,
    )
    colours = result.shape[-1]
    if output == "float":
        if colours != 1 or alpha is not None:
            raise ValueError(
                f"output='float' gives {colours} float band(s){' and alpha' if alpha is not None else ''} "
                f"from a {img.mode} image; Pillow's only float mode F has one band. Filter "
                "np.asarray(img) instead to get a float array"
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
        step = _plan((1,) + alpha.shape, alpha.dtype, (1, 1, 1, 1), stride=stride).stride
        result = np.concatenate([result, alpha[:: step[0], :: step[1], None]], axis=-1)
    return array_to_pil(result)


def _check_output(output: Optional[str], dtype: np.dtype) -> str:
    if output is None:
        return "clip" if dtype.kind in "ui" else "float"
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    # float32 holds integers exactly only up to 2**24: wider integers are computed in float64.
    # By kind and size, so that big-endian float64 stays float64.
    if (dtype.kind == "f" and dtype.itemsize == 8) or (dtype.kind in "ui" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _channels_first(
    array: np.ndarray, ndim: int, channel_axis: ChannelAxis, name: str
) -> Tuple[np.ndarray, Optional[int]]:
    """``(C, *S)`` and the channel axis to put back (None: the input had none)."""
    if channel_axis is ...:
        if array.ndim == ndim:
            channel_axis = None
        elif array.ndim == ndim + 1:
            channel_axis = -1
        else:
            raise ValueError(
                f"image has shape {array.shape} but filter {name!r} has {ndim} spatial axes: "
                f"give {ndim} axes (one channel) or {ndim + 1} (channels last), or say where the "
                "channels are with channel_axis"
            )
    if channel_axis is None:
        if array.ndim != ndim:
            raise ValueError(
                f"channel_axis=None needs an image with {ndim} axes for filter {name!r}, "
                f"got shape {array.shape}"
            )
        return array[None], None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if array.ndim != ndim + 1:
        raise ValueError(
            f"channel_axis={channel_axis} needs an image with {ndim + 1} axes for filter "
            f"{name!r}, got shape {array.shape}"
        )
    if not -array.ndim <= channel_axis < array.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an image of shape {array.shape}"
        )
    axis = int(channel_axis) % array.ndim
    return np.moveaxis(array, axis, 0), axis


def _apply_ndarray(
    image: Any,
    filt: Filter,
    *,
    channel_axis: ChannelAxis = ...,
    padding_mode: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    output: Optional[str] = None,
) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype.kind not in "biuf" or array.dtype.itemsize > 8:
        raise TypeError(
            f"image has dtype {array.dtype}; allowed: bool, integers, float16, float32, float64"
        )
    output = _check_output(output, array.dtype)
    channels, axis = _channels_first(array, filt.ndim, channel_axis, filt.name)
    if not filt.per_channel and channels.shape[0] != filt.in_channels:
        raise ValueError(
            f"filter {filt.name!r} mixes {filt.in_channels} channels (weight "
            f"{filt.weight.shape}) but the image has {channels.shape[0]} (shape {array.shape})"
        )
    if filt.per_channel and axis in (None, array.ndim - 1) and _unit_last(stride, filt.ndim):
        # Channels last, as images come (one channel: a last axis of 1): filter the interleaved
        # rows where they are. 8-bit pixels are read as they are and, clipped, written as 8-bit
        # in the same pass.
        x = array if axis is not None else array[..., None]
        if x.dtype != np.uint8:
            x = x.astype(_compute_dtype(array.dtype), copy=False)
        saturate = (array.dtype == np.uint8 and output == "clip" and filt.combine is None
                    and bool(np.all(np.isfinite(filt.weight))))
        responses = correlate_same(x, filt.weight, filt.bias, padding_mode, stride, dilation,
                                   channels_last=True, saturate=saturate)
        result = responses[0] if filt.combine is None else COMBINES[filt.combine](responses, 0)
        if not saturate:  # native byte order, as NumPy's own functions return results
            result = _convert_output(result, array.dtype.newbyteorder("="), output)
        return result if axis is not None else result[..., 0]
    x = channels.astype(_compute_dtype(array.dtype), copy=False)
    if filt.per_channel:
        x = x[:, None]  # a batch of C one-channel images
    responses = correlate_same(x, filt.weight, filt.bias, padding_mode, stride, dilation)
    if filt.per_channel:
        result = responses[:, 0] if filt.combine is None else COMBINES[filt.combine](responses, 1)
    else:
        result = responses if filt.combine is None else COMBINES[filt.combine](responses, 0)[None]
    # Results come back in native byte order, as NumPy's own functions return them.
    result = _convert_output(result, array.dtype.newbyteorder("="), output)
    if axis is None:
        return result[0]
    return np.moveaxis(result, 0, axis)


def _unit_last(stride: Any, ndim: int) -> bool:
    """True when ``stride`` (an int or one per axis) is 1 along the last spatial axis.

    Anything else (including invalid strides, which conv then reports) takes the general path.
    """
    if isinstance(stride, (tuple, list)) and len(stride) == ndim:
        stride = stride[-1]
    return isinstance(stride, (int, np.integer)) and not isinstance(stride, bool) and stride == 1


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
) -> np.ndarray:
    """:func:`imgfilt.conv` with ``'same'`` padding, defining ``'reflect'`` on 1-sample axes.

    ``x`` is ``(C_in, *S)`` or ``(N, C_in, *S)``; with ``channels_last``, ``x`` is ``(*S, C)``,
    ``weight`` is ``(F, 1, *K)`` and the result is ``(F, *S_out, C)`` (each channel filtered
    alone, by :func:`imgfilt.convolution.correlate_channels_last`, which with ``saturate`` returns
    uint8 for uint8 ``x``). numpy.pad and scipy's 'mirror' repeat the one
    sample of a length-1 axis where reflection is undefined; the engine refuses instead, so such
    axes are padded here (by repetition) and the engine pads the others.

    ``centred=True`` (what :func:`apply` uses) pads as at stride 1, so a strided result is the
    stride-1 result sampled at 0, s, 2s, ...; ``centred=False`` keeps conv's own ``'same'``
    (TensorFlow's rule at stride > 1, which may shift the grid by a pixel). Both give
    ``ceil(S / stride)`` samples.
    """
    mode = normalize_mode(padding_mode)
    x_shape = (1,) + x.shape[:-1] if channels_last else x.shape
    shape_plan = _plan(
        x_shape, x.dtype, weight.shape, stride=1 if centred else stride, padding="same",
        padding_mode="zeros", dilation=dilation, groups=groups,
    )
    pads = list(shape_plan.padding)
    if mode == "reflect":
        lead = 0 if channels_last else x.ndim - shape_plan.ndim
        widths = [(0, 0)] * lead
        for axis, size in enumerate(shape_plan.in_shape):
            if size == 1 and any(pads[axis]):
                widths.append(pads[axis])
                pads[axis] = (0, 0)
            else:
                widths.append((0, 0))
        if channels_last:
            widths.append((0, 0))
        if any(any(w) for w in widths):
            x = np.pad(x, widths, mode="edge")
    if channels_last:
        return _correlate_channels_last(x, weight, bias, stride=stride, padding=tuple(pads),
                                        padding_mode=mode, dilation=dilation, saturate=saturate)
    return _engine_conv(
        x, weight, bias, stride=stride, padding=tuple(pads), padding_mode=mode,
        dilation=dilation, groups=groups,
    )


def _stretch(
    values: np.ndarray, low: float, high: float, extremes: tuple[float, float] | None = None
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


def _convert_output(
    result: np.ndarray,
    dtype: np.dtype,
    output: str,
    extremes: tuple[float, float] | None = None,
) -> np.ndarray:
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
            work = _stretch(work, low, high, extremes)
        return np.clip(np.rint(work), low, high).astype(dtype)
    if output == "rescale":
        return _stretch(result, 0.0, 1.0, extremes)
    if output == "clip":
        return np.clip(result, 0.0, 1.0)
    return result
