"""imgfilt beside OpenCV, scipy.ndimage and PyTorch: one process, interleaved runs, medians.

Usage::

    pip install ".[bench]"            # opencv-python-headless, scipy; torch optional
    python benchmarks/run.py [--threads 2] [--repeat 7] [--quick] [--json results.json]

Each case runs every library in turn, ``--repeat`` rounds, and reports the median time of each and
the ratio imgfilt / peer (below 1: imgfilt is faster). Before timing, each peer's result is checked
against imgfilt's; a case whose results disagree is reported as such, not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

import imgfilt

try:
    import cv2
except ImportError:  # pragma: no cover - optional peer
    cv2 = None
try:
    import scipy.ndimage as ndi
except ImportError:  # pragma: no cover - optional peer
    ndi = None
try:
    import torch
except ImportError:  # pragma: no cover - optional peer
    torch = None


class Case:
    """One benchmark: imgfilt's call and its peers', each returning an array comparable to ours."""

    def __init__(self, name: str, ours: Callable[[], np.ndarray], tolerance: float = 1e-3):
        self.name = name
        self.runs: Dict[str, Callable[[], np.ndarray]] = {"imgfilt": ours}
        self.tolerance = tolerance

    def peer(self, name: str, run: Callable[[], np.ndarray]) -> "Case":
        self.runs[name] = run
        return self


def per_channel_cases(rng, height: int, width: int) -> List[Case]:
    hwc = rng.random((height, width, 3), dtype=np.float32)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    cases = []
    for k in (3, 5, 7):
        kernel = rng.random((k, k), dtype=np.float32)
        weight = np.repeat(kernel[None, None], 3, axis=0)
        case = Case(
            f"per-channel {k}x{k} f32 reflect {width}x{height}x3",
            lambda w=weight: imgfilt.conv(chw, w, padding="same", padding_mode="reflect",
                                          groups=3),
        )
        if cv2 is not None:
            case.peer("cv2.filter2D (HWC)", lambda kn=kernel: cv2.filter2D(
                hwc, -1, kn, borderType=cv2.BORDER_REFLECT_101).transpose(2, 0, 1))
        if ndi is not None:
            case.peer("scipy.ndimage.correlate", lambda kn=kernel: np.stack(
                [ndi.correlate(chw[c], kn, mode="mirror") for c in range(3)]))
        if torch is not None:
            tx = torch.from_numpy(chw)[None]
            tw = torch.from_numpy(weight)
            pad = k // 2

            def torch_run(tx=tx, tw=tw, pad=pad):
                padded = torch.nn.functional.pad(tx, (pad,) * 4, mode="reflect")
                return torch.nn.functional.conv2d(padded, tw, groups=3)[0].numpy()

            case.peer("torch depthwise", torch_run)
        cases.append(case)
    return cases


def bank_cases(rng, height: int, width: int) -> List[Case]:
    cases = []
    for c_in, c_out, k, h, w in ((3, 16, 3, height, width), (3, 16, 7, height, width),
                                 (16, 64, 3, height // 2, width // 2)):
        x = rng.random((c_in, h, w), dtype=np.float32)
        weight = rng.random((c_out, c_in, k, k), dtype=np.float32) - 0.5
        case = Case(f"bank {c_in}->{c_out} {k}x{k} zeros {w}x{h}",
                    lambda x=x, wt=weight: imgfilt.conv(x, wt, padding="same"), tolerance=1e-2)
        if torch is not None:
            tx, tw = torch.from_numpy(x)[None], torch.from_numpy(weight)
            case.peer("torch conv2d NCHW", lambda tx=tx, tw=tw, p=k // 2:
                      torch.nn.functional.conv2d(tx, tw, padding=p)[0].numpy())
        cases.append(case)
    return cases


def volume_cases(rng, side: int) -> List[Case]:
    volume = rng.random((1, side, side, side), dtype=np.float32)
    kernel = rng.random((3, 3, 3), dtype=np.float32)
    case = Case(f"3-D {side}^3 3x3x3 reflect",
                lambda: imgfilt.conv(volume, kernel[None, None], padding="same",
                                     padding_mode="reflect"))
    if ndi is not None:
        case.peer("scipy.ndimage.correlate", lambda: ndi.correlate(volume[0], kernel,
                                                                   mode="mirror")[None])
    if torch is not None:
        tv = torch.from_numpy(volume)[None]
        tk = torch.from_numpy(kernel)[None, None]
        case.peer("torch conv3d", lambda: torch.nn.functional.conv3d(
            torch.nn.functional.pad(tv, (1,) * 6, mode="reflect"), tk)[0].numpy())
    return [case]


def agree(ours: np.ndarray, theirs: np.ndarray, tolerance: float) -> Optional[str]:
    if ours.shape != theirs.shape:
        return f"shape {theirs.shape} != {ours.shape}"
    scale = max(1.0, float(np.max(np.abs(ours))))
    error = float(np.max(np.abs(ours.astype(np.float64) - theirs))) / scale
    return None if error <= tolerance else f"relative error {error:.2e}"


def run_case(case: Case, repeat: int) -> dict:
    reference = case.runs["imgfilt"]()
    disagreements = {}
    for name, run in case.runs.items():
        if name != "imgfilt":
            problem = agree(reference, np.asarray(run()), case.tolerance)
            if problem:
                disagreements[name] = problem
    times: Dict[str, List[float]] = {name: [] for name in case.runs if name not in disagreements}
    for _ in range(repeat):  # interleaved: every library once per round
        for name in times:
            started = time.perf_counter()
            case.runs[name]()
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    return {"case": case.name, "median_ms": medians, "disagree": disagreements}


def print_result(result: dict) -> None:
    ours = result["median_ms"]["imgfilt"]
    print(f"\n{result['case']}")
    print(f"  {'imgfilt':32s} {ours:9.2f} ms")
    for name, ms in result["median_ms"].items():
        if name != "imgfilt":
            print(f"  {name:32s} {ms:9.2f} ms   imgfilt/peer = {ours / ms:5.2f}x")
    for name, problem in result["disagree"].items():
        print(f"  {name:32s} DISAGREES with imgfilt: {problem}")


def thread_scaling(rng, height: int, width: int, repeat: int) -> dict:
    chw = rng.random((3, height, width), dtype=np.float32)
    weight = rng.random((3, 1, 7, 7), dtype=np.float32)
    before = imgfilt.get_num_threads()
    times: Dict[int, List[float]] = {1: [], 2: []}
    try:
        for _ in range(repeat):
            for threads in times:
                imgfilt.set_num_threads(threads)
                started = time.perf_counter()
                imgfilt.conv(chw, weight, padding="same", padding_mode="reflect", groups=3)
                times[threads].append(time.perf_counter() - started)
    finally:
        imgfilt.set_num_threads(before)
    medians = {t: statistics.median(v) * 1e3 for t, v in times.items()}
    print(f"\nthreads, per-channel 7x7 {width}x{height}x3: 1 thread {medians[1]:.2f} ms, "
          f"2 threads {medians[2]:.2f} ms, speed-up {medians[1] / medians[2]:.2f}x")
    return {"case": "thread scaling 7x7", "median_ms": medians}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small images, for a smoke run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    imgfilt.set_num_threads(args.threads)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    height, width = (270, 480) if args.quick else (1080, 1920)
    rng = np.random.default_rng(0)
    print(f"imgfilt {imgfilt.__version__} on {platform.machine()}, {args.threads} threads, "
          f"median of {args.repeat}; peers: "
          + ", ".join(n for n, m in (("cv2", cv2), ("scipy", ndi), ("torch", torch)) if m))
    cases = (per_channel_cases(rng, height, width) + bank_cases(rng, height, width)
             + volume_cases(rng, 64 if args.quick else 128))
    results = []
    for case in cases:
        result = run_case(case, args.repeat)
        print_result(result)
        results.append(result)
    results.append(thread_scaling(rng, height, width, args.repeat))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"threads": args.threads, "python": sys.version, "results": results},
                      handle, indent=2)
    return 1 if any(r.get("disagree") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
