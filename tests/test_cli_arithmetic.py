"""``imgfilt shape`` and ``imgfilt explain``: their numbers equal what imgfilt.conv computes."""
import json
import re

import numpy as np
import pytest
from cli_support import run_cli

import imgfilt
from imgfilt.cli import main


def _shape_run(capsys, argv):
    assert main(["shape", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize("argv, layers", [
    # (input H, W, C; then per layer: filters, kernel, stride, padding, dilation)
    (["--input", "64x64x5", "--filters", "6", "--kernel", "3", "--then", "4:10"],
     [(6, 3, 1, 0, 1), (4, 10, 1, 0, 1)]),
    (["--input", "32x32x3", "--filters", "10", "--kernel", "5", "--stride", "2", "--padding",
      "1"], [(10, 5, 2, 1, 1)]),
    (["--input", "31x20x2", "--filters", "3", "--kernel", "3x4", "--padding", "same",
      "--stride", "2", "--then", "5:3:1:0", "--then", "2:2:3"], None),
    (["--input", "40x41x1", "--filters", "2", "--kernel", "3", "--dilation", "2", "--padding",
      "2x1"], None),
    (["--input", "9x10x11x2", "--filters", "4", "--kernel", "3", "--padding", "1"], None),
    (["--input", "100x3", "--filters", "8", "--kernel", "7", "--stride", "3"], None),
])
def test_shape_equals_a_real_conv(capsys, argv, layers):
    out = _shape_run(capsys, argv)
    options = dict(zip(argv[::2], argv[1::2]))
    sizes = [int(v) for v in options["--input"].split("x")]
    x = np.zeros((sizes[-1], *sizes[:-1]), np.float32)
    ndim = len(sizes) - 1

    def parse(text, default):
        if text is None:
            return default
        if text in ("same", "valid"):
            return text
        values = tuple(int(v) for v in text.split("x"))
        return values[0] if len(values) == 1 else values

    specs = [(int(options["--filters"]), options["--kernel"], options.get("--stride"),
              options.get("--padding"))]
    specs += [tuple(t.split(":")) + (None,) * (4 - len(t.split(":")))
              for flag, t in zip(argv[::2], argv[1::2]) if flag == "--then"]
    dilation = parse(options.get("--dilation"), 1)
    total = 0
    outputs = re.findall(r"  output: ([0-9x]+)", out)
    params = [int(v) for v in re.findall(r"parameters .* = (\d+)", out)]
    assert len(outputs) == len(params) == len(specs)
    for index, (filters, kernel, stride, padding) in enumerate(specs):
        kernel = parse(kernel, None)
        kernel = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
        stride = parse(stride if stride is not None else options.get("--stride"), 1)
        padding = parse(padding if padding is not None else options.get("--padding"), 0)
        weight = np.zeros((int(filters), x.shape[0], *kernel), np.float32)
        x = imgfilt.conv(x, weight, stride=stride, padding=padding, dilation=dilation)
        assert outputs[index] == "x".join(map(str, x.shape[1:] + x.shape[:1])), out
        bank = imgfilt.FilterBank(weight)  # counts a bias per filter, as the textbooks do
        assert params[index] == bank.n_params
        total += bank.n_params
    assert f"total parameters {total}" in out
    if layers:  # the textbook numbers, worked by hand
        assert outputs == {2: ["62x62x6", "53x53x4"], 1: ["15x15x10"]}[len(layers)]


def test_shape_prints_the_formula_with_the_numbers(capsys):
    out = _shape_run(capsys, ["--input", "32x32x3", "--filters", "10", "--kernel", "5",
                              "--stride", "2", "--padding", "1"])
    assert "H, W: floor((32 - 5 + 2·1) / 2) + 1 = 15" in out
    assert "weight: (10, 3, 5, 5), parameters 10·(3·5·5 + 1) = 760" in out
    out = _shape_run(capsys, ["--input", "8x8x1", "--filters", "2", "--kernel", "3",
                              "--no-bias"])
    assert "parameters 2·1·3·3 = 18" in out


def test_shape_errors_exit_2(capsys):
    for argv, word in ((["--input", "4x4x1", "--filters", "1", "--kernel", "7"], "larger"),
                       (["--input", "4xx", "--filters", "1", "--kernel", "3"], "--input"),
                       (["--input", "8x8x1", "--filters", "1", "--kernel", "3", "--then", "2"],
                        "FILTERS:KERNEL"),
                       (["--input", "8x8x1", "--filters", "1", "--kernel", "3x3x3"], "3 values")):
        assert main(["shape", *argv]) == 2
        assert word in capsys.readouterr().err


def _explained_value(out):
    return float(out.strip().splitlines()[-1].rsplit("= ", 1)[1])


def test_explain_demo_is_the_textbook_example(tmp_path):
    done = run_cli("explain", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "out[0, 0] = 0×0 + 1×1 + 3×2 + 4×3 = 19" in done.stdout
    x = np.arange(9.0).reshape(1, 3, 3)
    k = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    assert _explained_value(done.stdout) == imgfilt.conv(x, k)[0, 0, 0] == 19


def test_explain_multichannel_sum_plus_bias(capsys):
    x = "[[[0,1,2],[3,4,5],[6,7,8]],[[1,2,3],[4,5,6],[7,8,9]]]"
    k = "[[[0,1],[2,3]],[[1,2],[3,4]]]"
    expected = imgfilt.conv(np.array(json.loads(x), float), np.array([json.loads(k)], float))
    for y, x0 in ((0, 0), (1, 1)):
        assert main(["explain", "--input", x, "--kernel", k, "--at", f"{y},{x0}",
                     "--bias", "0.5"]) == 0
        out = capsys.readouterr().out
        assert "channel 0:" in out and "channel 1:" in out and "bias 0.5" in out
        assert _explained_value(out) == expected[0, y, x0] + 0.5
    # Dive into Deep Learning's multi-channel example: 19 + 37 = 56 at (0, 0).
    assert main(["explain", "--input", x, "--kernel", k]) == 0
    out = capsys.readouterr().out
    assert "= 19" in out and "= 37" in out and out.rstrip().endswith("= 56")


def test_explain_equals_conv_on_random_problems(capsys):
    rng = np.random.default_rng(8)
    for trial in range(12):
        c_in, c_out = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        h, w = int(rng.integers(3, 7)), int(rng.integers(3, 7))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x = rng.integers(-5, 6, size=(c_in, h, w)).astype(float)
        k = rng.integers(-3, 4, size=(c_out, c_in, kh, kw)).astype(float)
        bias = rng.integers(-2, 3, size=c_out).astype(float)
        stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        padding = ["same", 0, 1, 2][trial % 4]
        mode = ["zeros", "reflect", "replicate", "circular", "symmetric"][trial % 5]
        try:
            out = imgfilt.conv(x, k, bias, stride=stride, padding=padding, padding_mode=mode,
                               dilation=dilation)
        except ValueError:
            continue  # the kernel does not fit: explain refuses as well, tested elsewhere
        o = int(rng.integers(0, c_out))
        y, x0 = int(rng.integers(0, out.shape[1])), int(rng.integers(0, out.shape[2]))
        argv = ["explain", "--input", str(x.tolist()), "--kernel", str(k.tolist()),
                "--bias", str(bias.tolist()), "--stride", str(stride), "--dilation",
                str(dilation), "--padding", str(padding), "--padding-mode", mode,
                "--at", f"{y},{x0}", "--out-channel", str(o)]
        assert main(argv) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert _explained_value(printed) == out[o, y, x0], (argv, printed)


def test_explain_errors_exit_2(capsys):
    for argv, word in ((["--at", "2,0"], "--at 2,0"),
                       (["--kernel", "[[1,2,3,4]]"], "larger"),
                       (["--input", "[1,2,3]"], "--input"),
                       (["--out-channel", "1"], "--out-channel"),
                       (["--kernel", "[[[1]],[[1]]]"], "C_in")):
        assert main(["explain", *argv]) == 2
        assert word in capsys.readouterr().err
