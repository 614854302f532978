"""``imgfilt list`` (the registered filters) and ``imgfilt show FILTER`` (a kernel's numbers)."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..bank import FilterBank
from ..filters import Filter, list_filters
from .common import EXIT_OK, number, resolve_filter, table


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``list`` and ``show`` to the subcommands."""
    listing = commands.add_parser("list", parents=[common], help="list the registered filters",
                                  description="Every registered filter: name, parameters with "
                                              "their defaults, and what it does.")
    listing.set_defaults(handler=run_list)
    show = commands.add_parser("show", parents=[common], help="print a filter's kernel",
                               description="Print a filter's kernel as a table, with its 1-D "
                                           "factors when it is separable.")
    show.add_argument("filter", metavar="FILTER",
                      help="a registered name, a .npy kernel or a .npz bank")
    show.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="a filter parameter, e.g. --set sigma=2 (repeatable)")
    show.add_argument("--digits", type=int, default=4, metavar="N",
                      help="significant digits of non-integer numbers (default 4)")
    show.set_defaults(handler=run_show)


def run_list(args: argparse.Namespace) -> int:
    """``imgfilt list``."""
    rows = []
    for info in list_filters():
        params = ", ".join(f"{k}={v!r}" for k, v in info.parameters.items())
        rows.append((info.name, params or "-", info.description))
    name_width = max(len(r[0]) for r in rows)
    param_width = max(len(r[1]) for r in rows)
    for name, params, description in rows:
        print(f"{name:{name_width}}  {params:{param_width}}  {description}".rstrip())
    return EXIT_OK


def _planes(kernel: np.ndarray, digits: int) -> list[str]:
    """A 1-D, 2-D or 3-D kernel as rows of numbers (3-D: one block per plane z)."""
    if kernel.ndim == 1:
        return table([kernel], digits=digits)
    if kernel.ndim == 2:
        return table(kernel, digits=digits)
    lines = []
    for z, plane in enumerate(kernel):
        lines.append(f"  z = {z}:")
        lines.extend(table(plane, indent="    ", digits=digits))
    return lines


_AXES = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}


def run_show(args: argparse.Namespace) -> int:
    """``imgfilt show``."""
    filt, label = resolve_filter(args.filter, args.set)
    digits = max(1, args.digits)
    if not isinstance(filt, (Filter, FilterBank)):  # rank filters, Canny: no kernel
        return _show_nonlinear(filt)
    if isinstance(filt, FilterBank):
        weight, names = filt.weight, list(filt.names)
        bias: np.ndarray | None = filt.bias
        print(f"{label}: a bank of {filt.out_channels} filters, weight {weight.shape} "
              f"(C_out, C_in/groups, *K), groups={filt.groups}")
        factors = None
        combine = None
    else:
        weight, bias = filt.weight, filt.bias
        args_text = ", ".join(f"{k}={v!r}" for k, v in filt.params.items())
        title = f"{filt.name}({args_text})" if filt.params else filt.name
        print(f"{title}: {filt.description or 'a kernel'}")
        print(f"weight {weight.shape} (responses, C_in, *K), sum {number(weight.sum(), digits)}")
        names = [f"response {r}" for r in range(weight.shape[0])]
        factors = filt.factors
        combine = filt.combine
    axes = _AXES[weight.ndim - 2]
    for r in range(weight.shape[0]):
        heading = names[r] if weight.shape[0] > 1 or isinstance(filt, FilterBank) else None
        if heading:
            print(f"{heading}:")
        for c in range(weight.shape[1]):
            if weight.shape[1] > 1:
                print(f" input channel {c}:")
            for line in _planes(weight[r, c], digits):
                print(line)
        if factors is not None:
            parts = [f"[{' '.join(number(v, digits) for v in vector)}] ({axis})"
                     for vector, axis in zip(factors[r], axes)]
            print("  separable: " + " ⊗ ".join(parts))
        if bias is not None and bias[r] != 0:
            print(f"  bias {number(bias[r], digits)}")
    if combine == "magnitude":
        print("combined: sqrt(sum of the squared responses)")
    elif combine == "sum":
        print("combined: sum of the responses")
    return EXIT_OK


def _show_nonlinear(filt: Any) -> int:
    """A rank filter's footprint (1: in the window) and what it takes from it; Canny's steps."""
    args_text = ", ".join(f"{k}={v!r}" for k, v in filt.params.items())
    title = f"{filt.name}({args_text})" if filt.params else filt.name
    footprint = getattr(filt, "footprint", None)
    if footprint is None:
        print(f"{title}: Canny edges, each channel on its own (no kernel: Gaussian smoothing, "
              "Sobel gradients, non-maximum suppression, hysteresis)")
        return EXIT_OK
    count = int(footprint.sum())
    if filt.operation == "rank":
        what = f"the rank-{filt.rank} value (0-based) of the {count} samples"
    else:
        what = f"grey {filt.operation} over the {count} samples"
    print(f"{title}: {what} of each window, each channel on its own")
    print(f"footprint {footprint.shape} (1: in the window)")
    for line in _planes(footprint.astype(np.int64), 1):
        print(line)
    return EXIT_OK
