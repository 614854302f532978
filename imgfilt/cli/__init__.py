"""The ``imgfilt`` command: ``imgfilt apply FILTER INPUT [-o OUT]`` and ``imgfilt list``.

A first cut of the command line (one input per run; batches, ``show``, ``bank``, ``shape``,
``explain`` come with the CLI issue). Errors are one line on stderr naming the file, exit code 1,
no traceback; outputs are written atomically and an input is never overwritten.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from typing import List, Optional, Sequence

from PIL import Image

from .filters import list_filters
from .image import apply
from .io import atomic_write


def _parse_settings(settings: Sequence[str]) -> dict:
    """``["sigma=2", "radius=5"]`` -> ``{"sigma": 2, "radius": 5}`` (Python literals, else text)."""
    params = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE, e.g. --set sigma=2")
        try:
            params[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[name] = text
    return params


def _default_output(source: str, filter_name: str) -> str:
    stem, ext = os.path.splitext(source)
    return f"{stem}.{filter_name}{ext}"


def _apply(args: argparse.Namespace) -> int:
    target = args.output_path or _default_output(args.input, args.filter)
    if os.path.exists(target) and os.path.samefile(target, args.input):
        raise ValueError(f"{target}: refusing to overwrite the input")
    if os.path.exists(target) and not args.overwrite:
        raise ValueError(f"{target}: exists (use --overwrite to replace it)")
    try:
        with Image.open(args.input) as image:
            image.load()
            result = apply(image, args.filter, padding_mode=args.padding_mode,
                           output=args.output, **_parse_settings(args.set))
    except OSError as error:  # missing, unreadable, a directory, not an image
        reason = getattr(error, "strerror", None) or error
        raise ValueError(f"{args.input}: cannot read the image ({reason})") from None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{args.input}: {error}") from None
    image_format = Image.registered_extensions().get(os.path.splitext(target)[1].lower())
    if image_format is None:
        raise ValueError(f"{target}: unknown image extension; use e.g. .png, .jpg, .tif")
    try:
        with atomic_write(target) as handle:
            result.save(handle, format=image_format)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{target}: cannot write ({error})") from None
    if not args.quiet:
        print(f"{target}: {args.filter} of {args.input}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for info in list_filters():
        params = ", ".join(f"{k}={v!r}" for k, v in info.parameters.items())
        print(f"{info.name:12s} {params:28s} {info.description}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgfilt", description="Filter images with imgfilt.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("apply", help="apply a named filter to an image")
    run.add_argument("filter", help="a registered filter name (see 'imgfilt list')")
    run.add_argument("input", help="the input image")
    run.add_argument("-o", dest="output_path", metavar="OUT",
                     help="output file (default: <stem>.<filter>.<ext> beside the input)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="a filter parameter, e.g. --set sigma=2 (repeatable)")
    run.add_argument("--padding-mode", default=None,
                     help="zeros, reflect (default), replicate, circular, symmetric")
    run.add_argument("--output", default=None, choices=["clip", "rescale", "abs", "float"],
                     help="how results map to the image's range (default: clip)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")
    run.set_defaults(handler=_apply)
    listing = commands.add_parser("list", help="list the registered filters")
    listing.set_defaults(handler=_list)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit code.

    Examples
    --------
    >>> main(["list"])  # doctest: +ELLIPSIS
    box ...
    0
    """
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError) as error:
        print(f"imgfilt: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
