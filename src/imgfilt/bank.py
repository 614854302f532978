"""``FilterBank``: C_out filters applied at once, stacked into feature maps; cascades; montages.

A bank is one weight ``(C_out, C_in / groups, *K)`` (PyTorch's layout) and a bias ``(C_out,)``
(zeros unless given, so a bank counts its biases as a convolution layer of the textbooks does),
with a name per output channel. ``bank.apply(image)`` is ``imgfilt.conv`` on the image's
channels with ``padding='same'`` by default; ``bank1.then(bank2)`` chains banks into layers.

Examples
--------
>>> import numpy as np
>>> from imgfilt import FilterBank, filters
>>> bank = FilterBank([filters.sobel_x(), filters.sobel_y(), filters.box(3)])
>>> bank.names, bank.weight.shape
(('sobel_x', 'sobel_y', 'box'), (3, 1, 3, 3))
>>> bank.apply(np.zeros((16, 16), np.uint8)).shape
(3, 16, 16)
"""
from __future__ import annotations

import contextlib
import difflib
import math
import os
import pickle
from collections.abc import Mapping
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from . import arrays, display
from .arrays import array_to_pil
from .convolution import checked_int, compute_dtype, conv, plan
from .errors import MAX_BYTES, file_errors
from .weights import WEIGHT_SUFFIXES, read_weights
from .filters import Filter, get_filter
from .io import atomic_write, load_npz
from .layout import NOT_GIVEN, Layout, resolve
from .nonlinear import is_nonlinear
from .pipeline import correlate_same, filter_array

__all__ = ["FilterBank", "Sequential", "FilterStage", "montage"]

PathLike = Union[str, "os.PathLike[str]"]

_FORMAT_VERSION = 1


def _real(value: Any, name: str) -> np.ndarray:
    return arrays.as_numpy(value, name).astype(np.float64)


def _centre_pad(kernel: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    widths = [((t - s) // 2, (t - s) - (t - s) // 2) for s, t in zip(kernel.shape, shape)]
    return np.pad(kernel, widths)


def _read_weights(source: Any, torch_ok: bool) -> Any:
    """``source`` itself, or the array / mapping of arrays stored at the path ``source``
    (:func:`imgfilt.weights.read_weights`; ``torch_ok=False`` refuses PyTorch files)."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = os.fspath(source)
    suffix = os.path.splitext(path)[1].lower()
    if not torch_ok and suffix not in WEIGHT_SUFFIXES:
        raise ValueError(
            f"{path!r}: Keras weights are read from {', '.join(WEIGHT_SUFFIXES)}; got suffix "
            f"{suffix!r} (a PyTorch file? use FilterBank.from_torch)")
    return read_weights(path)


def _from_file(source: Any, kind: str) -> contextlib.AbstractContextManager:
    """Errors raised while building a bank from the file ``source`` name the file (a bank
    built from arrays in memory needs no name)."""
    if isinstance(source, (str, os.PathLike)):
        return file_errors(source, kind)
    return contextlib.nullcontext()


def _flatten(mapping: Mapping, prefix: str = "") -> dict:
    """Nested mappings (a checkpoint's ``'state_dict'``...) as one level with dotted keys."""
    flat = {}
    for name, value in mapping.items():
        full = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def _state_entry(
    mapping: Mapping, key: str | None, weight_word: str, bias_word: str
) -> tuple[str, Any, Any]:
    """``(key, weight, bias or None)`` from a state dict; ``key`` may be left out when the
    dict holds exactly one convolution weight (an entry with 3-5 axes)."""
    flat = _flatten(mapping)
    conv_keys = [name for name, value in flat.items()
                 if getattr(value, "ndim", None) in (3, 4, 5)]
    shown = ", ".join(f"{name} {tuple(flat[name].shape)}" for name in conv_keys[:30]) or "none"
    if key is None:
        if len(conv_keys) != 1:
            raise ValueError(
                f"the state dict holds {len(conv_keys)} convolution weights (entries with 3-5 "
                f"axes); pick one with key=: {shown}"
            )
        key = conv_keys[0]
    if key not in flat:
        close = difflib.get_close_matches(key, conv_keys or list(flat), n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"key={key!r} is not in the state dict{hint}; its convolution weights: {shown}"
        )
    bias_key = None
    if weight_word in key:
        head, _, tail = key.rpartition(weight_word)
        bias_key = head + bias_word + tail
    return key, flat[key], flat.get(bias_key) if bias_key else None


def _read_image(image: Any, ndim: int, in_channels: Optional[int], channel_axis: Any,
                axes: Any) -> Tuple[arrays.Input, np.ndarray, Layout]:
    """The input, its values and its layout, by the one axis rule (:mod:`imgfilt.layout`), for
    a first layer of ``ndim`` spatial axes reading ``in_channels`` (None: any number)."""
    if arrays.is_pil(image):
        if channel_axis is not NOT_GIVEN or axes is not None:
            raise TypeError("channel_axis and axes are for arrays, not Pillow images")
        if ndim != 2:
            raise ValueError(f"a Pillow image is 2-D but the first layer has {ndim} spatial axes")
        source = arrays.read(image)
        pixels = source.array if source.array.ndim == 3 else source.array[..., None]
        if (arrays.normalised_pil(image).mode in ("LA", "RGBA")
                and (in_channels is None or pixels.shape[-1] - 1 == in_channels)):
            pixels = pixels[..., :-1]  # alpha is not a colour
        return source, pixels, Layout(pixels.shape, (0, 1), 2, ())
    source = arrays.read(image)
    layout = resolve(source.array.shape, ndim, channel_axis=channel_axis, axes=axes,
                     in_channels=in_channels if in_channels and in_channels > 1 else None,
                     convention=source.convention, dims=source.dims)
    return source, source.array, layout


def _give_back(source: arrays.Input, maps: np.ndarray, layout: Layout, channels_last: bool,
               names: Sequence[str]) -> Any:
    """``(*batch, C_out, *S_out)`` maps in the input's type (``names``: the feature axis')."""
    lead = len(layout.batch)
    if channels_last:
        maps = np.moveaxis(maps, lead, -1)
    if source.kind in ("numpy", "pil"):
        return maps
    feature_axis = maps.ndim - 1 if channels_last else lead
    first_spatial = lead if channels_last else lead + 1
    axes_back: list = list(layout.batch) + [None] * (maps.ndim - lead)
    new_dims: dict[int, tuple[str, Any]] = {feature_axis: ("feature", tuple(names))}
    for position, axis in enumerate(layout.spatial):
        if maps.shape[first_spatial + position] == layout.shape[axis]:
            axes_back[first_spatial + position] = axis
        else:  # another grid ('valid' padding, stride): the input's coordinates do not fit
            name = source.dims[axis] if source.dims else f"dim_{axis}"
            new_dims[first_spatial + position] = (name, None)
    return source.give_back(maps, axes=axes_back, new_dims=new_dims)


class FilterBank:
    """An ordered set of filters producing one feature map each.

    Parameters
    ----------
    filters : sequence of Filter / kernels, or array_like
        Either a list of linear :class:`~imgfilt.filters.Filter` objects and bare kernels (each
        contributes its weight's rows; kernels of different odd sizes are zero-padded, centred,
        to the largest), or one ``(C_out, C_in / groups, *K)`` weight.
    bias : array_like, optional
        ``(C_out,)``; zeros by default.
    names : sequence of str, optional
        One per output channel; default the filters' names, or ``'f0'``, ``'f1'``, ...
    groups : int
        As in :func:`imgfilt.conv`: ``C_in = weight.shape[1] * groups``.

    Examples
    --------
    >>> import numpy as np
    >>> bank = FilterBank(np.zeros((6, 5, 3, 3)))
    >>> bank.output_shape((5, 64, 64), padding="valid"), bank.n_params
    ((6, 62, 62), 276)
    """

    def __init__(
        self,
        filters: Any,
        bias: Any = None,
        *,
        names: Optional[Sequence[str]] = None,
        groups: int = 1,
    ) -> None:
        if isinstance(filters, (list, tuple)):
            for index, item in enumerate(filters):
                if is_nonlinear(item) or isinstance(item, str):
                    what = (f"the nonlinear filter {item.name!r} ({type(item).__name__})"
                            if not isinstance(item, str) else f"the name {item!r}")
                    raise TypeError(
                        f"filters[{index}] is {what}; a FilterBank is one convolution weight "
                        "(C_out, C_in, *K) and holds linear Filters and kernel arrays only (it is "
                        "saved as .npz and exported to PyTorch/Keras as such). Run a nonlinear "
                        "filter as a Sequential stage, e.g. Sequential(bank, "
                        "imgfilt.get_filter('median', size=3)), or stack imgfilt.apply results "
                        "with numpy.stack"
                    )
        if isinstance(filters, (list, tuple)) and filters and all(
            isinstance(f, Filter) or (isinstance(f, np.ndarray) and f.ndim in (1, 2, 3))
            for f in filters
        ):
            # A list of Filters and kernel arrays; a nested list of numbers is a weight.
            weight, default_names, filter_bias = self._stack(filters)
        else:
            weight = _real(filters, "filters")
            if weight.ndim not in (3, 4, 5):
                raise ValueError(
                    f"filters must be a list of filters/kernels or a (C_out, C_in, *K) weight "
                    f"with 1-3 spatial axes, got an array of shape {weight.shape}"
                )
            default_names = [f"f{i}" for i in range(weight.shape[0])]
            filter_bias = None
        if 0 in weight.shape:
            raise ValueError(f"the bank's weight has an empty axis: shape {weight.shape}")
        if not np.all(np.isfinite(weight)):
            raise ValueError("the bank's weight holds NaN or infinity")
        out_channels = weight.shape[0]
        if bias is None:
            bias_array = filter_bias if filter_bias is not None else np.zeros(out_channels)
        else:
            bias_array = _real(bias, "bias").reshape(-1)
            if bias_array.shape != (out_channels,):
                raise ValueError(
                    f"bias must have shape (C_out,) = ({out_channels},), got {np.shape(bias)}"
                )
            if not np.all(np.isfinite(bias_array)):
                raise ValueError("the bank's bias holds NaN or infinity")
        if names is None:
            names = default_names
        names = tuple(str(n) for n in names)
        if len(names) != out_channels:
            raise ValueError(f"names must have {out_channels} entries (one per map), got {len(names)}")
        self.groups = checked_int(groups, "groups")
        if out_channels % self.groups:
            raise ValueError(f"groups={groups} must divide C_out={out_channels}")
        self.weight: np.ndarray = weight
        self.bias: np.ndarray = bias_array
        self.names: Tuple[str, ...] = names

    @staticmethod
    def _stack(items: Sequence[Any]) -> Tuple[np.ndarray, List[str], Optional[np.ndarray]]:
        weights, names, biases = [], [], []
        for index, item in enumerate(items):
            if isinstance(item, Filter):
                if not item.linear:
                    raise ValueError(
                        f"filters[{index}] ({item.name!r}) combines its responses with "
                        f"{item.combine!r}, which is not linear; a bank holds linear filters "
                        f"(use e.g. {item.name}_x and {item.name}_y)"
                    )
                weight = item.weight
                if item.combine == "sum":
                    weight = weight.sum(axis=0, keepdims=True)
                bias = item.bias if item.bias is not None else np.zeros(weight.shape[0])
                if item.combine == "sum":
                    bias = bias.sum(keepdims=True)
                rows = weight.shape[0]
                names.extend([item.name] if rows == 1 else [f"{item.name}{r}" for r in range(rows)])
            else:
                kernel = _real(item, f"filters[{index}]")
                weight = kernel.reshape((1, 1) + kernel.shape)
                bias = np.zeros(1)
                names.append(f"kernel{index}")
            weights.append(weight)
            biases.append(bias)
        ndims = {w.ndim for w in weights}
        in_channels = {w.shape[1] for w in weights}
        if len(ndims) != 1:
            raise ValueError(f"filters mix spatial dimensions: {sorted(n - 2 for n in ndims)}")
        if len(in_channels) != 1:
            raise ValueError(
                f"filters mix input channel counts {sorted(in_channels)}: per-channel filters "
                "(C_in = 1) and channel-mixing filters cannot share a bank"
            )
        shapes = {w.shape[2:] for w in weights}
        target = tuple(max(sizes) for sizes in zip(*shapes))
        if len(shapes) > 1:
            if any(s % 2 == 0 for shape in shapes for s in shape):
                raise ValueError(
                    f"filters have different kernel sizes {sorted(shapes)}; they can share a "
                    "bank (zero-padded to the largest) only when all sizes are odd"
                )
            weights = [
                np.stack([np.stack([_centre_pad(k, target) for k in row]) for row in w])
                for w in weights
            ]
        return np.concatenate(weights), names, np.concatenate(biases)

    # -- sizes ---------------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return self.weight.ndim - 2

    @property
    def in_channels(self) -> int:
        """``C_in``, the channels an input must have."""
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        """``C_out``, the number of feature maps."""
        return self.weight.shape[0]

    @property
    def n_params(self) -> int:
        """Weights plus biases: ``C_out * C_in/groups * prod(K) + C_out``."""
        return int(self.weight.size + self.bias.size)

    def __len__(self) -> int:
        return self.out_channels

    def __repr__(self) -> str:
        return f"<FilterBank {self.out_channels} maps, weight{self.weight.shape}, groups={self.groups}>"

    def _repr_html_(self) -> str:
        return display.bank_html(self)

    def _repr_png_(self) -> bytes:
        return display.to_png(display.kernel_image(self.weight))

    def show(self, maps: Any = None) -> display.Drawing:
        """The bank's kernels and, given the ``(C_out, H, W)`` maps it made, the maps (Jupyter)."""
        return display.Drawing(display.bank_html(self, maps))

    def output_shape(self, input_shape: Sequence[int], **conv_options: Any) -> Tuple[int, ...]:
        """The shape of the maps for a channel-first input shape, allocating nothing.

        Parameters
        ----------
        input_shape : tuple of int
            ``(C_in, *S)`` or ``(N, C_in, *S)``.
        **conv_options
            ``padding`` (default ``'same'``), ``stride``, ``dilation``, ``padding_mode``
            (default ``'reflect'``), as in :func:`imgfilt.conv`.

        Examples
        --------
        >>> FilterBank(np.zeros((4, 6, 10, 10))).output_shape((6, 62, 62), padding=0)
        (4, 53, 53)
        """
        options = self._conv_options(conv_options)
        return plan(input_shape, np.float32, self.weight.shape, groups=self.groups,
                    **options).result_shape

    @staticmethod
    def _conv_options(options: dict) -> dict:
        allowed = ("padding", "stride", "dilation", "padding_mode")
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; allowed: {list(allowed)}")
        merged = {"padding": "same", "padding_mode": "reflect", "stride": 1, "dilation": 1}
        merged.update(options)
        return merged

    # -- applying ------------------------------------------------------------------------------

    def _read(self, image: Any, channel_axis: Any, axes: Any
              ) -> Tuple[arrays.Input, np.ndarray, Layout]:
        return _read_image(image, self.ndim, self.in_channels, channel_axis, axes)

    def _run(self, x: np.ndarray, options: dict) -> np.ndarray:
        """The maps ``(N, C_out, *S_out)`` of a batch ``x (N, C_in, *S)``."""
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"the bank needs C_in = {self.in_channels} channels (weight {self.weight.shape}, "
                f"groups={self.groups}), the input has {x.shape[1]}"
            )
        if isinstance(options["padding"], str) and options["padding"].lower() == "same":
            # conv's own 'same' (the layer of the textbooks), but 'reflect' defined on 1-pixel axes
            return correlate_same(x, self.weight, self.bias, options["padding_mode"],
                                  options["stride"], options["dilation"], centred=False,
                                  groups=self.groups)
        return conv(x, self.weight, self.bias, groups=self.groups, **options)

    def apply(
        self,
        image: Any,
        *,
        channel_axis: Any = NOT_GIVEN,
        axes: Any = None,
        channels_last: bool = False,
        **conv_options: Any,
    ) -> Any:
        """The feature maps of ``image``: ``(C_out, *S_out)``, float32 (float64 for float64 and
        32/64-bit integer input), in the input's type (NumPy, torch, xarray).

        Parameters
        ----------
        image : array_like, PIL.Image.Image, torch.Tensor or xarray.DataArray
            A Pillow image (alpha is dropped when the bank wants one channel fewer), or an
            array with ``C_in`` channels, its axes read by the one axis rule
            (:func:`imgfilt.layout.resolve`): ``(*S)`` when ``C_in == 1``; ``(*S, C_in)`` or
            ``(C_in, *S)`` where only one of them fits; else say ``channel_axis``/``axes``.
        channel_axis : int, str or None, optional
            Where the channels are (scikit-image's meaning).
        axes : tuple of int or str, optional
            The axes the kernels run over (scipy's meaning); other axes but the channel axis
            are a batch: the maps are then ``(*batch, C_out, *S_out)``.
        channels_last : bool
            Return ``(*batch, *S_out, C_out)`` instead.
        **conv_options
            ``padding`` (default ``'same'``), ``padding_mode`` (default ``'reflect'``),
            ``stride``, ``dilation``.

        Examples
        --------
        >>> FilterBank(np.ones((2, 3, 3, 3))).apply(np.ones((8, 8, 3)))[:, 0, 0].tolist()
        [27.0, 27.0]
        """
        source, values, layout = self._read(image, channel_axis, axes)
        maps = self._maps(values, layout, self._conv_options(conv_options))
        return self._give_back(source, maps, layout, channels_last)

    def _maps(self, values: np.ndarray, layout: Layout, options: dict) -> np.ndarray:
        """``(*batch, C_out, *S_out)`` maps of ``values`` laid out as ``layout``."""
        moved = values if layout.canonical else values.transpose(layout.order)
        batch = moved.shape[: len(layout.batch)]
        x = moved.reshape((-1, layout.channels) + moved.shape[moved.ndim - self.ndim:])
        x = x.astype(compute_dtype(values.dtype), copy=False)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"the bank needs C_in = {self.in_channels} channels (weight {self.weight.shape}, "
                f"groups={self.groups}), the input has {x.shape[1]} (shape {values.shape})"
            )
        maps = self._run(x, options)
        return maps.reshape(batch + maps.shape[1:])

    def _give_back(self, source: arrays.Input, maps: np.ndarray, layout: Layout,
                   channels_last: bool) -> Any:
        return _give_back(source, maps, layout, channels_last, self.names)

    def feature_names(self, channels: int,
                      previous: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
        """The names of the maps this layer makes from ``channels`` input channels."""
        return self.names

    def then(self, other: Any) -> "Sequential":
        """Chain another bank (or a filter stage, see :class:`Sequential`) after this one.

        Examples
        --------
        >>> net = FilterBank(np.zeros((6, 5, 3, 3))).then(FilterBank(np.zeros((4, 6, 10, 10))))
        >>> net.output_shape((5, 64, 64), padding="valid")
        (4, 53, 53)
        """
        return Sequential(self, other)

    # -- files and other layouts ----------------------------------------------------------------

    def save(self, path: PathLike) -> str:
        """Save as ``.npz`` (no pickle; the suffix is added when missing), atomically.

        Returns the path written.

        Examples
        --------
        >>> import os, tempfile
        >>> path = FilterBank(np.ones((2, 1, 3, 3)), names=["a", "b"]).save(
        ...     os.path.join(tempfile.mkdtemp(), "bank"))
        >>> FilterBank.load(path).names
        ('a', 'b')
        """
        target = os.fspath(path)
        if not target.endswith(".npz"):
            target += ".npz"
        with atomic_write(target) as handle:
            np.savez(
                handle, weight=self.weight, bias=self.bias, names=np.array(self.names, dtype=str),
                groups=np.int64(self.groups), version=np.int64(_FORMAT_VERSION),
            )
        return target

    @classmethod
    def load(cls, path: PathLike) -> "FilterBank":
        """Load a bank written by :meth:`save` (``allow_pickle=False``)."""
        data = load_npz(path)
        missing = {"weight", "bias", "names"} - set(data)
        if missing:
            raise ValueError(
                f"{os.fspath(path)!r} is not a FilterBank file: it lacks {sorted(missing)}"
            )
        with file_errors(path, "FilterBank"):
            groups = data["groups"] if "groups" in data else 1
            if np.ndim(groups) or np.ndim(data["names"]) != 1:
                raise ValueError(f"groups must be a scalar and names a 1-D array, got shapes "
                                 f"{np.shape(groups)} and {np.shape(data['names'])}")
            return cls(data["weight"], data["bias"], names=[str(n) for n in data["names"]],
                       groups=checked_int(groups[()] if isinstance(groups, np.ndarray)
                                          else groups, "groups"))

    @classmethod
    def from_torch(
        cls, weight: Any, bias: Any = None, *, key: Optional[str] = None, groups: int = 1
    ) -> "FilterBank":
        """A bank from PyTorch's layout ``(C_out, C_in / groups, *K)`` (no transposition needed).

        Parameters
        ----------
        weight : tensor, array_like, state dict or path
            A tensor or array already in PyTorch's layout; a state dict (any mapping, nested
            mappings such as a checkpoint's ``'state_dict'`` read with dotted keys); or the path
            of one: ``.pt``/``.pth`` (or any other suffix) is read with
            ``torch.load(path, map_location='cpu', weights_only=True)``, which needs torch;
            ``.safetensors`` with the ``safetensors`` package and NumPy alone (no torch);
            ``.npz`` (a mapping of arrays) and ``.npy`` (one weight) with NumPy,
            ``allow_pickle=False``. Tensors are read through ``.detach().cpu().numpy()``.
        bias : tensor or array_like, optional
            Default: the state dict's entry beside the weight (``'conv1.bias'`` for
            ``'conv1.weight'``), when present; else zeros.
        key : str, optional
            The state-dict entry (``'conv1.weight'``). May be left out when the state dict holds
            exactly one convolution weight (an entry with 3 to 5 axes).
        groups : int
            The layer's ``groups``.

        Examples
        --------
        >>> state = {"conv1.weight": np.zeros((8, 3, 5, 5)), "conv1.bias": np.ones(8)}
        >>> FilterBank.from_torch(state, key="conv1.weight").bias[:2].tolist()
        [1.0, 1.0]
        >>> FilterBank.from_torch(state).names[:2]       # the only convolution weight
        ('conv1[0]', 'conv1[1]')
        """
        groups = checked_int(groups, "groups")
        source = weight
        weight = _read_weights(weight, torch_ok=True)
        if key is not None and not isinstance(weight, Mapping):
            raise TypeError("key= is only for a state dict or a path to one")
        with _from_file(source, "weight"):
            if isinstance(weight, Mapping):
                key, entry, found_bias = _state_entry(weight, key, "weight", "bias")
                bias = found_bias if bias is None else bias
                array = _real(entry, key)
                base = key[: -len(".weight")] if key.endswith(".weight") else key
                return cls(array, None if bias is None else _real(bias, "bias"),
                           names=[f"{base}[{i}]" for i in range(array.shape[0])], groups=groups)
            return cls(_real(weight, "weight"), None if bias is None else _real(bias, "bias"),
                       groups=groups)

    @classmethod
    def from_keras(cls, kernel: Any, bias: Any = None, *, key: str | None = None) -> FilterBank:
        """A bank from a Keras ``Conv1D/2D/3D`` kernel ``(*K, C_in, C_out)``.

        Keras also computes correlation, so the kernel is transposed, never flipped.

        Parameters
        ----------
        kernel : array_like, mapping or path
            The kernel; a mapping of arrays with ``key`` naming it (its ``bias`` is found by
            replacing ``kernel`` with ``bias`` in the key, e.g. ``'conv2d/kernel:0'`` ->
            ``'conv2d/bias:0'``); or the path of a ``.keras`` (Keras 3), ``.h5`` (Keras 2
            ``save_weights``/``save``), ``.safetensors``, ``.npz`` or ``.npy`` file holding the
            same (see :mod:`imgfilt.weights`; ``.keras``/``.h5`` need ``h5py``). In a ``.keras``
            file a layer's kernel is ``'layers/<name>/kernel'`` (its ``vars/0``).
        bias : array_like, optional
        key : str, optional
            The entry of a mapping / ``.npz``; optional when it holds one kernel.

        Examples
        --------
        >>> FilterBank.from_keras(np.zeros((5, 5, 3, 8))).weight.shape
        (8, 3, 5, 5)
        """
        source = kernel
        kernel = _read_weights(kernel, torch_ok=False)
        if key is not None and not isinstance(kernel, Mapping):
            raise TypeError("key= is only for a mapping of arrays or a path to one")
        with _from_file(source, "Keras weight"):
            if isinstance(kernel, Mapping):
                key, kernel, found_bias = _state_entry(kernel, key, "kernel", "bias")
                bias = found_bias if bias is None else bias
            array = _real(kernel, "kernel")
            if array.ndim not in (3, 4, 5):
                raise ValueError(f"kernel must be Keras' (*K, C_in, C_out) with 1-3 spatial "
                                 f"axes, got shape {array.shape}")
            order = (array.ndim - 1, array.ndim - 2) + tuple(range(array.ndim - 2))
            return cls(np.ascontiguousarray(array.transpose(order)), bias)

    @classmethod
    def from_safetensors(cls, path: PathLike, *, key: Optional[str] = None,
                         layout: str = "torch", groups: int = 1) -> "FilterBank":
        """A bank from a ``.safetensors`` file, read with NumPy alone (no torch needed).

        Parameters
        ----------
        path : str or os.PathLike
        key : str, optional
            The tensor (``'conv1.weight'``); optional when the file holds one convolution
            weight. Its bias is found as in :meth:`from_torch` / :meth:`from_keras`.
        layout : {"torch", "keras"}
            ``"torch"``: ``(C_out, C_in / groups, *K)`` (what PyTorch and Hugging Face save);
            ``"keras"``: ``(*K, C_in, C_out)``.
        groups : int
            The layer's ``groups`` (``layout="torch"`` only).

        Examples
        --------
        >>> import os, tempfile
        >>> from safetensors.numpy import save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_file({"conv.weight": np.zeros((4, 1, 3, 3), np.float32)}, path)
        >>> FilterBank.from_safetensors(path).weight.shape
        (4, 1, 3, 3)
        """
        if os.path.splitext(os.fspath(path))[1].lower() != ".safetensors":
            raise ValueError(f"{os.fspath(path)!r}: expected a .safetensors file")
        if layout == "torch":
            return cls.from_torch(path, key=key, groups=groups)
        if layout == "keras":
            if groups != 1:
                raise ValueError("groups= is for layout='torch'")
            return cls.from_keras(path, key=key)
        raise ValueError(f"layout must be 'torch' or 'keras', got {layout!r}")

    def to_keras(self) -> np.ndarray:
        """The weight in Keras' layout ``(*K, C_in, C_out)``."""
        order = tuple(range(2, self.weight.ndim)) + (1, 0)
        return self.weight.transpose(order)

    # -- pictures ------------------------------------------------------------------------------

    def montage(self, maps: np.ndarray, cols: Optional[int] = None) -> Image.Image:
        """A picture of feature maps: see :func:`montage`."""
        return montage(maps, cols)


class FilterStage:
    """A per-channel filter as a :class:`Sequential` stage: each map filtered on its own.

    The filter is a registered name, a per-channel :class:`~imgfilt.filters.Filter` (linear or
    not: ``"sobel"`` combines its two responses into a magnitude) or a nonlinear filter of
    :mod:`imgfilt.nonlinear` (median, rank, grey morphology, Canny). It keeps the number and
    size of the maps (``'same'`` padding by the Sequential's ``padding_mode``) and their float
    dtype, as :func:`imgfilt.apply` with ``output='float'`` does on each map; it has no
    parameters to learn or export. ``stride``/``dilation`` options are the banks'.

    Examples
    --------
    >>> stage = FilterStage("median", size=3)
    >>> stage, stage.n_params
    (<FilterStage median>, 0)
    """

    groups = 1
    n_params = 0

    def __init__(self, filter: Any, **params: Any) -> None:
        if isinstance(filter, str):
            filter = get_filter(filter, **params)
        elif params:
            raise TypeError(f"parameters {sorted(params)} only go with a filter name")
        if not (isinstance(filter, Filter) or is_nonlinear(filter)):
            raise TypeError(
                f"a Sequential stage is a FilterBank, a filter name, a Filter or a nonlinear "
                f"filter (imgfilt.nonlinear), got {type(filter).__name__}")
        if not filter.per_channel:
            raise TypeError(
                f"filter {filter.name!r} mixes {filter.in_channels} channels; as a Sequential "
                "stage use it as a FilterBank (FilterBank([filter]))")
        self.filter = filter
        self.name = filter.name

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return int(self.filter.ndim)

    in_channels = None  # any number: each map is filtered on its own

    def __repr__(self) -> str:
        return f"<FilterStage {self.name}>"

    def output_shape(self, input_shape: Sequence[int], **conv_options: Any) -> Tuple[int, ...]:
        """The input shape: a stage keeps the maps' number and size."""
        FilterBank._conv_options(conv_options)
        shape = tuple(int(n) for n in input_shape)
        if len(shape) not in (self.ndim + 1, self.ndim + 2):
            raise ValueError(f"input_shape must be (C, *S) or (N, C, *S) with {self.ndim} "
                             f"spatial axes, got {shape}")
        return shape

    def feature_names(self, channels: int,
                      previous: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
        """``name(previous name)`` for each map a layer before named (``maximum(sobel_x)``);
        else ``name`` for one map, ``name[i]`` for each of several."""
        if previous is not None and len(previous) == channels:
            return tuple(f"{self.name}({n})" for n in previous)
        return (self.name,) if channels == 1 else tuple(f"{self.name}[{i}]"
                                                        for i in range(channels))

    def _run(self, x: np.ndarray, options: dict) -> np.ndarray:
        """The filtered maps ``(N, C, *S)`` of ``x (N, C, *S)`` (float)."""
        layout = Layout(x.shape, tuple(range(2, x.ndim)), 1, (0,))
        return filter_array(x, self.filter, layout, padding_mode=options["padding_mode"],
                            output="float")

    def _maps(self, values: np.ndarray, layout: Layout, options: dict) -> np.ndarray:
        """``(*batch, C, *S)`` maps of ``values`` laid out as ``layout``, in float."""
        moved = values if layout.canonical else values.transpose(layout.order)
        batch = moved.shape[: len(layout.batch)]
        x = moved.reshape((-1, layout.channels) + moved.shape[moved.ndim - self.ndim:])
        x = x.astype(compute_dtype(values.dtype), copy=False)
        maps = self._run(x, options)
        return maps.reshape(batch + maps.shape[1:])


def _as_layer(layer: Any) -> Any:
    if isinstance(layer, (FilterBank, FilterStage)):
        return layer
    if isinstance(layer, (str, Filter)) or is_nonlinear(layer):
        return FilterStage(layer)
    raise TypeError(
        f"layers must be FilterBanks, filter names, Filters or nonlinear filters "
        f"(imgfilt.nonlinear), got {type(layer).__name__}")


class Sequential:
    """Layers chained: each one's maps are the next one's input channels.

    A layer is a :class:`FilterBank` (maps ``C_in -> C_out``), or a per-channel filter given by
    name, as a :class:`~imgfilt.filters.Filter` or as a nonlinear filter (median, rank, grey
    morphology, Canny), which becomes a :class:`FilterStage`: each map filtered on its own, as a
    Kornia ``nn.Sequential(MedianBlur((3, 3)), Sobel())`` does. Banks alone make a linear
    cascade (no activation between layers); options given to :meth:`apply` and
    :meth:`output_shape` apply to every bank, ``padding_mode`` to every stage. The layers may be
    given one by one or as one list.

    Examples
    --------
    >>> net = Sequential(FilterBank(np.zeros((6, 5, 3, 3))), FilterBank(np.zeros((4, 6, 10, 10))))
    >>> net.output_shape((5, 64, 64), padding="valid"), net.n_params
    ((4, 53, 53), 2680)
    >>> denoise_then_edges = Sequential(["median", "sobel"])
    >>> denoise_then_edges.apply(np.zeros((16, 16), np.uint8)).shape
    (1, 16, 16)
    """

    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        flat: List[Any] = []
        for layer in layers:
            if isinstance(layer, Sequential):
                flat.extend(layer.layers)
            else:
                flat.append(_as_layer(layer))
        if not flat:
            raise ValueError("a Sequential needs at least one layer")
        ndims = {layer.ndim for layer in flat}
        if len(ndims) > 1:
            raise ValueError(f"the layers mix spatial dimensions: "
                             f"{[layer.ndim for layer in flat]}")
        channels = flat[0].in_channels
        for index, layer in enumerate(flat):
            if isinstance(layer, FilterBank):
                if channels is not None and layer.in_channels != channels:
                    raise ValueError(
                        f"layer {index} expects C_in = {layer.in_channels} but layer {index - 1} "
                        f"makes {channels} maps"
                    )
                channels = layer.out_channels
        self.layers: Tuple[Any, ...] = tuple(flat)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return "<Sequential " + " -> ".join(
            str(l.weight.shape) if isinstance(l, FilterBank) else l.name
            for l in self.layers) + ">"

    def _repr_html_(self) -> str:
        return display.network_html(self)

    def show(self, input_shape: Sequence[int], **conv_options: Any) -> display.Drawing:
        """The layers and the shape after each for a channel-first ``input_shape`` (Jupyter)."""
        return display.Drawing(display.network_html(self, input_shape, **conv_options))

    @property
    def n_params(self) -> int:
        """Sum of the layers' parameters (a filter stage has none)."""
        return sum(layer.n_params for layer in self.layers)

    def then(self, other: Any) -> "Sequential":
        """Append a layer."""
        return Sequential(self, other)

    def output_shape(self, input_shape: Sequence[int], **conv_options: Any) -> Tuple[int, ...]:
        """The final shape for a channel-first input shape."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape, **conv_options)
        return shape

    def shapes(self, input_shape: Sequence[int], **conv_options: Any) -> List[Tuple[int, ...]]:
        """The input shape followed by every layer's output shape."""
        shapes = [tuple(input_shape)]
        for layer in self.layers:
            shapes.append(layer.output_shape(shapes[-1], **conv_options))
        return shapes

    def apply(self, image: Any, *, channel_axis: Any = NOT_GIVEN, axes: Any = None,
              channels_last: bool = False, **conv_options: Any) -> Any:
        """Run the layers in turn; the first reads ``image`` as :meth:`FilterBank.apply` does
        (a first filter stage reads any number of channels), and the result comes back as it
        does there: ``(*batch, C, *S)`` float maps."""
        first = self.layers[0]
        source, values, layout = _read_image(image, first.ndim, first.in_channels,
                                             channel_axis, axes)
        options = FilterBank._conv_options(conv_options)
        maps = first._maps(values, layout, options)
        lead = len(layout.batch)
        names = first.feature_names(maps.shape[lead])
        for layer in self.layers[1:]:
            flat = maps.reshape((-1,) + maps.shape[lead:])
            out = layer._run(flat, options)
            maps = out.reshape(maps.shape[:lead] + out.shape[1:])
            names = layer.feature_names(maps.shape[lead], names)
        return _give_back(source, maps, layout, channels_last, names)


def montage(maps: Any, cols: Optional[int] = None, separator: int = 1) -> Image.Image:
    """Tile 2-D feature maps ``(C, H, W)`` into one L image, each map stretched to 0-255.

    Parameters
    ----------
    maps : array_like
        ``(C, H, W)`` (or one ``(H, W)`` map).
    cols : int, optional
        Maps per row; default ``ceil(sqrt(C))``.
    separator : int
        Width in pixels of the white lines between maps.

    Examples
    --------
    >>> montage(np.random.rand(6, 10, 12), cols=3).size
    (38, 21)
    """
    array = _real(maps, "maps")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"maps must be (C, H, W) 2-D feature maps, got shape {array.shape}")
    count, height, width = array.shape
    if 0 in array.shape:
        raise ValueError(f"maps is empty (shape {array.shape}); a montage needs at least one "
                         "map of at least one pixel")
    if cols is None:
        cols = math.ceil(math.sqrt(count))
    cols = checked_int(cols, "cols")
    cols = min(cols, count)
    separator = checked_int(separator, "separator", 0)
    rows = math.ceil(count / cols)
    sheet_shape = (rows * height + (rows - 1) * separator, cols * width + (cols - 1) * separator)
    if sheet_shape[0] * sheet_shape[1] > MAX_BYTES:
        raise ValueError(f"the montage would be {sheet_shape[1]} x {sheet_shape[0]} pixels "
                         f"(separator={separator}, cols={cols}); at most {MAX_BYTES} are allowed")
    sheet = np.full(sheet_shape, 255, dtype=np.uint8)
    for index, feature in enumerate(array):
        finite = np.nan_to_num(feature)
        low, high = finite.min(), finite.max()
        scaled = np.zeros_like(finite) if high == low else (finite - low) * (255.0 / (high - low))
        row, col = divmod(index, cols)
        top, left = row * (height + separator), col * (width + separator)
        sheet[top: top + height, left: left + width] = np.rint(scaled).astype(np.uint8)
    return array_to_pil(sheet)
