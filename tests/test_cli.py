"""The ``imgfilt`` command's frame (imgfilt/cli/__init__.py and common.py): entry points, exit
codes, one-line errors, ``--set`` typed from a filter's signature, filter and array arguments."""
import numpy as np
import pytest
from cli_support import one_line_error, run_cli, start_cli
from PIL import Image

import imgfilt
from imgfilt.cli import COMMANDS, build_parser, main
from imgfilt.cli.common import (
    UsageError,
    check_target,
    number,
    read_array,
    resolve_filter,
    table,
    typed_settings,
)
from imgfilt.filters import gaussian


def test_python_dash_m_help_and_version(tmp_path):
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("apply", "list", "show", "bank", "shape", "explain"):
        assert command in done.stdout
    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"imgfilt {imgfilt.__version__}"


def test_usage_errors_exit_2_in_process(capsys):
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err
    assert main(["apply", "sobel", "x.png", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
    assert main(["show", "gausian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean gaussian" in err


def test_every_command_registers_a_handler():
    parser = build_parser()
    for argv in (["apply", "sobel", "x"], ["list"], ["show", "sobel"], ["bank", "x", "--filters",
                 "box", "-o", "m.npy"], ["shape", "--input", "8x8x1", "--filters", "1", "--kernel",
                 "3"], ["explain"], ["learn", "a.png", "b.png", "--size", "3", "-o", "k.npz"]):
        args = parser.parse_args(argv)
        assert callable(args.handler) and hasattr(args, "debug")
    assert len(COMMANDS) == 5


def test_set_values_are_typed_from_the_signature():
    factory = gaussian
    assert typed_settings(factory, "gaussian", ["sigma=2", "radius=none"]) == {
        "sigma": 2.0, "radius": None}
    assert typed_settings(factory, "gaussian", ["radius=3"]) == {"radius": 3}
    assert isinstance(typed_settings(factory, "gaussian", ["sigma=2"])["sigma"], float)
    edge = imgfilt.filters.edge  # channel: Union[str, int]
    assert typed_settings(edge, "edge", ["channel=2"]) == {"channel": 2}
    assert typed_settings(edge, "edge", ["channel=g"]) == {"channel": "g"}
    for bad, words in (("sigma", "NAME=VALUE"), ("=2", "NAME=VALUE"), ("radius=2.5", "radius"),
                       ("sigma=abc", "sigma must be a number"), ("size=3", "no parameter 'size'")):
        with pytest.raises(UsageError, match=words):
            typed_settings(factory, "gaussian", [bad])


def test_resolve_filter_names_files_and_suggestions(tmp_path):
    filt, label = resolve_filter("Gaussian", ["sigma=0.5"])
    np.testing.assert_array_equal(filt.weight, gaussian(0.5).weight)
    assert label == "gaussian"
    np.save(tmp_path / "k.npy", np.ones((3, 3)))
    filt, label = resolve_filter(str(tmp_path / "k.npy"))
    assert label == "k" and filt.weight.shape == (1, 1, 3, 3)
    with pytest.raises(UsageError, match="did you mean sobel"):
        resolve_filter("sobell")
    with pytest.raises(UsageError, match="kernel file"):
        resolve_filter(str(tmp_path / "k.npy"), ["sigma=1"])
    with pytest.raises(UsageError, match="missing.npy: cannot load"):
        resolve_filter(str(tmp_path / "missing.npy"))
    with pytest.raises(UsageError, match="sigma must be >= 0"):
        resolve_filter("gaussian", ["sigma=-1"])


def test_read_array_literals_and_files(tmp_path):
    np.testing.assert_array_equal(read_array("[[0, 1], [2, 3]]", "--input"), [[0, 1], [2, 3]])
    assert read_array("0.5", "--bias") == 0.5
    np.save(tmp_path / "a.npy", np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(read_array(str(tmp_path / "a.npy"), "--input"),
                                  np.arange(6).reshape(2, 3))
    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_array(str(tmp_path / "rgb.png"), "--input"),
                                  np.moveaxis(rgb, -1, 0))  # channel-first
    for bad in ("[[1, 2]", "hello", str(tmp_path / "nope.npy"), "__import__('os')"):
        with pytest.raises(UsageError):
            read_array(bad, "--input")


def test_check_target(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(b"x")
    assert check_target(str(tmp_path / "new.png"), [str(source)], False) is None
    assert "is an input" in check_target(str(tmp_path / "." / "in.png"), [str(source)], True)
    (tmp_path / "old.png").write_bytes(b"y")
    assert "--overwrite" in check_target(str(tmp_path / "old.png"), [str(source)], False)
    assert check_target(str(tmp_path / "old.png"), [str(source)], True) is None


def test_numbers_and_tables():
    assert [number(v) for v in (0, -0.0, 3.0, -2, 0.125, 1 / 3)] == ["0", "0", "3", "-2",
                                                                     "0.125", "0.3333"]
    assert table([[1, -10], [100, 0.5]]) == ["    1  -10", "  100  0.5"]


def test_a_missing_kernel_file_is_one_line_exit_2(tmp_path):
    done = run_cli("show", "nope.npy", cwd=tmp_path)
    assert done.returncode == 2
    one_line_error(done, "nope.npy", "no such file")


def test_a_closed_pipe_stops_quietly(tmp_path):
    # `imgfilt show gaussian --set sigma=30 | head -1`: the table is ~600 kB, head reads one line.
    process = start_cli("show", "gaussian", "--set", "sigma=30", cwd=tmp_path)
    assert process.stdout.readline().startswith("gaussian(sigma=30.0")
    process.stdout.close()
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == ""
