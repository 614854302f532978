"""Reading and writing volumes (``.npy`` and multi-page TIFF), with atomic writes.

TIFF goes through tifffile (:mod:`imgfilt.tiff`): every dtype, 16-bit colour, BigTIFF,
compression and ImageJ/OME metadata, read and written back exactly.

Every write goes to a temporary file in the destination's directory, then ``os.replace``: a
crash or a full disk never leaves a half-written file under the final name.
"""
from __future__ import annotations

import os
import zipfile
from typing import Union

import numpy as np
from PIL import Image, ImageFile

from . import pictures, tiff
from .arrays import pil_to_array
from .errors import file_errors
from .files import atomic_write, check_regular_file, clean_stale_temporaries, memory_budget

__all__ = ["read_volume", "read_volume_with_metadata", "write_volume", "atomic_write", "load_npy",
           "load_npz", "check_npz_sizes", "memory_budget", "check_regular_file",
           "clean_stale_temporaries", "check_strips", "VOLUME_SUFFIXES", "read_image"]

PathLike = Union[str, "os.PathLike[str]"]

VOLUME_SUFFIXES = (".npy", ".tif", ".tiff")


def _refuse_pickle(path: PathLike, error: ValueError) -> None:
    """Reword NumPy's refusal to unpickle (its message names no file and says to allow it)."""
    if "allow_pickle" in str(error):
        raise ValueError(
            f"{os.fspath(path)!r} holds pickled Python objects, which imgfilt never loads "
            f"(allow_pickle=False: unpickling can run arbitrary code); save plain numeric "
            f"arrays with numpy.save/savez instead"
        ) from None


def load_npy(path: PathLike) -> np.ndarray:
    """Read a ``.npy`` array without ever unpickling: a pickle-bearing file is refused.

    Raises
    ------
    ValueError
        The file holds Python objects (a pickle), is truncated, or is not a ``.npy`` array;
        the message names the file. A missing or unreadable file raises :class:`OSError`.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(path, np.arange(3))
    >>> load_npy(path).tolist()
    [0, 1, 2]
    """
    check_regular_file(path)
    with file_errors(path, ".npy"):
        try:
            loaded = np.load(os.fspath(path), allow_pickle=False)
        except ValueError as error:
            _refuse_pickle(path, error)
            raise
    if not isinstance(loaded, np.ndarray):  # an .npz archive under a .npy name
        loaded.close()
        raise ValueError(f"{os.fspath(path)!r} is an .npz archive, not a .npy array")
    return loaded


def check_npz_sizes(path: PathLike, budget: int | None = None) -> None:
    """Refuse an ``.npz`` whose arrays would not fit, before any is inflated.

    Each member's ``.npy`` header (a few hundred bytes, the only part inflated) must declare
    exactly the bytes the zip directory declares for it, and all arrays together must fit in
    ``budget`` (default :func:`memory_budget`). A zip bomb (a few MB declaring gigabytes) is
    refused here with a ValueError naming the file, the member and the sizes.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez_compressed(path, w=np.zeros(1000))
    >>> check_npz_sizes(path, budget=8000)
    >>> check_npz_sizes(path, budget=7999)
    Traceback (most recent call last):
    ...
    ValueError: ...a.npz': its arrays need 8000 bytes once inflated, more than the 7999 available...
    """
    name = os.fspath(path)
    budget = memory_budget() if budget is None else budget
    total = 0
    with zipfile.ZipFile(name) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                continue
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(handle)
                                   if version == (1, 0) else
                                   np.lib.format.read_array_header_2_0(handle))
                header = handle.tell()
            if dtype.hasobject:
                continue  # refused as a pickle when read
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if header + declared != member.file_size:
                raise ValueError(
                    f"{name!r}: member {member.filename} declares an array of {declared} bytes "
                    f"{shape} {dtype} but holds {member.file_size - header}; the archive is "
                    "corrupt")
            total += declared
    if total > budget:
        raise ValueError(
            f"{name!r}: its arrays need {total} bytes once inflated, more than the {budget} "
            f"available (a {os.path.getsize(name)}-byte archive; a zip bomb?); nothing was "
            "inflated")


def load_npz(path: PathLike) -> dict:
    """Read every array of a ``.npz`` archive, without ever unpickling.

    Returns a ``dict`` of name -> array. Raises ValueError naming the file when an entry holds
    Python objects (a pickle) or the file is not a readable archive; OSError when it cannot
    be opened.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez(path, w=np.ones(2))
    >>> load_npz(path)["w"].tolist()
    [1.0, 1.0]
    """
    check_regular_file(path)
    with file_errors(path, ".npz"):
        check_npz_sizes(path)
        loaded = np.load(os.fspath(path), allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise ValueError(f"{os.fspath(path)!r} is a single .npy array, not an .npz archive")
        with loaded as archive:
            try:
                return {name: archive[name] for name in archive.files}
            except ValueError as error:
                _refuse_pickle(path, error)
                raise


def check_strips(image: ImageFile.ImageFile, path: PathLike) -> None:
    """Refuse a TIFF page whose strips or tiles do not cover it, before it is decoded.

    Pillow decodes the strips a page lists and leaves the rest of the page blank: a corrupt
    header that claims 5 million rows over 5 rows of data would give an image of zeros (and
    hundreds of megabytes) instead of an error. Call this after ``Image.open`` or ``seek``,
    before ``load``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> Image.new("L", (4, 3)).save(path)
    >>> with Image.open(path) as page:
    ...     check_strips(page, path)
    """
    if image.format != "TIFF" or not image.tile:
        return
    width, height = image.size
    covered = 0
    for tile in image.tile:
        # No extents: the tile is the whole page (as Pillow's decoder.setimage reads it).
        left, top, right, bottom = (0, 0, width, height) if tile[1] is None else tile[1]
        covered += max(0, min(right, width) - max(left, 0)) * max(0, min(bottom, height) - max(top, 0))
    if covered < width * height:
        raise ValueError(
            f"{os.fspath(path)!r} is truncated or corrupt: the strips of page {image.tell()} "
            f"hold {covered} of its {width} x {height} = {width * height} pixels"
        )


def _suffix(path: PathLike, argument: str) -> str:
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in VOLUME_SUFFIXES:
        raise ValueError(
            f"{argument} must end in one of {', '.join(VOLUME_SUFFIXES)}, got {os.fspath(path)!r}"
        )
    return suffix


def read_volume(path: PathLike) -> np.ndarray:
    """Read a volume: ``(D, H, W)`` or ``(D, H, W, C)`` from ``.npy`` or a multi-page TIFF.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file (any shape and real dtype; loaded with ``allow_pickle=False``) or a
        ``.tif``/``.tiff`` whose pages all have the same size and mode (one page gives ``D = 1``).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "v.tif")
    >>> write_volume(path, np.zeros((3, 4, 5), np.uint16))
    >>> read_volume(path).shape, read_volume(path).dtype
    ((3, 4, 5), dtype('uint16'))
    """
    return read_volume_with_metadata(path)[0]


def read_volume_with_metadata(path: PathLike) -> tuple[np.ndarray, "tiff.TiffMetadata | None"]:
    """:func:`read_volume`, and the TIFF's metadata (None for ``.npy``) for :func:`write_volume`.

    A TIFF is read by :func:`imgfilt.tiff.read_tiff` (every dtype, exactly; the pixel limit
    counts every page); its axes before the page's ``(H, W[, C])`` are folded into ``D``.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "v.tif")
    >>> write_volume(path, np.zeros((3, 4, 5), np.int16))
    >>> volume, metadata = read_volume_with_metadata(path)
    >>> volume.dtype, metadata.axes
    (dtype('int16'), 'QYX')
    """
    suffix = _suffix(path, "path")
    if suffix == ".npy":
        return load_npy(path), None
    pixels, metadata = tiff.read_tiff(path)
    return tiff.as_volume(pixels, metadata), metadata


def read_image(path: PathLike) -> np.ndarray:
    """One image from a file, exactly: ``(H, W)`` or ``(H, W, C)`` in the file's own dtype.

    A ``.npy`` array as it is; a TIFF's only page through tifffile (every dtype, bit for bit);
    any other picture's only frame through Pillow, upright (EXIF orientation applied), a 16-bit
    colour PNG refused rather than truncated (:func:`imgfilt.pictures.read_picture`). A file of
    several pages or frames is refused by name: which one was meant is the caller's to say.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "deep.tif")
    >>> write_volume(path, np.full((1, 4, 5, 3), 40000, np.uint16))
    >>> read_image(path).shape, int(read_image(path).max())
    ((4, 5, 3), 40000)
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix == ".npy":
        return load_npy(path)
    if suffix in (".tif", ".tiff"):
        pages = read_volume(path)
        _one_image(path, len(pages), "pages")
        return pages[0]
    frames = pictures.read_picture(path).frames
    _one_image(path, len(frames), "frames")
    return pil_to_array(frames[0])


def _one_image(path: PathLike, count: int, what: str) -> None:
    if count != 1:
        raise ValueError(f"{os.fspath(path)}: holds {count} {what}, one image was expected; "
                         "save the one meant on its own (or as .npy)")


def write_volume(path: PathLike, volume: np.ndarray, metadata: "tiff.TiffMetadata | None" = None,
                 *, compression: str | None = "zlib") -> None:
    """Write a ``(D, H, W)`` or ``(D, H, W, C)`` volume to ``.npy`` or a multi-page TIFF, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` takes any real array. ``.tif``/``.tiff`` take one page per slice ``D``, any
        dtype (:func:`imgfilt.tiff.write_tiff`); a last axis of 3 or 4 is RGB(A).
    volume : numpy.ndarray
    metadata : imgfilt.tiff.TiffMetadata, optional
        From :func:`read_volume_with_metadata`: the TIFF's axes, resolution and ImageJ/OME
        metadata are written back.
    compression : str or None
        TIFF compression (default ``'zlib'``; ``'lzma'``, ``'none'``).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "v.npy")
    >>> write_volume(path, np.ones((2, 3, 3)))
    >>> float(read_volume(path).sum())
    18.0
    """
    suffix = _suffix(path, "path")
    array = np.asarray(volume)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"volume must hold real numbers, got dtype {array.dtype}")
    if suffix == ".npy":
        with atomic_write(path) as handle:
            np.save(handle, array, allow_pickle=False)
        return
    if array.ndim not in (3, 4):
        raise ValueError(f"a TIFF volume must be (D, H, W) or (D, H, W, C), got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"volume is empty (shape {array.shape}); a TIFF holds at least one page "
                         "of at least one pixel (.npy holds empty arrays)")
    tiff.write_tiff(path, array, metadata, compression=compression,
                    axes="QYX" if array.ndim == 3 else "QYXS")
