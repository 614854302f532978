"""``imgfilt bank``: feature maps equal FilterBank.apply, the montage equals montage(), errors."""
import numpy as np
from cli_support import SAMPLES, leftovers, one_line_error, run_cli
from PIL import Image

import imgfilt
from imgfilt.bank import montage


def test_maps_and_montage_equal_the_library(tmp_path):
    source = SAMPLES / "chelsea.png"
    done = run_cli("bank", source, "--filters", "sobel_x,sobel_y,gaussian", "-o", "maps.npy",
                   "--montage", "maps.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("maps.npy: 3 maps (sobel_x, sobel_y, gaussian), shape (3, 300, 451)")
    bank = imgfilt.FilterBank([imgfilt.get_filter(n) for n in ("sobel_x", "sobel_y", "gaussian")])
    # Per-channel filters on a colour photo: the maps of its luminance.
    expected = bank.apply(Image.open(source).convert("L"))
    maps = np.load(tmp_path / "maps.npy")
    np.testing.assert_array_equal(maps, expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "maps.png")),
                                  np.asarray(montage(expected)))


def test_weights_file_options_and_arrays(tmp_path):
    rng = np.random.default_rng(3)
    bank = imgfilt.FilterBank(rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5))
    bank.save(tmp_path / "b.npz")
    with Image.open(SAMPLES / "coffee.png") as image:
        image.crop((0, 0, 64, 48)).save(tmp_path / "p.png")
    done = run_cli("bank", "p.png", "--weights", "b.npz", "-o", "m.npy", "--padding", "valid",
                   "--stride", 2, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = bank.apply(Image.open(tmp_path / "p.png"), padding="valid", stride=2)
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), expected, rtol=1e-6)
    assert expected.shape == (5, 23, 31)
    array = rng.random((3, 20, 22)).astype(np.float32)  # channel-first, as the textbooks
    np.save(tmp_path / "x.npy", array)
    done = run_cli("bank", "x.npy", "--weights", "b.npz", "-o", "mx.npy", "--padding-mode",
                   "circular", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "mx.npy"),
                               bank.apply(array, padding_mode="circular"), rtol=1e-6)


def test_errors(tmp_path):
    Image.new("RGB", (10, 8)).save(tmp_path / "p.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    (tmp_path / "taken.npy").write_bytes(b"keep")
    cases = [
        (["p.png", "--filters", "sobel,box", "-o", "m.npy"], 2, ["sobel", "not linear"]),
        (["p.png", "--filters", "sobel_x,bxo", "-o", "m.npy"], 2, ["bxo", "did you mean box"]),
        (["p.png", "--filters", "box", "-o", "m.png"], 2, [".npy"]),
        (["p.png", "--filters", "box", "-o", "m.npy", "--montage", "m.xyz"], 2, ["m.xyz"]),
        (["bad.png", "--filters", "box", "-o", "m.npy"], 1, ["bad.png", "not an image"]),
        (["p.png", "--filters", "box", "-o", "taken.npy"], 1, ["taken.npy", "--overwrite"]),
        (["p.png", "--filters", "box", "-o", "p.png"], 2, [".npy"]),
        (["p.png", "--filters", "box3d", "-o", "m.npy"], 1, ["p.png"]),
    ]
    for argv, code, words in cases:
        done = run_cli("bank", *argv, cwd=tmp_path)
        assert done.returncode == code, (argv, done.stderr)
        one_line_error(done, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "p.png", "taken.npy"]
    assert (tmp_path / "taken.npy").read_bytes() == b"keep" and leftovers(tmp_path) == []
