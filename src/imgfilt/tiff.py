"""TIFF files through tifffile: every dtype, BigTIFF, compression, ImageJ/OME metadata kept.

:func:`read_tiff` returns the pixels and a :class:`TiffMetadata`; :func:`write_tiff` takes the
metadata back, so a file read, filtered and written keeps its axes, its ImageJ spacing and unit,
its OME physical sizes, its resolution and its photometric interpretation. Writes are atomic
(:func:`imgfilt.io.atomic_write`), zlib-compressed by default, and BigTIFF as soon as the
pixels come near TIFF's 4 GB offsets.

The array layout is tifffile's series layout with the samples (colour) axis moved last: a
grey page is ``(H, W)``, an RGB page ``(H, W, 3)``, a stack ``(D, H, W[, C])`` and an ImageJ
hyperstack keeps its own axes (``metadata.axes``, e.g. ``'TZCYX'``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import xml.etree.ElementTree as ElementTree
from typing import Any, Iterator, Optional, Union

import numpy as np
import tifffile
from .errors import file_errors
from .files import PixelLimit, atomic_write, check_pixel_count, check_regular_file

__all__ = ["TiffMetadata", "read_tiff", "as_volume", "write_tiff", "tiff_pages",
           "TiffPageReader", "COMPRESSIONS", "BIGTIFF_THRESHOLD"]

PathLike = Union[str, "os.PathLike[str]"]

#: Compressions written without extra packages (tifffile's own codecs).
COMPRESSIONS = ("zlib", "lzma", "none")

#: Pixel bytes from which a file is written as BigTIFF: tifffile's own threshold (4 GiB less
#: 32 MiB of room for the tags), applied to compressed files too, whose size is not known ahead.
BIGTIFF_THRESHOLD = 2**32 - 2**25

#: The dtypes ImageJ hyperstacks hold.
_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))

#: ImageJ metadata tifffile derives from the shape and axes on every write.
_IMAGEJ_DERIVED = ("ImageJ", "images", "channels", "slices", "frames", "hyperstack", "axes")


@dataclasses.dataclass(frozen=True)
class TiffMetadata:
    """What a TIFF said about its pixels, written back by :func:`write_tiff`.

    Attributes
    ----------
    axes : str
        tifffile's axes of the array :func:`read_tiff` returned (``'YX'``, ``'YXS'``,
        ``'ZYX'``, ``'TZCYXS'`` ...; ``S`` is the colour samples, always last).
    photometric : str
        ``'minisblack'``, ``'rgb'``, ``'palette'``... (tifffile's names, lower case).
    resolution : (float, float) or None
        Pixels per unit along x and y (the XResolution/YResolution tags).
    resolution_unit : int or None
        The ResolutionUnit tag (1 none, 2 inch, 3 centimetre).
    imagej : dict or None
        ImageJ metadata (``spacing``, ``unit``, ``finterval``, ``Labels``, ``Ranges`` ...).
    ome : dict or None
        OME physical sizes and time increment (``PhysicalSizeX``, ``PhysicalSizeXUnit``, ...)
        and channel names (``Channel``), as tifffile's OME writer takes them.
    description : str or None
        A plain ImageDescription (not ImageJ, OME or tifffile's own shape record).
    compression : str
        How the file was compressed (``'none'``, ``'zlib'``, ``'lzw'`` ...); informative:
        :func:`write_tiff` compresses as asked.
    extrasamples : tuple of int
        The ExtraSamples tag (1 premultiplied alpha, 2 straight alpha).
    shape : tuple of int or None
        The shape :func:`read_tiff` returned, so that a volume folded to ``(D, H, W[, C])``
        (:func:`as_volume`) is written back with its own axes.

    Examples
    --------
    >>> TiffMetadata(axes="YX").photometric
    'minisblack'
    """

    axes: str
    photometric: str = "minisblack"
    resolution: Optional[tuple] = None
    resolution_unit: Optional[int] = None
    imagej: Optional[dict] = None
    ome: Optional[dict] = None
    description: Optional[str] = None
    compression: str = "none"
    extrasamples: tuple = ()
    shape: Optional[tuple] = None


def _samples_last(axes: str) -> tuple[str, Optional[int]]:
    """``axes`` with ``S`` moved last, and where it was (None when absent or already last)."""
    if "S" not in axes or axes.endswith("S"):
        return axes, None
    where = axes.index("S")
    return axes.replace("S", "") + "S", where


def _ome_physical(xml: str) -> Optional[dict]:
    """The physical sizes, time increment and channel names of an OME-XML's first image."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.endswith("}Pixels") or element.tag == "Pixels":
            kept: dict[str, Any] = {}
            for key, value in element.attrib.items():
                if key.startswith(("PhysicalSize", "TimeIncrement")):
                    kept[key] = value if key.endswith("Unit") else float(value)
            names = [c.attrib.get("Name") for c in element
                     if c.tag.endswith("Channel") and c.attrib.get("Name")]
            if names:
                kept["Channel"] = {"Name": names}
            return kept
    return None


class _TifffileWarnings(logging.Handler):
    """tifffile logs what it finds wrong in a file and goes on; within :func:`_warned` those
    records are collected (per thread) instead of printed, so that a damaged file is refused
    by name. Outside, they go where they would have gone (Python's last-resort handler)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(self.local, "records", None)
        if records is not None:
            records.append(record.getMessage())
        elif logging.lastResort is not None and not logging.getLogger().handlers:
            logging.lastResort.handle(record)


_WARNINGS = _TifffileWarnings()
logging.getLogger("tifffile").addHandler(_WARNINGS)


@contextlib.contextmanager
def _warned(name: str) -> Iterator[None]:
    """Refuse a file tifffile warned about (a damaged tag, a bad offset) by name."""
    _WARNINGS.local.records = []
    try:
        yield
        records = _WARNINGS.local.records
        if records:
            raise ValueError(f"{name!r} is not a readable TIFF file "
                             f"({records[0].splitlines()[0]})")
    finally:
        _WARNINGS.local.records = None


@contextlib.contextmanager
def _opened(path: PathLike) -> Iterator[tifffile.TiffFile]:
    name = os.fspath(path)
    check_regular_file(name)
    with _warned(name):
        with file_errors(name, "TIFF"):
            handle = tifffile.TiffFile(name)
        with handle:
            yield handle


def _series_of(tif: tifffile.TiffFile, name: str) -> tuple[tuple[int, ...], np.dtype, str, list]:
    """The shape, dtype and axes of the file's image, and the series it is made of: one series,
    or equal single-page series (pages written one by one) stacked along a new ``I`` axis."""
    series = list(tif.series)
    if not series:
        raise ValueError(f"{name!r} holds no image")
    first = series[0]
    if len(series) == 1:
        return tuple(first.shape), first.dtype, first.axes, series
    for index, other in enumerate(series):
        if other.shape != first.shape or other.dtype != first.dtype or other.axes != first.axes:
            # tifffile lists a page it could not read as None: the series' shape stands in.
            page, page0 = other.pages[0], first.pages[0]
            number = index if page is None else page.index
            shape, dtype = (other.shape, other.dtype) if page is None else (page.shape, page.dtype)
            shape0, dtype0 = ((first.shape, first.dtype) if page0 is None
                              else (page0.shape, page0.dtype))
            raise ValueError(
                f"{name!r}: page {number} is {tuple(shape)} {dtype}, page 0 is "
                f"{tuple(shape0)} {dtype0}; a stack needs equal pages (or read each "
                "page with tifffile)")
    return (len(series),) + tuple(first.shape), first.dtype, "I" + first.axes, series


def _is_shape_record(text: str) -> bool:
    """Whether an ImageDescription is tifffile's own ``{"shape": [...]}`` record."""
    try:
        record = json.loads(text)
    except ValueError:
        return False
    return isinstance(record, dict) and "shape" in record


def _metadata(tif: tifffile.TiffFile, axes: str) -> TiffMetadata:
    page = tif.pages.first
    imagej = None
    if tif.is_imagej and tif.imagej_metadata:
        imagej = {k: v for k, v in tif.imagej_metadata.items() if k not in _IMAGEJ_DERIVED}
    ome = _ome_physical(tif.ome_metadata) if tif.is_ome and tif.ome_metadata else None
    description = None
    if not (tif.is_imagej or tif.is_ome):
        # tifffile's writer puts its own shape record in an ImageDescription of its own, after
        # the user's (or alone): keep the first description that is not that record.
        for text in (page.description, getattr(page, "description1", "")):
            if text and not _is_shape_record(text):
                description = text
                break
    resolution = None
    if "XResolution" in page.tags:
        resolution = tuple(float(v) for v in page.resolution)
    unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else None
    extrasamples = tuple(int(v) for v in page.extrasamples) if page.extrasamples else ()
    return TiffMetadata(
        axes=axes, photometric=tifffile.PHOTOMETRIC(page.photometric).name.lower(),
        resolution=resolution, resolution_unit=unit, imagej=imagej, ome=ome,
        description=description,
        compression=tifffile.COMPRESSION(page.compression).name.lower(),
        extrasamples=extrasamples)


def _colour_pixels(shape: tuple[int, ...], axes: str) -> int:
    return int(np.prod([n for n, a in zip(shape, axes) if a != "S"], dtype=np.int64))


def read_tiff(path: PathLike, *, max_pixels: PixelLimit = ...
              ) -> tuple[np.ndarray, TiffMetadata]:
    """Read a TIFF's pixels exactly (every dtype, every page) and its metadata.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None
        The decompression-bomb limit on all pages together (see :func:`check_pixel_count`);
        default :data:`PIL.Image.MAX_IMAGE_PIXELS`, checked before any pixel is read.

    Returns
    -------
    pixels : numpy.ndarray
        The image in ``metadata.axes`` order, samples (colour) last; the file's own dtype.
    metadata : TiffMetadata

    Raises
    ------
    ValueError
        Not a TIFF, no image, or pages of different sizes or dtypes; the message names the file.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> write_tiff(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> pixels, metadata = read_tiff(path)
    >>> pixels.dtype, metadata.axes
    (dtype('int16'), 'YX')
    """
    name = os.fspath(path)
    with _opened(name) as tif:
        with file_errors(name, "TIFF"):
            shape, _, axes, series = _series_of(tif, name)
            if 0 in shape:
                raise ValueError(f"{name!r} holds an empty image (shape {shape})")
            # Before any pixel is decoded (the bomb becomes file_errors' ValueError, its
            # cause kept for the command line's wording).
            check_pixel_count(_colour_pixels(shape, axes), name, max_pixels)
            metadata = _metadata(tif, axes)
            if len(series) == 1:
                pixels = series[0].asarray()
            else:
                pixels = np.stack([s.asarray() for s in series])
            if pixels.shape != shape:
                raise ValueError(f"{name!r} is truncated or corrupt: its pixels are "
                                 f"{pixels.shape}, its tags say {shape}")
    moved, where = _samples_last(axes)
    if where is not None:  # planar colour (one plane per sample): samples last, as everywhere
        pixels = np.moveaxis(pixels, where, -1)
        metadata = dataclasses.replace(metadata, axes=moved)
    return pixels, dataclasses.replace(metadata, shape=tuple(pixels.shape))


def tiff_pages(path: PathLike) -> int:
    """The number of pages (IFDs) in a TIFF, without reading any pixels.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> write_tiff(path, np.zeros((4, 3, 3), np.uint8), axes="QYX")
    >>> tiff_pages(path)
    4
    """
    with _opened(path) as tif:
        return len(tif.pages)


def _default_axes(array: np.ndarray) -> str:
    colour = array.ndim >= 3 and array.shape[-1] in (3, 4)
    spatial = "YXS" if colour else "YX"
    leading = array.ndim - len(spatial)
    if leading < 0:
        raise ValueError(f"a TIFF image needs 2 or more axes, got shape {array.shape}")
    return "Q" * leading + spatial


def as_volume(pixels: np.ndarray, metadata: TiffMetadata) -> np.ndarray:
    """``pixels`` from :func:`read_tiff` as ``(D, H, W[, C])``: every axis before the page's
    ``(H, W[, S])`` folded into ``D`` (one page: ``D = 1``). :func:`write_tiff` unfolds it
    with the same metadata.

    Examples
    --------
    >>> as_volume(np.zeros((2, 3, 4, 5)), TiffMetadata(axes="TZYX")).shape
    (6, 4, 5)
    """
    page = 3 if metadata.axes.endswith("S") else 2
    return pixels.reshape((-1,) + pixels.shape[pixels.ndim - page:])


def _unfold(pixels: np.ndarray, metadata: Optional[TiffMetadata]) -> np.ndarray:
    """A ``(D, H, W[, C])`` volume back in the metadata's axes, when its leading axes fit."""
    if metadata is None or metadata.shape is None or len(metadata.axes) == pixels.ndim:
        return pixels
    page = 3 if metadata.axes.endswith("S") else 2
    leading = metadata.shape[:len(metadata.shape) - page]
    if pixels.ndim == page + 1 and pixels.shape[0] == int(np.prod(leading, dtype=np.int64)):
        return pixels.reshape(tuple(leading) + pixels.shape[1:])
    return pixels


def _axes_for(array: np.ndarray, metadata: Optional[TiffMetadata]) -> str:
    """The metadata's axes when they fit the array (same count and colour), else a default."""
    if metadata is not None and len(metadata.axes) == array.ndim:
        colour_ok = not metadata.axes.endswith("S") or array.shape[-1] in (1, 2, 3, 4)
        if colour_ok:
            return metadata.axes
    return _default_axes(array)


def write_tiff(path: PathLike, array: Any, metadata: Optional[TiffMetadata] = None, *,
               compression: Optional[str] = "zlib", bigtiff: Optional[bool] = None,
               axes: Optional[str] = None) -> None:
    """Write ``array`` as a TIFF, atomically, keeping what ``metadata`` says.

    Parameters
    ----------
    path : str or os.PathLike
    array : array_like
        Any real (or bool, or complex) dtype; ``(H, W)``, ``(H, W, C)``, ``(D, H, W[, C])`` or
        ``metadata.axes``. A last axis of 3 or 4 is read as RGB(A) unless ``metadata`` says
        otherwise.
    metadata : TiffMetadata, optional
        From :func:`read_tiff`: axes, photometric, resolution, ImageJ or OME metadata and a
        plain description are written back. An ImageJ file's metadata needs uint8, uint16 or
        float32 pixels: another dtype is a ValueError (ImageJ cannot hold it).
    compression : str or None
        ``'zlib'`` (default, lossless), ``'lzma'``, or ``'none'``/None (the codecs tifffile
        has without the ``imagecodecs`` package).
    bigtiff : bool or None
        None: BigTIFF when the pixels reach :data:`BIGTIFF_THRESHOLD` bytes (4 GiB - 32 MiB).
    axes : str, optional
        The array's axes in tifffile's letters (``'QYX'``, ``'YXS'``), when the metadata does
        not give them: a ``(D, H, 4)`` stack is not an RGBA picture.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "rgb.tif")
    >>> write_tiff(path, np.full((2, 3, 3), 60000, np.uint16))
    >>> pixels, metadata = read_tiff(path)
    >>> int(pixels.max()), metadata.photometric, metadata.compression
    (60000, 'rgb', 'adobe_deflate')
    """
    name = os.fspath(path)
    pixels = np.asarray(array)
    if pixels.dtype.kind not in "biufc":
        raise TypeError(f"{name}: a TIFF holds numbers, got dtype {pixels.dtype}")
    if pixels.dtype.byteorder == ">":
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    codec = None if compression in (None, "none", "None") else str(compression).lower()
    if codec is not None and codec not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got "
                         f"{compression!r}")
    pixels = _unfold(pixels, metadata)
    if axes is None or (metadata is not None and len(metadata.axes) == pixels.ndim):
        axes = _axes_for(pixels, metadata)
    elif len(axes) != pixels.ndim:
        raise ValueError(f"axes={axes!r} do not fit an array of shape {pixels.shape}")
    if pixels.dtype == bool and axes.endswith("S"):
        raise ValueError(f"{name}: TIFF holds 1-bit pixels with one sample only, and this bool "
                         f"array has {pixels.shape[-1]} per pixel; write it as uint8 or .npy")
    photometric = "rgb" if axes.endswith("S") and pixels.shape[-1] in (3, 4) else "minisblack"
    if metadata is not None and axes == metadata.axes and metadata.photometric in (
            "rgb", "minisblack", "miniswhite"):
        photometric = metadata.photometric
    options: dict[str, Any] = {"photometric": photometric, "compression": codec}
    if bigtiff is None:
        bigtiff = pixels.nbytes >= BIGTIFF_THRESHOLD
    metadata_out: dict[str, Any] = {"axes": axes}
    imagej = False
    ome = None
    if axes.endswith("S") and pixels.shape[-1] in (2, 4):
        alpha = metadata.extrasamples if metadata is not None and metadata.extrasamples else (2,)
        options["extrasamples"] = alpha
    if metadata is not None:
        if metadata.resolution is not None:
            options["resolution"] = metadata.resolution
            if metadata.resolution_unit is not None:
                options["resolutionunit"] = metadata.resolution_unit
        if metadata.imagej is not None:
            if pixels.dtype not in _IMAGEJ_DTYPES:
                raise ValueError(
                    f"{name}: the input was an ImageJ TIFF, which holds uint8, uint16 or float32 "
                    f"pixels, and this result is {pixels.dtype}: its spacing and unit would be "
                    "lost; convert the result (output='clip' keeps the input's dtype) or write "
                    ".npy")
            imagej = True
            bigtiff = False  # ImageJ writes its data contiguously past 4 GB instead
            metadata_out.update(metadata.imagej)
        elif metadata.ome is not None:
            ome = True
            metadata_out.update(metadata.ome)
        elif metadata.description is not None:
            options["description"] = metadata.description
    if imagej and axes.endswith("S") and photometric != "rgb":
        raise ValueError(f"{name}: ImageJ cannot hold {pixels.shape[-1]} samples per pixel")
    with atomic_write(name) as handle:
        tifffile.imwrite(handle, pixels, bigtiff=bigtiff, imagej=imagej, ome=ome,
                         metadata=metadata_out, **options)


class TiffPageReader:
    """A TIFF stack as a ``(D, H, W[, C])`` array-like whose slices read only their own pages.

    Uncompressed contiguous pixels are read with plain file reads at their offsets; other
    files (compressed, strips scattered) page by page from each page's IFD offset, recorded
    once when the reader is made. Either way a slice's cost does not depend on how deep in
    the file its pages are. Only the path and the offsets travel to Dask workers.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "s.tif")
    >>> write_tiff(path, np.arange(24, dtype=np.uint16).reshape(4, 2, 3), axes="QYX")
    >>> TiffPageReader(path)[2:3, 1].tolist()
    [[15, 16, 17]]
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        with _opened(self.path) as tif:
            shape, dtype, axes, series = _series_of(tif, self.path)
            pages = [page for one in series for page in one.pages]
            first = tif.pages.first
            if first.planarconfig == tifffile.PLANARCONFIG.SEPARATE or first.imagedepth > 1 \
                    or any(page is None for page in pages):
                raise ValueError(f"{self.path!r}: planar or tiled-volume TIFFs are read whole; "
                                 "use imgfilt.io.read_volume")
            self.dtype = np.dtype(dtype)
            self.page_shape = tuple(first.shape)  # (H, W) or (H, W, S)
            self.shape = (len(pages),) + tuple(self.page_shape)
            self.ndim = len(self.shape)
            self.byteorder = tif.byteorder
            offset = series[0].dataoffset if len(series) == 1 else None
            # Contiguous, uncompressed pixels in page order: one raw array at ``offset``.
            self.offset = offset if offset is not None and int(np.prod(shape)) == int(
                np.prod(self.shape)) else None
            self.page_offsets = [int(page.offset) for page in pages]
        self.file_dtype = self.dtype.newbyteorder(self.byteorder)

    def __getitem__(self, index: Any) -> np.ndarray:
        if not isinstance(index, tuple):
            index = (index,)
        index = index + (slice(None),) * (self.ndim - len(index))
        single = isinstance(index[0], (int, np.integer))
        pages = range(self.shape[0])[index[0]:index[0] + 1 or None] if single else \
            range(self.shape[0])[index[0]]
        inner = index[1:]
        # The shape ``inner`` cuts from a page, found on a zero-byte view.
        sizes = np.lib.stride_tricks.as_strided(
            np.zeros(1, bool), self.page_shape, (0,) * len(self.page_shape))[inner].shape
        result = np.empty((len(pages),) + sizes, self.dtype)
        if single:
            return self._fill(result, pages, inner)[0]
        return self._fill(result, pages, inner)

    def _fill(self, result: np.ndarray, pages: range, inner: tuple) -> np.ndarray:
        if not len(pages):
            return result
        if self.offset is not None:
            page_bytes = int(np.prod(self.page_shape)) * self.dtype.itemsize
            with open(self.path, "rb") as handle:
                for row, page in enumerate(pages):
                    handle.seek(self.offset + page * page_bytes)
                    raw = handle.read(page_bytes)
                    if len(raw) != page_bytes:
                        raise ValueError(f"{self.path!r}: the file is shorter than its tags say")
                    result[row] = np.frombuffer(raw, self.file_dtype).reshape(
                        self.page_shape)[inner]
            return result
        with _opened(self.path) as tif, file_errors(self.path, "TIFF"):
            for row, page in enumerate(pages):
                tif.filehandle.seek(self.page_offsets[page])
                pixels = tifffile.TiffPage(tif, index=page).asarray()
                pixels = pixels.reshape(self.page_shape)
                result[row] = pixels[inner]
        return result
