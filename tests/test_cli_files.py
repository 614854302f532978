"""A CLI that never surprises with files (issue 14): folders, re-runs, protected inputs,
both-or-neither writes, stale temporaries, non-regular files, learned banks as pictures."""
import os
import time

import numpy as np
import pytest
from cli_support import SAMPLES, leftovers, run_cli, start_cli
from PIL import Image

import imgfilt
from imgfilt.filters import Filter


@pytest.fixture
def small(tmp_path):
    with Image.open(SAMPLES / "coffee.png") as image:
        image.crop((0, 0, 40, 30)).save(tmp_path / "coffee.png")
    return tmp_path / "coffee.png"


def test_out_creates_missing_folders(small, tmp_path):
    done = run_cli("apply", "box", "coffee.png", "-o", "new/deeper/x.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "deeper" / "x.png").exists()
    (tmp_path / "file").write_text("a file, not a folder")
    done = run_cli("apply", "box", "coffee.png", "-o", "file/x.png", cwd=tmp_path)
    assert done.returncode == 2 and "-o file: cannot create the folder" in done.stderr


def test_rerun_skips_its_own_outputs_and_finishes_the_batch(tmp_path):
    (tmp_path / "in").mkdir()
    for index in range(3):
        Image.new("L", (12, 10), 60 * index).save(tmp_path / "in" / f"p{index}.png")
    done = run_cli("apply", "sobel", "in", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "in" / "p1.sobel.png").unlink()  # as if the first run had been interrupted
    done = run_cli("apply", "sobel", "in", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "imgfilt: 3 inputs: 1 done, 0 failed, 2 skipped"
    names = sorted(p.name for p in (tmp_path / "in").iterdir())
    assert names == ["p0.png", "p0.sobel.png", "p1.png", "p1.sobel.png", "p2.png",
                     "p2.sobel.png"]
    # The same by glob.
    done = run_cli("apply", "sobel", "in/*.png", cwd=tmp_path)
    assert done.returncode == 0 and "3 inputs: 0 done, 0 failed, 3 skipped" in done.stderr


def test_no_file_named_on_the_command_line_is_written(small, tmp_path):
    np.save(tmp_path / "k.npy", np.ones((3, 3)) / 9)
    np.save(tmp_path / "in.npy", np.arange(30.0).reshape(5, 6))
    before = (tmp_path / "k.npy").read_bytes()
    done = run_cli("apply", "k.npy", "in.npy", "-o", "k.npy", "--overwrite", cwd=tmp_path)
    assert done.returncode == 1 and "k.npy is an input" in done.stderr
    assert (tmp_path / "k.npy").read_bytes() == before
    imgfilt.FilterBank([np.ones((3, 3)) / 9]).save(tmp_path / "b.npz")
    bank_before = (tmp_path / "b.npz").read_bytes()
    done = run_cli("bank", "coffee.png", "--weights", "b.npz", "-o", "m.npy", "--montage",
                   "b.npz", "--overwrite", cwd=tmp_path)
    assert done.returncode != 0 and (tmp_path / "b.npz").read_bytes() == bank_before


def test_failed_montage_leaves_the_previous_maps(small, tmp_path):
    done = run_cli("bank", "coffee.png", "--filters", "sobel_x,sobel_y", "-o", "maps.npy",
                   "--montage", "maps.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    old_maps = (tmp_path / "maps.npy").read_bytes()
    old_picture = (tmp_path / "maps.png").read_bytes()
    # XBM holds 1-bit pictures only: Pillow fails while writing the grey montage.
    done = run_cli("bank", "coffee.png", "--filters", "gaussian,box", "-o", "maps.npy",
                   "--montage", "maps.xbm", "--overwrite", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert (tmp_path / "maps.npy").read_bytes() == old_maps
    assert (tmp_path / "maps.png").read_bytes() == old_picture
    assert not (tmp_path / "maps.xbm").exists() and leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee.png", "maps.npy", "maps.png"]


def test_stale_temporary_files_are_cleaned(small, tmp_path):
    stale = tmp_path / ".out.png.k1ll3d.tmp"
    stale.write_bytes(b"half a picture")
    done = run_cli("apply", "box", "coffee.png", "-o", "out.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and leftovers(tmp_path) == []


def test_a_temporary_file_being_written_is_not_taken_for_stale(tmp_path):
    from imgfilt.io import atomic_write, clean_stale_temporaries

    target = tmp_path / "a.bin"
    with atomic_write(target) as handle:
        handle.write(b"partial")
        assert clean_stale_temporaries(target) == []  # another writer's: locked, kept
        assert len(leftovers(tmp_path)) == 1
    assert target.read_bytes() == b"partial" and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_fifo_input_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    os.mkfifo(tmp_path / "pipe.npy")
    started = time.time()
    for name in ("pipe.png", "pipe.npy"):
        process = start_cli("apply", "box", name, "-o", "o" + name[4:], cwd=tmp_path)
        _, err = process.communicate(timeout=60)  # a blocked read would time out here
        assert process.returncode == 1 and "not a regular file (a FIFO)" in err, err
    process = start_cli("apply", "pipe.npy", "x.png", "-o", "o.png", cwd=tmp_path)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "FIFO" in err
    assert time.time() - started < 60


def test_learned_banks_write_pictures(tmp_path):
    with Image.open(SAMPLES / "camera.png") as image:
        grey = image.convert("L").crop((0, 0, 48, 40))
    grey.save(tmp_path / "in.png")
    imgfilt.apply(grey, "gaussian", sigma=1).save(tmp_path / "target.png")
    done = run_cli("learn", "in.png", "target.png", "--size", "3", "-o", "blur.npz",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bank = imgfilt.FilterBank.load(tmp_path / "blur.npz")
    assert bank.out_channels == 1 and bank.in_channels == 1
    done = run_cli("apply", "blur.npz", "in.png", "-o", "out.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = imgfilt.apply(grey, Filter(bank.weight, bank.bias))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")),
                                  np.asarray(expected))
    # The grey-fitted bank on a colour photo: each channel filtered, an RGB picture.
    with Image.open(SAMPLES / "coffee.png") as image:
        image.crop((0, 0, 40, 30)).save(tmp_path / "photo.png")
    done = run_cli("apply", "blur.npz", "photo.png", "-o", "photo_out.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = Image.open(tmp_path / "photo_out.png")
    assert out.mode == "RGB"
    expected = imgfilt.apply(Image.open(tmp_path / "photo.png"), Filter(bank.weight, bank.bias))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
