"""The slow, obviously-correct NumPy oracle for ``imgfilt.conv``.

It pads with ``numpy.pad`` (no index maps, nothing shared with the engine), takes every kernel
tap's strided window with plain slicing, and sums ``weight[o, i, tap] * window`` with einsum, all
in float64. It is the definition the compiled code is tested against.
"""
from __future__ import annotations

import itertools

import numpy as np

NUMPY_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


def same_pads(size, kernel, stride, dilation):
    """TensorFlow's SAME rule, written out independently of imgfilt.padding."""
    out = int(np.ceil(size / stride))
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return (total // 2, total - total // 2)


def reference_conv(x, weight, bias=None, stride=1, padding=0, padding_mode="zeros",
                   dilation=1, groups=1):
    """Cross-correlate like ``imgfilt.conv`` (canonical mode names only), in float64.

    ``padding`` is an int, a tuple of per-axis ints or ``(before, after)`` pairs, or "same"/"valid".
    Returns float64 in the batch form of ``x``.
    """
    weight = np.asarray(weight, dtype=np.float64)
    ndim = weight.ndim - 2
    x = np.asarray(x, dtype=np.float64)
    batched = x.ndim == ndim + 2
    if not batched:
        x = x[None]
    stride = (stride,) * ndim if np.isscalar(stride) else tuple(stride)
    dilation = (dilation,) * ndim if np.isscalar(dilation) else tuple(dilation)
    kernel = weight.shape[2:]
    sizes = x.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * ndim
        else:
            pads = [same_pads(*a) for a in zip(sizes, kernel, stride, dilation)]
    elif np.isscalar(padding):
        pads = [(padding, padding)] * ndim
    else:
        pads = [(p, p) if np.isscalar(p) else tuple(p) for p in padding]
    xpad = np.pad(x, [(0, 0), (0, 0)] + list(pads), mode=NUMPY_MODE[padding_mode])
    out_sizes = [
        (xpad.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
        for a in range(ndim)
    ]
    c_out = weight.shape[0]
    group_in = weight.shape[1]
    group_out = c_out // groups
    result = np.zeros((x.shape[0], c_out) + tuple(out_sizes))
    for g in range(groups):
        inputs = xpad[:, g * group_in:(g + 1) * group_in]
        w_g = weight[g * group_out:(g + 1) * group_out]
        for tap in itertools.product(*[range(k) for k in kernel]):
            window = inputs[(slice(None), slice(None)) + tuple(
                slice(tap[a] * dilation[a],
                      tap[a] * dilation[a] + (out_sizes[a] - 1) * stride[a] + 1,
                      stride[a])
                for a in range(ndim))]
            result[:, g * group_out:(g + 1) * group_out] += np.einsum(
                "oi,ni...->no...", w_g[(slice(None), slice(None)) + tap], window)
    if bias is not None:
        result += np.asarray(bias, dtype=np.float64).reshape((1, c_out) + (1,) * ndim)
    return result if batched else result[0]


def problem_is_valid(problem):
    """Whether conv must accept a ``conv_problems`` problem, by the rules written out here
    independently of imgfilt (the kernel's span fits the padded input; reflect needs 2 samples)."""
    ndim = problem["ndim"]
    kernel, sizes = problem["kernel"], problem["sizes"]
    per_axis = lambda v: v if isinstance(v, tuple) else (v,) * ndim  # noqa: E731
    stride, dilation = per_axis(problem["stride"]), per_axis(problem["dilation"])
    padding = problem["padding"]
    if padding == "valid":
        pads = [(0, 0)] * ndim
    elif padding == "same":
        pads = [same_pads(*a) for a in zip(sizes, kernel, stride, dilation)]
    else:
        pads = [(p, p) if np.isscalar(p) else p for p in per_axis(padding)]
    for size, k, d, (before, after) in zip(sizes, kernel, dilation, pads):
        if size + before + after < d * (k - 1) + 1:
            return False
        if problem["padding_mode"] == "reflect" and size == 1 and before + after > 0:
            return False
    return True


def oracle_apply(channels_first, filt, mode, stride, dilation):
    """``(C_out, *S_out)`` float64 by the definition, from ``(C, *S)``."""
    ndim = filt.ndim
    stride = (stride,) * ndim if np.isscalar(stride) else tuple(stride)
    dilation = (dilation,) * ndim if np.isscalar(dilation) else tuple(dilation)
    pads = [same_pads(s, k, 1, d) for s, k, d in zip(channels_first.shape[1:], filt.kernel_shape,
                                                    dilation)]
    # numpy.pad's 'reflect' repeats the one sample of a length-1 axis, as apply promises.
    canonical = {"constant": "zeros", "edge": "replicate", "wrap": "circular"}.get(mode, mode)
    take = (slice(None),) + tuple(slice(None, None, s) for s in stride)
    if filt.per_channel:
        responses = np.stack([
            reference_conv(channel[None], filt.weight, filt.bias, padding=pads,
                           padding_mode=canonical, dilation=dilation)[take]
            for channel in channels_first])  # (C, R, *S_out)
        if filt.combine == "magnitude":
            return np.sqrt(np.sum(responses ** 2, axis=1))
        if filt.combine == "sum":
            return responses.sum(axis=1)
        return responses[:, 0]
    responses = reference_conv(channels_first, filt.weight, filt.bias, padding=pads,
                               padding_mode=canonical, dilation=dilation)[take]
    return responses


def tolerance(x, weight, bias, terms, dtype):
    """Round-off bound of a correlation of ``terms`` products in ``dtype``."""
    scale = float(np.max(np.abs(np.asarray(x, dtype=np.float64)), initial=0.0))
    scale *= float(np.max(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)))
    if bias is not None:
        scale += float(np.max(np.abs(bias)))
    return 8 * terms * np.finfo(dtype).eps * max(scale, 1.0)
