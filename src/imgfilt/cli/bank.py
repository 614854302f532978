"""``imgfilt bank INPUT --filters a,b,c | --weights bank.npz -o maps.npy [--montage maps.png]``:
the feature maps of a FilterBank, saved as an array, optionally drawn as a montage."""
from __future__ import annotations

import argparse
import os
from typing import Any

from ..bank import FilterBank, montage
from ..convolution import checked_int
from .common import (
    ARRAY_SUFFIX,
    EXIT_OK,
    CommandError,
    UsageError,
    check_target,
    describe,
    gray,
    image_format,
    layout_options,
    add_layout_options,
    max_pixels,
    padding_mode,
    positive_ints,
    read_input,
    resolve_filter,
    save,
)


def _padding(text: str) -> Any:
    if text.lower() in ("same", "valid"):
        return text.lower()
    try:
        return checked_int(int(text), "padding", 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected same, valid or an integer >= 0, got {text!r}")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bank`` to the subcommands."""
    parser = commands.add_parser(
        "bank", parents=[common], help="feature maps of a FilterBank",
        description="Apply a bank of filters to one input and save the stacked feature maps "
                    "(C_out, *S) as a float .npy array; optionally draw them as a montage.",
    )
    parser.add_argument("input", metavar="INPUT", help="an image, a .npy array or a TIFF volume")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--filters", metavar="A,B,C",
                       help="registered names or .npy kernels, joined by commas")
    which.add_argument("--weights", metavar="BANK.npz", help="a bank saved by FilterBank.save")
    parser.add_argument("-o", "--out", required=True, metavar="MAPS.npy",
                        help="where the maps go (.npy)")
    parser.add_argument("--montage", metavar="PICTURE",
                        help="also draw the 2-D maps side by side, each stretched to 0-255")
    parser.add_argument("--padding", type=_padding, default="same", metavar="P",
                        help="same (default), valid, or pixels on each side")
    parser.add_argument("--padding-mode", type=padding_mode, default="reflect", metavar="MODE",
                        help="reflect (default), zeros, replicate, circular, symmetric")
    parser.add_argument("--stride", type=positive_ints, default=1, metavar="S")
    parser.add_argument("--dilation", type=positive_ints, default=1, metavar="D")
    parser.add_argument("--gray", action="store_true",
                        help="convert a picture to grayscale first (automatic when every filter "
                             "takes one channel)")
    add_layout_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    parser.add_argument("--max-pixels", type=max_pixels, default=argparse.SUPPRESS, metavar="N",
                        help="refuse larger images (default: Pillow's limit; 0: no limit)")
    parser.set_defaults(handler=run)


def _bank(args: argparse.Namespace) -> FilterBank:
    if args.weights:
        bank, _ = resolve_filter(args.weights)
        if not isinstance(bank, FilterBank):
            raise UsageError(f"--weights {args.weights}: expected a .npz bank")
        return bank
    specs = [s.strip() for s in args.filters.split(",") if s.strip()]
    if not specs:
        raise UsageError("--filters: give at least one filter name")
    filters = []
    for spec in specs:
        filt, _ = resolve_filter(spec)
        if isinstance(filt, FilterBank):
            raise UsageError(f"--filters {spec}: a bank cannot go inside a bank; use --weights")
        filters.append(filt)
    try:
        return FilterBank(filters)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--filters {args.filters}: {error}") from None


def run(args: argparse.Namespace) -> int:
    """``imgfilt bank``."""
    bank = _bank(args)
    if not args.out.lower().endswith(ARRAY_SUFFIX):
        raise UsageError(f"-o {args.out}: feature maps are saved as .npy")
    if args.montage and image_format(args.montage) is None:
        raise UsageError(f"--montage {args.montage}: unknown image extension; use e.g. .png")
    for target in filter(None, (args.out, args.montage)):
        problem = check_target(target, [args.input], args.overwrite)
        if problem:
            raise CommandError(problem)
    try:
        kind, data = read_input(args.input, bank.ndim)
        if kind == "pil" and (args.gray or bank.in_channels == 1):
            data = gray(data)
        elif args.gray:
            raise ValueError("--gray is for pictures; this input is an array or a volume")
        if kind == "pil" and layout_options(args):
            raise ValueError("--channel-axis and --axes are for .npy and TIFF inputs; a "
                             "picture's bands are known from its mode")
        layout = layout_options(args, kind, data)
        maps = bank.apply(data, padding=args.padding, padding_mode=args.padding_mode,
                          stride=args.stride, dilation=args.dilation, **layout)
    except Exception as error:  # noqa: BLE001 - one line naming the file
        raise CommandError(f"{args.input}: {describe(error)}") from None
    picture = None
    if args.montage:
        if maps.ndim != 3:
            raise CommandError(f"--montage draws 2-D maps; these are {maps.ndim - 1}-D "
                               f"(shape {maps.shape})")
        picture = montage(maps)
    save(args.out, maps)
    if picture is not None:
        try:
            save(args.montage, picture)
        except BaseException:
            # Both outputs or neither: an interrupted or failed montage takes the maps with it.
            os.unlink(args.out)
            raise
    if not args.quiet:
        names = ", ".join(bank.names)
        print(f"{args.out}: {bank.out_channels} map{'s' if bank.out_channels > 1 else ''} ({names}), shape {maps.shape}, {maps.dtype}")
        if picture is not None:
            print(f"{args.montage}: montage {picture.size[0]}x{picture.size[1]}")
    return EXIT_OK

