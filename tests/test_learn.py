"""imgfilt.learn.fit: recovery of known kernels, the least-squares oracle, ridge, errors, the CLI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from reference import reference_conv
from strategies import MODES, conv_problems, examples

import imgfilt
from imgfilt import learn
from imgfilt.convolution import plan

RNG = np.random.default_rng(7)
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SOURCE_ROOT = str(Path(imgfilt.__file__).resolve().parent.parent)


def assert_recovers(x, weight, bias=None, atol=1e-4, **options):
    """Make y with the reference oracle (not with imgfilt.conv), fit it, compare with the truth."""
    y = reference_conv(x, weight, bias, **{k: v for k, v in options.items()
                                           if k not in ("ndim",)})
    kernel = weight.shape[2:]
    bank = learn.fit(x, y, kernel, bias=bias is not None, **options)
    assert bank.weight.shape == weight.shape
    np.testing.assert_allclose(bank.weight, weight, rtol=0, atol=atol)
    np.testing.assert_allclose(bank.bias, np.zeros(len(weight)) if bias is None else bias,
                               rtol=0, atol=atol)
    # And what conv makes of x with the fitted bank is y again.
    conv_options = {k: v for k, v in options.items() if k != "groups"}
    again = imgfilt.conv(x, bank.weight, bank.bias, groups=bank.groups, **conv_options)
    np.testing.assert_allclose(again, y, rtol=0, atol=1e-6 * max(1.0, np.abs(y).max()))
    return bank


# ---------------------------------------------------------------------------------------------
# Recovery of known kernels from noiseless pairs


def test_recovers_a_2d_kernel_from_a_photo():
    from PIL import Image

    photo = np.asarray(Image.open(SAMPLES / "camera.png").convert("L"), dtype=np.float64)
    x = photo[None, 100:228, 150:278]
    assert_recovers(x, RNG.normal(size=(1, 1, 5, 5)), np.array([3.5]),
                    padding="same", padding_mode="reflect")


def test_recovers_a_multichannel_bank_with_bias():
    x = RNG.random((3, 40, 36))
    assert_recovers(x, RNG.normal(size=(2, 3, 3, 3)), RNG.normal(size=2),
                    padding="same", padding_mode="replicate")


def test_even_kernel_and_no_bias():
    x = RNG.random((2, 30, 30))
    bank = assert_recovers(x, RNG.normal(size=(1, 2, 4, 2)), None,
                           padding="same", padding_mode="symmetric")
    assert not bank.bias.any()


def test_recovers_1d_and_3d_kernels():
    assert_recovers(RNG.normal(size=(2, 200)), RNG.normal(size=(3, 2, 7)), RNG.normal(size=3),
                    padding="same", padding_mode="circular")
    assert_recovers(RNG.normal(size=(1, 12, 13, 11)), RNG.normal(size=(2, 1, 3, 3, 3)),
                    RNG.normal(size=2), padding="same", padding_mode="reflect")


@pytest.mark.parametrize("groups", [2, 4])
def test_recovers_grouped_and_depthwise_banks(groups):
    x = RNG.random((4, 24, 24))
    weight = RNG.normal(size=(8, 4 // groups, 3, 3))
    bank = assert_recovers(x, weight, RNG.normal(size=8), groups=groups,
                           padding="same", padding_mode="reflect")
    assert bank.groups == groups


@pytest.mark.parametrize("mode", MODES)
def test_stride_2_dilation_and_every_padding_mode(mode):
    x = RNG.normal(size=(2, 33, 30))
    assert_recovers(x, RNG.normal(size=(2, 2, 3, 3)), RNG.normal(size=2),
                    stride=2, dilation=(1, 2), padding=((2, 1), 3), padding_mode=mode)
    assert_recovers(x, RNG.normal(size=(1, 2, 3, 3)), RNG.normal(size=1), stride=(2, 1),
                    padding="same", padding_mode=mode)


def test_valid_padding():
    assert_recovers(RNG.random((1, 25, 25)), RNG.normal(size=(1, 1, 5, 5)), np.array([-2.0]),
                    padding="valid")


def test_a_batch_of_pairs_determines_what_one_pair_cannot():
    # 4x4 examples give 16 equations each for 26 unknowns: one is not enough, three are.
    x = RNG.random((3, 1, 4, 4))
    weight, bias = RNG.normal(size=(1, 1, 5, 5)), RNG.normal(size=1)
    y = reference_conv(x, weight, bias, padding="same", padding_mode="zeros")
    with pytest.raises(ValueError, match="under-determined.*at least 26.*gives 16"):
        learn.fit(x[0], y[0], 5, padding_mode="zeros")
    bank = learn.fit(x, y, (5, 5), padding_mode="zeros")
    np.testing.assert_allclose(bank.weight, weight, atol=1e-4)
    np.testing.assert_allclose(bank.bias, bias, atol=1e-4)
    np.testing.assert_array_equal(learn.fit(x, y, 5, ndim=2, padding_mode="zeros").weight,
                                  bank.weight)


def test_blocks_of_samples_give_the_same_normal_equations(monkeypatch):
    x = RNG.random((2, 2, 20, 17))
    y = RNG.normal(size=(2, 3, 20, 17))
    whole = learn.fit(x, y, (3, 3))
    monkeypatch.setattr(learn, "BLOCK_BYTES", 8 * 18 * 7)  # 7 samples per block, a ragged end
    blocked = learn.fit(x, y, (3, 3))
    np.testing.assert_allclose(blocked.weight, whole.weight, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(blocked.bias, whole.bias, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Against an independent least-squares oracle, on noisy targets


def design_matrices(x, problem):
    """Per group, the design matrix: column j is the oracle's conv of x with the j-th unit tap."""
    groups, group_in, kernel = problem["groups"], problem["group_in"], problem["kernel"]
    taps = group_in * int(np.prod(kernel))
    units = np.eye(taps).reshape((taps, group_in) + kernel)
    columns = reference_conv(x, np.concatenate([units] * groups), groups=groups,
                             **{k: problem[k] for k in ("stride", "padding", "padding_mode",
                                                        "dilation")})
    columns = columns if problem["batch"] is not None else columns[None]
    return [np.moveaxis(columns[:, g * taps:(g + 1) * taps], 1, -1).reshape(-1, taps)
            for g in range(groups)]


@settings(max_examples=examples(150))
@given(conv_problems(max_size=7, max_pad=4))
def test_fit_is_the_ridge_least_squares_solution(problem):
    options = {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation", "groups")}
    rng = np.random.default_rng(problem["seed"])
    lead = () if problem["batch"] is None else (problem["batch"],)
    x = rng.normal(size=lead + (problem["in_channels"],) + problem["sizes"])
    weight_shape = (problem["out_channels"], problem["group_in"]) + problem["kernel"]
    try:
        expected_shape = plan(x.shape, x.dtype, weight_shape, **options).result_shape
    except ValueError:
        assume(False)
    y = rng.normal(size=expected_shape)  # pure noise: the fit is the projection, not a kernel
    ridge, fit_bias = 0.5, problem["bias"]
    bank = learn.fit(x, y, problem["kernel"], ridge=ridge, bias=fit_bias, **options)

    group_out = problem["out_channels"] // problem["groups"]
    y_rows = np.moveaxis(y if lead else y[None], 1, -1).reshape(-1, problem["out_channels"])
    for g, design in enumerate(design_matrices(x, problem)):
        taps = design.shape[1]
        if fit_bias:
            design = np.hstack([design, np.ones((len(design), 1))])
        # Ridge as extra rows sqrt(ridge)·I on the weights only (the bias is not penalised).
        penalty = np.sqrt(ridge) * np.eye(taps, design.shape[1])
        stacked = np.vstack([design, penalty])
        outs = slice(g * group_out, (g + 1) * group_out)
        targets = np.vstack([y_rows[:, outs], np.zeros((taps, group_out))])
        solution = np.linalg.lstsq(stacked, targets, rcond=None)[0]
        np.testing.assert_allclose(
            bank.weight[outs].reshape(group_out, -1), solution[:taps].T, rtol=1e-6, atol=1e-8)
        if fit_bias:
            np.testing.assert_allclose(bank.bias[outs], solution[taps], rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Ridge


def test_ridge_shrinks_the_weights_but_not_the_bias():
    x = RNG.random((1, 30, 30))
    weight, bias = RNG.normal(size=(1, 1, 3, 3)), np.array([40.0])
    y = reference_conv(x, weight, bias, padding="same", padding_mode="reflect")
    y_noisy = y + RNG.normal(scale=0.05, size=y.shape)
    norms = [np.linalg.norm(learn.fit(x, y_noisy, 3, ridge=r).weight) for r in (0, 1, 10, 1e3)]
    assert all(a > b for a, b in zip(norms, norms[1:]))
    # An enormous ridge leaves only the bias, which then fits the target's mean.
    heavy = learn.fit(x, y, 3, ridge=1e12)
    assert np.abs(heavy.weight).max() < 1e-6
    np.testing.assert_allclose(heavy.bias, [y.mean()], rtol=1e-6)
    # A small ridge on a noiseless pair still lands near the truth.
    np.testing.assert_allclose(learn.fit(x, y, 3, ridge=1e-6).weight, weight, atol=1e-3)


def test_ridge_solves_what_plain_least_squares_refuses():
    flat = np.full((1, 16, 16), 5.0)
    with pytest.raises(ValueError, match="do not determine the kernel.*span only 1 of the 10"):
        learn.fit(flat, flat * 2, 3)
    bank = learn.fit(flat, flat * 2, 3, ridge=1.0)
    again = imgfilt.conv(flat, bank.weight, bank.bias, padding="same", padding_mode="reflect")
    np.testing.assert_allclose(again, flat * 2, atol=1e-3)
    # Fewer samples than unknowns is fine with a ridge.
    small = RNG.random((1, 3, 3))
    assert learn.fit(small, small, 5, ridge=0.1).weight.shape == (1, 1, 5, 5)


# ---------------------------------------------------------------------------------------------
# Errors


def test_shape_mismatches_name_both_shapes():
    x = RNG.random((3, 20, 20))
    with pytest.raises(ValueError, match=r"y has shape \(2, 20, 19\).*gives \(2, 20, 20\)"):
        learn.fit(x, RNG.random((2, 20, 19)), 3)
    with pytest.raises(ValueError, match=r"y has shape \(2, 20, 20\).*gives \(2, 10, 10\)"):
        learn.fit(x, RNG.random((2, 20, 20)), 3, stride=2)
    with pytest.raises(ValueError, match="batch form of x"):
        learn.fit(x, RNG.random((1, 2, 20, 20)), 3)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        learn.fit(x, RNG.random((2, 20, 20)), 3, groups=2)
    with pytest.raises(ValueError, match="kernel .* is larger than the padded input"):
        learn.fit(x, RNG.random((1, 1, 1)), 25, padding="valid")
    with pytest.raises(ValueError, match="for a batch .* give one size per spatial axis"):
        learn.fit(RNG.random((2, 1, 8, 8, 8)), RNG.random((2, 1, 8, 8, 8)), 3)
    with pytest.raises(ValueError, match="3 spatial axes .* got shape"):
        learn.fit(x, x, (3, 3, 3))


def test_under_determined_says_how_many_patches_are_needed():
    x = RNG.random((2, 2, 5, 5))  # 2 examples x 25 samples
    with pytest.raises(ValueError, match=r"51 unknowns .*2 input channel\(s\) x 25 taps \+ bias.*"
                                         r"at least 51 .*gives 50"):
        learn.fit(x, RNG.random((2, 1, 5, 5)), (5, 5))


def test_rank_deficient_examples_are_refused():
    ramp = np.add.outer(np.arange(20.0), 2 * np.arange(20.0))[None]
    with pytest.raises(ValueError, match="do not determine the kernel"):
        learn.fit(ramp, ramp[:, 1:-1, 1:-1], 3, padding="valid")  # every patch is affine in its position
    x = np.stack([RNG.random((12, 12)), np.zeros((12, 12))])
    with pytest.raises(ValueError, match="in group 1"):
        learn.fit(x, RNG.random((2, 12, 12)), 3, groups=2, padding_mode="zeros")


@pytest.mark.parametrize("which", ["x", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(which, bad):
    arrays = {"x": RNG.random((1, 10, 10)), "y": RNG.random((1, 10, 10))}
    arrays[which][0, 3, 4] = bad
    with pytest.raises(ValueError, match=rf"{which} holds NaN or infinity \(first at index "
                                         r"\(0, 3, 4\)"):
        learn.fit(arrays["x"], arrays["y"], 3)


def test_bad_arguments():
    x = RNG.random((1, 10, 10))
    with pytest.raises(TypeError, match="complex128; allowed: real numbers"):
        learn.fit(x.astype(complex), x, 3)
    with pytest.raises(TypeError, match="ridge"):
        learn.fit(x, x, 3, ridge="1")
    with pytest.raises(ValueError, match="ridge"):
        learn.fit(x, x, 3, ridge=-1)
    with pytest.raises(TypeError, match="bias"):
        learn.fit(x, x, 3, bias=1)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        learn.fit(x, x, 0)
    with pytest.raises(ValueError, match="padding_mode='mirrored'"):
        learn.fit(x, x, 3, padding_mode="mirrored")


def test_score():
    x = RNG.random((1, 20, 20))
    bank = imgfilt.FilterBank(RNG.normal(size=(2, 1, 3, 3)), RNG.normal(size=2))
    y = reference_conv(x, bank.weight, bank.bias, padding="same", padding_mode="reflect")
    perfect = learn.score(bank, x, y)
    assert perfect.rms < 1e-9 and perfect.r2 == pytest.approx(1.0)
    noisy = y + RNG.normal(size=y.shape)
    fitted = learn.score(bank, x, noisy)
    residual = y - noisy
    assert fitted.rms == pytest.approx(np.sqrt(np.mean(residual ** 2)))
    centred = noisy - noisy.mean(axis=(1, 2), keepdims=True)
    assert fitted.r2 == pytest.approx(1 - np.sum(residual ** 2) / np.sum(centred ** 2))


def test_matches_a_torch_layer():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 4, 5, padding="same", padding_mode="reflect", dilation=2)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        y = layer.double()(x)
    bank = learn.fit(x.numpy(), y.numpy(), (5, 5), dilation=2)
    np.testing.assert_allclose(bank.weight, layer.weight.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(bank.bias, layer.bias.detach().numpy(), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The command line


def run_cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "imgfilt", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": SOURCE_ROOT})


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    with Image.open(SAMPLES / "astronaut.png") as image:
        image.convert("RGB").crop((100, 40, 164, 104)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def test_cli_learns_a_blur_from_a_photo(photo, tmp_path):
    from PIL import Image

    rgb = np.moveaxis(np.asarray(Image.open(photo), dtype=np.float64), -1, 0)
    hidden = RNG.random((1, 3, 3, 3))
    target = reference_conv(rgb, hidden, [4.0], padding="same", padding_mode="reflect")
    np.save(tmp_path / "target.npy", np.moveaxis(target, 0, -1))  # channels last, as images
    done = run_cli(["learn", "photo.png", "target.npy", "--size", "3", "-o", "bank.npz"],
                   tmp_path)
    assert done.returncode == 0, done.stderr
    assert "RMS error" in done.stdout and "R² 1.000000" in done.stdout
    bank = imgfilt.FilterBank.load(tmp_path / "bank.npz")
    np.testing.assert_allclose(bank.weight, hidden, atol=1e-4)
    np.testing.assert_allclose(bank.bias, [4.0], atol=1e-3)
    np.testing.assert_allclose(bank.apply(np.asarray(Image.open(photo))), target, atol=1e-2)


def test_cli_gray_fits_luminance_and_reports_the_fit(photo, tmp_path):
    from PIL import Image

    gray = np.asarray(Image.open(photo).convert("L"), dtype=np.float64)  # Pillow's own luma
    sobel_x = imgfilt.kernels.sobel_x()[None, None]
    target = reference_conv(gray[None], sobel_x, padding="same", padding_mode="symmetric")[0]
    np.save(tmp_path / "edges.npy", target)
    done = run_cli(["learn", "photo.png", "edges.npy", "--size", "3x3", "--gray",
                    "--padding-mode", "symmetric", "-o", "edges"], tmp_path)
    assert done.returncode == 0, done.stderr
    bank = imgfilt.FilterBank.load(tmp_path / "edges.npz")
    # Pillow rounds its luminance to integers; the fit sees the unrounded values.
    np.testing.assert_allclose(bank.weight[0, 0], imgfilt.kernels.sobel_x(), atol=0.05)
    rms = float(done.stdout.split("RMS error ")[1].split(";")[0].split(",")[0])
    r2 = float(done.stdout.split("R² ")[1])
    fitted = learn.score(bank, learn._read_example(str(photo), True, 2), target[None],
                         padding_mode="symmetric")
    assert rms == pytest.approx(fitted.rms, rel=1e-5) and r2 == pytest.approx(fitted.r2, abs=2e-6)
    assert 0.9 < r2 < 1


def test_cli_errors(photo, tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((10, 10)))
    np.save(tmp_path / "nan.npy", np.full((64, 64), np.nan))
    (tmp_path / "existing.npz").write_bytes(b"keep")
    cases = [
        (["photo.png", "missing.png", "--size", "3", "-o", "a.npz"], "missing.png: cannot read"),
        (["photo.png", "small.npy", "--size", "3", "-o", "a.npz"], r"y has shape \(1, 10, 10\)"),
        (["photo.png", "nan.npy", "--size", "3", "-o", "a.npz"], "y holds NaN"),
        (["photo.png", "photo.png", "--size", "3", "-o", "existing.npz"], "exists"),
        (["photo.png", "photo.png", "--size", "3x3x3", "-o", "a.npz"], "needs .npy"),
        (["photo.png", "small.npy", "--gray", "--size", "3", "-o", "a.npz"], "shape"),
    ]
    for args, message in cases:
        done = run_cli(["learn", *args], tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("imgfilt: "), done.stderr
        assert __import__("re").search(message, lines[0]), (message, lines[0])
    assert (tmp_path / "existing.npz").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "existing.npz", "nan.npy", "photo.png", "small.npy"]
    for usage in (["--size", "0"], ["--size", "3xa"], ["--size", "3", "--padding-mode", "x"]):
        done = run_cli(["learn", "photo.png", "photo.png", *usage, "-o", "a.npz"], tmp_path)
        assert done.returncode == 2 and "usage:" in done.stderr


def test_cli_overwrite_quiet_and_the_suffix(photo, tmp_path):
    before = photo.read_bytes()
    # -o without .npz gets the suffix (as FilterBank.save adds it): never the input itself.
    done = run_cli(["learn", "photo.png", "photo.png", "--size", "1", "-o", "photo.png"],
                   tmp_path)
    assert done.returncode == 0, done.stderr
    assert photo.read_bytes() == before and (tmp_path / "photo.png.npz").exists()
    again = run_cli(["learn", "photo.png", "photo.png", "--size", "1", "--overwrite", "--quiet",
                     "-o", "photo.png.npz"], tmp_path)
    assert again.returncode == 0 and again.stdout == ""
    bank = imgfilt.FilterBank.load(tmp_path / "photo.png.npz")
    np.testing.assert_allclose(bank.weight[:, :, 0, 0], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(bank.bias, 0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The classroom demo


def test_learn_demo_runs_and_recovers_its_kernels(tmp_path):
    done = subprocess.run([sys.executable, str(SAMPLES / "learn_demo.py"), "out"], check=False, cwd=tmp_path,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SOURCE_ROOT})
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["1-blurred.png", "2-kernels.png", "3-residual.png", "4-sobel-bank.png",
                       "5-sobel-maps.png"]
    assert "hidden kernel recovered" in done.stdout


def test_examples_are_read_exactly_upright_and_one_image_at_a_time(tmp_path):
    import tifffile
    from PIL import Image

    # A 16-bit colour TIFF: every bit (Pillow would have truncated or refused it).
    deep = np.random.default_rng(3).integers(0, 65535, (6, 7, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", deep, photometric="rgb")
    np.testing.assert_array_equal(learn._read_example(str(tmp_path / "deep.tif"), False, None),
                                  np.moveaxis(deep, -1, 0))
    # A phone photo with EXIF orientation 6 is read upright, as imgfilt apply reads it.
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "turned.png", exif=exif)
    upright = learn._read_example(str(tmp_path / "turned.png"), False, None)
    assert upright.shape == (3, 6, 4) and upright[0, 0, -1] == 255
    # A multi-page TIFF is a volume for a 3-D kernel, and refused by name for a 2-D one.
    stack = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    np.testing.assert_array_equal(learn._read_example(str(tmp_path / "stack.tif"), False, 3),
                                  stack[None])
    with pytest.raises(ValueError, match="holds 2 pages"):
        learn._read_example(str(tmp_path / "stack.tif"), False, None)
    frames = [Image.new("L", (5, 5), v) for v in (0, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="holds 2 frames"):
        learn._read_example(str(tmp_path / "anim.gif"), False, None)
