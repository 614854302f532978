"""The file boundary: every failure to read or write a file becomes the documented error.

Readers of untrusted files (NumPy's ``.npy`` header parser, zip archives, Pillow's decoders,
tifffile) raise whatever their parsers happen to hit on a broken file: ``tokenize.TokenError``,
``struct.error``, ``KeyError``, ``EOFError``, ``NotImplementedError``, ``zlib.error`` and more.
imgfilt documents two: :class:`ValueError` for a file that is not what it claims to be, and
:class:`OSError` for a file that cannot be opened or read. :func:`file_errors` is the one place
that turns the others into those, with the file's name in the message.

This module imports nothing from imgfilt, so every layer can use it.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

__all__ = ["file_errors", "file_error", "name_of", "MAX_BYTES"]

#: A single array imgfilt would allocate beyond this many bytes (64 TiB) is refused with
#: ValueError before allocation: no machine has that memory, and the size is most likely a
#: mistake (a huge pad, sigma or kernel).
MAX_BYTES = 1 << 46


def name_of(path: Any) -> str:
    """The text that names ``path`` in messages: the path itself, or a file object's name."""
    if isinstance(path, (str, bytes, os.PathLike)):
        name = os.fspath(path)
        return name.decode(errors="replace") if isinstance(name, bytes) else name
    name = getattr(path, "name", None)
    return name if isinstance(name, str) else repr(path)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _names(error: BaseException, name: str) -> bool:
    """Whether ``error``'s message (or an OSError's filename) already names the file."""
    if isinstance(error, OSError) and error.filename is not None:
        return True
    return bool(name) and name in str(error)


def file_error(path: Any, error: BaseException, kind: str = "", action: str = "read"
               ) -> BaseException:
    """The documented exception for ``error``, raised while ``action``-ing ``path``.

    * ``MemoryError`` and exceptions that are not ``Exception`` (``KeyboardInterrupt``,
      ``SystemExit``) are returned unchanged.
    * A ``ValueError`` or ``OSError`` that already names the file is returned unchanged; one that
      does not becomes the same kind of error (an ``OSError`` keeps its errno and subclass) with
      the file's name.
    * Anything else (a parser's ``KeyError``, ``struct.error``, ``tokenize.TokenError``...)
      becomes a ``ValueError`` naming the file, the original type and its message.

    Parameters
    ----------
    path : str, os.PathLike or file object
        The file.
    error : BaseException
        What the reader or writer raised.
    kind : str
        What the file should be, for the message: ``".npy"``, ``"TIFF"``, ``"PNG"``...
    action : {"read", "write"}

    Examples
    --------
    >>> import struct
    >>> str(file_error("a.tif", struct.error("unpack requires a buffer of 4 bytes"), "TIFF"))
    "'a.tif' is not a readable TIFF file (struct.error: unpack requires a buffer of 4 bytes)"
    >>> file_error("b.npy", FileNotFoundError(2, "No such file or directory", "b.npy")).filename
    'b.npy'
    """
    if not isinstance(error, Exception) or isinstance(error, MemoryError):
        return error
    name = name_of(path)
    if isinstance(error, (ValueError, OSError)) and _names(error, name):
        return error
    what = f"{kind} file" if kind else "file"
    text = str(error).strip()
    if action == "read":
        prefix = f"{name!r} is not a readable {what}"
    else:
        prefix = f"cannot {action} {name!r} as a {what}"
    if isinstance(error, OSError):
        if error.errno is not None:
            # OSError(errno, strerror, filename) picks the subclass (FileNotFoundError...) itself.
            return OSError(error.errno, error.strerror or text, name)
        message = f"{prefix} ({text or type(error).__name__})"
        try:
            return type(error)(message)  # keep Pillow's UnidentifiedImageError and the like
        except Exception:  # noqa: BLE001 - a subclass with another constructor
            return OSError(message)
    if isinstance(error, ValueError):
        return ValueError(f"{prefix} ({text or type(error).__name__})")
    reason = f"{_type_name(error)}: {text}" if text else _type_name(error)
    return ValueError(f"{prefix} ({reason})")


@contextlib.contextmanager
def file_errors(path: Any, kind: str = "", action: str = "read") -> Iterator[None]:
    """Within the block, any exception becomes :func:`file_error`'s documented one.

    Parameters
    ----------
    path : str, os.PathLike or file object
        The file being read or written; its name goes into the message.
    kind : str
        What the file should be (``".npy"``, ``"TIFF"``...), for the message.
    action : {"read", "write"}

    Examples
    --------
    >>> with file_errors("weights.npz", ".npz"):
    ...     {}["w"]
    Traceback (most recent call last):
    ...
    ValueError: 'weights.npz' is not a readable .npz file (KeyError: 'w')
    """
    try:
        yield
    except Exception as error:
        replacement = file_error(path, error, kind, action)
        if replacement is error:
            raise
        raise replacement from error
