"""Weights from the files users have: NumPy, safetensors, Keras and PyTorch, none of which can
run code when read.

:func:`read_weights` returns an array (``.npy``) or a flat mapping of name -> array for
``FilterBank.from_torch`` / ``from_keras`` / ``from_safetensors``:

* ``.npy`` / ``.npz``: NumPy, ``allow_pickle=False``.
* ``.safetensors``: the ``safetensors`` package with NumPy alone (``safetensors.numpy``); no
  torch needed. The format holds raw tensors only.
* ``.keras`` (Keras 3: a zip holding ``model.weights.h5``) and ``.h5`` / ``.hdf5``
  (``model.save_weights`` / ``model.save`` of Keras 2): read with ``h5py``, datasets only (the
  model's configuration, which could name Python code, is never looked at).
* anything else (``.pt``, ``.pth``, ``.bin``): ``torch.load(weights_only=True)``, which refuses
  pickled objects other than tensors and plain containers.

Every error names the file, and where the file was read, the tensors found in it.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any, Mapping, Union

import numpy as np

from .errors import file_errors
from .io import check_regular_file, load_npy, load_npz

__all__ = ["read_weights", "describe_tensors", "WEIGHT_SUFFIXES"]

PathLike = Union[str, "os.PathLike[str]"]

#: Suffixes read without torch.
WEIGHT_SUFFIXES = (".npy", ".npz", ".safetensors", ".keras", ".h5", ".hdf5")


def describe_tensors(tensors: Mapping[str, Any], limit: int = 30) -> str:
    """``'conv1.weight (8, 3, 5, 5), conv1.bias (8,)'``: names and shapes, for error messages.

    Examples
    --------
    >>> describe_tensors({"w": np.zeros((2, 3))})
    'w (2, 3)'
    """
    shown = [f"{name} {tuple(np.shape(value))}" for name, value in list(tensors.items())[:limit]]
    more = len(tensors) - limit
    return (", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")) or "no tensors"


def _needs(package: str, extra: str, path: str) -> ImportError:
    return ImportError(f"reading {path!r} needs the {package!r} package: "
                       f"pip install 'imgfilt[{extra}]' (or pip install {package})")


def _safetensors(path: str) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise _needs("safetensors", "weights", path) from None
    try:
        return dict(load_file(path))
    except OSError:
        raise
    except Exception as error:  # noqa: BLE001 - SafetensorError, or a dtype NumPy lacks (bf16)
        reason = str(error).strip() or type(error).__name__
        raise ValueError(f"{path!r} is not a .safetensors file NumPy can read ({reason})") from None


def _h5_datasets(source: Any, path: str) -> dict:
    """Every numeric dataset of an HDF5 file as name -> array; Keras 3's ``<layer>/vars/0``
    and ``vars/1`` of a convolution (a 3-5 axis kernel and its ``(C_out,)`` bias) are named
    ``<layer>/kernel`` and ``<layer>/bias``."""
    try:
        import h5py
    except ImportError:
        raise _needs("h5py", "keras", path) from None
    found: dict[str, np.ndarray] = {}
    try:
        with h5py.File(source, "r") as handle:
            def visit(name: str, item: Any) -> None:
                if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf":
                    found[name] = item[()]

            handle.visititems(visit)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except OSError as error:  # h5py's word for "not an HDF5 file"
        raise ValueError(f"{path!r} is not a readable HDF5 (Keras weights) file "
                         f"({error})") from None
    named = dict(found)
    for name, value in found.items():
        head, _, index = name.rpartition("/vars/")
        if index == "0" and np.ndim(value) in (3, 4, 5):
            # Keras 3 numbers a layer's variables; a convolution's are (kernel, bias).
            named[f"{head}/kernel"] = named.pop(name)
            bias = found.get(f"{head}/vars/1")
            if bias is not None and np.shape(bias) == (np.shape(value)[-1],):
                named[f"{head}/bias"] = named.pop(f"{head}/vars/1")
    return named


def _keras_archive(path: str) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "model.weights.h5" not in names:
                raise ValueError(f"{path!r} is a zip without model.weights.h5 (it holds "
                                 f"{', '.join(names[:10]) or 'nothing'}); is it a Keras 3 "
                                 ".keras file?")
            member = archive.getinfo("model.weights.h5")
            data = archive.read(member)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path!r} is not a .keras file (a zip archive): {error}") from None
    return _h5_datasets(io.BytesIO(data), path)


def _torch(path: str) -> Any:
    try:
        import torch  # noqa: PLC0415 - only reading a .pt/.pth needs torch
    except ImportError:
        raise ImportError(
            f"reading {path!r} needs PyTorch; install torch, or save the weights as "
            ".safetensors (safetensors.torch.save_file) or .npz and load those"
        ) from None
    with file_errors(path, "PyTorch"):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError,
                AttributeError, KeyError) as error:  # what torch raises for files it cannot read
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            raise ValueError(
                f"{path!r} is not a state dict torch.load(weights_only=True) can read "
                f"({reason}); save model.state_dict(), not the model"
            ) from None


def read_weights(path: PathLike) -> Any:
    """The array (``.npy``) or mapping of arrays stored at ``path``; see the module docstring.

    Raises
    ------
    ValueError
        The file is not of the kind its suffix says, or holds objects (a pickle); the message
        names the file.
    ImportError
        The package that reads the format is missing; the message says which to install.
    OSError
        The file cannot be opened.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> np.savez(path, kernel=np.ones((3, 3, 1, 2)))
    >>> sorted(read_weights(path))
    ['kernel']
    """
    name = os.fspath(path)
    check_regular_file(name)
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".npy":
        return load_npy(name)
    if suffix == ".npz":
        return load_npz(name)
    if suffix == ".safetensors":
        return _safetensors(name)
    if suffix == ".keras":
        return _keras_archive(name)
    if suffix in (".h5", ".hdf5"):
        return _h5_datasets(name, name)
    return _torch(name)
