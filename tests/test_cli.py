"""The imgfilt command: apply and list, errors on one line, nothing lost."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import imgfilt
from imgfilt.cli import main


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    return path


def test_apply_writes_what_the_api_computes(photo, tmp_path):
    out = tmp_path / "edges.png"
    assert main(["apply", "sobel", str(photo), "-o", str(out), "--quiet"]) == 0
    expected = np.asarray(imgfilt.apply(Image.open(photo), "sobel"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_apply_default_name_and_settings(photo):
    assert main(["apply", "gaussian", str(photo), "--set", "sigma=2", "--quiet"]) == 0
    written = photo.with_name("in.gaussian.png")
    expected = np.asarray(imgfilt.apply(Image.open(photo), "gaussian", sigma=2))
    np.testing.assert_array_equal(np.asarray(Image.open(written)), expected)


def test_errors_are_one_line_with_the_file_and_leave_nothing(photo, tmp_path, capsys):
    before = photo.read_bytes()
    cases = [
        (["apply", "sobel", str(tmp_path / "missing.png"), "-o", str(tmp_path / "a.png")],
         "missing.png"),
        (["apply", "sobel", str(photo), "-o", str(photo)], "overwrite the input"),
        (["apply", "nosuch", str(photo), "-o", str(tmp_path / "b.png")], "nosuch"),
        (["apply", "gaussian", str(photo), "--set", "sigma=-1", "-o", str(tmp_path / "c.png")],
         "sigma"),
        (["apply", "sobel", str(photo), "-o", str(tmp_path / "d.unknownext")], "extension"),
    ]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    cases.append((["apply", "sobel", str(bad), "-o", str(tmp_path / "e.png")], "bad.png"))
    for argv, words in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "in.png"]


def test_existing_output_needs_overwrite(photo, tmp_path, capsys):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep")
    assert main(["apply", "sobel", str(photo), "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["apply", "sobel", str(photo), "-o", str(out), "--overwrite", "--quiet"]) == 0
    assert Image.open(out).size == (30, 20)


def test_list_names_every_filter(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for info in imgfilt.list_filters():
        assert info.name in printed


def test_python_dash_m(photo, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(imgfilt.__file__)))
    done = subprocess.run([sys.executable, "-m", "imgfilt", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "sobel" in done.stdout, done.stderr
