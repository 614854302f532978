"""The boundary fuzzer's cases (issue 19), run by ``tests/test_boundaries.py`` in child interpreters.

Each category is a deterministic list of cases made from a seed; case ``i`` can be rerun alone.

* ``overlap``: ``conv``/``convolve`` with an ``out=`` that shares memory with ``x``, ``weight``
  or ``bias`` (views at random offsets of one buffer, reshapes, reversed and stepped views) or the
  bytes of a file (a second ``numpy.memmap`` of the same file, at another offset), every method.
  Expected: ``out`` holds the oracle's answer, and the inputs ``out`` does not overlap are
  untouched.
* ``files``: valid ``.npy``/``.npz``/TIFF/PNG files truncated at every header offset, with a byte
  flipped at every header offset, random bytes written over the header, and ``.npy`` headers
  cut inside their dict (the rest blanked, the length kept); read by every reader of the package
  and by the command line. Expected: an array, or ``ValueError``/``OSError`` naming the file
  (``MemoryError`` is allowed); the command line exits 0 or 1 with one line naming the file.
* ``integers``: stride, dilation, padding, groups, sizes, kernel sizes, montage and thread counts
  drawn from the edges of every integer type up to 2**64 and beyond, negative, bool, NumPy
  integers, floats; through conv, convolve, plan, apply, FilterBank.apply, dask.conv, kernels,
  montage and the command line. Expected: the oracle's answer, or ``ValueError``/``TypeError``
  naming the argument (``MemoryError`` allowed: the child runs under an address-space limit).

Never allowed: another exception type, a crash, or a hang (a watchdog in the child ends a case
after :data:`CASE_SECONDS`). By hand::

    PYTHONPATH=src:tests python tests/boundary_cases.py integers 0 0 50 /tmp/work
"""
from __future__ import annotations

import contextlib
import faulthandler
import functools
import io
import json
import math
import os
import resource
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

import imgfilt
import imgfilt.cli
import imgfilt.dask
from imgfilt import FilterBank, filters, kernels
from reference import oracle_apply, problem_is_valid, reference_conv, tolerance

#: A case running longer than this is a hang.
CASE_SECONDS = 20
#: Cases per category in CI (``HYPOTHESIS_PROFILE=long``: ten times as many overlap and integer
#: cases, and every reader on every mutated file).
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
OVERLAP_CASES = 4000 if LONG else 400
INTEGER_CASES = 8000 if LONG else 800
#: One broken file in this many goes to a costly reader (the command line, Dask) in CI.
COSTLY = 12

MAX_INDEX = 2**63 - 1
#: What ``(C_in, *S)`` may become before the child's memory limit turns a call into MemoryError.
MEMORY_HEADROOM = 1 << 31


class Case:
    """One case: a description (for the report) and the check, which returns its outcome."""

    def __init__(self, what: str, check: Callable[[], str]) -> None:
        self.what, self.check = what, check


# ---------------------------------------------------------------------------------------------
# Outcomes


def refused(error: BaseException, *names: str) -> str:
    """The outcome of a documented refusal; fails unless the message names one of ``names``."""
    if isinstance(error, MemoryError):
        return "MemoryError"
    text = str(error)
    assert any(name in text for name in names), f"{type(error).__name__} {text!r} names none of {names}"
    for documented_type in (ValueError, TypeError, OSError):
        if isinstance(error, documented_type):
            return documented_type.__name__  # Pillow's UnidentifiedImageError is an OSError
    return type(error).__name__


def documented(call: Callable[[], Any], types: tuple, *names: str) -> tuple[str, Any]:
    """``("computed", value)`` or ``(refusal, None)``; any other exception propagates."""
    try:
        return "computed", call()
    except types as error:
        return refused(error, *names), None


# ---------------------------------------------------------------------------------------------
# out= overlapping an input


def _conv_problem(rng: np.random.Generator, method: str) -> dict:
    """A small valid conv problem (float32 or float64 throughout, so arrays can share a buffer)."""
    while True:
        ndim = int(rng.integers(1, 4))
        groups = int(rng.integers(1, 3))
        group_in = 1 if method == "separable" else int(rng.integers(1, 3))
        problem = {
            "ndim": ndim,
            "batch": None if rng.random() < 0.5 else int(rng.integers(1, 3)),
            "groups": groups,
            "group_in": group_in,
            "in_channels": groups * group_in,
            "out_channels": groups * int(rng.integers(1, 3)),
            "sizes": tuple(int(v) for v in rng.integers(1, 7 if ndim < 3 else 5, size=ndim)),
            "kernel": tuple(int(v) for v in rng.integers(1, 4, size=ndim)),
            "stride": int(rng.integers(1, 3)),
            "dilation": int(rng.integers(1, 3)),
            "padding": ["same", "valid", 0, 1, 2][int(rng.integers(0, 5))],
            "padding_mode": ["zeros", "reflect", "replicate", "circular", "symmetric"][
                int(rng.integers(0, 5))],
            "dtype": np.dtype(np.float32 if rng.random() < 0.6 else np.float64),
        }
        if problem_is_valid(problem):
            return problem


def _shapes(problem: dict) -> dict:
    lead = () if problem["batch"] is None else (problem["batch"],)
    x_shape = lead + (problem["in_channels"],) + problem["sizes"]
    w_shape = (problem["out_channels"], problem["group_in"]) + problem["kernel"]
    out = imgfilt.plan(x_shape, problem["dtype"], w_shape, stride=problem["stride"],
                       padding=problem["padding"], padding_mode=problem["padding_mode"],
                       dilation=problem["dilation"], groups=problem["groups"]).result_shape
    return {"x": x_shape, "weight": w_shape, "bias": (problem["out_channels"],), "out": out}


def _weight_values(rng: np.random.Generator, shape: tuple, method: str) -> np.ndarray:
    if method != "separable":
        return rng.normal(size=shape)
    # Rank 1 per output channel: an outer product of 1-D factors.
    per_output = []
    for _ in range(shape[0]):
        per_output.append(kernels.outer([rng.normal(size=k) for k in shape[2:]]))
    return np.stack(per_output).reshape(shape)


def _place(buffer: np.ndarray, offset: int, shape: tuple, style: str) -> np.ndarray:
    """A view of ``buffer`` starting at ``offset`` with ``shape``: contiguous, reversed or
    every second element."""
    count = math.prod(shape)
    if style == "reversed":
        return buffer[offset: offset + count][::-1].reshape(shape)
    if style == "stepped":
        return buffer[offset: offset + 2 * count: 2].reshape(shape)
    return buffer[offset: offset + count].reshape(shape)


def _span(offset: int, shape: tuple, style: str) -> tuple[int, int]:
    count = math.prod(shape)
    return offset, offset + (2 * count - 1 if style == "stepped" else count)


def check_overlap(seed: int, workdir: str) -> str:
    rng = np.random.default_rng(seed)
    method = ["auto", "direct", "separable", "fft"][int(rng.integers(0, 4))]
    entry = "convolve" if rng.random() < 0.3 else "conv"
    problem = _conv_problem(rng, method)
    shapes = _shapes(problem)
    dtype = problem["dtype"]
    with_bias = rng.random() < 0.8
    names = ["x", "weight"] + (["bias"] if with_bias else [])
    target = names[int(rng.integers(0, len(names)))] if rng.random() < 0.9 else None
    storage = "memmap" if rng.random() < 0.3 else "buffer"
    styles = {name: "plain" for name in names + ["out"]}
    for name in styles:
        if rng.random() < 0.2:
            styles[name] = "reversed" if rng.random() < 0.5 else "stepped"
    needed = {name: _span(0, shapes[name], styles[name])[1] for name in styles}
    length = sum(needed.values()) + 8
    # Inputs at random offsets; out over the target input (when there is one), else after all.
    offsets = {name: int(rng.integers(0, length - needed[name] + 1)) for name in names}
    if target is None:
        offsets["out"] = length
        length += needed["out"]
    else:
        low = max(0, offsets[target] - needed["out"] + 1)
        high = min(length - needed["out"], offsets[target] + needed[target] - 1)
        offsets["out"] = int(rng.integers(low, max(low, high) + 1))
    values = rng.normal(size=length).astype(dtype)
    if storage == "memmap":
        path = os.path.join(workdir, f"overlap-{seed}.dat")
        first = np.memmap(path, dtype=dtype, mode="w+", shape=(length,))
        first[:] = values
        # The second mapping starts elsewhere in the file (a byte offset), so the two views of
        # one region have different addresses and shares_memory cannot see them.
        shift = int(rng.integers(0, 4))
        second = np.memmap(path, dtype=dtype, mode="r+", offset=shift * dtype.itemsize,
                           shape=(length - shift,))
        arrays = {name: _place(first, offsets[name], shapes[name], styles[name]) for name in names}
        arrays["out"] = _place(second, offsets["out"] - shift, shapes["out"], styles["out"]) \
            if offsets["out"] >= shift else _place(first, offsets["out"], shapes["out"], "plain")
    else:
        buffer = values
        arrays = {name: _place(buffer, offsets[name], shapes[name], styles[name])
                  for name in names + ["out"]}
    if method == "separable":
        arrays["weight"][...] = _weight_values(rng, shapes["weight"], method)
    copies = {name: np.array(arrays[name]) for name in names}
    weight = copies["weight"]
    if entry == "convolve":
        weight = weight[(Ellipsis,) + (slice(None, None, -1),) * problem["ndim"]]
    options = {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation", "groups")}
    expected = reference_conv(copies["x"], weight, copies.get("bias"), **options)
    run = imgfilt.convolve if entry == "convolve" else imgfilt.conv
    result = run(arrays["x"], arrays["weight"], arrays.get("bias"), method=method,
                 out=arrays["out"], **options)
    assert result is arrays["out"], "conv did not return out"
    terms = problem["group_in"] * math.prod(problem["kernel"])
    atol = tolerance(copies["x"], copies["weight"], copies.get("bias"), terms, dtype)
    error = float(np.max(np.abs(np.asarray(result, dtype=np.float64) - expected)))
    assert error <= atol, f"max error {error:.3g} > {atol:.3g}"
    out_span = _span(offsets["out"], shapes["out"], styles["out"])
    for name in names:
        span = _span(offsets[name], shapes[name], styles[name])
        if span[1] <= out_span[0] or out_span[1] <= span[0]:
            assert np.array_equal(arrays[name], copies[name]), f"{name} was changed"
    overlapped = [n for n in names
                  if not (_span(offsets[n], shapes[n], styles[n])[1] <= out_span[0]
                          or out_span[1] <= offsets[n])]
    return f"oracle ({storage}; out overlapping " + ("+".join(overlapped) or "nothing") + ")"


def overlap_cases(seed: int, workdir: str) -> list[Case]:
    return [Case(f"overlap seed={seed * 100003 + i}",
                 functools.partial(check_overlap, seed * 100003 + i, workdir))
            for i in range(OVERLAP_CASES)]


# ---------------------------------------------------------------------------------------------
# Corrupt files


def _valid_files(workdir: Path) -> list[tuple[str, bytes, Any]]:
    """``(name, content, header offsets)`` of small valid files of every kind imgfilt reads."""
    files = []
    rng = np.random.default_rng(0)

    def saved(name: str, write: Callable[[Path], None]) -> bytes:
        path = workdir / f"valid-{name}"
        write(path)
        return path.read_bytes()

    for name, array in [("volume.npy", rng.random((3, 4, 5)).astype(np.float32)),
                        ("weight.npy", rng.normal(size=(2, 1, 3, 3)))]:
        content = saved(name, lambda p, a=array: np.save(p, a))
        files.append((name, content, range(len(content) - array.nbytes)))
    bank = FilterBank([filters.sobel_x(), filters.box(3)])
    for name, write in [
        ("bank.npz", lambda p: bank.save(p)),
        ("packed.npz", lambda p: np.savez_compressed(p, kernel=rng.normal(size=(3, 3, 1, 2)))),
    ]:
        content = saved(name, write)
        # The first local header and the central directory with its end record.
        files.append((name, content, [*range(80), *range(len(content) - 120, len(content))]))
    pixels = rng.integers(0, 255, (5, 6, 3), dtype=np.uint8)
    for name, write in [
        ("pages.tif", lambda p: imgfilt.io.write_volume(p, pixels[..., 0][None].repeat(3, 0))),
        ("rgb.tif", lambda p: Image.fromarray(pixels).save(p)),
        ("lzw.tif", lambda p: Image.fromarray(pixels).save(p, compression="tiff_lzw")),
        ("gray16.tif", lambda p: Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(p)),
        ("gray.png", lambda p: Image.fromarray(pixels[..., 0]).save(p)),
        ("palette.png", lambda p: Image.fromarray(pixels).convert("P").save(p)),
        ("gray16.png", lambda p: Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(p)),
    ]:
        content = saved(name, write)
        # The header and the first IFD (Pillow writes it right after the 8-byte header) or the
        # PNG signature and chunks up to the image data.
        files.append((name, content, range(min(len(content), 200))))
    return files


def _npy_dict_span(content: bytes) -> tuple[int, int]:
    """Where the header dict of a ``.npy`` starts and ends (the ``{`` and the ``}``)."""
    start = content.index(b"{")
    return start, content.index(b"}", start) + 1


def _mutations(name: str, content: bytes, header: Any, rng: np.random.Generator
               ) -> list[tuple[str, bytes]]:
    """The broken versions of one valid file: cut at every header offset, each header byte
    flipped, random bytes over the header, and (``.npy``) the header dict cut."""
    offsets = list(header)
    broken = [("intact", content)]
    broken += [(f"cut at {n}", content[:n]) for n in offsets]
    broken += [(f"byte {n} flipped", content[:n] + bytes([content[n] ^ 0xFF]) + content[n + 1:])
               for n in offsets]
    for _ in range(max(8, len(offsets) // 4)):
        n = offsets[int(rng.integers(0, len(offsets)))]
        value = int(rng.integers(0, 256))
        broken.append((f"byte {n} = {value}", content[:n] + bytes([value]) + content[n + 1:]))
    if name.endswith(".npy"):
        start, end = _npy_dict_span(content)
        for n in range(start + 1, end):
            # The header cut inside its dict (inside a bracket, a string, a tuple), blanked to
            # the declared length: NumPy's parser meets an unterminated literal.
            cut = content[:n] + b" " * (end - n) + content[end:]
            broken.append((f"header dict cut at {n}", cut))
    return broken


def _readers(name: str) -> list[tuple[str, Callable[[Path, Path], Any], bool]]:
    """``(label, read(path, scratch directory), costly)`` for every reader of this kind of file."""
    suffix = Path(name).suffix
    readers: list = []
    if suffix == ".npy":
        readers += [
            ("io.load_npy", lambda p, d: imgfilt.io.load_npy(p), False),
            ("io.read_volume", lambda p, d: imgfilt.io.read_volume(p), False),
            ("FilterBank.from_torch", lambda p, d: FilterBank.from_torch(p), False),
            ("FilterBank.from_keras", lambda p, d: FilterBank.from_keras(p), False),
            ("cli learn", lambda p, d: cli_learn(p, d), True),
            ("cli kernel", lambda p, d: cli("apply", str(p), str(d / "in.png"), "-o",
                                            str(d / "out.png"), "--overwrite"), True),
            ("cli input", lambda p, d: cli("apply", "box", str(p), "-o", str(d / "out.npy"),
                                           "--overwrite"), True),
            ("dask.filter_file", lambda p, d: imgfilt.dask.filter_file(
                p, d / "out.npy", "box", progress=False, overwrite=True), True),
        ]
    elif suffix == ".npz":
        readers += [
            ("io.load_npz", lambda p, d: imgfilt.io.load_npz(p), False),
            ("FilterBank.load", lambda p, d: FilterBank.load(p), False),
            ("FilterBank.from_torch", lambda p, d: FilterBank.from_torch(p), False),
            ("FilterBank.from_keras", lambda p, d: FilterBank.from_keras(p), False),
            ("cli bank", lambda p, d: cli("apply", str(p), str(d / "in.png"), "-o",
                                          str(d / "out.npy"), "--overwrite"), True),
        ]
    elif suffix == ".tif":
        readers += [
            ("io.read_volume", lambda p, d: imgfilt.io.read_volume(p), False),
            ("cli learn", lambda p, d: cli_learn(p, d), True),
            ("cli input", lambda p, d: cli("apply", "box", str(p), "-o", str(d / "out.tif"),
                                           "--overwrite"), True),
            ("dask.filter_file", lambda p, d: imgfilt.dask.filter_file(
                p, d / "out.npy", "box", progress=False, overwrite=True), True),
        ]
    else:
        readers += [
            ("cli learn", lambda p, d: cli_learn(p, d), True),
            ("cli input", lambda p, d: cli("apply", "box", str(p), "-o", str(d / "out.png"),
                                           "--overwrite"), True),
        ]
    return readers


def cli_learn(path: Path, directory: Path) -> tuple[int, str]:
    """``imgfilt learn`` with the file as the input and itself as the target."""
    return cli("learn", str(path), str(path), "--size", "3", "-o", str(directory / "bank.npz"),
               "--overwrite", "--quiet")


def cli(*argv: str) -> tuple[int, str]:
    """Run the command line in this process: ``(exit code, stderr)``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = imgfilt.cli.main(list(argv))
    return code, err.getvalue()


def check_file(name: str, label: str, data: bytes, reader: Callable, workdir: str) -> str:
    directory = Path(workdir)
    path = directory / f"broken-{name}"
    path.write_bytes(data)
    if not (directory / "in.png").exists():
        Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6)).save(directory / "in.png")
    try:
        result = reader(path, directory)
    except (ValueError, OSError, MemoryError) as error:
        return refused(error, path.name)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
        code, err = result  # the command line
        lines = [line for line in err.splitlines() if line.strip()]
        assert code in (0, 1, 2), f"exit {code}: {err!r}"
        if code:
            assert len(lines) == 1, f"exit {code} with {len(lines)} lines: {err!r}"
            assert "internal error" not in err and "Traceback" not in err, err
            # The broken file, or (when it was read, but does not fit) the other input.
            assert path.name in err or "in.png" in err, f"the message names no file: {err!r}"
            return f"exit {code}"
        return "exit 0"
    if label == "intact":
        return "read intact"
    return "read"


def file_cases(seed: int, workdir: str) -> list[Case]:
    """One case per broken file and reader: the package's readers take turns on the broken
    versions of each file; the costly ones (the command line, Dask) on one in :data:`COSTLY`."""
    rng = np.random.default_rng(seed)
    valid_dir = Path(workdir) / "valid"
    valid_dir.mkdir(exist_ok=True)
    cases = []
    for name, content, header in _valid_files(valid_dir):
        readers = _readers(name)
        cheap = [r for r in readers if not r[2]]
        costly = [r for r in readers if r[2]]
        for number, (label, data) in enumerate(_mutations(name, content, header, rng)):
            if label == "intact" or LONG:
                chosen = readers
            elif not cheap:  # images: only the command line reads them
                chosen = [readers[number % len(readers)]]
            elif rng.random() < 1 / COSTLY:
                chosen = [costly[int(rng.integers(0, len(costly)))]]
            else:
                chosen = [cheap[number % len(cheap)]]
            for reader_label, reader, _ in chosen:
                cases.append(Case(f"{name} {label} via {reader_label}", functools.partial(
                    check_file, name, label, data, reader, workdir)))
    return cases


# ---------------------------------------------------------------------------------------------
# Integer arguments


#: The edges of every integer type and a few things that are not integers.
EDGES = [0, 1, 2, 3, -1, -2, -(2**63), 2**31 - 1, 2**31, 2**32 + 1, 2**53 + 1, 2**62, MAX_INDEX,
         2**63, 2**64 - 1, 2**64, 2**64 + 1, 2**100, True, False, np.int8(2), np.uint8(255),
         np.int32(-5), np.int64(MAX_INDEX), np.uint64(2**63), np.uint64(2**64 - 1),
         np.int64(3), 2.0, float("nan"), "2", None]
MINIMUM = {"stride": 1, "dilation": 1, "groups": 1, "padding": 0}


def _integer_kind(value: Any, minimum: int) -> str:
    """What the contract says about ``value`` for an argument >= ``minimum``: 'type', 'range',
    'limit' (above the engine's index) or 'ok'."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return "type"
    number = int(value)
    if number < minimum:
        return "range"
    return "limit" if number > MAX_INDEX else "ok"


def _expect_refusal(outcome: str, kind: str, name: str) -> None:
    if kind == "type":
        assert outcome == "TypeError", f"{name}: expected TypeError, got {outcome}"
    elif kind in ("range", "limit"):
        assert outcome == "ValueError", f"{name}: expected ValueError, got {outcome}"


def _small_problem(rng: np.random.Generator) -> dict:
    """A small problem whose kernel fits the input unpadded (so a refusal is the argument's)."""
    ndim = int(rng.integers(1, 3))
    sizes = tuple(int(v) for v in rng.integers(1, 7, size=ndim))
    return {"ndim": ndim, "channels": int(rng.integers(1, 3)), "sizes": sizes,
            "kernel": tuple(int(rng.integers(1, min(s, 3) + 1)) for s in sizes),
            "seed": int(rng.integers(0, 2**31))}


def _draw_value(rng: np.random.Generator) -> Any:
    return EDGES[int(rng.integers(0, len(EDGES)))]


def _effective(value: int, axis_size: int, kernel: int, name: str) -> int:
    """A value the oracle can run that gives the same answer: a stride at least the padded size
    gives one output; a dilation of a one-tap axis changes nothing."""
    if name == "stride":
        return min(value, max(axis_size, 1))
    if name == "dilation" and kernel == 1:
        return 1
    return value


def check_conv_integers(seed: int) -> str:
    rng = np.random.default_rng(seed)
    problem = _small_problem(rng)
    ndim = problem["ndim"]
    name = ["stride", "dilation", "padding", "groups"][int(rng.integers(0, 4))]
    value = _draw_value(rng)
    spelling = ["scalar", "per axis", "pair"][int(rng.integers(0, 3 if name == "padding" else 2))]
    if name == "groups":
        spelling = "scalar"
    axis = int(rng.integers(0, ndim))
    small = {"stride": 1, "dilation": 1, "padding": int(rng.integers(0, 3)), "groups": 1}
    options = dict(small)
    if spelling == "scalar":
        options[name] = value
    elif spelling == "per axis":
        options[name] = tuple(value if a == axis else small[name] for a in range(ndim))
    else:
        options[name] = tuple((value, 0) if a == axis else (0, 0) for a in range(ndim))
    entry = ["conv", "convolve", "plan", "dask.conv"][int(rng.integers(0, 4))]
    method = ["auto", "direct", "fft"][int(rng.integers(0, 3))]
    data = np.random.default_rng(problem["seed"])
    x = data.normal(size=(problem["channels"],) + problem["sizes"])
    weight = data.normal(size=(1, problem["channels"]) + problem["kernel"])
    kind = _integer_kind(value, MINIMUM[name])
    if name == "padding" and isinstance(value, str) and spelling == "scalar":
        kind = "range"  # a string is a padding word; '2' is not one
    if name == "groups" and kind == "ok" and (problem["channels"] % int(value) or value != 1):
        kind = "range" if int(value) != problem["channels"] else "ok"
        if int(value) == problem["channels"]:
            weight = data.normal(size=(int(value), 1) + problem["kernel"])
    if entry == "plan":
        call = lambda: imgfilt.plan(x.shape, x.dtype, weight.shape, **options)  # noqa: E731
    elif entry == "dask.conv":
        import dask.array as da

        call = lambda: imgfilt.dask.conv(da.from_array(x, chunks=3), weight,  # noqa: E731
                                         method=method, **options).compute()
    else:
        run = imgfilt.convolve if entry == "convolve" else imgfilt.conv
        call = lambda: run(x, weight, method=method, **options)  # noqa: E731
    outcome, result = documented(call, (ValueError, TypeError, MemoryError), name)
    _expect_refusal(outcome, kind, name)
    if outcome != "computed" or entry == "plan":
        return f"{entry} {name}={value!r}: {outcome}"
    # Computed: the oracle, with huge values replaced by ones that give the same answer.
    per_axis = []
    for a in range(ndim):
        given = options[name]
        item = given if spelling == "scalar" else given[a]
        if name == "padding":
            item = tuple(item) if isinstance(item, tuple) else (int(item), int(item))
        per_axis.append(item)
    oracle_options = dict(small)
    if name == "padding":
        pads = [tuple(int(v) for v in p) for p in per_axis]
        if max(max(p) for p in pads) > 10**4:
            return f"{entry} {name}: computed (too large for the oracle)"
        oracle_options["padding"] = pads
    elif name in ("stride", "dilation"):
        padded = [s + 2 * small["padding"] for s in problem["sizes"]]
        oracle_options[name] = tuple(_effective(int(v), padded[a], problem["kernel"][a], name)
                                     for a, v in enumerate(per_axis))
    else:
        oracle_options["groups"] = int(value)
    flipped = weight[(Ellipsis,) + (slice(None, None, -1),) * ndim] if entry == "convolve" \
        else weight
    expected = reference_conv(x, flipped, **oracle_options)
    assert result.shape == expected.shape, (result.shape, expected.shape)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-9 * max(1, np.abs(x).sum()))
    return f"{entry} {name}: oracle"


def check_apply_integers(seed: int) -> str:
    rng = np.random.default_rng(seed)
    problem = _small_problem(rng)
    name = ["stride", "dilation"][int(rng.integers(0, 2))]
    value = _draw_value(rng)
    entry = ["apply", "FilterBank.apply", "dask.apply"][int(rng.integers(0, 3))]
    data = np.random.default_rng(problem["seed"])
    image = data.normal(size=problem["sizes"][:2] if problem["ndim"] == 2 else (5, 6))
    filt = [filters.box(3), filters.sobel(), filters.gaussian(1.0, radius=1)][
        int(rng.integers(0, 3))]
    kind = _integer_kind(value, 1)
    if value is None and entry != "FilterBank.apply":
        kind, value = "ok", 1  # apply's default
    options = {name: value}
    if entry == "apply":
        call = lambda: imgfilt.apply(image, filt, output="float", **options)  # noqa: E731
    elif entry == "dask.apply":
        import dask.array as da

        call = lambda: imgfilt.dask.apply(da.from_array(image, chunks=3), filt,  # noqa: E731
                                          output="float", **options).compute()
    else:
        bank = FilterBank([filters.box(3), filters.sobel_x()])
        call = lambda: bank.apply(image, **options)  # noqa: E731
    outcome, result = documented(call, (ValueError, TypeError, MemoryError), name)
    _expect_refusal(outcome, kind, name)
    if outcome != "computed":
        return f"{entry} {name}={value!r}: {outcome}"
    number = int(value)
    if name == "dilation" and number > 10**4:
        return f"{entry} {name}: computed (too large for the oracle)"
    # A stride of at least the axis gives one sample (and the same 'same' pads): the oracle runs
    # that one.
    stride = min(number, max(image.shape)) if name == "stride" else 1
    dilation = number if name == "dilation" else 1
    if entry == "FilterBank.apply":
        bank = FilterBank([filters.box(3), filters.sobel_x()])
        expected = reference_conv(image[None], bank.weight, bank.bias, padding="same",
                                  padding_mode="reflect", stride=stride, dilation=dilation)
    else:
        expected = oracle_apply(image[None], filt, "reflect", stride, dilation)[0]
    assert result.shape == expected.shape, (result.shape, expected.shape)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6 * max(1, np.abs(image).sum()))
    return f"{entry} {name}: oracle"


def check_helper_integers(seed: int) -> str:
    rng = np.random.default_rng(seed)
    value = _draw_value(rng)
    helpers = [
        ("size", 1, lambda v: kernels.box(v)),
        ("size", 1, lambda v: filters.box(v)),
        ("radius", 0, lambda v: kernels.gaussian1d(1.0, v)),
        ("radius", 0, lambda v: filters.gaussian(1.0, radius=v)),
        ("cols", 1, lambda v: imgfilt.bank.montage(np.ones((3, 4, 4)), cols=v)),
        ("separator", 0, lambda v: imgfilt.bank.montage(np.ones((3, 4, 4)), separator=v)),
        ("n", 1, lambda v: imgfilt.set_num_threads(v)),
        ("groups", 1, lambda v: FilterBank(np.ones((2, 1, 3, 3)), groups=v)),
        ("kernel_size", 1, lambda v: imgfilt.learn.fit(np.ones((1, 6, 6)), np.ones((1, 6, 6)), v)),
    ]
    name, minimum, call = helpers[int(rng.integers(0, len(helpers)))]
    before = imgfilt.get_num_threads()
    try:
        outcome, _ = documented(lambda: call(value), (ValueError, TypeError, MemoryError), name,
                                name.split("_")[0])
    finally:
        imgfilt.set_num_threads(before)
    kind = _integer_kind(value, minimum)
    if value is None and name in ("radius", "cols"):
        kind = "ok"  # the default
    if kind in ("type", "range", "limit"):
        # Odd-only sizes and divisibility refuse more; what is refused must be refused, as
        # ValueError or TypeError (the contract allows either for a value of the wrong type).
        assert outcome in ("TypeError", "ValueError"), \
            f"{name}={value!r}: expected a refusal, got {outcome}"
    return f"{name}={value!r}: {outcome}"


def check_cli_integers(seed: int, workdir: str) -> str:
    rng = np.random.default_rng(seed)
    value = _draw_value(rng)
    directory = Path(workdir)
    image = directory / "cli-in.png"
    if not image.exists():
        Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6)).save(image)
    flag = ["--stride", "--dilation"][int(rng.integers(0, 2))]
    text = str(value)
    command = ["apply", "box", str(image), flag, text, "-o", str(directory / "cli-out.png"),
               "--overwrite"]
    if rng.random() < 0.3:
        command = ["shape", "--input", "64x64x3", "--filters", "8", "--kernel", "3", flag, text]
    code, err = cli(*command)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "internal error" not in err and "Traceback" not in err, err
    # What argparse receives is the text: an integer in it is one, whatever made the text.
    kind = _integer_kind(int(text), 1) if text.lstrip("-").isdigit() else "type"
    if kind != "ok":
        assert code == 2 and flag in lines[-1], f"{command}: exit {code}, {err!r}"
    else:
        assert code in (0, 1, 2), (code, err)
        if code:
            assert len(lines) in (1, 2) and any(
                words in err for words in ("GiB", "kernel", "out of memory")), err
    return f"cli {command[0]} {flag}: exit {code}"


def integer_cases(seed: int, workdir: str) -> list[Case]:
    cases = []
    for i in range(INTEGER_CASES):
        case_seed = seed * 100003 + i
        pick = i % 8
        if pick < 4:
            cases.append(Case(f"conv integers seed={case_seed}",
                              functools.partial(check_conv_integers, case_seed)))
        elif pick < 6:
            cases.append(Case(f"apply integers seed={case_seed}",
                              functools.partial(check_apply_integers, case_seed)))
        elif pick == 6:
            cases.append(Case(f"helper integers seed={case_seed}",
                              functools.partial(check_helper_integers, case_seed)))
        else:
            cases.append(Case(f"cli integers seed={case_seed}",
                              functools.partial(check_cli_integers, case_seed, workdir)))
    return cases


CATEGORIES = {"overlap": overlap_cases, "files": file_cases, "integers": integer_cases}


# ---------------------------------------------------------------------------------------------
# The child's main loop


def limit_memory(headroom: int = MEMORY_HEADROOM) -> None:
    """Cap the address space at what is mapped now plus ``headroom``: an allocation the checks
    let through then fails with MemoryError at once instead of swapping or meeting the OOM
    killer."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(category: str, seed: int, start: int, stop: int, workdir: str) -> None:
    """Run cases ``start:stop``; one JSON line per case begun and per case ended."""
    imgfilt.set_num_threads(1)
    cases = CATEGORIES[category](seed, workdir)
    print(json.dumps({"total": len(cases)}), flush=True)
    limit_memory()
    for index in range(start, min(stop, len(cases))):
        case = cases[index]
        print(json.dumps({"begin": index, "what": case.what}), flush=True)
        faulthandler.dump_traceback_later(CASE_SECONDS, exit=True)
        try:
            outcome, ok = case.check(), True
        except AssertionError as error:
            outcome, ok = f"wrong: {error}", False
        except Exception as error:  # noqa: BLE001 - the point: any other type is a failure
            outcome, ok = f"undocumented {type(error).__name__}: {error}", False
        finally:
            faulthandler.cancel_dump_traceback_later()
        print(json.dumps({"case": index, "what": case.what, "outcome": outcome[:300],
                          "ok": ok}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
