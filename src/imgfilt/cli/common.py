"""What every ``imgfilt`` command shares: errors and their one-line wording, filters from the
command line (names, ``--set`` typed from the filter's signature, kernel files), reading inputs,
checking and writing outputs atomically, and number formatting for tables.
"""
from __future__ import annotations

import argparse
import ast
import stat
import difflib
import inspect
import os
import re
import types
import typing
import zlib
from collections.abc import Sequence
from typing import Any, Callable, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..convolution import checked_int
from ..padding import normalize_mode
from ..bank import FilterBank
from ..filters import Filter, FilterLike, lookup, list_filters
from ..io import (atomic_write, check_regular_file, load_npy, read_image,
                  read_volume_with_metadata)
from ..pictures import Picture, read_picture, write_picture
from ..tiff import TiffMetadata, write_tiff

#: Exit codes: success, a failed input or runtime error, a usage error (argparse's convention),
#: and 128 + the signal number for SIGINT, SIGPIPE and SIGTERM.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143

KERNEL_SUFFIXES = (".npy", ".npz")
ARRAY_SUFFIX = ".npy"
TIFF_SUFFIXES = (".tif", ".tiff")


class UsageError(Exception):
    """A bad argument (unknown filter, bad ``--set`` value...): one line on stderr, exit 2."""


class CommandError(Exception):
    """A failure while running a command (a file that cannot be read or written): exit 1."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so cleanup runs as for Ctrl-C."""


# ---------------------------------------------------------------------------------------------
# Errors in one line


def describe(error: BaseException) -> str:
    """The reason an exception gives, in words fit for one line of stderr (no class names for
    the errors a user can cause; an internal error says how to see the traceback)."""
    if isinstance(error.__cause__, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
        error = error.__cause__  # the file boundary (imgfilt.errors) wrapped it
    if isinstance(error, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
        # Pillow words its error with twice the limit; say the one the user can set.
        size = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(size.group(1))} pixels" if size else "the image"
        return (f"refused: {pixels} is above the limit of {Image.MAX_IMAGE_PIXELS} pixels "
                "(Pillow's decompression-bomb guard; --max-pixels N raises it, 0 removes it)")
    if isinstance(error, UnidentifiedImageError):
        return "not an image file Pillow can read (unknown or corrupt format)"
    if isinstance(error, OSError):
        if error.strerror:
            return error.strerror[0].lower() + error.strerror[1:]
        text = str(error)
        return f"cannot read the image: {text}" if "truncated" in text or "broken" in text else text
    if isinstance(error, (SyntaxError, EOFError, zlib.error)):
        # Pillow's decoders raise these for broken files.
        return f"corrupt or truncated file ({error.msg if isinstance(error, SyntaxError) else error})"
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, (ValueError, TypeError, UsageError, CommandError)):
        return str(error)
    return f"internal error {type(error).__name__}: {error} (run with --debug for the traceback)"


# ---------------------------------------------------------------------------------------------
# Argument types


def positive_ints(text: str) -> int | tuple[int, ...]:
    """argparse type: ``'2'`` -> 2, ``'2,1'`` -> (2, 1); every number >= 1."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or integers joined by commas, got {text!r}")
    bounded(values, 1)
    return values[0] if len(values) == 1 else values


def bounded(values: Sequence[int], minimum: int) -> None:
    """Check parsed integers with the library's one rule (``checked_int``: ``minimum`` up to the
    largest index the engine can use); an ArgumentTypeError says what is wrong."""
    for value in values:
        try:
            checked_int(value, "value", minimum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).replace("value ", "", 1)) from None


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = positive_ints(text)
    if isinstance(value, tuple):
        raise argparse.ArgumentTypeError(f"expected one integer, got {text!r}")
    return value


def channel_axis(text: str) -> int | str:
    """argparse type for ``--channel-axis``: an int (negative counts from the end) or ``'none'``
    (no channel axis; kept as the word, since None means the option was not given)."""
    if text.strip().lower() == "none":
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an axis number or 'none', got {text!r}") from None


def axes_list(text: str) -> tuple[int, ...]:
    """argparse type for ``--axes``: axis numbers joined by commas, e.g. ``'1,2'``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected axis numbers joined by commas (e.g. 1,2), got {text!r}") from None


def add_layout_options(parser: argparse.ArgumentParser) -> None:
    """``--channel-axis`` and ``--axes``: the one axis rule's two arguments, for arrays."""
    parser.add_argument("--channel-axis", type=channel_axis, default=None, metavar="AXIS",
                        help="for .npy/TIFF inputs: the axis holding channels, or 'none' "
                             "(scikit-image's channel_axis)")
    parser.add_argument("--axes", type=axes_list, default=None, metavar="A,B",
                        help="for .npy/TIFF inputs: the axes the filter runs over, one per "
                             "kernel axis; the others are filtered slice by slice (scipy's axes)")


def layout_options(args: argparse.Namespace, kind: str = "array",
                   data: Any = None) -> dict[str, Any]:
    """``channel_axis``/``axes`` for the library from ``--channel-axis``/``--axes``.

    A multi-page TIFF read for a 2-D filter (``kind == 'pages'``) is a stack of pages, each an
    image, unless the options say otherwise: ``axes=(1, 2)`` (and channels last for colour
    pages)."""
    layout: dict[str, Any] = {}
    if kind == "pages" and args.channel_axis is None and args.axes is None:
        layout["axes"] = (1, 2)
        if np.ndim(data) == 4:
            layout["channel_axis"] = -1
    if args.channel_axis is not None:
        layout["channel_axis"] = None if args.channel_axis == "none" else args.channel_axis
    if args.axes is not None:
        layout["axes"] = args.axes
    return layout


def padding_mode(text: str) -> str:
    """argparse type: a padding mode or alias, checked by the one place that knows them."""
    try:
        return normalize_mode(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error))


def max_pixels(text: str) -> int | None:
    """argparse type for ``--max-pixels``: an int >= 0; 0 means no limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: no limit), got {value}")
    return value or None


# ---------------------------------------------------------------------------------------------
# Filters from the command line


def _candidate_types(annotation: Any, default: Any) -> list[Any]:
    if annotation is inspect.Parameter.empty or annotation is None:
        return [type(default)] if default not in (None, inspect.Parameter.empty) else [int, float, str]
    if typing.get_origin(annotation) in (Union, getattr(types, "UnionType", Union)):
        return list(typing.get_args(annotation))
    return [annotation]


def _typed(text: str, types: Sequence[Any]) -> Any:
    """``text`` as the narrowest of ``types`` it reads as (``Union[str, int]`` reads ``'1'`` as
    1); ValueError when none fits."""
    order = [type(None), bool, int, float, str]
    for kind in sorted(types, key=lambda t: order.index(t) if t in order else len(order)):
        if kind is type(None):
            if text.lower() in ("none", ""):
                return None
        elif kind is bool:
            if text.lower() in ("true", "yes", "1", "false", "no", "0"):
                return text.lower() in ("true", "yes", "1")
        elif kind is int:
            try:
                return int(text)
            except ValueError:
                pass
        elif kind is float:
            try:
                return float(text)
            except ValueError:
                pass
        elif kind is str:
            return text
    raise ValueError(text)


def _type_words(types: Sequence[Any]) -> str:
    names = {type(None): "none", bool: "true/false", int: "an integer", float: "a number",
             str: "text"}
    return " or ".join(names.get(kind, getattr(kind, "__name__", str(kind))) for kind in types)


def typed_settings(factory: Callable[..., Any], filter_name: str, settings: Sequence[str]) -> dict:
    """``['sigma=2', 'radius=none']`` -> ``{'sigma': 2.0, 'radius': None}``, typed from the
    factory's signature; UsageError naming the parameter when a value does not fit."""
    signature = inspect.signature(factory)
    hints = typing.get_type_hints(factory)
    params = {}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE, e.g. --set sigma=2")
        if name not in signature.parameters:
            takes = ", ".join(signature.parameters) or "no parameters"
            raise UsageError(f"--set {name}: filter {filter_name!r} has no parameter {name!r}; "
                             f"it takes {takes}")
        parameter = signature.parameters[name]
        types = _candidate_types(hints.get(name, parameter.annotation), parameter.default)
        try:
            params[name] = _typed(text.strip(), types)
        except ValueError:
            raise UsageError(f"--set {name}={text}: {name} must be {_type_words(types)}") from None
    return params


def filter_names() -> list[str]:
    """The registered filter names."""
    return [info.name for info in list_filters()]


def resolve_filter(spec: str, settings: Sequence[str] = ()) -> tuple[FilterLike | FilterBank, str]:
    """The filter a FILTER argument names, and a short label for output file names.

    ``spec`` is a registered name, a ``.npy`` kernel (a bare 1-3-axis kernel, or a
    ``(C_out, C_in, *K)`` weight) or a ``.npz`` FilterBank. Every failure is a UsageError.
    """
    suffix = os.path.splitext(spec)[1].lower()
    if suffix in KERNEL_SUFFIXES:
        label = os.path.splitext(os.path.basename(spec))[0]
        if settings:
            raise UsageError(f"--set is for named filters; {spec} is a kernel file")
        try:
            if suffix == ".npz":
                return FilterBank.load(spec), label
            return Filter(load_npy(spec), name=label), label
        except Exception as error:  # noqa: BLE001 - any failure to read the kernel is reported
            raise UsageError(f"{spec}: cannot load the kernel: {describe(error)}") from None
    key = spec.strip().lower().replace("-", "_")
    names = filter_names()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        file_hint = " (or a .npy/.npz kernel file)" if os.sep in spec or "." in spec else ""
        raise UsageError(f"unknown filter {spec!r}{hint} 'imgfilt list' shows them all{file_hint}")
    key, factory = lookup(key)
    params = typed_settings(factory, key, settings)
    try:
        from ..filters import get_filter

        return get_filter(key, **params), key
    except (TypeError, ValueError) as error:
        raise UsageError(f"--set: filter {key!r}: {error}") from None


# ---------------------------------------------------------------------------------------------
# Literal arrays (explain) and array files


def read_array(text: str, what: str) -> np.ndarray:
    """``text`` as a literal (``'[[1,2],[3,4]]'``, ``'0.5'``), a ``.npy`` file, or an image file
    (read channel-first, ``(C, H, W)``, for a colour image)."""
    try:
        return np.array(ast.literal_eval(text), dtype=np.float64)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if not os.path.splitext(text)[1]:
        raise UsageError(f"{what} {text!r}: expected a nested list of numbers such as "
                         "[[0,1],[2,3]], or a .npy or image file")
    try:
        if text.lower().endswith(ARRAY_SUFFIX):
            return load_npy(text)
        # One image, exactly: a TIFF through tifffile, a photo upright through Pillow.
        pixels = read_image(text)
    except Exception as error:  # noqa: BLE001 - one line naming the file
        raise UsageError(f"{what} {text}: {describe(error)}") from None
    # Channel-first, as the textbooks and conv write images.
    return np.moveaxis(pixels, -1, 0) if pixels.ndim == 3 else pixels


# ---------------------------------------------------------------------------------------------
# Inputs


def read_input(path: str, ndim: int) -> tuple[str, Any, Any]:
    """Read an input for a filter with ``ndim`` spatial axes: ``(kind, data, metadata)``.

    Kinds: ``'pil'`` (one Pillow image; metadata: its :class:`imgfilt.pictures.Picture`),
    ``'frames'`` (an animation: a list of Pillow images, filtered frame by frame), ``'array'``
    (a ``.npy`` array), ``'tiff'`` (one TIFF page, ``(H, W[, C])``), ``'volume'`` (a TIFF read
    as ``(D, H, W[, C])`` for a 3-D filter), ``'pages'`` (a multi-page TIFF for a 2-D filter,
    filtered page by page). TIFF metadata is an :class:`imgfilt.tiff.TiffMetadata`.
    """
    check_regular_file(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ARRAY_SUFFIX:
        return "array", load_npy(path), None
    if suffix in TIFF_SUFFIXES:
        volume, metadata = read_volume_with_metadata(path)
        if ndim == 3:
            return "volume", volume, metadata
        if volume.shape[0] > 1:
            return "pages", volume, metadata
        return "tiff", volume[0], metadata
    picture = read_picture(path)
    if picture.n_frames > 1:
        return "frames", picture.frames, picture
    return "pil", picture.frames[0], picture


def gray_pixels(pixels: np.ndarray) -> np.ndarray:
    """Luminance of ``(..., 3 or 4)`` colour pixels with Pillow's ITU-R 601-2 weights
    (uint8 exactly as ``convert('L')``; other dtypes rounded to their own type), alpha kept."""
    if pixels.shape[-1] not in (3, 4):
        return pixels
    weights = np.array([299, 587, 114]) / 1000
    luma = pixels[..., :3].astype(np.float64) @ weights
    if pixels.dtype.kind in "iu":
        info = np.iinfo(pixels.dtype)
        luma = np.clip(np.rint(luma), info.min, info.max)
    luma = luma.astype(pixels.dtype)
    if pixels.shape[-1] == 4:
        return np.stack([luma, pixels[..., 3]], axis=-1)
    return luma


def gray(image: Image.Image) -> Image.Image:
    """Pillow's luminance (ITU-R 601-2), keeping an alpha channel when there is one."""
    if image.mode in ("L", "LA", "I", "I;16", "F"):
        return image
    return image.convert("LA" if image.mode in ("RGBA", "PA", "LA") or "transparency" in image.info
                         else "L")


# ---------------------------------------------------------------------------------------------
# Outputs


def image_format(path: str) -> str | None:
    """Pillow's format name for ``path``'s extension, or None."""
    return Image.registered_extensions().get(os.path.splitext(path)[1].lower())


#: How a refusal to replace an existing output ends (a batch counts those inputs as skipped).
SKIP_HINT = "(use --overwrite to replace it)"


def check_target(target: str, inputs: Sequence[str], overwrite: bool) -> str | None:
    """Why ``target`` may not be written (or None): an input is never overwritten; an existing
    file only with ``overwrite``."""
    if not os.path.lexists(target):
        return None
    for source in inputs:
        try:
            if os.path.samefile(target, source):
                return f"{target} is an input; refusing to overwrite it"
        except OSError:
            continue
    if not overwrite:
        return f"{target} exists {SKIP_HINT}"
    return None


def save(target: str, result: Any, *, volume: bool = False, metadata: Any = None,
         compression: str | None = "zlib", quality: int | str | None = "keep") -> list[str]:
    """Write a result atomically; return what the input had that the format cannot hold.

    ``.npy`` takes any array. TIFF takes any array (or Pillow image), through tifffile, with
    a TIFF input's metadata. Other formats take a Pillow image (or a list of frames) or an
    array Pillow can hold, with a picture's EXIF, ICC profile, DPI and timing. A ``volume``
    (``(D, H, W[, C])``) goes to ``.npy`` or TIFF.
    """
    suffix = os.path.splitext(target)[1].lower()
    if suffix == ARRAY_SUFFIX:
        array = np.asarray(result)
        with atomic_write(target) as handle:
            np.save(handle, array, allow_pickle=False)
        return []
    fmt = image_format(target)
    if fmt is None:
        raise ValueError(f"{target}: unknown image extension; use e.g. .png, .jpg, .tif, .npy")
    from ..arrays import array_to_pil, pil_to_array

    picture = metadata if isinstance(metadata, Picture) else None
    if suffix in TIFF_SUFFIXES:
        pages = result if isinstance(result, list) else None
        if pages is not None:
            array, volume = np.stack([pil_to_array(frame) for frame in pages]), True
        elif isinstance(result, Image.Image):
            array = pil_to_array(result)
        else:
            array = np.asarray(result)
        tiff_metadata = metadata if isinstance(metadata, TiffMetadata) else None
        if tiff_metadata is None and picture is not None and picture.dpi:
            tiff_metadata = TiffMetadata(axes="", resolution=picture.dpi, resolution_unit=2)
        page_axes = "YX" if array.ndim == 2 + volume else "YXS"
        write_tiff(target, array, tiff_metadata, compression=compression,
                   axes=("Q" if volume else "") + page_axes)
        dropped = [] if picture is None else [
            key for key in ("exif", "icc_profile", "durations") if getattr(picture, key)]
        return dropped
    if volume:
        raise ValueError(f"{target}: a volume of shape {np.shape(result)} is written as .tif "
                         "or .npy")
    frames: Image.Image | Sequence[Image.Image]
    if isinstance(result, Image.Image) or isinstance(result, list):
        frames = result
    else:
        array = np.asarray(result)
        try:
            frames = array_to_pil(array)
        except ValueError as error:
            raise ValueError(f"{target}: cannot save a {array.dtype} result of shape "
                             f"{array.shape} as {fmt}: {error}; write .tif or .npy "
                             "instead") from None
    if isinstance(metadata, TiffMetadata):
        picture, dropped = picture_from_tiff(metadata)
        return dropped + write_picture(target, frames, picture, quality=quality)
    return write_picture(target, frames, picture, quality=quality)


#: Centimetres per inch: a TIFF's ResolutionUnit 3 (centimetre) to dots per inch.
_CM_PER_INCH = 2.54


def picture_from_tiff(metadata: TiffMetadata) -> tuple[Picture, list[str]]:
    """What of a TIFF's metadata a picture format can carry (its resolution, as DPI), and the
    names of what it cannot (ImageJ/OME metadata, a description, a resolution without a unit).

    Examples
    --------
    >>> picture, dropped = picture_from_tiff(TiffMetadata("YX", resolution=(118.11, 118.11),
    ...                                                   resolution_unit=3, imagej={"unit": "um"}))
    >>> [round(v) for v in picture.dpi], dropped
    ([300, 300], ['ImageJ metadata'])
    """
    dpi = None
    dropped = []
    if metadata.resolution is not None:
        if metadata.resolution_unit == 2:
            dpi = tuple(float(v) for v in metadata.resolution)
        elif metadata.resolution_unit == 3:
            dpi = tuple(float(v) * _CM_PER_INCH for v in metadata.resolution)
        else:  # TIFF's "no absolute unit": an aspect ratio, which DPI cannot say
            dropped.append("resolution (no unit)")
    if metadata.imagej:
        dropped.append("ImageJ metadata")
    if metadata.ome:
        dropped.append("OME metadata")
    if metadata.description:
        dropped.append("image description")
    return Picture([], dpi=dpi), dropped


# ---------------------------------------------------------------------------------------------
# Numbers in tables


def number(value: float, digits: int = 4) -> str:
    """A number as a textbook prints it: integers without a decimal point, others in ``g``."""
    value = float(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.{digits}g}"


def table(rows: typing.Iterable[typing.Iterable[float]], indent: str = "  ", digits: int = 4) -> list[str]:
    """Right-aligned columns of numbers, one string per row."""
    cells = [[number(v, digits) for v in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    return [indent + "  ".join(c.rjust(width) for c in row) for row in cells]
