"""Whether two arrays may share storage: the same memory, or the same bytes of one file.

``numpy.may_share_memory`` compares addresses, so it cannot see that two ``numpy.memmap``
objects of one file (two mappings at different addresses) hold the same bytes. Writing a result
into one while reading the other would then read half-written values. :func:`may_overlap` also
compares the file behind each array (by device and inode, so links and relative paths are the
same file) and the byte range each array spans in it.

This module imports nothing from imgfilt, so every layer can use it.
"""
from __future__ import annotations

import mmap
import os
from typing import Any, Optional, Tuple

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy < 2
    from numpy import byte_bounds  # type: ignore[attr-defined,no-redef]

__all__ = ["may_overlap", "file_extent"]


def _mapping_root(array: np.ndarray) -> Optional[np.memmap]:
    """The ``numpy.memmap`` that mapped the file ``array``'s memory belongs to, if any."""
    current: Any = array
    for _ in range(10_000):  # base chains are short; a bound keeps a cycle from hanging
        if current is None:
            return None
        base = getattr(current, "base", None)
        if isinstance(current, np.memmap) and isinstance(base, mmap.mmap):
            return current
        if isinstance(current, memoryview):
            base = current.obj
        current = base
    return None


def file_extent(array: np.ndarray) -> Optional[Tuple[Any, int, int]]:
    """``(file, first byte, end byte)`` of the file region ``array`` is mapped from, or None.

    ``file`` is ``(st_dev, st_ino)`` when the file still exists, else its absolute name. Arrays
    mapped without ``numpy.memmap`` (``numpy.frombuffer`` of a raw ``mmap.mmap``) give None: the
    file behind a raw mapping cannot be found.

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.NamedTemporaryFile(suffix=".raw", delete=False).name
    >>> mapped = np.memmap(path, dtype=np.uint8, mode="w+", shape=(100,), offset=0)
    >>> file_extent(mapped[10:20])[1:]
    (10, 20)
    """
    root = _mapping_root(array)
    if root is None or root.filename is None or array.size == 0:
        return None
    name = os.fspath(root.filename)
    try:
        status = os.stat(name)
        key: Any = (status.st_dev, status.st_ino)
    except OSError:
        key = os.path.abspath(name)
    low, high = byte_bounds(array)
    origin = root.__array_interface__["data"][0]
    return key, int(root.offset) + low - origin, int(root.offset) + high - origin


def may_overlap(a: Any, b: Any) -> bool:
    """Whether writing ``a`` may change what ``b`` reads: shared memory, or shared file bytes.

    Conservative, never wrong the other way: it compares the bounds of each array's memory
    (``numpy.may_share_memory``) and of each array's region of a mapped file.

    Examples
    --------
    >>> x = np.zeros(10)
    >>> may_overlap(x[:5], x[5:]), may_overlap(x[:6], x[5:])
    (False, True)
    """
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    if a.size == 0 or b.size == 0:
        return False
    if np.may_share_memory(a, b):
        return True
    extent_a = file_extent(a)
    if extent_a is None:
        return False
    extent_b = file_extent(b)
    if extent_b is None or extent_a[0] != extent_b[0]:
        return False
    return extent_a[1] < extent_b[2] and extent_b[1] < extent_a[2]
