"""``imgfilt apply FILTER INPUT...``: filter one file, or a batch in parallel with progress.

Files are filtered on worker threads: the engine releases the GIL in its loops, and Pillow releases it
while decoding and encoding PNG, JPEG and TIFF, so threads give real parallelism without the
start-up cost, pickling and doubled memory of processes. The main thread only waits and
reports, so Ctrl-C and SIGTERM are handled at once (see :class:`WriteGate`).
With ``-j N`` the engine gets ``cores // N`` threads per file so the machine is not
oversubscribed.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import os
import queue
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..bank import FilterBank
from ..filters import Filter
from ..convolution import get_num_threads, set_num_threads
from ..api import apply as apply_filter
from ..arrays import normalised_pil
from ..pipeline import OUTPUTS
from ..tiff import COMPRESSIONS
from .common import (
    ARRAY_SUFFIX,
    EXIT_FAILED,
    EXIT_OK,
    SKIP_HINT,
    UsageError,
    add_layout_options,
    check_target,
    describe,
    gray,
    gray_pixels,
    layout_options,
    max_pixels,
    padding_mode,
    positive_int,
    positive_ints,
    read_input,
    resolve_filter,
    save,
)


class Cancelled(Exception):
    """A queued file that was stopped by Ctrl-C or SIGTERM before it was written."""


@dataclass
class Job:
    """One input and where its result goes; ``problem`` fails it before it is read."""

    source: str
    target: str = ""
    problem: str | None = None
    note: str | None = None


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``apply`` to the subcommands."""
    parser = commands.add_parser(
        "apply", parents=[common], help="filter images, arrays and volumes",
        description="Filter one input (-o OUT) or many (--out-dir DIR), in parallel.",
    )
    parser.add_argument("filter", metavar="FILTER",
                        help="a registered name (see 'imgfilt list'), a .npy kernel or a .npz bank")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image, .npy or TIFF files, globs or directories")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--out", dest="out", metavar="OUT",
                       help="the output file for one input; format from its extension "
                            "(.png .jpg .tif .bmp .webp; .npy: the float result)")
    where.add_argument("--out-dir", metavar="DIR",
                       help="write each result as DIR/<input's name> (created if missing)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a filter parameter, e.g. --set sigma=2 (repeatable)")
    parser.add_argument("--padding-mode", type=padding_mode, default=None, metavar="MODE",
                        help="reflect (default), zeros, replicate, circular, symmetric")
    parser.add_argument("--stride", type=positive_ints, default=None, metavar="S",
                        help="keep every S-th output pixel (S or SY,SX)")
    parser.add_argument("--dilation", type=positive_ints, default=None, metavar="D",
                        help="spread the kernel's taps D pixels apart (D or DY,DX)")
    parser.add_argument("--output", choices=OUTPUTS, default=None,
                        help="how results map to the image's range (default: clip for integer "
                             "images; float for float arrays and .npy outputs)")
    parser.add_argument("--gray", action="store_true",
                        help="convert pictures to grayscale (luminance) first")
    add_layout_options(parser)
    parser.add_argument("--compression", choices=COMPRESSIONS, default="zlib",
                        help="TIFF outputs: zlib (default, lossless), lzma or none")
    parser.add_argument("--quality", type=_quality, default="keep", metavar="Q|keep",
                        help="JPEG/WebP outputs: quality 1-100; keep (default): a JPEG from a "
                             "JPEG keeps its quantisation tables, others Pillow's default")
    parser.add_argument("-j", "--jobs", type=positive_int, default=None, metavar="N",
                        help="files filtered at once (default: the number of cores)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (never an input)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar, no summary, no output names; errors still show")
    parser.add_argument("--chunks", type=_chunks, default=None, metavar="N|SIZE",
                        help="filter a .npy or multi-page TIFF larger than memory with Dask, in "
                             "chunks of N samples per axis or of SIZE bytes (e.g. 64MiB); "
                             "the output must be .npy (needs imgfilt[dask])")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --chunks: a dask.distributed scheduler, e.g. tcp://host:8786")
    parser.add_argument("--max-pixels", type=max_pixels, default=argparse.SUPPRESS, metavar="N",
                        help="refuse larger images (default: Pillow's decompression-bomb limit, "
                             f"{Image.MAX_IMAGE_PIXELS}; 0: no limit)")
    parser.set_defaults(handler=run)


# ---------------------------------------------------------------------------------------------
# Which files, and where their results go


def _readable_suffixes() -> tuple[str, ...]:
    opened = Image.OPEN
    return tuple(ext for ext, fmt in Image.registered_extensions().items() if fmt in opened) + (
        ARRAY_SUFFIX,)


def _without_default_outputs(paths: list[str], label: str | None) -> list[str]:
    """``paths`` less the files that are another path's default output (``x.<label>.png``
    beside ``x.png``): a re-run does not filter the first run's results."""
    if label is None:
        return paths
    outputs = {os.path.normcase(os.path.abspath(default_target(p, label))) for p in paths}
    return [p for p in paths if os.path.normcase(os.path.abspath(p)) not in outputs]


def expand_inputs(patterns: list[str], label: str | None = None) -> list[Job]:
    """Files as given; directories as the readable files directly inside them (sorted, hidden
    files skipped); globs (when the shell did not expand them) as their sorted matches. With
    ``label`` (outputs named beside their inputs), a directory's or glob's files that are the
    default outputs of its other files are left out."""
    suffixes = _readable_suffixes()
    jobs: list[Job] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            names = sorted(n for n in os.listdir(pattern)
                           if not n.startswith(".") and n.lower().endswith(suffixes))
            paths = [os.path.join(pattern, n) for n in names]
            paths = _without_default_outputs([p for p in paths if os.path.isfile(p)], label)
            jobs.extend(Job(p) for p in paths)
            if not paths:
                jobs.append(Job(pattern, problem="no image, .npy or TIFF files in this directory"))
        elif not os.path.lexists(pattern) and any(c in pattern for c in "*?["):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            matches = _without_default_outputs(matches, label)
            jobs.extend(Job(p) for p in matches)
            if not matches:
                jobs.append(Job(pattern, problem="no file matches this pattern"))
        else:
            jobs.append(Job(pattern))
    return jobs


def default_target(source: str, label: str) -> str:
    """``<stem>.<filter>.<ext>`` beside the input."""
    stem, ext = os.path.splitext(source)
    return f"{stem}.{label}{ext}"


def plan_targets(jobs: list[Job], args: argparse.Namespace, label: str) -> None:
    """Give every job a target; a target that is an input, or that an earlier job already
    writes, is a problem."""
    # Every file named on the command line is protected, the filter's kernel file included.
    inputs = [job.source for job in jobs if job.problem is None] + [args.filter]
    claimed: dict[Any, Any] = {}
    for job in jobs:
        if job.problem is not None:
            continue
        if args.out:
            job.target = args.out
        elif args.out_dir:
            job.target = os.path.join(args.out_dir, os.path.basename(job.source))
        else:
            job.target = default_target(job.source, label)
        key = os.path.normcase(os.path.abspath(job.target))
        if key in claimed:
            job.problem = f"{job.target} is also the output of {claimed[key]}; skipping this input"
            continue
        claimed[key] = job.source
        job.problem = check_target(job.target, inputs, args.overwrite)


# ---------------------------------------------------------------------------------------------
# One file


def compute(kind: str, data: Any, filt: Any, args: argparse.Namespace,
            to_array: bool) -> tuple[Any, bool]:
    """Filter what :func:`read_input` read: ``(result, is_volume)``."""
    options = {"padding_mode": args.padding_mode, "stride": args.stride, "dilation": args.dilation}
    if isinstance(filt, FilterBank) and not to_array and filt.out_channels == 1 and hasattr(
            filt, "bias"):
        # One map: the bank is one filter, and its result a picture (a grey-fitted, C_in = 1
        # bank runs on each colour channel; an RGB-fitted one gives a grey picture).
        filt = Filter(filt.weight, filt.bias, name=filt.names[0])
    if isinstance(filt, FilterBank):
        if not to_array and kind in ("pil", "frames"):
            raise ValueError("a FilterBank gives float feature maps: write them to .npy "
                             "(or draw them with 'imgfilt bank --montage')")
        options = {k: v for k, v in options.items() if v is not None}
    else:
        options["output"] = args.output or ("float" if to_array else None)
    if args.gray and kind in ("array", "volume"):
        raise ValueError("--gray is for pictures and TIFF pages; this input is an array or a "
                         "volume")
    if kind in ("pil", "frames") and (args.channel_axis is not None or args.axes is not None):
        raise ValueError("--channel-axis and --axes are for .npy and TIFF inputs; a picture's "
                         "bands are known from its mode")
    if kind == "frames":
        results = [compute("pil", frame, filt, args, to_array)[0] for frame in data]
        return (np.stack(results), False) if to_array else (results, False)
    if kind == "pil":
        image = gray(data) if args.gray else data
        if to_array and not isinstance(filt, FilterBank):
            # The float result of the colour bands (alpha is left out).
            normalised = normalised_pil(image)
            pixels = np.asarray(normalised)
            if normalised.mode in ("LA", "RGBA"):
                pixels = pixels[..., :-1]
            if pixels.ndim == 3 and pixels.shape[-1] == 1:
                pixels = pixels[..., 0]
            axis = -1 if pixels.ndim == 3 else None
            return apply_filter(pixels, filt, channel_axis=axis, **options), False
        return apply_filter(image, filt, **options), False
    if isinstance(filt, FilterBank) and not to_array:
        raise ValueError("a FilterBank gives float feature maps: write them to .npy "
                         "(or draw them with 'imgfilt bank --montage')")
    if args.gray:
        data = gray_pixels(data)
    layout = layout_options(args, kind, data)
    return apply_filter(data, filt, **options, **layout), kind in ("volume", "pages")


class WriteGate:
    """Lets writes start until :meth:`close`; ``close`` waits for the writes under way.

    Ctrl-C and SIGTERM close the gate: a file being filtered is abandoned (its worker is a
    daemon thread, so the process need not wait for the engine), a file being written is
    finished, so no output is ever left half-written and no temporary file is left behind.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._closed = False
        self._writing = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            if self._closed:
                raise Cancelled()
            self._writing += 1
        try:
            yield
        finally:
            with self._condition:
                self._writing -= 1
                self._condition.notify_all()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            while self._writing:
                self._condition.wait()


def process(job: Job, filt: Any, args: argparse.Namespace, gate: WriteGate) -> None:
    """Read, filter and write one file; the write is atomic and happens only if the gate is
    open."""
    if args.chunks is not None:
        _process_out_of_core(job, filt, args, gate)
        return
    kind, data, metadata = read_input(job.source, filt.ndim)
    result, volume = compute(kind, data, filt, args, job.target.lower().endswith(ARRAY_SUFFIX))
    with gate.writing():
        dropped = save(job.target, result, volume=volume, metadata=metadata,
                       compression=args.compression, quality=args.quality)
    if dropped:
        job.note = (f"{job.target}: its format cannot hold the input's "
                    f"{', '.join(d.replace('_', ' ') for d in dropped)}; they were not written")


def _quality(text: str) -> int | str:
    """``--quality``: 1-100 or ``keep``."""
    if text.strip().lower() == "keep":
        return "keep"
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be 1-100 or keep, got {text!r}")
    return value


def _chunks(text: str) -> int | str:
    """``--chunks``: a positive int (samples per axis) or a size such as ``64MiB``."""
    return positive_int(text) if text.strip().isdigit() else text.strip()


def _process_out_of_core(job: Job, filt: Any, args: argparse.Namespace, gate: WriteGate) -> None:
    """``--chunks``: imgfilt.dask.filter_file reads, filters and writes the file chunk by chunk
    (its own write is atomic; the target was checked before)."""
    if isinstance(filt, FilterBank):
        raise ValueError("--chunks filters with a named filter or a .npy kernel, not a bank")
    if not job.target.lower().endswith(ARRAY_SUFFIX):
        raise ValueError(f"{job.target}: --chunks writes a .npy (a memory-mapped array)")
    if args.gray:
        raise ValueError("--gray is for pictures; --chunks reads arrays and TIFF stacks")
    try:
        from .. import dask as imgfilt_dask
    except ImportError:
        raise ValueError("--chunks needs Dask: pip install 'imgfilt[dask]'") from None
    options = {key: value for key, value in (("padding_mode", args.padding_mode),
                                             ("stride", args.stride),
                                             ("dilation", args.dilation),
                                             ("output", args.output or "float"))
               if value is not None}
    options.update(layout_options(args))
    with gate.writing():
        imgfilt_dask.filter_file(job.source, job.target, filt, chunks=args.chunks,
                                 scheduler=args.scheduler, progress=not args.quiet,
                                 overwrite=True, **options)  # type: ignore[arg-type]


def run_pool(jobs: list[Job], work: Callable[[Job], None], workers: int,
             finished: Callable[[Job, BaseException | None], None], gate: WriteGate) -> None:
    """Run ``work`` on every job in ``workers`` daemon threads; ``finished(job, error)`` runs
    in the calling thread as each job ends. Ctrl-C or SIGTERM there closes ``gate`` and
    re-raises."""
    tasks: queue.SimpleQueue[Job] = queue.SimpleQueue()
    results: queue.SimpleQueue[tuple[Job, BaseException | None]] = queue.SimpleQueue()
    for job in jobs:
        tasks.put(job)

    def worker() -> None:
        while not gate.closed:
            try:
                job = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                work(job)
            except BaseException as error:  # noqa: BLE001 - reported by the calling thread
                results.put((job, error))
            else:
                results.put((job, None))

    for _ in range(min(workers, len(jobs))):
        threading.Thread(target=worker, name="imgfilt-worker", daemon=True).start()
    try:
        for _ in range(len(jobs)):
            while True:
                try:
                    # A timeout keeps this thread responsive to Ctrl-C and SIGTERM.
                    job, error = results.get(timeout=0.2)
                    break
                except queue.Empty:
                    continue
            finished(job, error)
    except BaseException:
        gate.close()
        raise


def _report(job: Job, error: BaseException, args: argparse.Namespace, write: Any) -> None:
    write(f"imgfilt: {job.source}: {describe(error)}")
    if args.debug:
        write("".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip())


# ---------------------------------------------------------------------------------------------
# The command


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run(args: argparse.Namespace) -> int:
    """``imgfilt apply``: exit 0 when every input was written (or skipped), 1 when any failed."""
    filt, label = resolve_filter(args.filter, args.set)
    jobs = expand_inputs(args.inputs, None if args.out or args.out_dir else label)
    if args.out and len(jobs) > 1:
        raise UsageError(f"-o names one output but {len(jobs)} inputs were given; "
                         "use --out-dir DIR for several")
    for folder, option in ((args.out_dir, "--out-dir"),
                           (args.out and os.path.dirname(args.out), "-o")):
        if folder:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as error:
                raise UsageError(f"{option} {folder}: cannot create the folder: "
                                 f"{describe(error)}") from None
    plan_targets(jobs, args, label)
    if len(jobs) == 1 and not args.out_dir:
        return _run_one(jobs[0], filt, args)
    return _run_batch(jobs, filt, args)


def _run_one(job: Job, filt: Any, args: argparse.Namespace) -> int:
    if job.problem is not None:
        print(f"imgfilt: {job.source}: {job.problem}", file=sys.stderr)
        return EXIT_FAILED
    errors: list[BaseException] = []

    def finished(job: Job, error: BaseException | None) -> None:
        if error is not None:
            errors.append(error)
            _report(job, error, args, lambda line: print(line, file=sys.stderr))

    # In a worker thread, so that Ctrl-C is handled at once even while the engine runs.
    gate = WriteGate()
    run_pool([job], lambda j: process(j, filt, args, gate), 1, finished, gate)
    if errors:
        return EXIT_FAILED
    if job.note:
        print(f"imgfilt: note: {job.note}", file=sys.stderr)
    if not args.quiet:
        print(job.target)
    return EXIT_OK


def _run_batch(jobs: list[Job], filt: Any, args: argparse.Namespace) -> int:
    def write(line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    counts = {"done": 0, "failed": 0, "skipped": 0}
    todo = []
    for job in jobs:
        if job.problem is None:
            todo.append(job)
        elif job.problem.endswith(SKIP_HINT):
            counts["skipped"] += 1
            if not args.quiet:
                write(f"imgfilt: {job.source}: skipped: {job.problem}")
        else:
            counts["failed"] += 1
            write(f"imgfilt: {job.source}: {job.problem}")
    workers = min(args.jobs or usable_cores(), max(1, len(todo)))
    engine_threads = get_num_threads()
    set_num_threads(max(1, usable_cores() // workers))
    bar = tqdm(total=len(jobs), unit="file", file=sys.stderr,
               initial=counts["failed"] + counts["skipped"],
               disable=args.quiet or not sys.stderr.isatty(), dynamic_ncols=True)
    gate = WriteGate()

    def finished(job: Job, error: BaseException | None) -> None:
        if error is None:
            counts["done"] += 1
            if job.note:
                write(f"imgfilt: note: {job.note}")
        else:
            counts["failed"] += 1
            _report(job, error, args, write)
        bar.update(1)

    try:
        run_pool(todo, lambda job: process(job, filt, args, gate), workers, finished, gate)
    finally:
        bar.close()
        set_num_threads(engine_threads)
    if not args.quiet:
        print(f"imgfilt: {len(jobs)} inputs: {counts['done']} done, {counts['failed']} failed, "
              f"{counts['skipped']} skipped", file=sys.stderr)
    return EXIT_FAILED if counts["failed"] else EXIT_OK
