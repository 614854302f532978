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
import zipfile
from typing import IO, Iterator, Union

import numpy as np
from PIL import Image, ImageSequence

from .arrays import array_to_pil, pil_to_array

__all__ = ["read_volume", "write_volume", "atomic_write", "load_npy", "load_npz",
           "VOLUME_SUFFIXES"]

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


def _untrusted_file_error(path: PathLike, kind: str, error: BaseException) -> ValueError:
    """The ValueError for a ``.npy``/``.npz`` that NumPy cannot read without pickle, or at all."""
    name = os.fspath(path)
    reason = str(error).strip() or type(error).__name__
    if "allow_pickle" in reason:
        return ValueError(
            f"{name!r} holds pickled Python objects, which imgfilt never loads "
            f"(allow_pickle=False: unpickling can run arbitrary code); save plain numeric "
            f"arrays with numpy.save/savez instead"
        )
    return ValueError(f"{name!r} is not a readable {kind} file ({reason})")


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
    try:
        loaded = np.load(os.fspath(path), allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _untrusted_file_error(path, ".npy", error) from None
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
    try:
        loaded = np.load(os.fspath(path), allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise ValueError("it is a single .npy array, not an archive")
        with loaded as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise _untrusted_file_error(path, ".npz", error) from None


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
    with Image.open(os.fspath(path)) as stack:
        pages = [pil_to_array(page) for page in ImageSequence.Iterator(stack)]
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
    try:
        pages = [array_to_pil(page) for page in array]
    except ValueError as error:
        raise ValueError(f"cannot write volume of {array.dtype} {array.shape} as TIFF: {error}; "
                         "use .npy for other dtypes") from None
    with atomic_write(path) as handle:
        pages[0].save(handle, format="TIFF", save_all=True, append_images=pages[1:])
