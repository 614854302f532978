"""Files on disk, below every reader and writer: atomic writes (and the temporary files an
interrupted one leaves), regular files only, and the resource limits a file is checked against
before it is decoded (pixels of all pages and frames, memory for inflated archives).

Imports nothing from imgfilt, so every file format module (:mod:`imgfilt.io`,
:mod:`imgfilt.tiff`, :mod:`imgfilt.pictures`) can use it.
"""
from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile
import warnings
from typing import IO, TYPE_CHECKING, Iterator, Optional, Union

from PIL import Image

if TYPE_CHECKING:  # types.EllipsisType is Python 3.10+; annotations only
    from types import EllipsisType

__all__ = ["atomic_write", "clean_stale_temporaries", "temporary_name_pattern",
           "check_regular_file", "check_pixel_count", "memory_budget"]

PathLike = Union[str, "os.PathLike[str]"]


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


def _lock(descriptor: int) -> bool:
    """Hold an exclusive advisory lock on an open file (released when it is closed or the
    process dies); False when another process holds it, or where there is no flock."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, so stale files are never judged stale
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def temporary_name_pattern(path: PathLike) -> str:
    """The glob of the temporary files :func:`atomic_write` makes for ``path``."""
    final = os.fspath(path)
    return os.path.join(os.path.dirname(os.path.abspath(final)),
                        "." + glob.escape(os.path.basename(final)) + ".*.tmp")


def clean_stale_temporaries(path: PathLike) -> list[str]:
    """Remove the temporary files an interrupted write of ``path`` left behind.

    A write in progress holds a lock on its temporary file (:func:`atomic_write`); a file
    nobody holds was left by a process that was killed, and is removed. Returns the removed
    paths.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, ".a.png.x1y2.tmp"), "wb").close()   # a killed run's
    >>> [os.path.basename(p) for p in clean_stale_temporaries(os.path.join(folder, "a.png"))]
    ['.a.png.x1y2.tmp']
    """
    removed = []
    for candidate in glob.glob(temporary_name_pattern(path)):
        try:
            descriptor = os.open(candidate, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode) or not _lock(descriptor):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate)
                removed.append(candidate)
        finally:
            os.close(descriptor)
    return removed


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    The temporary file (``.<name>.<random>.tmp``) is locked while it is written, so that a
    later write of the same ``path`` can tell one left by a killed process and remove it
    (:func:`clean_stale_temporaries`).

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
    clean_stale_temporaries(final)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(final) + ".", suffix=".tmp"
    )
    try:
        _lock(descriptor)  # held until the descriptor is closed below
        # mkstemp makes the file private (0600); the result should be an ordinary file.
        os.chmod(temporary, _new_file_mode(final))
        # Opened by name so that handle.name is a path (tifffile needs it); read-write because
        # TIFF writers read back what they wrote.
        with open(temporary, "r+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(descriptor)


def check_regular_file(path: PathLike) -> None:
    """Refuse a FIFO, socket or device before it is opened (opening a FIFO for reading blocks
    until a writer comes). A missing file passes: its reader reports it in its own words.

    Examples
    --------
    >>> check_regular_file("/dev/null")
    Traceback (most recent call last):
    ...
    ValueError: '/dev/null' is not a regular file (a character device); imgfilt reads files only
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "a character device" if stat.S_ISCHR(mode) else "a block device"
            if stat.S_ISBLK(mode) else "not a file")
    raise ValueError(f"{name!r} is not a regular file ({kind}); imgfilt reads files only")


def memory_budget() -> int:
    """The bytes an archive may inflate to: the address-space limit (``ulimit -v``) when one is
    set, else the machine's physical memory.

    Examples
    --------
    >>> memory_budget() > 0
    True
    """
    budget = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(
        os, "sysconf") else 1 << 62
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            budget = min(budget, soft)
    except (ImportError, OSError, ValueError):  # not on POSIX
        pass
    return int(budget)


#: A decompression-bomb limit (``limit=``, ``max_pixels=``): a number of pixels, None (no limit)
#: or ``...``, the default: Pillow's :data:`PIL.Image.MAX_IMAGE_PIXELS`, read at each call.
PixelLimit = Union[int, None, "EllipsisType"]


def check_pixel_count(pixels: int, name: str, limit: PixelLimit = ...) -> None:
    """Pillow's decompression-bomb rule applied to a file's pixels, all pages and frames counted.

    Above ``limit`` (default :data:`PIL.Image.MAX_IMAGE_PIXELS`; None: no limit) a
    :class:`PIL.Image.DecompressionBombWarning` is issued, above twice the limit a
    :class:`PIL.Image.DecompressionBombError` is raised, as Pillow does for one frame; the
    command line turns the warning into an error.

    Examples
    --------
    >>> check_pixel_count(100, "a.tif", limit=1000)
    """
    if limit is ...:
        limit = Image.MAX_IMAGE_PIXELS
    if limit is None:
        return
    if pixels > 2 * limit:
        raise Image.DecompressionBombError(
            f"{name}: image size ({pixels} pixels) of all pages and frames exceeds limit of "
            f"{2 * limit} pixels, could be decompression bomb DOS attack.")
    if pixels > limit:
        warnings.warn(Image.DecompressionBombWarning(
            f"{name}: image size ({pixels} pixels) of all pages and frames exceeds limit of "
            f"{limit} pixels, could be decompression bomb DOS attack."), stacklevel=2)
