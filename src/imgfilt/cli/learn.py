"""``imgfilt learn INPUT TARGET --size K -o OUT.npz``: fit a FilterBank from an example pair."""
from __future__ import annotations

import argparse
from typing import Any

from .. import learn
from ..padding import ALIASES, MODES
from .common import CommandError, check_target


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``learn`` to the subcommands."""
    learning = commands.add_parser(
        "learn", parents=[common],
        help="fit a filter bank that turns INPUT into TARGET (least squares)",
        description="Fit the kernels (and biases) whose correlation with INPUT best matches "
                    "TARGET; print the RMS error and R²; save a FilterBank .npz.")
    learning.add_argument("input", help="the input image, or a .npy array (channels last)")
    learning.add_argument("target", help="the target image or .npy, the same size as INPUT")
    learning.add_argument("--size", required=True, metavar="K", type=learn._parse_size,
                          help="kernel size: K (KxK for images), KxK or KxKxK")
    learning.add_argument("--gray", action="store_true",
                          help="fit on luminance (ITU-R 601, as Pillow's convert('L'))")
    learning.add_argument("--ridge", type=float, default=0.0, metavar="R",
                          help="ridge regularisation >= 0 of the weights (default 0)")
    learning.add_argument("--padding-mode", default="reflect", choices=[*MODES, *ALIASES],
                          help="border handling (default reflect)")
    learning.add_argument("-o", dest="output_path", metavar="OUT.npz", required=True,
                          help="the FilterBank file to write (.npz)")
    learning.add_argument("--overwrite", action="store_true", help="replace an existing output")
    learning.add_argument("--quiet", action="store_true", help="print nothing on success")
    learning.set_defaults(handler=run_learn)


def run_learn(args: argparse.Namespace) -> int:
    """Fit the bank, print its RMS error and R², write it atomically."""
    target = args.output_path if args.output_path.endswith(".npz") else args.output_path + ".npz"
    refusal = check_target(target, [args.input, args.target], args.overwrite)
    if refusal:
        raise CommandError(refusal)
    ndim = len(args.size) if len(args.size) > 1 else None  # None: 2-D, or 1-D for 1-D .npy
    pair = []
    for path in (args.input, args.target):
        try:
            pair.append(learn._read_example(path, args.gray, ndim))
        except OSError as error:  # missing, unreadable, a directory, not an image
            reason = getattr(error, "strerror", None) or error
            raise CommandError(f"{path}: cannot read ({reason})") from None
        except (ValueError, TypeError) as error:
            raise CommandError(f"{path}: {error}") from None
        ndim = pair[0].ndim - 1
    x, y = pair
    kernel = args.size * ndim if len(args.size) == 1 else args.size
    options = {"padding": "same", "padding_mode": args.padding_mode}
    try:
        bank = learn.fit(x, y, kernel, ridge=args.ridge, **options)
        fit_score = learn.score(bank, x, y, **options)
    except (ValueError, TypeError) as error:
        raise CommandError(f"{args.input} -> {args.target}: {error}") from None
    try:
        bank.save(target)
    except OSError as error:
        raise CommandError(f"{target}: cannot write ({error.strerror or error})") from None
    if not args.quiet:
        print(f"{target}: {bank.out_channels} map(s) from {bank.in_channels} channel(s), kernel "
              f"{'x'.join(map(str, kernel))}; RMS error {fit_score.rms:.6g}, "
              f"R² {fit_score.r2:.6f}")
    return 0
