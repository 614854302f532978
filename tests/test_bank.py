"""FilterBank: stacking, == conv on the stacked weight, shapes, files, PyTorch/Keras layouts."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from scipy import ndimage

import imgfilt
from imgfilt import FilterBank, Sequential, filters
from imgfilt.bank import montage

RNG = np.random.default_rng(99)
GREY = RNG.normal(size=(14, 17))
COLOUR = RNG.normal(size=(14, 17, 3))


def test_bank_from_filters_stacks_weights_and_names():
    bank = FilterBank([filters.sobel_x(), filters.sobel_y(), filters.laplacian()])
    assert bank.names == ("sobel_x", "sobel_y", "laplacian")
    assert bank.weight.shape == (3, 1, 3, 3) and len(bank) == 3
    assert np.array_equal(bank.weight[2, 0], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert np.array_equal(bank.bias, np.zeros(3))


def test_bank_equals_conv_on_the_stacked_weight():
    kernels = [RNG.normal(size=(3, 3)) for _ in range(4)]
    bank = FilterBank(kernels, bias=[1.0, 2.0, 3.0, 4.0])
    expected = imgfilt.conv(GREY[None], np.stack(kernels)[:, None], [1.0, 2.0, 3.0, 4.0],
                            padding="same", padding_mode="reflect")
    np.testing.assert_array_equal(bank.apply(GREY), expected)
    assert bank.names == ("kernel0", "kernel1", "kernel2", "kernel3")


def test_bank_maps_equal_scipy_per_filter():
    bank = FilterBank([filters.sobel_x(), filters.gaussian(1.0), filters.box(5)])
    maps = bank.apply(GREY)
    assert maps.shape == (3,) + GREY.shape
    np.testing.assert_allclose(maps[0], ndimage.sobel(GREY, 1, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(maps[1], ndimage.gaussian_filter(GREY, 1.0, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(maps[2], ndimage.uniform_filter(GREY, 5, mode="mirror"), atol=1e-12)
    assert bank.weight.shape == (3, 1, 9, 9)


def test_weight_bank_mixes_channels_like_conv():
    weight = RNG.normal(size=(5, 3, 3, 3))
    bias = RNG.normal(size=5)
    bank = FilterBank(weight, bias)
    expected = imgfilt.conv(np.moveaxis(COLOUR, -1, 0), weight, bias, padding="same",
                            padding_mode="reflect")
    np.testing.assert_allclose(bank.apply(COLOUR), expected)
    np.testing.assert_allclose(bank.apply(np.moveaxis(COLOUR, -1, 0)), expected)  # channel-first
    np.testing.assert_allclose(bank.apply(COLOUR, channels_last=True), np.moveaxis(expected, 0, -1))
    np.testing.assert_allclose(imgfilt.apply(COLOUR, bank), expected)
    valid = bank.apply(COLOUR, padding="valid", padding_mode="zeros", stride=2)
    np.testing.assert_allclose(
        valid, imgfilt.conv(np.moveaxis(COLOUR, -1, 0), weight, bias, stride=2))


def test_output_shape_and_n_params_textbook_example():
    bank = FilterBank(np.zeros((6, 5, 3, 3)))
    assert bank.output_shape((5, 64, 64), padding="valid") == (6, 62, 62)
    assert bank.output_shape((5, 64, 64)) == (6, 64, 64)
    assert bank.output_shape((2, 5, 64, 64), padding=1, stride=2) == (2, 6, 32, 32)
    assert bank.n_params == 6 * 5 * 3 * 3 + 6 == 276
    with pytest.raises(ValueError, match="C_in"):
        bank.output_shape((4, 64, 64))
    with pytest.raises(TypeError, match="unknown option"):
        bank.output_shape((5, 64, 64), pading="valid")


def test_cascade_shapes_follow_the_textbook():
    first, second = FilterBank(RNG.normal(size=(6, 5, 3, 3))), FilterBank(RNG.normal(size=(4, 6, 10, 10)))
    net = first.then(second)
    assert isinstance(net, Sequential) and len(net) == 2
    assert net.output_shape((5, 64, 64), padding="valid") == (4, 53, 53)
    assert net.shapes((5, 64, 64), padding="valid") == [(5, 64, 64), (6, 62, 62), (4, 53, 53)]
    assert net.n_params == 276 + 4 * 6 * 100 + 4
    x = RNG.normal(size=(5, 20, 20))
    expected = imgfilt.conv(imgfilt.conv(x, first.weight, first.bias), second.weight, second.bias)
    np.testing.assert_allclose(net.apply(x, padding="valid"), expected)
    with pytest.raises(ValueError, match="expects C_in = 4"):
        first.then(FilterBank(np.zeros((2, 4, 3, 3))))


def test_groups():
    weight = RNG.normal(size=(6, 1, 3, 3))
    bank = FilterBank(weight, groups=3)
    assert bank.in_channels == 3
    x = np.moveaxis(COLOUR, -1, 0)
    np.testing.assert_allclose(bank.apply(x, padding="valid"), imgfilt.conv(x, weight, groups=3))


def test_save_load_round_trip_without_pickle(tmp_path):
    bank = FilterBank([filters.sobel_x(), filters.prewitt_y()], bias=[0.5, -1.0])
    path = bank.save(tmp_path / "edges")
    assert path.endswith("edges.npz")
    loaded = FilterBank.load(path)
    assert loaded.names == bank.names
    np.testing.assert_array_equal(loaded.weight, bank.weight)
    np.testing.assert_array_equal(loaded.bias, bank.bias)
    with np.load(path, allow_pickle=False) as data:  # nothing in the file needs pickle
        assert data["names"].dtype.kind == "U"
    assert [p.name for p in tmp_path.iterdir()] == ["edges.npz"]  # no temp file left


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a FilterBank"):
        FilterBank.load(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", weight=np.zeros((1, 1, 3, 3)), bias=np.zeros(1),
             names=np.array(["a"], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        FilterBank.load(tmp_path / "pickled.npz")


def test_from_torch_with_arrays_and_state_dicts():
    weight, bias = RNG.normal(size=(8, 3, 5, 5)), RNG.normal(size=8)
    bank = FilterBank.from_torch(weight, bias)
    assert bank.weight.shape == (8, 3, 5, 5)
    np.testing.assert_array_equal(bank.weight, weight)
    state = {"features.0.weight": weight, "features.0.bias": bias}
    from_state = FilterBank.from_torch(state, key="features.0.weight")
    np.testing.assert_array_equal(from_state.bias, bias)
    assert from_state.names[0] == "features.0[0]"
    # The only convolution weight needs no key; two do, and the error lists them.
    np.testing.assert_array_equal(FilterBank.from_torch(state).weight, weight)
    two = {**state, "head.weight": RNG.normal(size=(2, 8, 1, 1))}
    with pytest.raises(ValueError, match=r"2 convolution weights.*key=.*head.weight \(2, 8, 1, 1\)"):
        FilterBank.from_torch(two)
    with pytest.raises(ValueError, match="not in the state dict.*did you mean 'features.0.weight'"):
        FilterBank.from_torch(two, key="features.O.weight")


def test_from_torch_never_imports_torch_for_arrays(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys, numpy as np, imgfilt; "
            "imgfilt.FilterBank.from_torch({'w': np.zeros((2, 1, 3, 3))}, key='w'); "
            "imgfilt.FilterBank.from_torch(np.zeros((2, 1, 3, 3))); "
            "np.save('w.npy', np.zeros((2, 1, 3, 3))); imgfilt.FilterBank.from_torch('w.npy'); "
            "import imgfilt.learn; "
            "assert 'torch' not in sys.modules")
    # The imgfilt under test, run from outside the source tree (which may lack the engine).
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(imgfilt.__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_from_torch_state_dict_file(tmp_path):
    torch = pytest.importorskip("torch")
    layer = torch.nn.Conv2d(3, 4, 3)
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    bank = FilterBank.from_torch(tmp_path / "layer.pt", key="weight")
    x = torch.randn(1, 3, 10, 10)
    expected = layer(x).detach().numpy()[0]
    np.testing.assert_allclose(bank.apply(x.numpy()[0], padding="valid"), expected, atol=1e-4)


def test_weights_from_npy_and_npz_in_torch_and_keras_layouts(tmp_path):
    weight, bias = RNG.normal(size=(4, 3, 3, 5)), RNG.normal(size=4)
    np.save(tmp_path / "w.npy", weight)
    np.testing.assert_array_equal(FilterBank.from_torch(tmp_path / "w.npy").weight, weight)
    # A checkpoint-like nested mapping saved flat with dotted keys, as np.savez writes it.
    np.savez(tmp_path / "state.npz", **{"model.conv1.weight": weight, "model.conv1.bias": bias,
                                         "model.fc.weight": RNG.normal(size=(10, 4))})
    bank = FilterBank.from_torch(str(tmp_path / "state.npz"))
    np.testing.assert_array_equal(bank.weight, weight)
    np.testing.assert_array_equal(bank.bias, bias)
    nested = {"epoch": 3, "state_dict": {"conv1.weight": weight, "conv1.bias": bias}}
    np.testing.assert_array_equal(
        FilterBank.from_torch(nested, key="state_dict.conv1.weight").bias, bias)
    # Keras: (*K, C_in, C_out), bias found beside the kernel.
    kernel = weight.transpose(2, 3, 1, 0)
    np.savez(tmp_path / "keras.npz", **{"conv2d/kernel:0": kernel, "conv2d/bias:0": bias})
    from_keras = FilterBank.from_keras(tmp_path / "keras.npz")
    np.testing.assert_array_equal(from_keras.weight, weight)
    np.testing.assert_array_equal(from_keras.bias, bias)
    np.save(tmp_path / "k.npy", kernel)
    np.testing.assert_array_equal(FilterBank.from_keras(tmp_path / "k.npy").weight, weight)
    with pytest.raises(ValueError, match=r"Keras weights are read from .*\.keras.*from_torch"):
        FilterBank.from_keras(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="0 convolution weights"):
        FilterBank.from_torch({"fc.weight": np.zeros((3, 4))})


def test_state_dict_file_errors(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
    torch.save(model.state_dict(), tmp_path / "net.pth")
    with pytest.raises(ValueError, match=r"2 convolution weights.*0\.weight \(2, 1, 3, 3\).*2\.weight"):
        FilterBank.from_torch(tmp_path / "net.pth")
    bank = FilterBank.from_torch(tmp_path / "net.pth", key="2.weight")
    np.testing.assert_array_equal(bank.bias, model[2].bias.detach().numpy())
    torch.save(model, tmp_path / "whole.pt")  # a pickled module, not a state dict
    with pytest.raises(ValueError, match="whole.pt.*not a state dict"):
        FilterBank.from_torch(tmp_path / "whole.pt")
    with pytest.raises(FileNotFoundError):
        FilterBank.from_torch(tmp_path / "missing.pt")


def test_from_keras_layout_against_a_direct_keras_style_correlation():
    kernel = RNG.normal(size=(3, 4, 3, 2))  # (kh, kw, C_in, C_out)
    bias = RNG.normal(size=2)
    bank = FilterBank.from_keras(kernel, bias)
    assert bank.weight.shape == (2, 3, 3, 4)
    windows = sliding_window_view(COLOUR, (3, 4), axis=(0, 1))  # (H', W', C_in, kh, kw)
    expected = np.einsum("yxcmn,mnco->yxo", windows, kernel) + bias
    np.testing.assert_allclose(bank.apply(COLOUR, padding="valid", channels_last=True), expected)
    np.testing.assert_array_equal(bank.to_keras(), kernel)
    with pytest.raises(ValueError, match="Keras"):
        FilterBank.from_keras(np.zeros((3, 3)))


def test_bank_rejects_nonlinear_and_mismatched_filters():
    with pytest.raises(ValueError, match="not linear"):
        FilterBank([filters.sobel()])
    with pytest.raises(ValueError, match="input channel counts"):
        FilterBank([filters.sobel_x(), filters.edge()])
    with pytest.raises(ValueError, match="odd"):
        FilterBank([np.ones((2, 2)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="bias"):
        FilterBank(np.zeros((2, 1, 3, 3)), bias=np.zeros(3))
    with pytest.raises(ValueError, match="names"):
        FilterBank(np.zeros((2, 1, 3, 3)), names=["a"])
    with pytest.raises(ValueError, match="weight"):
        FilterBank(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="C_in = 3"):
        FilterBank(np.zeros((2, 3, 3, 3))).apply(np.zeros((8, 8, 4)))


def test_pil_images_feed_banks_without_alpha():
    pixels = RNG.integers(0, 256, size=(12, 13, 4), dtype=np.uint8)
    bank = FilterBank([filters.edge("r"), filters.edge("b", "horizontal")])
    maps = bank.apply(Image.fromarray(pixels))
    expected = bank.apply(pixels[..., :3].astype(np.float32))
    np.testing.assert_allclose(maps, expected)
    assert maps.dtype == np.float32


def test_reflect_on_a_one_pixel_axis_in_a_bank():
    row = RNG.normal(size=(1, 20))
    np.testing.assert_allclose(FilterBank([filters.gaussian(1.0)]).apply(row)[0],
                               ndimage.gaussian_filter(row, 1.0, mode="mirror"), atol=1e-12)


def test_montage_tiles_stretched_maps():
    maps = RNG.normal(size=(5, 6, 7))
    maps[3] = 2.0  # a constant map
    picture = montage(maps, cols=3)
    assert picture.mode == "L" and picture.size == (3 * 7 + 2, 2 * 6 + 1)
    sheet = np.asarray(picture)
    first = sheet[:6, :7]
    assert first.min() == 0 and first.max() == 255
    expected = (maps[0] - maps[0].min()) / np.ptp(maps[0]) * 255
    assert np.abs(first - expected).max() <= 0.5 + 1e-9
    assert (sheet[6, :] == 255).all() and (sheet[:, 7] == 255).all()  # separators
    assert (sheet[7:, :7] == 0).all()  # the constant map
    assert FilterBank(np.zeros((4, 1, 3, 3))).montage(maps[:4]).size == (15, 13)
    with pytest.raises(ValueError, match="C, H, W"):
        montage(np.zeros((2, 3, 4, 5)))
