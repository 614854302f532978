"""Measure the crossovers behind imgfilt.rank's method="auto" (docs/performance.md).

Usage::

    python benchmarks/rank_crossovers.py [--threads 1] [--repeat 5]

For each dtype and window it times every applicable window kernel on the same 1080p RGB
image (channels first, so that every kernel reads it the same way), interleaved, and prints the
median milliseconds; the fastest is marked.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import imgfilt
from imgfilt import rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    imgfilt.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"load {os.getloadavg()[0]:.2f}, {args.threads} thread(s), 3x1080x1920, median ms")
    for dtype in (np.uint8, np.uint16, np.float32):
        info = np.iinfo(dtype) if np.dtype(dtype).kind == "u" else None
        image = (rng.integers(0, info.max, (3, 1080, 1920), dtype=dtype, endpoint=True)
                 if info else rng.random((3, 1080, 1920), dtype=np.float32))
        for size in (3, 5, 7, 9):
            methods = ["network"] + (["histogram"] if info else []) + (
                ["columns"] if size in (3, 5) else [])
            times = {m: [] for m in methods}
            for _ in range(args.repeat):
                for m in methods:
                    started = time.perf_counter()
                    rank.median(image, (size, size), method=m)
                    times[m].append(time.perf_counter() - started)
            medians = {m: statistics.median(t) * 1e3 for m, t in times.items()}
            best = min(medians, key=medians.get)
            cells = ", ".join(f"{m} {v:.1f}{' *' if m == best else ''}" for m, v in medians.items())
            print(f"{np.dtype(dtype).name:8s} median {size}x{size}: {cells}", flush=True)
    for size in (3, 7, 15, 31, 63):
        image = rng.integers(0, 256, (3, 1080, 1920), dtype=np.uint8)
        times = {m: [] for m in ("box", "van-herk", "scan")}
        for _ in range(args.repeat):
            for m in times:
                if m == "scan" and size > 15:
                    continue
                started = time.perf_counter()
                rank.minimum(image, (size, size), method=m)
                times[m].append(time.perf_counter() - started)
        medians = {m: statistics.median(t) * 1e3 for m, t in times.items() if t}
        best = min(medians, key=medians.get)
        cells = ", ".join(f"{m} {v:.1f}{' *' if m == best else ''}" for m, v in medians.items())
        print(f"uint8    minimum {size}x{size}: {cells}", flush=True)


if __name__ == "__main__":
    main()
