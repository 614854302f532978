"""``imgfilt list`` and ``imgfilt show``: the registry and the kernels' numbers, read back."""
import re

import numpy as np
import pytest

import imgfilt
from imgfilt.cli import main


def test_list_shows_every_filter_with_parameters_and_description(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    infos = imgfilt.list_filters()
    assert len(lines) == len(infos)
    for line, info in zip(lines, infos):
        assert line.split()[0] == info.name
        assert info.description in line
        for name, default in info.parameters.items():
            assert f"{name}={default!r}" in line


def _numbers(lines):
    return np.array([[float(v) for v in line.split()] for line in lines])


def _blocks(text):
    """Rows of numbers between headings, as arrays."""
    blocks, current = [], []
    for line in text.splitlines():
        if re.fullmatch(r"\s*[-0-9.e+ ]+", line) and line.strip():
            current.append(line)
        elif current:
            blocks.append(_numbers(current))
            current = []
    if current:
        blocks.append(_numbers(current))
    return blocks


@pytest.mark.parametrize("name, settings", [("sobel_x", []), ("laplacian", []),
                                            ("gaussian", ["--set", "sigma=0.8"]),
                                            ("box3d", []), ("edge", ["--set", "channel=b"]),
                                            ("sobel", []), ("gradient1d", [])])
def test_show_prints_the_kernel_numbers(capsys, name, settings):
    assert main(["show", name, *settings, "--digits", "17"]) == 0
    out = capsys.readouterr().out
    params = {s.split("=")[0]: s.split("=")[1] for s in settings[1::2]}
    if "sigma" in params:
        params["sigma"] = float(params["sigma"])
    filt = imgfilt.get_filter(name, **params)
    # Every 2-D plane of the weight, in order (1-D kernels are one row).
    weight = filt.weight
    planes = weight.reshape((-1,) + weight.shape[-2:]) if filt.ndim > 1 else weight.reshape(-1, 1, weight.shape[-1])
    blocks = _blocks(out)
    assert len(blocks) == len(planes), out
    for block, plane in zip(blocks, planes):
        np.testing.assert_allclose(block, plane, rtol=1e-15)
    assert ("separable:" in out) == (filt.factors is not None)
    if filt.factors is not None:
        vectors = re.findall(r"\[([^\]]+)\]", out.split("separable:")[1].splitlines()[0])
        np.testing.assert_allclose([float(v) for v in vectors[-1].split()], filt.factors[0][-1],
                                   rtol=1e-15)


def test_show_a_kernel_file_and_a_bank(tmp_path, capsys):
    kernel = np.array([[1.5, -2.0], [0.25, 4.0]])
    np.save(tmp_path / "k.npy", kernel)
    assert main(["show", str(tmp_path / "k.npy")]) == 0
    np.testing.assert_array_equal(_blocks(capsys.readouterr().out)[0], kernel)
    bank = imgfilt.FilterBank([imgfilt.filters.sobel_x(), imgfilt.filters.box()], bias=[0, 2])
    bank.save(tmp_path / "b.npz")
    assert main(["show", str(tmp_path / "b.npz"), "--digits", "17"]) == 0
    out = capsys.readouterr().out
    assert "sobel_x:" in out and "box:" in out and "bias 2" in out
    blocks = _blocks(out)
    np.testing.assert_allclose(blocks[0], bank.weight[0, 0])
    np.testing.assert_allclose(blocks[1], bank.weight[1, 0])


def test_show_unknown_filter_exit_2(capsys):
    assert main(["show", "laplace"]) == 2
    err = capsys.readouterr().err
    assert "did you mean laplacian" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", [info.name for info in imgfilt.list_filters()])
def test_show_works_for_every_registered_filter(capsys, name):
    # Nonlinear filters have no kernel: `show` prints what they compute instead of failing.
    assert main(["show", name]) == 0
    assert capsys.readouterr().out.startswith(name)


@pytest.mark.parametrize("name, settings, rows", [
    ("median", ["--set", "size=3"], [[1, 1, 1]] * 3),
    ("opening", ["--set", "size=2"], [[1, 1]] * 2),
    ("rank", ["--set", "rank=2", "--set", "size=4"], [[1, 1, 1, 1]] * 4)])
def test_show_prints_a_rank_filters_footprint(capsys, name, settings, rows):
    assert main(["show", name, *settings]) == 0
    out = capsys.readouterr().out
    assert name in out.splitlines()[0] and "footprint" in out
    np.testing.assert_array_equal(_blocks(out)[0], rows)
    assert main(["show", "canny"]) == 0
    assert "hysteresis" in capsys.readouterr().out
