"""The ``imgfilt`` command: ``apply``, ``list``, ``show``, ``bank``, ``shape``, ``explain``,
``learn``.

Each command is a module here with ``register(commands, common)`` (its argparse subparser) and a
handler; :func:`main` parses, runs the handler and turns every failure into one line on stderr
and an exit code: 0 success, 1 a failed input, 2 a usage error, 130 Ctrl-C, 143 SIGTERM,
141 when stdout's reader has gone (``imgfilt list | head``).
A new command is one module and one line in :data:`COMMANDS`.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
import warnings
from typing import Any, Callable

from PIL import Image

from . import apply, arithmetic, bank, info, learn
from .common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    UsageError,
    describe,
)

__all__ = ["COMMANDS", "build_parser", "main"]

#: The modules whose ``register`` adds a subcommand, in the order ``--help`` lists them.
COMMANDS = [apply, info, bank, arithmetic, learn]


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every command."""
    parser = argparse.ArgumentParser(
        prog="imgfilt",
        description="Filter images, volumes and signals with imgfilt.",
        epilog="'imgfilt COMMAND --help' describes a command.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"imgfilt {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show Python tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands, common)
    return parser


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _install_sigterm() -> Any:
    # Python's default for SIGTERM kills the process at once, leaving atomic_write's temporary
    # file behind; as an exception it unwinds through the same cleanup as Ctrl-C.
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Examples
    --------
    >>> main(["list"])  # doctest: +ELLIPSIS
    black_tophat ...
    box ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # usage errors (2), --help and --version (0)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    previous_handler = _install_sigterm()
    previous_limit = Image.MAX_IMAGE_PIXELS
    if hasattr(args, "max_pixels"):
        Image.MAX_IMAGE_PIXELS = args.max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice that; the command refuses there.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow warns, skips and reads on for a damaged file (corrupt metadata, a truncated
            # read): an error here, so the file is reported on one line and not guessed at.
            warnings.filterwarnings("error", category=UserWarning, module=r"PIL(\.|$)")
            return args.handler(args)
    except UsageError as error:
        print(f"imgfilt: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`imgfilt list | head`): stop quietly, as Unix tools do, and keep
        # the interpreter's final flush from complaining again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("imgfilt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("imgfilt: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as error:  # noqa: BLE001 - one line, unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"imgfilt: {describe(error)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
