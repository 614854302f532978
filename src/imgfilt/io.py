"""Reading and writing volumes (``.npy`` and multi-page TIFF), with atomic writes.

Multi-page TIFF goes through Pillow, which reads and writes page sequences of uint8 (L, RGB,
RGBA), uint16 (I;16), int32 (I) and float32 (F) exactly, so tifffile is not needed. Other dtypes
(float64, int16, bool, ...) are refused for TIFF with a pointer to ``.npy``, which holds any
dtype.

Every write goes to a temporary file in the destination's directory, then ``os.replace``: a
crash or a full disk never leaves a half-written file under the final name.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Union

import numpy as np
from PIL import Image, ImageSequence

from .arrays import array_to_pil, pil_to_array
from .errors import file_errors

__all__ = ["read_volume", "write_volume", "atomic_write", "load_npy", "load_npz",
           "check_strips", "VOLUME_SUFFIXES"]

PathLike = Union[str, "os.PathLike[str]"]

VOLUME_SUFFIXES = (".npy", ".tif", ".tiff")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which races with other threads.
_UMASK = _read_umask()


def _new_file_mode(final: str) -> int:
    """The permissions ``final`` gets: an existing file's own, else what open() would give."""
    try:
        return os.stat(final).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with atomic_write(target) as handle:
    ...     _ = handle.write(b"data")
    >>> open(target, "rb").read()
    b'data'
    """
    final = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(final))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(final) + ".", suffix=".tmp"
    )
    try:
        # mkstemp makes the file private (0600); the result should be an ordinary file.
        os.chmod(temporary, _new_file_mode(final))
        with os.fdopen(descriptor, "w+b") as handle:  # TIFF page appending reads back
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


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
    with file_errors(path, ".npz"):
        loaded = np.load(os.fspath(path), allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise ValueError(f"{os.fspath(path)!r} is a single .npy array, not an .npz archive")
        with loaded as archive:
            try:
                return {name: archive[name] for name in archive.files}
            except ValueError as error:
                _refuse_pickle(path, error)
                raise


def check_strips(image: Image.Image, path: PathLike) -> None:
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
        left, top, right, bottom = tile[1]
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
    suffix = _suffix(path, "path")
    if suffix == ".npy":
        return load_npy(path)
    pages = []
    with file_errors(path, "TIFF"), Image.open(os.fspath(path)) as stack:
        for page in ImageSequence.Iterator(stack):
            check_strips(page, path)
            pages.append(pil_to_array(page))
    first = pages[0]
    for index, page in enumerate(pages):
        if page.shape != first.shape or page.dtype != first.dtype:
            raise ValueError(
                f"{os.fspath(path)!r}: page {index} is {page.shape} {page.dtype}, page 0 is "
                f"{first.shape} {first.dtype}; a volume needs equal pages"
            )
    return np.stack(pages)


def write_volume(path: PathLike, volume: np.ndarray) -> None:
    """Write a ``(D, H, W)`` or ``(D, H, W, C)`` volume to ``.npy`` or a multi-page TIFF, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` takes any real array. ``.tif``/``.tiff`` take one page per slice ``D``:
        uint8 with 1-4 channels, or single-channel uint16, int32 or float32.
    volume : numpy.ndarray

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
    try:
        pages = [array_to_pil(page) for page in array]
    except ValueError as error:
        raise ValueError(f"cannot write volume of {array.dtype} {array.shape} as TIFF: {error}; "
                         "use .npy for other dtypes") from None
    with atomic_write(path) as handle:
        pages[0].save(handle, format="TIFF", save_all=True, append_images=pages[1:])
