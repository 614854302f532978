"""``imgfilt shape`` (the output-size arithmetic of a cascade of layers) and ``imgfilt explain``
(the arithmetic of one output element), written out as a textbook does.

Both take their numbers from :func:`imgfilt.convolution.plan`, the code ``conv`` itself runs, so what
they print is what ``conv`` computes.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..convolution import Plan, plan
from ..explainer import DEMO_INPUT, DEMO_KERNEL, explain
from ..io import atomic_write
from ..padding import NUMPY_NAMES
from .common import (
    EXIT_OK, UsageError, bounded, check_target, number, padding_mode, read_array, table,
)

FORMULA = "out = floor((in + pad_before + pad_after - dilation·(kernel - 1) - 1) / stride) + 1"


# ---------------------------------------------------------------------------------------------
# Argument types


def _sizes(text: str) -> tuple[int, ...]:
    """``'64x64x5'`` -> (64, 64, 5); ``'3'`` -> (3,); every size >= 1."""
    try:
        values = tuple(int(part) for part in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes joined by x, e.g. 64x64x3, got {text!r}")
    bounded(values, 1)
    return values


def _padding(text: str) -> Any:
    """``same``, ``valid``, ``P`` or one ``P`` per axis joined by x."""
    if text.lower() in ("same", "valid"):
        return text.lower()
    try:
        values = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected same, valid or pixels (e.g. 1 or 1x2), got {text!r}")
    bounded(values, 0)
    return values[0] if len(values) == 1 else values


def _layer(text: str) -> tuple[int, tuple[int, ...], tuple[int, ...] | None, Any]:
    """``--then FILTERS:KERNEL[:STRIDE[:PADDING]]``, e.g. ``16:5`` or ``16:3:2:same``."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise argparse.ArgumentTypeError(
            f"expected FILTERS:KERNEL[:STRIDE[:PADDING]], e.g. 16:5 or 16:3:2:1, got {text!r}")
    filters = _sizes(parts[0])
    if len(filters) != 1:
        raise argparse.ArgumentTypeError(f"FILTERS is one number, got {parts[0]!r} in {text!r}")
    stride = _sizes(parts[2]) if len(parts) > 2 else None
    padding = _padding(parts[3]) if len(parts) > 3 else None
    return filters[0], _sizes(parts[1]), stride, padding


def _position(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Y,X (e.g. 0,1), got {text!r}")
    bounded(values, 0)
    return values


def _per_axis(values: Any, ndim: int, what: str) -> Any:
    """One value per spatial axis from one value, or ``ndim`` of them."""
    if isinstance(values, str) or values is None:
        return values
    values = tuple(values) if isinstance(values, tuple) else (values,)
    if len(values) == 1:
        return values[0]
    if len(values) != ndim:
        raise UsageError(f"{what} has {len(values)} values; give 1 or {ndim} (one per axis)")
    return values


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``shape`` and ``explain`` to the subcommands."""
    shape = commands.add_parser(
        "shape", parents=[common], help="output shape and parameters of convolution layers",
        description="The textbook arithmetic of a cascade of convolution layers: each layer's "
                    "output shape, weight shape and number of parameters. " + FORMULA,
    )
    shape.add_argument("--input", type=_sizes, required=True, metavar="HxWxC",
                       help="input size, channels last: 64x64x5 (also WxC or DxHxWxC)")
    shape.add_argument("--filters", type=int, required=True, metavar="F",
                       help="number of filters (output channels) of the first layer")
    shape.add_argument("--kernel", type=_sizes, required=True, metavar="K",
                       help="kernel size: 3, or one per axis: 3x5")
    shape.add_argument("--stride", type=_sizes, default=(1,), metavar="S",
                       help="stride of every layer (default 1; S or one per axis SxS)")
    shape.add_argument("--padding", type=_padding, default=0, metavar="P",
                       help="padding of every layer: pixels on each side (default 0), same, valid")
    shape.add_argument("--dilation", type=_sizes, default=(1,), metavar="D",
                       help="dilation of every layer (default 1)")
    shape.add_argument("--then", type=_layer, action="append", default=[],
                       metavar="F:K[:S[:P]]",
                       help="another layer after the previous one, e.g. 16:5 (repeatable)")
    shape.add_argument("--no-bias", dest="bias", action="store_false",
                       help="layers have no bias terms")
    shape.set_defaults(handler=run_shape)

    explain = commands.add_parser(
        "explain", parents=[common], help="the arithmetic of one output element",
        description="Write out how imgfilt.conv computes one output element: the sum over input "
                    "channels of window × kernel, plus the bias. Without --input/--kernel: the "
                    "3x3 / 2x2 example of Dive into Deep Learning.",
    )
    explain.add_argument("--input", metavar="ARRAY",
                         help="(H, W) or (C_in, H, W): a literal such as [[0,1,2],[3,4,5]], or a "
                              ".npy or image file")
    explain.add_argument("--kernel", metavar="ARRAY",
                         help="(kH, kW), (C_in, kH, kW) or (C_out, C_in, kH, kW), as --input")
    explain.add_argument("--bias", metavar="B",
                         help="a number, or one per output channel: [1,2]")
    explain.add_argument("--stride", type=_sizes, default=(1,), metavar="S")
    explain.add_argument("--padding", type=_padding, default=0, metavar="P",
                         help="pixels on each side (default 0), same or valid")
    explain.add_argument("--padding-mode", type=padding_mode, default="zeros", metavar="MODE",
                         help="zeros (default), reflect, replicate, circular, symmetric")
    explain.add_argument("--dilation", type=_sizes, default=(1,), metavar="D")
    explain.add_argument("--at", type=_position, default=(0, 0), metavar="Y,X",
                         help="the output element (default 0,0)")
    explain.add_argument("--out-channel", type=int, default=0, metavar="O",
                         help="the output channel, for a (C_out, C_in, kH, kW) kernel")
    explain.add_argument("--html", metavar="PAGE.html",
                         help="write a web page that steps and plays the window over the whole "
                              "input (one self-contained file, no network) instead of printing")
    explain.add_argument("--dims", type=int, choices=(1, 2, 3), default=2, metavar="N",
                         help="spatial axes of --input/--kernel for --html: 1 (signals), 2 "
                              "(default) or 3 (volumes)")
    explain.add_argument("--groups", type=int, default=1, metavar="G",
                         help="grouped convolution, for --html (default 1)")
    explain.add_argument("--overwrite", action="store_true",
                         help="replace an existing --html page")
    explain.set_defaults(handler=run_explain)


# ---------------------------------------------------------------------------------------------
# shape


def _dims(sizes: Sequence[int]) -> str:
    return "x".join(str(s) for s in sizes)


def _one_or_all(values: Sequence[int]) -> str:
    """``(2, 2)`` -> ``'2'``; ``(2, 1)`` -> ``'2x1'``."""
    return str(values[0]) if len(set(values)) == 1 else _dims(values)


def _axis_formula(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                  out: int) -> str:
    """The textbook's ``(W - F + 2P) / S + 1`` with this axis's numbers."""
    before, after = pads
    span = dilation * (kernel - 1) + 1
    k_text = str(kernel) if dilation == 1 else f"({dilation}·({kernel} - 1) + 1)"
    p_text = f"2·{before}" if before == after else f"({before} + {after})"
    numerator = size + before + after - span
    text = f"({size} - {k_text} + {p_text}) / {stride}"
    if numerator % stride:
        text = f"floor({text})"
    return f"{text} + 1 = {out}"


def _layer_lines(index: int, p: Plan, filters: int, bias: bool,
                 padding: Any) -> tuple[list[str], int]:
    names = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}[p.ndim]
    c_in = p.in_channels
    lines = [f"layer {index}: {filters} filters of {_dims(p.kernel_shape + (c_in,))}, stride "
             f"{_one_or_all(p.stride)}, padding "
             f"{(padding + ' = ') if isinstance(padding, str) else ''}{_pads(p)}"
             + (f", dilation {_one_or_all(p.dilation)}" if any(d > 1 for d in p.dilation) else "")]
    per_axis = [(p.in_shape[a], p.kernel_shape[a], p.stride[a], p.dilation[a], p.padding[a],
                 p.out_shape[a]) for a in range(p.ndim)]
    groups: dict[tuple, list[str]] = {}
    for name, item in zip(names, per_axis):
        groups.setdefault(item, []).append(name)
    for item, axis_names in groups.items():
        lines.append(f"  {', '.join(axis_names)}: {_axis_formula(*item)}")
    weights = filters * c_in * int(np.prod(p.kernel_shape))
    params = weights + (filters if bias else 0)
    k_product = "·".join(str(k) for k in p.kernel_shape)
    count = (f"{filters}·({c_in}·{k_product} + 1) = {params}" if bias
             else f"{filters}·{c_in}·{k_product} = {params}")
    lines.append(f"  output: {_dims(p.out_shape + (filters,))}")
    lines.append(f"  weight: {(filters, c_in) + p.kernel_shape}, parameters {count}")
    return lines, params


def _pads(p: Plan) -> str:
    if all(b == a for b, a in p.padding):
        return _one_or_all(tuple(b for b, _ in p.padding))
    return ", ".join(f"({b}, {a})" for b, a in p.padding)


def run_shape(args: argparse.Namespace) -> int:
    """``imgfilt shape``."""
    sizes, channels = args.input[:-1], args.input[-1]
    ndim = len(sizes)
    if not 1 <= ndim <= 3:
        raise UsageError(f"--input {_dims(args.input)}: give 1-3 sizes and the channels last, "
                         "e.g. 64x64x3")
    layers = [(args.filters, args.kernel, args.stride, args.padding)] + [
        (f, k, s if s is not None else args.stride, p if p is not None else args.padding)
        for f, k, s, p in args.then]
    print(f"input: {_dims(args.input)} ({' x '.join(('D', 'H', 'W')[3 - ndim:] + ('C',))})")
    shape = (channels,) + tuple(sizes)
    total = 0
    for index, (filters, kernel, stride, padding) in enumerate(layers, start=1):
        if filters < 1:
            raise UsageError(f"layer {index}: the number of filters must be >= 1, got {filters}")
        kernel = _per_axis(kernel, ndim, f"layer {index}'s kernel")
        kernel = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
        try:
            p = plan(shape, np.float32, (filters, shape[0]) + kernel,
                     stride=_per_axis(stride, ndim, "--stride"),
                     padding=_per_axis(padding, ndim, "--padding"),
                     dilation=_per_axis(args.dilation, ndim, "--dilation"))
        except (TypeError, ValueError) as error:
            raise UsageError(f"layer {index}: {error}") from None
        lines, params = _layer_lines(index, p, filters, args.bias, padding)
        print("\n".join(lines))
        total += params
        shape = p.result_shape
    print(f"output: {_dims(shape[1:] + shape[:1])}, total parameters {total}")
    print(f"formula: {FORMULA}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# explain


def _term(x: float, w: float) -> str:
    def show(v: float) -> str:
        text = number(v, 6)
        return f"({text})" if text.startswith("-") else text

    return f"{show(x)}×{show(w)}"


def _matrix(title: str, array: np.ndarray, limit: int = 16) -> list[str]:
    lines = [title]
    for c, plane in enumerate(array):
        if array.shape[0] > 1:
            lines.append(f" channel {c}:")
        if max(plane.shape) > limit:
            lines.append(f"  ({plane.shape[0]}x{plane.shape[1]}: too large to print)")
        else:
            lines.extend(table(plane, digits=6))
    return lines


def run_explain_html(args: argparse.Namespace) -> int:
    """``imgfilt explain --html PAGE``: the page of :func:`imgfilt.explainer.explain`."""
    inputs = [a for a in (args.input, args.kernel, args.bias) if a]
    problem = check_target(args.html, inputs, args.overwrite)
    if problem:
        raise UsageError(problem)
    x = read_array(args.input, "--input") if args.input else DEMO_INPUT
    w = read_array(args.kernel, "--kernel") if args.kernel else DEMO_KERNEL
    bias = read_array(args.bias, "--bias") if args.bias is not None else None
    d = args.dims
    try:
        page = explain(x, w, bias, ndim=d, stride=_per_axis(args.stride, d, "--stride"),
                       padding=_per_axis(args.padding, d, "--padding"),
                       padding_mode=args.padding_mode,
                       dilation=_per_axis(args.dilation, d, "--dilation"), groups=args.groups)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    with atomic_write(args.html) as handle:
        handle.write(page.encode("utf-8"))
    print(f"{args.html}: page of {len(page) // 1024 + 1} KiB; open it in a browser")
    return EXIT_OK


def run_explain(args: argparse.Namespace) -> int:
    """``imgfilt explain``."""
    if args.html:
        return run_explain_html(args)
    if args.dims != 2 or args.groups != 1:
        raise UsageError("the printed explain is 2-D without groups; --dims and --groups need "
                         "--html PAGE.html")
    x = read_array(args.input, "--input") if args.input else DEMO_INPUT
    w = read_array(args.kernel, "--kernel") if args.kernel else DEMO_KERNEL
    if x.ndim not in (2, 3):
        raise UsageError(f"--input must be (H, W) or (C_in, H, W), got shape {x.shape}")
    x = x[None] if x.ndim == 2 else x
    if w.ndim not in (2, 3, 4):
        raise UsageError(f"--kernel must be (kH, kW), (C_in, kH, kW) or (C_out, C_in, kH, kW), "
                         f"got shape {w.shape}")
    w = w.reshape((1,) * (4 - w.ndim) + w.shape)
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    bias = np.zeros(w.shape[0])
    if args.bias is not None:
        values = np.atleast_1d(read_array(args.bias, "--bias")).reshape(-1)
        if values.size not in (1, w.shape[0]):
            raise UsageError(f"--bias needs 1 or C_out = {w.shape[0]} values, got {values.size}")
        bias = np.broadcast_to(values, (w.shape[0],)).astype(np.float64)
    try:
        p = plan(x.shape, x.dtype, w.shape, stride=_per_axis(args.stride, 2, "--stride"),
                 padding=_per_axis(args.padding, 2, "--padding"), padding_mode=args.padding_mode,
                 dilation=_per_axis(args.dilation, 2, "--dilation"))
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    o = args.out_channel
    if not 0 <= o < p.out_channels:
        raise UsageError(f"--out-channel {o}: the kernel has {p.out_channels} output channel(s)")
    if len(args.at) != 2 or not all(0 <= v < s for v, s in zip(args.at, p.out_shape)):
        raise UsageError(f"--at {','.join(map(str, args.at))}: the output is "
                         f"{p.out_shape[0]}x{p.out_shape[1]}; give Y,X inside it")
    y, x0 = args.at
    (sy, sx), (dy, dx) = p.stride, p.dilation
    padded = np.pad(x, [(0, 0)] + list(p.padding), mode=NUMPY_NAMES[p.padding_mode])  # type: ignore[call-overload]
    kh, kw = p.kernel_shape
    rows = [y * sy + m * dy for m in range(kh)]
    cols = [x0 * sx + n * dx for n in range(kw)]

    channels = "channel" if p.in_channels == 1 else "channels"
    print(*_matrix(f"x: {p.in_channels} {channels} of {_dims(p.in_shape)}", x), sep="\n")
    if any(any(pair) for pair in p.padding):
        (top, bottom), (left, right) = p.padding
        print(*_matrix(f"xpad, x padded ({p.padding_mode}: {top} top, {bottom} bottom, {left} left, "
                       f"{right} right):", padded), sep="\n")
    print(*_matrix(f"w[{o}]: {p.in_channels}x{kh}x{kw} (C_in x kH x kW)", w[o]), sep="\n")
    if args.bias is not None:
        print(f"b[{o}] = {number(bias[o], 6)}")
    print(f"out: {p.out_channels}x{_dims(p.out_shape)}, stride {_one_or_all(p.stride)}, "
          f"dilation {_one_or_all(p.dilation)}")
    where = f"out[{o}, {y}, {x0}]" if p.out_channels > 1 else f"out[{y}, {x0}]"
    print(f"{where} = b + Σ_c Σ_m Σ_n w[c, m, n] · x{'pad' if padded.shape != x.shape else ''}"
          f"[c, {y}·{sy} + m·{dy}, {x0}·{sx} + n·{dx}]")
    print(f"window: rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}"
          + (f" (every {dy}, {dx})" if (dy, dx) != (1, 1) else "")
          + (" of xpad" if padded.shape != x.shape else ""))
    sums = []
    lines = []
    for c in range(p.in_channels):
        terms = [(padded[c, r, q], w[o, c, m, n])
                 for m, r in enumerate(rows) for n, q in enumerate(cols)]
        total = float(sum(a * b for a, b in terms))
        sums.append(total)
        lines.append((" + ".join(_term(a, b) for a, b in terms), total))
    value = float(sum(sums) + bias[o])
    pad = " " * len(where)
    if p.in_channels == 1 and args.bias is None:
        print(f"{where} = {lines[0][0]} = {number(value, 8)}")
        return EXIT_OK
    for c, (text, total) in enumerate(lines):
        lead = f"{where} =" if c == 0 else f"{pad} +"
        label = f"channel {c}: " if p.in_channels > 1 else ""
        print(f"{lead} {label}{text} = {number(total, 8)}")
    print(f"{pad} + bias {number(bias[o], 8)}")
    print(f"{pad} = {number(value, 8)}")
    return EXIT_OK
