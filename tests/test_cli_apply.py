"""``imgfilt apply``: outputs equal the library's, batches, bad files, atomic writes, signals.

The command runs as a subprocess in a temporary folder (see cli_support.run_cli)."""
import hashlib
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_support import (
    SAMPLES,
    broken_files,
    cli_env,
    leftovers,
    one_line_error,
    run_cli,
    start_cli,
)
from PIL import Image

import imgfilt
from imgfilt.io import read_volume, write_volume

RNG = np.random.default_rng(11)


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def photo(tmp_path):
    """A crop of a sample photo, small enough for quick runs."""
    path = tmp_path / "photo.png"
    with Image.open(SAMPLES / "chelsea.png") as image:
        image.crop((100, 50, 228, 146)).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# One input


def test_readme_main_job_equals_the_library(tmp_path):
    done = run_cli("apply", "sobel", SAMPLES / "coffee.png", "-o", "coffee-edges.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "coffee-edges.png" and done.stderr == ""
    expected = np.asarray(imgfilt.apply(Image.open(SAMPLES / "coffee.png"), "sobel"))
    np.testing.assert_array_equal(pixels(tmp_path / "coffee-edges.png"), expected)


def test_options_reach_the_library(photo, tmp_path):
    source = Image.open(photo)
    cases = [
        (["gaussian", "--set", "sigma=2", "--set", "radius=4"], {"filter": "gaussian", "sigma": 2.0, "radius": 4}),
        (["sobel_x", "--output", "abs", "--padding-mode", "edge"],
         {"filter": "sobel_x", "output": "abs", "padding_mode": "replicate"}),
        (["box", "--set", "size=5", "--stride", "2", "--dilation", "2,1"],
         {"filter": "box", "size": 5, "stride": 2, "dilation": (2, 1)}),
        (["laplacian", "--output", "rescale", "--gray"], {"filter": "laplacian", "output": "rescale"}),
        (["edge", "--set", "channel=1", "--set", "direction=horizontal"],
         {"filter": "edge", "channel": 1, "direction": "horizontal"}),
    ]
    for index, (argv, call) in enumerate(cases):
        out = tmp_path / f"out{index}.png"
        done = run_cli("apply", argv[0], photo.name, *argv[1:], "-o", out.name, cwd=tmp_path)
        assert done.returncode == 0, (argv, done.stderr)
        image = source.convert("L") if "--gray" in argv else source
        name = call.pop("filter")
        expected = np.asarray(imgfilt.apply(image, name, **call))
        np.testing.assert_array_equal(pixels(out), expected, err_msg=str(argv))


def test_default_output_name_formats_and_npy(photo, tmp_path):
    done = run_cli("apply", "sharpen", photo.name, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "photo.sharpen.png", done.stderr
    expected = np.asarray(imgfilt.apply(Image.open(photo), "sharpen"))
    np.testing.assert_array_equal(pixels(tmp_path / "photo.sharpen.png"), expected)
    for ext, fmt in ((".tif", "TIFF"), (".bmp", "BMP"), (".webp", "WEBP"), (".jpg", "JPEG")):
        done = run_cli("apply", "sharpen", photo.name, "-o", f"s{ext}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        with Image.open(tmp_path / f"s{ext}") as written:
            assert written.format == fmt and written.size == (128, 96) and written.mode == "RGB"
            if ext in (".tif", ".bmp"):  # lossless
                np.testing.assert_array_equal(np.asarray(written), expected)
    # .npy: the float result of the library on the pixels
    done = run_cli("apply", "sobel_y", photo.name, "-o", "s.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = imgfilt.apply(np.asarray(Image.open(photo)), "sobel_y", output="float")
    result = np.load(tmp_path / "s.npy")
    assert result.dtype == np.float32 and result.shape == (96, 128, 3)
    np.testing.assert_array_equal(result, expected)
    assert result.min() < 0  # the negative responses are kept


def test_kernel_files_and_banks(photo, tmp_path):
    kernel = RNG.normal(size=(3, 5))
    np.save(tmp_path / "k.npy", kernel)
    done = run_cli("apply", "k.npy", photo.name, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "photo.k.png", done.stderr
    np.testing.assert_array_equal(pixels(tmp_path / "photo.k.png"),
                                  np.asarray(imgfilt.apply(Image.open(photo), kernel)))
    bank = imgfilt.FilterBank(RNG.normal(size=(4, 3, 3, 3)))
    bank.save(tmp_path / "bank.npz")
    done = run_cli("apply", "bank.npz", photo.name, "-o", "maps.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"), bank.apply(Image.open(photo)),
                               rtol=1e-6)
    done = run_cli("apply", "bank.npz", photo.name, "-o", "maps.png", cwd=tmp_path)
    one_line_error(done, ".npy")
    assert done.returncode == 1 and not (tmp_path / "maps.png").exists()


def test_volumes_npy_and_multipage_tiff(tmp_path):
    volume = RNG.integers(0, 60000, size=(5, 12, 14)).astype(np.uint16)
    write_volume(tmp_path / "v.tif", volume)
    np.save(tmp_path / "v.npy", volume.astype(np.float64))
    done = run_cli("apply", "gaussian3d", "v.tif", "-o", "g.tif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(read_volume(tmp_path / "g.tif"),
                                  imgfilt.apply(volume, "gaussian3d"))
    done = run_cli("apply", "sobel3d", "v.npy", "-o", "s.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"),
                                  imgfilt.apply(volume.astype(np.float64), "sobel3d"))
    # A 2-D filter on a multi-page TIFF filters each page.
    done = run_cli("apply", "box", "v.tif", "-o", "pages.tif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = np.stack([imgfilt.apply(page, "box") for page in volume])
    np.testing.assert_array_equal(read_volume(tmp_path / "pages.tif"), expected)
    # A volume has no PNG form.
    done = run_cli("apply", "box3d", "v.tif", "-o", "v.png", cwd=tmp_path)
    one_line_error(done, "v.tif", ".tif or .npy")
    assert done.returncode == 1 and not (tmp_path / "v.png").exists()


def test_channel_axis_and_axes_for_arrays(tmp_path):
    stack = RNG.normal(size=(6, 20, 22))  # six images, or one 6x20 image with 22 channels?
    np.save(tmp_path / "stack.npy", stack)
    done = run_cli("apply", "gaussian", "stack.npy", "-o", "g.npy", cwd=tmp_path)
    one_line_error(done, "stack.npy", "two readings", "channel_axis", "axes=")
    assert done.returncode == 1 and not (tmp_path / "g.npy").exists()
    done = run_cli("apply", "gaussian", "stack.npy", "--axes", "1,2", "-o", "g.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"),
                                  imgfilt.apply(stack, "gaussian", axes=(1, 2)))
    done = run_cli("apply", "sobel", "stack.npy", "--channel-axis", "0", "-o", "c.npy",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"),
                                  imgfilt.apply(stack, "sobel", channel_axis=0, output="float"))
    done = run_cli("apply", "box3d", "stack.npy", "--channel-axis", "none", "-o", "v.npy",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_cli("apply", "box", "stack.npy", "--axes", "1,x", "-o", "b.npy", cwd=tmp_path)
    assert done.returncode == 2 and "--axes" in done.stderr
    done = run_cli("apply", "box", SAMPLES / "coffee.png", "--axes", "0,1", "-o", "b.png",
                   cwd=tmp_path)
    one_line_error(done, "--axes", "picture")
    assert done.returncode == 1


def test_chunks_filters_out_of_core_with_dask(tmp_path):
    pytest.importorskip("dask")
    image = RNG.random((150, 260, 3)).astype(np.float32)
    np.save(tmp_path / "big.npy", image)
    done = run_cli("apply", "gaussian", "big.npy", "-o", "out.npy", "--chunks", "64",
                   "--set", "sigma=2", "--padding-mode", "circular", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = imgfilt.apply(image, "gaussian", sigma=2, padding_mode="circular", output="float")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    # A byte budget works too; a picture output or a bank is refused in one line.
    done = run_cli("apply", "box", "big.npy", "-o", "box.npy", "--chunks", "100KiB", "--quiet",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "box.npy"),
                                  imgfilt.apply(image, "box", output="float"))
    # The axis options reach the out-of-core route too.
    stack = RNG.random((4, 40, 50)).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    done = run_cli("apply", "box", "stack.npy", "-o", "stack-box.npy", "--chunks", "16",
                   "--axes", "1,2", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "stack-box.npy"),
                                  imgfilt.apply(stack, "box", axes=(1, 2)))
    done = run_cli("apply", "box", "big.npy", "-o", "box.png", "--chunks", "64", cwd=tmp_path)
    one_line_error(done, "box.png", ".npy")
    assert done.returncode == 1 and not (tmp_path / "box.png").exists()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Bad input


def test_broken_inputs_one_line_each_and_nothing_written(tmp_path):
    words = broken_files(tmp_path)
    before = digest(tmp_path)
    for name, word in words.items():
        done = run_cli("apply", "sobel", name, "-o", "out.png", cwd=tmp_path)
        assert done.returncode == 1, (name, done.stderr)
        one_line_error(done, name, word)
    done = run_cli("apply", "sobel", "missing.png", "-o", "out.png", cwd=tmp_path)
    assert done.returncode == 1
    one_line_error(done, "missing.png", "no such file")
    assert digest(tmp_path) == before and leftovers(tmp_path) == []


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    done = run_cli("apply", "sobel", "garbage.png", "-o", "o.png", "--debug", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert "UnidentifiedImageError" in done.stderr


def test_decompression_bomb_is_refused_before_loading(photo, tmp_path):
    (tmp_path / "bomb.png").write_bytes(b"")
    from cli_support import bomb_png

    (tmp_path / "bomb.png").write_bytes(bomb_png())
    done = run_cli("apply", "sobel", "bomb.png", "-o", "o.png", cwd=tmp_path)
    err = one_line_error(done, "bomb.png", "400000000 pixels", str(Image.MAX_IMAGE_PIXELS))
    assert done.returncode == 1 and "--max-pixels" in err
    # Between Pillow's limit and twice it Pillow only warns; the command refuses there too.
    done = run_cli("apply", "sobel", photo.name, "-o", "o.png", "--max-pixels", 10000, cwd=tmp_path)
    one_line_error(done, "photo.png", "12288 pixels", "10000")
    assert done.returncode == 1 and not (tmp_path / "o.png").exists()
    done = run_cli("apply", "sobel", photo.name, "-o", "o.png", "--max-pixels", 12288, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_usage_errors_exit_2(photo, tmp_path):
    before = digest(tmp_path)
    done = run_cli("apply", "sobl", photo.name, "-o", "o.png", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "'sobl'", "did you mean", "sobel")
    done = run_cli("apply", "gaussian", photo.name, "--set", "sigma=wide", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "sigma", "number")
    done = run_cli("apply", "gaussian", photo.name, "--set", "sigma=-3", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "sigma", ">= 0")
    done = run_cli("apply", "gaussian", photo.name, "--set", "width=3", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "width", "sigma, radius")
    done = run_cli("apply", "sobel", photo.name, photo.name, "-o", "o.png", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "--out-dir")
    for argv in (["apply"], ["apply", "sobel"], ["apply", "sobel", "x", "--stride", "0"],
                 ["apply", "sobel", "x", "--padding-mode", "mirrorish"], ["nosuchcommand"],
                 ["apply", "sobel", "x", "-o", "a.png", "--out-dir", "d"]):
        done = run_cli(*argv, cwd=tmp_path)
        assert done.returncode == 2 and "usage:" in done.stderr, argv
        assert "Traceback" not in done.stderr
    assert digest(tmp_path) == before


def test_existing_outputs_and_inputs_are_protected(photo, tmp_path):
    original = photo.read_bytes()
    (tmp_path / "o.png").write_bytes(b"keep")
    done = run_cli("apply", "sobel", photo.name, "-o", "o.png", cwd=tmp_path)
    assert done.returncode == 1 and (tmp_path / "o.png").read_bytes() == b"keep"
    one_line_error(done, "o.png", "--overwrite")
    done = run_cli("apply", "sobel", photo.name, "-o", "o.png", "--overwrite", cwd=tmp_path)
    assert done.returncode == 0 and pixels(tmp_path / "o.png").shape == (96, 128, 3)
    for argv in (["-o", "photo.png"], ["-o", "./photo.png", "--overwrite"],
                 ["--out-dir", ".", "--overwrite"]):
        done = run_cli("apply", "sobel", photo.name, *argv, cwd=tmp_path)
        assert done.returncode == 1, argv
        assert "is an input" in done.stderr and "Traceback" not in done.stderr
    # A format that cannot hold the result fails whole: no file, no temporary.
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(rgba)
    done = run_cli("apply", "box", "rgba.png", "-o", "rgba.jpg", cwd=tmp_path)
    assert done.returncode == 1 and "RGBA" in one_line_error(done, "rgba.png")
    assert photo.read_bytes() == original
    assert not (tmp_path / "rgba.jpg").exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Batches


def _good_inputs(folder):
    """18 small inputs of several kinds, from the sample photos."""
    folder.mkdir()
    sources = [Image.open(SAMPLES / n) for n in ("coffee.png", "chelsea.png", "camera.png")]
    made = []
    for index in range(15):
        image = sources[index % 3]
        crop = image.crop((7 * index, 5 * index, 7 * index + 40, 5 * index + 30))
        if index % 5 == 4:
            crop = crop.convert("RGBA")
        name = f"img{index:02d}.{'png' if index % 4 else 'tif'}"
        crop.save(folder / name)
        made.append(name)
    for index in range(3):
        np.save(folder / f"arr{index}.npy", RNG.random((20, 24)).astype(np.float32))
        made.append(f"arr{index}.npy")
    return made


def test_batch_of_24_with_bad_files(tmp_path):
    good = _good_inputs(tmp_path / "in")
    bad = broken_files(tmp_path / "in")
    inputs_before = digest(tmp_path / "in")
    done = run_cli("apply", "gaussian", "--set", "sigma=1.5", "in", "--out-dir", "out", "-j", 2,
                   cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    # One line per bad file (notes.txt is not picked from a directory: it is not an image).
    failed = [line for line in lines if "failed" not in line]
    assert sorted(name for name in bad if any(name in line for line in failed)) == sorted(
        n for n in bad if n != "notes.txt"), done.stderr
    assert len(failed) == len(bad) - 1 and "Traceback" not in done.stderr
    assert lines[-1] == "imgfilt: 24 inputs: 18 done, 6 failed, 0 skipped"
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal
    assert digest(tmp_path / "in") == inputs_before and leftovers(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(good)
    for name in good:
        source, written = tmp_path / "in" / name, tmp_path / "out" / name
        if name.endswith(".npy"):
            expected = imgfilt.apply(np.load(source), "gaussian", sigma=1.5, output="float")
            np.testing.assert_array_equal(np.load(written), expected)
        else:
            expected = imgfilt.apply(Image.open(source), "gaussian", sigma=1.5)
            np.testing.assert_array_equal(pixels(written), np.asarray(expected), err_msg=name)

    # Again, by glob, quoted so that imgfilt expands it: existing outputs are skipped.
    done = run_cli("apply", "gaussian", "--set", "sigma=1.5", "in/img0*", "in/nothing*",
                   "--out-dir", "out", cwd=tmp_path)
    assert done.returncode == 1  # the pattern that matches nothing fails
    assert done.stderr.splitlines()[-1] == "imgfilt: 11 inputs: 0 done, 1 failed, 10 skipped"
    done = run_cli("apply", "gaussian", "--set", "sigma=1.5", "in/img0*", "--out-dir", "out",
                   "--quiet", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""


def test_batch_outputs_beside_inputs_and_same_name_collisions(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        Image.new("L", (6, 5), 90).save(tmp_path / folder / "x.png")
    done = run_cli("apply", "box", "a/x.png", "b/x.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a" / "x.box.png").exists() and (tmp_path / "b" / "x.box.png").exists()
    done = run_cli("apply", "box", "a/x.png", "b/x.png", "--out-dir", "o", cwd=tmp_path)
    assert done.returncode == 1 and "also the output of a/x.png" in done.stderr
    # --out-dir b would write a/x.png's result over the input b/x.png: refused.
    done = run_cli("apply", "box", "a/x.png", "b/x.png", "--out-dir", "b", "--overwrite",
                   cwd=tmp_path)
    assert done.returncode == 1 and "is an input" in done.stderr
    assert pixels(tmp_path / "b" / "x.png").tolist() == [[90] * 6] * 5


# ---------------------------------------------------------------------------------------------
# Signals
#
# A named pipe as the last input holds a worker in Image.open until the test writes to it, so
# the signal arrives while a file is being worked on, however fast the engine is.


def _open_writer(fifo, process):
    """Open the pipe's write end once the command is reading it (O_NONBLOCK fails with ENXIO
    until a reader is there); the reader then waits for data that never comes."""
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
    raise AssertionError("the command never opened the pipe")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted"),
                                               (signal.SIGTERM, 143, "terminated")])
def test_signals_stop_a_batch_cleanly(tmp_path, signum, code, word):
    (tmp_path / "in").mkdir()
    with Image.open(SAMPLES / "astronaut.png") as image:
        for index in range(4):
            image.crop((0, 0, 64 + index, 64)).save(tmp_path / "in" / f"a{index}.png")
    os.mkfifo(tmp_path / "in" / "z.png")
    before = digest(tmp_path / "in")
    process = start_cli("apply", "box", *sorted(f"in/{p.name}" for p in (tmp_path / "in").iterdir()),
                        "--out-dir", "out", "-j", 1, cwd=tmp_path)
    writer = _open_writer(tmp_path / "in" / "z.png", process)
    try:
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        os.close(writer)
    assert process.returncode == code and err == f"imgfilt: {word}\n", err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a0.png", "a1.png", "a2.png", "a3.png"] and leftovers(tmp_path) == []
    for index, name in enumerate(written):  # every file there is whole
        assert pixels(tmp_path / "out" / name).shape == (64, 64 + index, 3)
    assert digest(tmp_path / "in") == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_ctrl_c_while_one_file_is_being_read(tmp_path):
    os.mkfifo(tmp_path / "slow.png")
    process = start_cli("apply", "sobel", "slow.png", "-o", "o.png", cwd=tmp_path)
    writer = _open_writer(tmp_path / "slow.png", process)
    try:
        started = time.time()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        # Handled at once, though the worker thread is still blocked.
        assert time.time() - started < 10
    finally:
        os.close(writer)
    assert process.returncode == 130 and err == "imgfilt: interrupted\n"
    assert not (tmp_path / "o.png").exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal_only(tmp_path):
    import fcntl
    import termios

    (tmp_path / "in").mkdir()
    for index in range(3):
        Image.new("L", (20, 10 + index), 40 * index).save(tmp_path / "in" / f"p{index}.png")
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    process = subprocess.Popen([sys.executable, "-m", "imgfilt", "apply", "box", "in", "--out-dir",
                                "out"], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                               stderr=secondary)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "3/3" in text and "file" in text, text  # tqdm's bar, counting files
    assert text.rstrip().endswith("imgfilt: 3 inputs: 3 done, 0 failed, 0 skipped")


def test_bank_command_takes_the_axis_options(tmp_path):
    stack = RNG.normal(size=(5, 16, 18))
    np.save(tmp_path / "stack.npy", stack)
    done = run_cli("bank", "stack.npy", "--filters", "sobel_x,box", "-o", "maps.npy",
                   cwd=tmp_path)
    one_line_error(done, "stack.npy", "two readings")
    done = run_cli("bank", "stack.npy", "--filters", "sobel_x,box", "--axes", "1,2", "-o",
                   "maps.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bank = imgfilt.FilterBank([imgfilt.filters.sobel_x(), imgfilt.filters.box()])
    np.testing.assert_array_equal(np.load(tmp_path / "maps.npy"), bank.apply(stack, axes=(1, 2)))
    # A multi-page TIFF: its pages, each an image, unless the options say otherwise.
    pages = (RNG.random((4, 12, 14)) * 255).astype(np.uint8)
    write_volume(tmp_path / "pages.tif", pages)
    done = run_cli("bank", "pages.tif", "--filters", "box", "-o", "p.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"),
                                  imgfilt.FilterBank([imgfilt.filters.box()]).apply(
                                      pages, axes=(1, 2)))
    done = run_cli("apply", "box", "pages.tif", "--axes", "0,1", "-o", "t.npy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the stack's own axes: (Z, Y) slices along X
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"),
                                  imgfilt.apply(pages, "box", axes=(0, 1), output="float"))
