"""Helpers for the command-line tests: run ``python -m imgfilt`` in a folder, make broken files."""
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

import imgfilt

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
#: The source tree under test (it holds the in-place engine), for the subprocess's PYTHONPATH.
SOURCE_ROOT = str(Path(imgfilt.__file__).resolve().parent.parent)


def cli_env():
    return {**os.environ, "PYTHONPATH": SOURCE_ROOT}


def run_cli(*args, cwd, timeout=120):
    """``python -m imgfilt ARGS`` in ``cwd``: the CompletedProcess (text stdout and stderr)."""
    return subprocess.run([sys.executable, "-m", "imgfilt", *map(str, args)], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


def start_cli(*args, cwd):
    """``python -m imgfilt ARGS`` started in the background (for signals)."""
    return subprocess.Popen([sys.executable, "-m", "imgfilt", *map(str, args)], cwd=cwd,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def one_line_error(completed, *words):
    """stderr is exactly one line, names ``words`` and holds no traceback."""
    err = completed.stderr
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=20000, height=20000) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (400 M by default), with no pixels:
    anything that decodes it before checking its size would need gigabytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def broken_files(folder: Path) -> dict:
    """Files that must each fail with a one-line error: name -> a word the error should hold."""
    good = (SAMPLES / "camera.png").read_bytes()
    files = {
        "garbage.png": (b"this is not an image\n" * 10, "not an image"),
        "empty.png": (b"", "not an image"),
        "truncated.png": (good[: len(good) // 3], "truncated"),
        "notes.txt": (b"hello\n", "not an image"),
        "bomb.png": (bomb_png(), "decompression-bomb"),
        "corrupt.npy": (b"\x93NUMPY garbage", ""),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    words = {name: word for name, (_, word) in files.items()}
    words["pickled.npy"] = "allow_pickle=False"
    return words


def leftovers(folder: Path):
    """Temporary files atomic_write would leave if it were interrupted (hidden ``.*.tmp``)."""
    return sorted(str(p) for p in Path(folder).rglob(".*.tmp"))
