"""Where ``method="auto"`` should switch from the direct sum to 1-D passes or to the FFT.

Times ``imgfilt.correlate_channels_last`` with ``method="direct"``, ``"separable"`` (a rank-1
kernel of the same size) and ``"fft"`` on a 1080p RGB float32 image, per channel, reflect
padding, beside ``cv2.filter2D`` (which switches to the DFT itself from 11x11), interleaved in
one process (medians). The thresholds in :mod:`imgfilt.convolution` (``SEPARABLE_MIN_SAVING``,
``FFT_MIN_TAPS``) come from this table; docs/performance.md shows it.

    OPENBLAS_NUM_THREADS=1 python benchmarks/method_crossovers.py --repeat 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

import imgfilt

try:
    import cv2
except ImportError:  # the table is still useful without the peer
    cv2 = None

SIZES = (3, 5, 7, 9, 11, 15, 21, 25, 31, 35, 41, 51)


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def row(size: int, image: np.ndarray, repeat: int, methods: Sequence[str]) -> Dict[str, float]:
    rng = np.random.default_rng(size)
    dense = rng.standard_normal((1, 1, size, size)).astype(np.float32)
    rank1 = np.multiply.outer(rng.standard_normal(size), rng.standard_normal(size))
    rank1 = rank1.astype(np.float32)[None, None]
    calls: Dict[str, Callable[[], object]] = {}
    for method in methods:
        weight = rank1 if method == "separable" else dense
        calls[method] = (lambda weight=weight, method=method: imgfilt.correlate_channels_last(
            image, weight, padding="same", padding_mode="reflect", method=method))
    if cv2 is not None:
        kernel = np.ascontiguousarray(dense[0, 0])
        calls["cv2.filter2D"] = lambda: cv2.filter2D(image, -1, kernel,
                                                     borderType=cv2.BORDER_REFLECT_101)
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for name, call in calls.items():  # warm up: plans, FFT plans, page faults
        call()
    for _ in range(repeat):
        for name, call in calls.items():
            times[name].append(timed(call))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="imgfilt and cv2 threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    imgfilt.set_num_threads(args.threads)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    image = np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32)
    print(f"# 1080p RGB float32, per channel, {args.threads} threads, medians of {args.repeat}; "
          f"load {os.getloadavg()[0]:.2f}")
    header = ["direct", "separable", "fft"] + (["cv2.filter2D"] if cv2 is not None else [])
    print("| kernel | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for size in args.sizes:
        medians = row(size, image, args.repeat, ("direct", "separable", "fft"))
        fastest = min(medians[m] for m in ("direct", "separable", "fft"))
        cells = [f"{medians[name]:.1f}{' *' if medians[name] == fastest else ''}"
                 for name in header]
        print(f"| {size}x{size} | " + " | ".join(cells) + " |", flush=True)
    print(f"# load {os.getloadavg()[0]:.2f} at the end; * the fastest imgfilt method "
          "(separable only applies to rank-1 kernels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
