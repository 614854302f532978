"""Weights from .safetensors (NumPy alone), Keras .keras/.h5 (h5py) and .pt (torch), with and
without torch; errors name the file and the tensors found."""
import builtins
import io
import os
import zipfile

import numpy as np
import pytest

from imgfilt import FilterBank
from imgfilt.weights import read_weights

h5py = pytest.importorskip("h5py")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((6, 3, 5, 5)).astype(np.float32)  # PyTorch's layout
BIAS = RNG.standard_normal(6).astype(np.float32)
KERNEL = WEIGHT.transpose(2, 3, 1, 0).copy()  # Keras' (kH, kW, C_in, C_out)


@pytest.fixture
def no_torch(monkeypatch):
    """An interpreter where ``import torch`` fails, as on a machine without PyTorch."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def _keras3_file(path, layer="conv2d"):
    """A .keras archive laid out as Keras 3 writes it: config.json, metadata.json and
    model.weights.h5 with layers/<name>/vars/0 (kernel) and vars/1 (bias)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        group = handle.create_group(f"layers/{layer}/vars")
        group["0"] = KERNEL
        group["1"] = BIAS
        handle.create_group("layers/dense/vars")["0"] = np.zeros((10, 2), np.float32)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential"}')
        archive.writestr("metadata.json", '{"keras_version": "3.0.0"}')
        archive.writestr("model.weights.h5", buffer.getvalue())


def _keras2_file(path):
    """An .h5 as Keras 2's model.save_weights writes it: <layer>/<layer>/kernel:0, bias:0."""
    with h5py.File(path, "w") as handle:
        handle["conv2d/conv2d/kernel:0"] = KERNEL
        handle["conv2d/conv2d/bias:0"] = BIAS


@pytest.mark.parametrize("torch_present", [True, False], ids=["torch", "no-torch"])
def test_safetensors_with_numpy_alone(tmp_path, request, torch_present):
    if not torch_present:
        request.getfixturevalue("no_torch")
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file({"conv1.weight": WEIGHT, "conv1.bias": BIAS,
                                 "fc.weight": np.zeros((4, 6), np.float32)}, str(path))
    bank = FilterBank.from_safetensors(path)
    np.testing.assert_array_equal(bank.weight, WEIGHT)
    np.testing.assert_array_equal(bank.bias, BIAS)
    assert bank.names[0] == "conv1[0]"
    np.testing.assert_array_equal(FilterBank.from_torch(path).weight, WEIGHT)  # same route


@pytest.mark.parametrize("torch_present", [True, False], ids=["torch", "no-torch"])
def test_keras3_and_keras2_files(tmp_path, request, torch_present):
    if not torch_present:
        request.getfixturevalue("no_torch")
    _keras3_file(tmp_path / "model.keras")
    bank = FilterBank.from_keras(tmp_path / "model.keras", key="layers/conv2d/kernel")
    np.testing.assert_array_equal(bank.weight, WEIGHT)
    np.testing.assert_array_equal(bank.bias, BIAS)
    # The only convolution kernel: no key needed.
    np.testing.assert_array_equal(FilterBank.from_keras(tmp_path / "model.keras").weight, WEIGHT)
    _keras2_file(tmp_path / "weights.h5")
    bank = FilterBank.from_keras(tmp_path / "weights.h5")
    np.testing.assert_array_equal(bank.weight, WEIGHT)
    np.testing.assert_array_equal(bank.bias, BIAS)


def test_pt_with_torch_and_without(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pt"
    torch.save({"conv1.weight": torch.from_numpy(WEIGHT), "conv1.bias": torch.from_numpy(BIAS)},
               path)
    np.testing.assert_array_equal(FilterBank.from_torch(path).weight, WEIGHT)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"w\.pt.*needs PyTorch.*safetensors"):
        FilterBank.from_torch(path)


def test_pickled_model_never_runs(tmp_path):
    torch = pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt.*weights_only"):
        FilterBank.from_torch(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_errors_name_the_file_and_the_tensors(tmp_path):
    safetensors_numpy.save_file({"a.weight": WEIGHT, "b.weight": WEIGHT}, str(tmp_path / "two.safetensors"))
    with pytest.raises(ValueError, match=r"two\.safetensors.*a\.weight \(6, 3, 5, 5\), b\.weight"):
        FilterBank.from_safetensors(tmp_path / "two.safetensors")
    with pytest.raises(ValueError, match=r"two\.safetensors.*did you mean 'a\.weight'"):
        FilterBank.from_safetensors(tmp_path / "two.safetensors", key="a.weigth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ValueError, match=r"junk\.safetensors"):
        read_weights(tmp_path / "junk.safetensors")
    (tmp_path / "junk.h5").write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(ValueError, match=r"junk\.h5.*HDF5"):
        read_weights(tmp_path / "junk.h5")
    with zipfile.ZipFile(tmp_path / "nothing.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match=r"nothing\.keras.*model\.weights\.h5.*config\.json"):
        read_weights(tmp_path / "nothing.keras")
    with pytest.raises(FileNotFoundError):
        read_weights(tmp_path / "missing.h5")


def test_missing_packages_say_which_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("h5py", "safetensors.numpy"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"imgfilt\[keras\]"):
        read_weights(tmp_path / "w.h5")
    with pytest.raises(ImportError, match=r"imgfilt\[weights\]"):
        read_weights(tmp_path / "w.safetensors")
