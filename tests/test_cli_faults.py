"""The command line under faults (issue 9): bad files in a batch, SIGTERM mid-batch.

These tests drive ``imgfilt apply FILTER INPUT... --out-dir DIR`` (the batch form of the CLI
issue, issue 4) and the single-input form ``imgfilt apply FILTER INPUT -o OUT`` in a child
process. A CLI without ``--out-dir`` fails the batch tests (it does not skip them): batches are
part of the contract.

Promises tested: every good file is processed; every bad one (corrupt, truncated, zero-byte,
wrong extension, unreadable, decompression bomb) is reported on one stderr line naming it, with
no traceback; exit status 1; no output, partial or whole, for a bad file and no temporary files
left; inputs untouched; after SIGTERM only complete outputs exist.
"""
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgfilt

ENV = {**os.environ, "PYTHONPATH": str(Path(imgfilt.__file__).parent.parent)}
FILTER = "box"


def as_unprivileged():
    """A command prefix under which file permissions apply: root reads a mode-000 file, so as
    root the child runs without the capabilities that bypass permission checks."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root needs setpriv (util-linux) to make a file unreadable")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


def imgfilt_command(*args):
    return as_unprivileged() + [sys.executable, "-m", "imgfilt", *args]


def require_batch_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "imgfilt", "apply", "--help"], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, check=False, timeout=60)
    if "--out-dir" not in done.stdout:
        pytest.fail("this imgfilt has no 'apply ... --out-dir DIR' (the batch CLI of issue 4)")


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(width=40_000, height=40_000):
    """A 100-byte PNG that claims 1.6 gigapixels: Pillow's decompression-bomb check refuses it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def good_image(rng, index, size=(12, 10)):
    if index % 3 == 0:
        return Image.fromarray(rng.integers(0, 256, size=size[::-1], dtype=np.uint8))  # L
    return Image.fromarray(rng.integers(0, 256, size=size[::-1] + (3,), dtype=np.uint8))


BAD_KINDS = ("corrupt", "truncated", "zero-byte", "wrong-extension", "unreadable", "bomb")


def write_bad(path, kind, rng):
    """Write a bad input of ``kind`` at ``path``; returns the path."""
    whole = path.with_suffix(".whole.png")
    good_image(rng, 1).save(whole)
    data = whole.read_bytes()
    whole.unlink()
    if kind == "corrupt":
        path.write_bytes(data[:16] + bytes(rng.integers(0, 256, size=200, dtype=np.uint8)))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "wrong-extension":  # another kind of file under an image's name
        # (Images are read by content: a JPEG named .png is a good file, see the batch test.)
        path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n")
    elif kind == "unreadable":
        path.write_bytes(data)
        path.chmod(0)
    elif kind == "bomb":
        path.write_bytes(bomb_png())
    return path


def digest(path):
    mode = path.stat().st_mode
    path.chmod(0o600)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest(), mode
    finally:
        path.chmod(mode)


def expected_output(source):
    with Image.open(source) as image:
        image.load()
        return np.asarray(imgfilt.apply(image, FILTER))


def test_a_batch_with_bad_files_processes_the_good_ones_and_names_the_bad(tmp_path):
    require_batch_cli(tmp_path)
    rng = np.random.default_rng(12)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    good, bad = [], []
    for index in range(200):
        path = inputs / f"{index:03d}.png"
        if index % 10 == 5:  # 20 bad files, spread through the batch, every kind
            bad.append(write_bad(path, BAD_KINDS[(index // 10) % len(BAD_KINDS)], rng))
        elif index % 50 == 7:  # a JPEG named .png: Pillow reads by content, so it is good
            good_image(rng, index).save(path, format="JPEG")
            good.append(path)
        else:
            good_image(rng, index).save(path)
            good.append(path)
    before = {path: digest(path) for path in good + bad}
    done = subprocess.run(
        imgfilt_command("apply", FILTER, *map(str, good + bad), "--out-dir", str(outputs),
                        "--quiet", "-j", "2"),
        cwd=tmp_path, env=ENV, capture_output=True, text=True, check=False,
        timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    for path in bad:
        naming = [line for line in lines if str(path) in line]
        assert len(naming) == 1, (path.name, lines)
        assert naming[0].startswith("imgfilt: ")
    assert len(lines) == len(bad), lines  # nothing about the good files
    written = sorted(p.name for p in outputs.iterdir())
    assert written == sorted(p.name for p in good)  # no output for a bad file, no temporaries
    for path in good:
        with Image.open(outputs / path.name) as result:
            result.load()
            pixels = np.asarray(result)
        if path.name.endswith("7.png") and int(path.stem) % 50 == 7:
            assert pixels.shape == expected_output(path).shape  # JPEG out: lossy, shape only
        else:
            np.testing.assert_array_equal(pixels, expected_output(path))
    assert {path: digest(path) for path in good + bad} == before  # inputs untouched


@pytest.mark.parametrize("kind", BAD_KINDS + ("missing", "directory"))
def test_one_bad_input_is_one_line_exit_one_and_no_output(tmp_path, kind):
    rng = np.random.default_rng(13)
    source = tmp_path / "photo.png"
    if kind == "missing":
        pass
    elif kind == "directory":
        source.mkdir()
    else:
        source = write_bad(source, kind, rng)
    before = digest(source) if source.is_file() else None
    target = tmp_path / "result.png"
    done = subprocess.run(imgfilt_command("apply", FILTER, str(source), "-o", str(target)),
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imgfilt: ") and source.name in lines[0], lines
    assert not target.exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ([] if kind == "missing" else [source.name])  # no temporaries
    if before is not None:
        assert digest(source) == before


def test_sigterm_mid_batch_leaves_only_complete_outputs(tmp_path):
    require_batch_cli(tmp_path)
    rng = np.random.default_rng(14)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    sources = []
    for index in range(80):
        path = inputs / f"{index:03d}.png"
        good_image(rng, 1, size=(320, 240)).save(path)
        sources.append(path)
    before = {path: digest(path) for path in sources}
    # A slow filter (a 49x49 Gaussian per channel, ~0.1 s a file) on one worker: the kill
    # lands mid-batch, most likely while a file is being filtered or written.
    child = subprocess.Popen(
        [sys.executable, "-m", "imgfilt", "apply", "gaussian", "--set", "sigma=6",
         *map(str, sources), "--out-dir", str(outputs), "--quiet", "-j", "1"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if outputs.is_dir() and sum(not p.name.startswith(".") for p in outputs.iterdir()) >= 2:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode != 0, "the batch ended normally before SIGTERM: make it longer"
    assert "Traceback" not in stderr
    names = sorted(p.name for p in outputs.iterdir())
    assert names and all(not name.startswith(".") for name in names), names  # no temporaries
    assert len(names) < len(sources), "every file was written before SIGTERM: make it longer"
    for name in names:  # every output there is whole and right
        with Image.open(outputs / name) as result:
            result.load()
            pixels = np.asarray(result)
        with Image.open(inputs / name) as image:
            image.load()
            expected = np.asarray(imgfilt.apply(image, "gaussian", sigma=6))
        np.testing.assert_array_equal(pixels, expected)
    assert {path: digest(path) for path in sources} == before
