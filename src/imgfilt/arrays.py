"""The one input/output adapter: what imgfilt accepts, as NumPy, and the same type back.

Every entry point reads its input through :func:`read` (or :func:`as_numpy`, for the engine's
own arguments) and gives its result back through :meth:`Input.give_back`. What is accepted:

=====================  ====================================  =====================================
input                  read as                               given back as
=====================  ====================================  =====================================
numpy.ndarray,         the array (array-likes through        numpy.ndarray
array-likes            ``numpy.asarray``)
PIL.Image.Image        its pixels (:func:`pil_to_array`)     a PIL image (see imgfilt.pipeline)
torch.Tensor (CPU)     ``tensor.detach().numpy()``; a        a torch.Tensor (CPU), same layout
                       tensor that requires grad is read
                       detached; bfloat16 as float32
xarray.DataArray       its values; dim names may name the    a DataArray: dims, coords, attrs and
                       axes                                  name kept
dask.array.Array       not read: :func:`is_lazy` tells the   (imgfilt.dask builds the graph)
                       caller to take the lazy route
CuPy and other device  refused: TypeError naming what is     --
arrays, torch on GPU   supported
=====================  ====================================  =====================================

This module imports nothing from imgfilt; it is the bottom of the array pipeline, and the
convolution layer reads ``conv``'s arguments through :func:`as_numpy`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = [
    "Input",
    "read",
    "as_numpy",
    "is_lazy",
    "is_pil",
    "pil_to_array",
    "array_to_pil",
    "normalised_pil",
    "PIL_MODES",
    "SUPPORTED",
    "REAL_DTYPES",
    "spatial_steps",
]

#: What the adapter accepts, for error messages.
SUPPORTED = ("NumPy arrays and array-likes, PIL images, CPU torch tensors, xarray DataArrays "
             "and Dask arrays")

#: The dtypes every entry point computes on, for error messages.
REAL_DTYPES = "real numbers (bool, integers, float16, float32, float64)"

#: Pillow modes imgfilt accepts, and what each becomes first.
PIL_MODES = {
    "L": "L",
    "LA": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "I;16": "I;16",
    "I": "I",
    "F": "F",
    "P": "RGB or RGBA (RGBA when the palette has transparency)",
    "PA": "RGBA",
    "1": "L (0 and 255)",
}


def _top_module(value: Any) -> str:
    return type(value).__module__.partition(".")[0]


def is_lazy(value: Any) -> bool:
    """True for a Dask array (filtered lazily by :mod:`imgfilt.dask`, never computed here)."""
    return _top_module(value) == "dask" and hasattr(value, "chunks") and hasattr(value, "dask")


def is_pil(value: Any) -> bool:
    """True for a Pillow image."""
    return isinstance(value, Image.Image)


def _is_torch(value: Any) -> bool:
    return _top_module(value) == "torch" and hasattr(value, "detach") and hasattr(value, "device")


def _is_xarray(value: Any) -> bool:
    return _top_module(value) == "xarray" and hasattr(value, "dims") and hasattr(value, "coords")


def _refuse_device(value: Any, name: str) -> None:
    """TypeError for arrays that live on an accelerator (CuPy, torch on GPU, DLPack devices)."""
    device = None
    if _top_module(value) == "cupy" or hasattr(value, "__cuda_array_interface__"):
        device = "a CUDA device"
    elif _is_torch(value) and value.device.type != "cpu":
        device = f"torch device {value.device}"
    elif hasattr(value, "__dlpack_device__") and not isinstance(value, np.ndarray):
        try:
            kind = value.__dlpack_device__()[0]
        except Exception:  # noqa: BLE001 - an object whose device cannot be told is not refused here
            kind = 1
        if int(kind) not in (1, 3):  # kDLCPU, kDLCUDAHost: host memory
            device = f"DLPack device type {int(kind)}"
    if device is not None:
        raise TypeError(
            f"{name} is a {type(value).__module__}.{type(value).__name__} on {device}; imgfilt "
            f"runs on the CPU and takes {SUPPORTED}: copy it to the host first (e.g. "
            "cupy.asnumpy(x) or tensor.cpu())"
        )


def as_numpy(value: Any, name: str) -> np.ndarray:
    """Any host array as a NumPy array of real numbers (no copy where none is needed).

    Raises TypeError for None, strings, device arrays, Dask arrays (their route is
    :mod:`imgfilt.dask`) and dtypes other than bool, integers and floats up to 64 bits.

    Examples
    --------
    >>> as_numpy([[1, 2], [3, 4]], "x").dtype
    dtype('int64')
    """
    if type(value) is np.ndarray:  # the common case, first and cheap
        array = value
    else:
        if value is None or isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}")
        if is_lazy(value):
            raise TypeError(
                f"{name} is a Dask array; use imgfilt.dask (imgfilt.apply takes Dask arrays "
                "and stays lazy)"
            )
        _refuse_device(value, name)
        if _is_torch(value):
            array = _torch_to_numpy(value)
        elif _is_xarray(value):
            array = as_numpy(value.data, name)
        elif is_pil(value):
            array = pil_to_array(value)
        else:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{name} could not be read as an array: {error}") from None
    if array.dtype.kind not in "biuf" or array.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {array.dtype}; allowed: {REAL_DTYPES}")
    return array


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    import torch  # present: the value is a torch tensor

    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16; float32 holds it exactly
        tensor = tensor.float()
    if tensor.is_complex():
        raise TypeError(f"a complex torch tensor ({tensor.dtype}) cannot be filtered; allowed: "
                        f"{REAL_DTYPES}")
    return tensor.resolve_conj().resolve_neg().numpy()


# ---------------------------------------------------------------------------------------------
# Reading an input and giving the result back in its type


@dataclass(frozen=True)
class Input:
    """An input read as NumPy, and what is needed to give a result back in its type.

    Attributes
    ----------
    array : numpy.ndarray
        The values (for a PIL image: its pixels, see :func:`pil_to_array`).
    kind : {'numpy', 'pil', 'torch', 'xarray'}
        What the input was.
    convention : {'numpy', 'torch'}
        The layout convention :func:`imgfilt.layout.resolve` applies without explicit axes.
    dims : tuple of str or None
        An xarray DataArray's dim names.
    source : object
        The original input (kept to rebuild a DataArray or a PIL image's mode).
    """

    array: np.ndarray
    kind: str
    convention: str
    dims: Optional[Tuple[str, ...]]
    source: Any

    def give_back(self, result: np.ndarray, *, axes: Optional[Sequence[Optional[int]]] = None,
                  steps: Optional[Dict[int, int]] = None,
                  new_dims: Optional[Dict[int, Tuple[str, Any]]] = None) -> Any:
        """``result`` in the input's type.

        Parameters
        ----------
        result : numpy.ndarray
            The result.
        axes : sequence of int or None, optional
            For each axis of ``result``, the input axis it corresponds to, or None for an axis
            of new content (a FilterBank's feature maps, a channel-mixing filter's outputs).
            Default: the input's axes, in order.
        steps : dict, optional
            ``{input axis: stride}`` for spatial axes the result samples every ``stride``
            inputs (xarray coordinates are sampled the same way).
        new_dims : dict, optional
            ``{result axis: (dim name, coordinate values or None)}`` for the new axes.
        """
        if self.kind == "torch":
            import torch  # present: the input was a torch tensor

            return torch.from_numpy(np.ascontiguousarray(result))
        if self.kind == "xarray":
            return _rebuild_dataarray(self.source, result,
                                      list(range(result.ndim)) if axes is None else list(axes),
                                      steps or {}, new_dims or {})
        return result


def read(value: Any, name: str = "image") -> Input:
    """Read any accepted input (not a Dask array: see :func:`is_lazy`) as an :class:`Input`.

    Examples
    --------
    >>> read(np.zeros((4, 4))).kind
    'numpy'
    """
    if is_pil(value):
        return Input(pil_to_array(value), "pil", "numpy", None, value)
    if _is_torch(value):
        return Input(as_numpy(value, name), "torch", "torch", None, value)
    if _is_xarray(value):
        if is_lazy(value.data):
            raise TypeError(
                f"{name} is a DataArray backed by Dask; pass its .data to imgfilt.apply (the "
                "lazy route) or load it first with .load()"
            )
        return Input(as_numpy(value.data, name), "xarray", "numpy",
                     tuple(str(d) for d in value.dims), value)
    return Input(as_numpy(value, name), "numpy", "numpy", None, value)


def _rebuild_dataarray(source: Any, result: np.ndarray, axes: Sequence[Optional[int]],
                       steps: Dict[int, int], new_dims: Dict[int, Tuple[str, Any]]) -> Any:
    import xarray  # present: the input was a DataArray

    selection = {source.dims[axis]: slice(None, None, step) for axis, step in steps.items()
                 if step != 1}
    template = source.isel(selection) if selection else source
    dims = []
    for position, axis in enumerate(axes):
        dims.append(str(template.dims[axis]) if axis is not None else new_dims[position][0])
    kept = {str(template.dims[a]) for a in axes if a is not None}
    coords: Dict[str, Any] = {}
    for key, coord in template.coords.items():
        if set(map(str, coord.dims)) <= kept:  # coordinates along axes the result keeps
            coords[str(key)] = coord
    for position, (name, values) in new_dims.items():
        if values is not None:
            coords[name] = (name, np.asarray(values))
    return xarray.DataArray(result, dims=dims, coords=coords, attrs=dict(source.attrs),
                            name=source.name)


# ---------------------------------------------------------------------------------------------
# Pillow <-> NumPy, in one place


def normalised_pil(img: Image.Image) -> Image.Image:
    """The image in a mode whose pixels are plain numbers per channel, or a ValueError."""
    mode = img.mode
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode == "PA":
        return img.convert("RGBA")
    if mode == "1":
        # Filtering 1-bit pixels and thresholding back would throw the result away; L keeps it.
        return img.convert("L")
    if mode in ("I;16L", "I;16N") and np.little_endian:
        return img  # the same pixels as I;16 on this machine
    if mode not in PIL_MODES:
        raise ValueError(
            f"image mode {mode!r} is not supported; supported modes: "
            f"{', '.join(PIL_MODES)}. Convert first, e.g. img.convert('RGB')"
        )
    return img


def pil_to_array(img: Image.Image) -> np.ndarray:
    """The pixels of a Pillow image as an array: ``(H, W)`` or ``(H, W, bands)``.

    P and PA images become RGB(A), 1-bit images become L (0/255); CMYK, YCbCr, HSV, LAB and the
    premultiplied modes raise ValueError. Dtypes: uint8 (L, LA, RGB, RGBA), uint16 (I;16),
    int32 (I), float32 (F).

    Examples
    --------
    >>> pil_to_array(Image.new("RGBA", (4, 3))).shape
    (3, 4, 4)
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"img must be a PIL.Image.Image, got {type(img).__name__}")
    return np.asarray(normalised_pil(img))


def array_to_pil(array: Any, mode: Optional[str] = None) -> Image.Image:
    """A Pillow image from an ``(H, W)`` or ``(H, W, bands)`` array.

    Parameters
    ----------
    array : numpy.ndarray
        uint8 with 1-4 bands (L, LA, RGB, RGBA); uint16 (I;16), int32 (I) or float32 (F) with one.
    mode : str, optional
        Only ``'I;16'`` needs saying (for uint16; the default for uint16 is I;16 too); other modes
        follow from dtype and bands.

    Examples
    --------
    >>> array_to_pil(np.zeros((3, 4), np.uint16)).mode
    'I;16'
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    bands = 1 if array.ndim == 2 else array.shape[2]
    if array.ndim not in (2, 3):
        raise ValueError(f"array must be (H, W) or (H, W, bands), got shape {array.shape}")
    if array.dtype == np.uint16 and bands == 1 and mode in (None, "I;16"):
        height, width = array.shape
        data = np.ascontiguousarray(array, dtype="<u2").tobytes()
        return Image.frombuffer("I;16", (width, height), data, "raw", "I;16", 0, 1)
    allowed = {np.dtype(np.uint8): (1, 2, 3, 4), np.dtype(np.int32): (1,),
               np.dtype(np.float32): (1,)}
    if array.dtype not in allowed or bands not in allowed[array.dtype]:
        raise ValueError(
            f"no Pillow mode holds an array of dtype {array.dtype} with {bands} band(s); Pillow "
            "has uint8 with 1-4 bands (L, LA, RGB, RGBA) and single-band uint16 (I;16), int32 (I) "
            "and float32 (F)"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def spatial_steps(axes: Sequence[int], stride: Sequence[int]) -> Dict[int, int]:
    """``{axis: stride}`` for :meth:`Input.give_back`, from the spatial axes and strides."""
    return {int(a): int(s) for a, s in zip(axes, stride)}
