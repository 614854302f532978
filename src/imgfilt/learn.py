"""Learned filters: fit a convolution layer's weight and bias to example pairs.

:func:`fit` finds the weight ``(C_out, C_in/groups, *K)`` and bias ``(C_out,)`` for which
``imgfilt.conv(x, weight, bias, ...)`` is closest to ``y`` in least squares: the layer of the
textbooks, trained to convergence in one step. Every output sample is one equation; its unknowns
are the kernel taps of its group (and the bias), its coefficients the padded input patch that
``conv`` reads for it. The patches are gathered through the same padding index maps
(:mod:`imgfilt.padding`) and the same :func:`imgfilt.convolution.plan` as ``conv``, so the fit sees
exactly what ``conv`` sees, for every padding mode, stride, dilation and ``groups``.

Examples
--------
>>> import numpy as np, imgfilt
>>> rng = np.random.default_rng(0)
>>> x = rng.random((1, 32, 32))
>>> kernel = rng.normal(size=(1, 1, 3, 3))
>>> bank = imgfilt.learn.fit(x, imgfilt.conv(x, kernel, padding="same", padding_mode="reflect"), 3)
>>> bool(np.allclose(bank.weight, kernel))
True
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple, Union

import numpy as np

from .padding import index_map
from .bank import FilterBank
from .convolution import Padding, Plan, checked_int
from .convolution import conv as _engine_conv
from .convolution import plan as _plan
from .arrays import as_numpy
from .io import load_npy, read_image, read_volume

__all__ = ["FitScore", "fit", "score"]

IntOrTuple = Union[int, Sequence[int]]

#: Patches gathered at once (float64), per example and group: the memory bound of :func:`fit`.
BLOCK_BYTES = 1 << 24

# Singular values of the column-scaled normal matrix below this fraction of the largest count
# as zero: the patches do not pin those directions down (a constant or too smooth image). The
# normal matrix squares the patch matrix's condition number, so this is ~1e-6 on the patches.
_RCOND = 1e-12

# ITU-R 601-2 luma, the weights of Pillow's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114])


class FitScore(NamedTuple):
    """How well a bank reproduces a target: root-mean-square error and R²."""

    rms: float
    r2: float


def _float64(value: Any, name: str) -> np.ndarray:
    array = as_numpy(value, name).astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{name} holds NaN or infinity (first at index {bad}, shape "
                         f"{array.shape}); a least-squares fit needs finite values")
    return array


def _kernel_shape(kernel_size: Any, ndim: int | None, x_ndim: int) -> tuple[int, ...]:
    """The kernel's spatial shape; an int size reads ``x`` as one example unless ``ndim`` says."""
    if isinstance(kernel_size, (list, tuple, np.ndarray)):
        sizes = tuple(checked_int(k, f"kernel_size[{i}]") for i, k in enumerate(kernel_size))
        if not 1 <= len(sizes) <= 3:
            raise ValueError(f"kernel_size must have 1, 2 or 3 entries, got {kernel_size!r}")
        if ndim is not None and checked_int(ndim, "ndim") != len(sizes):
            raise ValueError(f"ndim={ndim} contradicts kernel_size={kernel_size!r}")
        return sizes
    size = checked_int(kernel_size, "kernel_size")
    if ndim is None:
        ndim = x_ndim - 1
        if not 1 <= ndim <= 3:
            raise ValueError(
                f"kernel_size={size} with a {x_ndim}-D x: an int size reads x as one "
                f"example (C_in, *S) with 1-3 spatial axes; for a batch (N, C_in, *S) give one "
                f"size per spatial axis (e.g. kernel_size=({size}, {size})) or ndim="
            )
    elif checked_int(ndim, "ndim") not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    return (size,) * ndim


def _patch_indices(
    start: int, stop: int, out_shape: tuple[int, ...], maps: Sequence[np.ndarray],
    stride: tuple[int, ...], dilation: tuple[int, ...], kernel: tuple[int, ...],
    in_shape: tuple[int, ...],
) -> np.ndarray:
    """Flat input indices ``(stop - start, prod(K))`` of the patches of output samples
    ``start:stop`` (C order); a zero of the padding points one past the end."""
    coords = np.unravel_index(np.arange(start, stop), out_shape)
    in_strides = np.cumprod((1,) + in_shape[:0:-1])[::-1]
    count, ndim = stop - start, len(kernel)
    flat = np.zeros((count,) + kernel, dtype=np.intp)
    inside = np.ones((count,) + kernel, dtype=bool)
    for axis in range(ndim):
        padded = coords[axis][:, None] * stride[axis] + np.arange(kernel[axis]) * dilation[axis]
        index = maps[axis][padded]  # (count, K[axis]); -1 is a zero of 'zeros' padding
        shape = [count] + [1] * ndim
        shape[axis + 1] = kernel[axis]
        index = index.reshape(shape)
        flat += index * in_strides[axis]
        inside &= index >= 0
    flat[~inside] = math.prod(in_shape)
    return flat.reshape(count, -1)


def fit(
    x: Any,
    y: Any,
    kernel_size: IntOrTuple,
    *,
    padding: Padding = "same",
    padding_mode: str = "reflect",
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    bias: bool = True,
    ridge: float = 0.0,
    ndim: int | None = None,
) -> FilterBank:
    """Fit the bank whose ``conv`` of ``x`` best matches ``y`` in least squares.

    Solves ``min ||conv(x, W, b) - y||² + ridge · ||W||²`` exactly, by the normal equations:
    ``XᵀX`` and ``Xᵀy`` are accumulated in float64 over blocks of output samples, where each row
    of ``X`` is the padded patch ``conv`` reads for one output sample (plus a 1 for the bias).
    The bias is never penalised.

    Parameters
    ----------
    x : array_like
        The input: ``(C_in, *S)``, or a batch ``(N, C_in, *S)`` of examples, with 1-3 spatial
        axes. Any real dtype; the fit is computed in float64.
    y : array_like
        The target, in the batch form of ``x``: ``(C_out, *S_out)`` or ``(N, C_out, *S_out)``,
        where ``S_out`` is what ``conv`` gives for ``x`` with these options.
    kernel_size : int or tuple of int
        The kernel's spatial shape ``K``. An int means a cube of that size with ``x.ndim - 1``
        spatial axes (``x`` read as one example) unless ``ndim`` is given; for a batch give one
        size per axis, e.g. ``(5, 5)``.
    padding, padding_mode, stride, dilation, groups
        As in :func:`imgfilt.conv`. The defaults (``'same'``, ``'reflect'``) are those of
        :meth:`FilterBank.apply`.
    bias : bool
        Fit a bias per output channel (default); ``False`` fixes it at 0.
    ridge : float
        Tikhonov regularisation ``λ >= 0`` added to ``XᵀX``'s weight diagonal, on the scale of
        the data (``λ`` is compared with sums of squared pixel values). With ``ridge > 0`` the
        problem is always solvable, even from fewer patches than unknowns.
    ndim : int, optional
        The number of spatial axes, when ``kernel_size`` is an int and ``x`` is a batch.

    Returns
    -------
    FilterBank
        ``weight`` ``(C_out, C_in/groups, *K)``, ``bias`` ``(C_out,)`` (zeros with
        ``bias=False``), ``groups``. ``conv(x, bank.weight, bank.bias, groups=bank.groups, ...)``
        with the same options reproduces ``y`` as closely as any kernel of this size can.

    Raises
    ------
    ValueError
        ``y``'s shape does not match what ``conv`` makes of ``x`` with these options; NaN or
        infinity in ``x`` or ``y``; fewer output samples than unknowns, or patches that do not
        determine the kernel (e.g. a constant image), with ``ridge=0``.

    Notes
    -----
    Memory: beyond ``x`` and ``y``, one float64 copy of ``x``, the normal equations
    (``groups · (C_in/groups · prod(K) + 1)²`` float64), one block of patches of at most
    :data:`BLOCK_BYTES` (16 MiB; at least one patch) and its index array (no larger),
    whatever the size of the images. Time: ``O(samples · unknowns²)`` for the accumulation.

    Examples
    --------
    Recover a hidden 3x3 kernel and a bias from one noiseless pair:

    >>> import numpy as np, imgfilt
    >>> rng = np.random.default_rng(1)
    >>> x = rng.random((2, 40, 40))                       # two input channels
    >>> weight, b = rng.normal(size=(3, 2, 3, 3)), np.array([0.5, -1.0, 2.0])
    >>> y = imgfilt.conv(x, weight, b, padding="same", padding_mode="reflect")
    >>> bank = imgfilt.learn.fit(x, y, 3)
    >>> bank.weight.shape, bool(np.allclose(bank.weight, weight)), bank.bias.round(6).tolist()
    ((3, 2, 3, 3), True, [0.5, -1.0, 2.0])
    """
    x_arr = _float64(x, "x")
    y_arr = _float64(y, "y")
    kernel = _kernel_shape(kernel_size, ndim, x_arr.ndim)
    spatial = len(kernel)
    if x_arr.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(
            f"x must be (C_in, *S) or (N, C_in, *S) with {spatial} spatial axes for a kernel of "
            f"size {kernel}; got shape {x_arr.shape}"
        )
    batched = x_arr.ndim == spatial + 2
    if y_arr.ndim != x_arr.ndim:
        form = "(N, C_out, *S_out)" if batched else "(C_out, *S_out)"
        raise ValueError(
            f"y must have the batch form of x {x_arr.shape}, i.e. {form} with {spatial} spatial "
            f"axes; got shape {y_arr.shape}"
        )
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    ridge = _ridge(ridge)
    groups = checked_int(groups, "groups")
    in_channels, out_channels = x_arr.shape[-spatial - 1], y_arr.shape[-spatial - 1]
    group_in = max(in_channels // groups, 1)
    p = _plan(
        x_arr.shape, np.float64, (out_channels, group_in) + kernel, stride=stride,
        padding=padding, padding_mode=padding_mode, dilation=dilation, groups=groups,
    )
    if y_arr.shape != p.result_shape:
        raise ValueError(
            f"y has shape {y_arr.shape}, but conv of x {x_arr.shape} with a kernel of size "
            f"{kernel} (padding={p.padding}, stride={p.stride}, dilation={p.dilation}) gives "
            f"{p.result_shape}: C_out = {out_channels} maps of spatial size {p.out_shape}"
        )

    taps = group_in * math.prod(kernel)
    unknowns = taps + int(bias)
    samples = p.batch * math.prod(p.out_shape)
    if unknowns > MAX_UNKNOWNS:
        raise ValueError(
            f"{unknowns} unknowns per output channel ({group_in} input channel(s) x "
            f"{math.prod(kernel)} taps{' + bias' if bias else ''}) are more than fit solves "
            f"(at most {MAX_UNKNOWNS}: the normal equations take unknowns**2 memory, "
            f"{unknowns**2 * 8 * groups / 2**30:.3g} GiB here, and unknowns**3 time); use a "
            f"smaller kernel_size, groups, or a grayscale example"
        )
    if ridge == 0 and samples < unknowns:
        raise ValueError(
            f"under-determined: {unknowns} unknowns per output channel ({group_in} input "
            f"channel(s) x {math.prod(kernel)} taps{' + bias' if bias else ''}) need at least "
            f"{unknowns} independent patches (output samples), but x gives {samples}; use larger "
            f"or more examples, a smaller kernel_size, or ridge > 0"
        )

    gram, cross, sums, y_sums = _accumulate(x_arr, y_arr, p, batched)

    group_out = out_channels // groups
    weight = np.empty((out_channels, group_in) + kernel)
    bias_out = np.zeros(out_channels)
    for g in range(groups):
        matrix = gram[g] + ridge * np.eye(taps)
        rhs = cross[g]
        if bias:
            corner = np.array([[float(samples)]])
            matrix = np.block([[matrix, sums[g][:, None]], [sums[g][None, :], corner]])
            rhs = np.vstack([rhs, y_sums[g][None, :]])
        # Scale columns to a unit diagonal: pixel values and the bias's 1s differ in size.
        scale = np.sqrt(np.diag(matrix))
        scale[scale == 0] = 1.0
        solution, _, rank, _ = np.linalg.lstsq(
            matrix / np.outer(scale, scale), rhs / scale[:, None], rcond=_RCOND
        )
        if ridge == 0 and rank < unknowns:
            where = f" in group {g}" if groups > 1 else ""
            raise ValueError(
                f"the examples do not determine the kernel{where}: their patches span only "
                f"{rank} of the {unknowns} dimensions needed (a constant, too smooth or "
                f"too small image, or a channel of zeros); use a more varied x, a smaller "
                f"kernel_size, or ridge > 0"
            )
        solution = solution / scale[:, None]
        rows = slice(g * group_out, (g + 1) * group_out)
        # Columns are in (tap, channel) order: the channel axis goes back after C_out.
        weight[rows] = np.moveaxis(
            solution[:taps].T.reshape((group_out,) + kernel + (group_in,)), -1, 1)
        if bias:
            bias_out[rows] = solution[taps]
    return FilterBank(weight, bias_out, groups=groups)


#: The most unknowns (taps per output channel, plus the bias) :func:`fit` solves for: the
#: normal equations hold unknowns**2 float64 (128 MiB here) and take ~unknowns**3 to solve.
MAX_UNKNOWNS = 4097


def _ridge(ridge: Any) -> float:
    if isinstance(ridge, (bool, np.bool_)) or not isinstance(ridge, (int, float, np.number)):
        raise TypeError(f"ridge must be a number >= 0, got {type(ridge).__name__} {ridge!r}")
    value = float(ridge)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    return value


def _accumulate(
    x_arr: np.ndarray, y_arr: np.ndarray, p: Plan, batched: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: ``XᵀX`` (taps²), ``XᵀY`` (taps x C_out/groups), column sums of ``X`` and of
    ``Y``, summed over every example and output sample in blocks of at most BLOCK_BYTES.
    The columns of ``X`` are in (tap, channel) order."""
    groups = p.groups
    group_in, group_out = p.in_channels // groups, p.out_channels // groups
    taps = group_in * math.prod(p.kernel_shape)
    in_size, out_size = math.prod(p.in_shape), math.prod(p.out_shape)
    maps = [index_map(size, before, after, p.padding_mode)
            for size, (before, after) in zip(p.in_shape, p.padding)]
    x_all = x_arr if batched else x_arr[None]
    y_all = (y_arr if batched else y_arr[None]).reshape(p.batch, p.out_channels, out_size)
    # One copy of x, channels last within each group so that a gather of whole patches is
    # already the rows of X (columns in (tap, channel) order), with a zero sample at the end
    # of each where the padding's zeros point.
    x_flat = np.zeros((p.batch, groups, in_size + 1, group_in))
    x_flat[:, :, :in_size] = np.moveaxis(
        x_all.reshape(p.batch, groups, group_in, in_size), 2, 3)

    gram = np.zeros((groups, taps, taps))
    cross = np.zeros((groups, taps, group_out))
    sums = np.zeros((groups, taps))
    y_sums = np.zeros((groups, group_out))
    block = max(1, BLOCK_BYTES // (8 * taps))
    for start in range(0, out_size, block):
        stop = min(start + block, out_size)
        flat = _patch_indices(start, stop, p.out_shape, maps, p.stride, p.dilation,
                              p.kernel_shape, p.in_shape)
        for n in range(p.batch):
            for g in range(groups):
                patches = x_flat[n, g][flat].reshape(stop - start, taps)
                targets = y_all[n, g * group_out:(g + 1) * group_out, start:stop].T
                gram[g] += patches.T @ patches
                cross[g] += patches.T @ targets
                sums[g] += patches.sum(axis=0)
                y_sums[g] += targets.sum(axis=0)
    return gram, cross, sums, y_sums


def score(
    bank: FilterBank,
    x: Any,
    y: Any,
    *,
    padding: Padding = "same",
    padding_mode: str = "reflect",
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
) -> FitScore:
    """How well ``bank`` maps ``x`` to ``y``: RMS error and R², computed in float64.

    R² is ``1 - SS_res / SS_tot`` with ``SS_tot`` summed over output channels around each
    channel's own mean (scikit-learn's ``variance_weighted``); a constant target gives 1.0 for a
    perfect fit and 0.0 otherwise, as scikit-learn's ``r2_score`` does.

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> x = np.random.default_rng(0).random((1, 16, 16))
    >>> bank = imgfilt.FilterBank(np.ones((1, 1, 3, 3)) / 9)
    >>> y = imgfilt.conv(x, bank.weight, padding="same", padding_mode="reflect")
    >>> imgfilt.learn.score(bank, x, y).rms < 1e-12
    True
    """
    x_arr, y_arr = _float64(x, "x"), _float64(y, "y")
    predicted = _engine_conv(x_arr, bank.weight, bank.bias, groups=bank.groups, padding=padding,
                             padding_mode=padding_mode, stride=stride, dilation=dilation)
    if predicted.shape != y_arr.shape:
        raise ValueError(f"y has shape {y_arr.shape}, but the bank makes {predicted.shape} of x "
                         f"{x_arr.shape}")
    residual = predicted - y_arr
    channel_axis = 1 if y_arr.ndim == bank.ndim + 2 else 0
    axes = tuple(a for a in range(y_arr.ndim) if a != channel_axis)
    ss_res = float(np.sum(residual ** 2))
    ss_tot = float(np.sum((y_arr - y_arr.mean(axis=axes, keepdims=True)) ** 2))
    rms = math.sqrt(ss_res / residual.size)
    if ss_tot == 0:
        return FitScore(rms, 1.0 if ss_res == 0 else 0.0)
    return FitScore(rms, 1.0 - ss_res / ss_tot)


# ---------------------------------------------------------------------------------------------
# For the command line (``imgfilt learn``)


def _parse_size(text: str) -> tuple[int, ...]:
    """``'5'``, ``'5x5'`` or ``'3x3x3'`` as a tuple of positive ints (an argparse ``type``)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if not 1 <= len(sizes) <= 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a kernel size: give K, KxK or KxKxK with positive integers"
        )
    return sizes


def _read_example(path: str, gray: bool, ndim: int | None) -> np.ndarray:
    """An image or ``.npy`` array as ``(C, *S)`` float64 (channels last on disk; alpha dropped).

    ``ndim`` spatial axes; ``None``: 2, or 1 for a 1-D ``.npy`` signal. A ``.npy`` array with
    ``ndim`` axes has one channel, with ``ndim + 1`` its channels last (as :func:`imgfilt.apply`
    reads arrays). ``gray``: ITU-R 601 luminance (Pillow's ``convert("L")`` weights, kept in
    float) of 3-channel data.
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        array = load_npy(path)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"holds {array.dtype}, not real numbers")
        if ndim is None:
            ndim = 1 if array.ndim == 1 else 2
    elif suffix in (".tif", ".tiff") and ndim == 3:
        array = read_volume(path)  # (D, H, W[, C]), every dtype exactly
    else:
        # One image, exactly (a TIFF through tifffile, a photo upright through Pillow); a file
        # of several pages or frames is refused by name.
        array = read_image(path)
        if array.ndim == 3 and array.shape[-1] in (2, 4):
            array = array[..., :-1]  # LA, RGBA: alpha is not a colour
        if ndim not in (None, 2):
            raise ValueError(f"is a 2-D image; a {ndim}-D kernel needs .npy arrays or a "
                             "multi-page TIFF")
        ndim = 2
    if array.ndim == ndim:
        array = array[..., None]
    if array.ndim != ndim + 1:
        raise ValueError(
            f"has shape {array.shape}: a {ndim}-D kernel needs {ndim} axes (one channel) or "
            f"{ndim + 1} (channels last)"
        )
    array = np.moveaxis(array.astype(np.float64), -1, 0)
    if gray and array.shape[0] != 1:
        if array.shape[0] != 3:
            raise ValueError(f"has {array.shape[0]} channels; --gray needs 1 or 3 (RGB)")
        array = np.tensordot(_LUMA, array, axes=1)[None]
    return array
