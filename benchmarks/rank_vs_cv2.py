"""imgfilt's rank filters beside OpenCV, interleaved in one process (docs/performance.md).

Usage::

    python benchmarks/rank_vs_cv2.py [--threads 1] [--repeat 9] [CASE-SUBSTRING ...]

For each case it checks that every variant gives OpenCV's result, then times them interleaved
(imgfilt, its older kernel, its AVX2 build, cv2, imgfilt, ...) and prints the medians and the
ratios to cv2. "old" is the kernel the case used before (the 113-comparator network for the
5x5 medians, recombining every window's rows for min/max); "avx2" the AVX2 build on an AVX-512
CPU. Prints the load average before and after: on a shared machine only the ratios mean much.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np

import imgfilt
from imgfilt import rank as R
from imgfilt.engine import load_nonlinear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("only", nargs="*")
    args = parser.parse_args()
    imgfilt.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    best, avx2_build = R.compiled, load_nonlinear("avx2")

    def on_avx2(call):
        def run():
            R.compiled = avx2_build
            try:
                return call()
            finally:
                R.compiled = best
        return run

    def rows_recombined(call):
        def run():
            limit = R._BOX_ROWS_BYTES
            R._BOX_ROWS_BYTES = 0
            try:
                return call()
            finally:
                R._BOX_ROWS_BYTES = limit
        return run

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    f32 = u8.astype(np.float32) / 255
    u16 = rng.integers(0, 65536, (1080, 1920, 3), dtype=np.uint16)
    box = np.ones((15, 15), np.uint8)
    cases = {}
    for label, image in (("u8", u8), ("f32", f32), ("u16", u16)):
        for k in (3, 5):
            ours = lambda image=image, k=k: R.median(image, k, axes=(0, 1), mode="replicate")
            variants = {"imgfilt": ours}
            if k == 5:
                variants["old"] = lambda image=image: R.median(
                    image, 5, axes=(0, 1), mode="replicate", method="network")
            if best is not avx2_build:
                variants["avx2"] = on_avx2(ours)
            variants["cv2"] = lambda image=image, k=k: cv2.medianBlur(image, k)
            cases[f"median {label} {k}x{k}"] = variants
    for which, peer in (("minimum", cv2.erode), ("maximum", cv2.dilate)):
        ours = lambda which=which: getattr(R, which)(u8, 15, axes=(0, 1), mode="replicate")
        cases[f"{which} u8 15x15"] = {"imgfilt": ours, "old": rows_recombined(ours),
                                      "cv2": lambda peer=peer: peer(u8, box)}
    print(f"load {os.getloadavg()}, {args.threads} thread(s), build {best.instruction_set()}, "
          f"1080x1920x3, median of {args.repeat} ms")
    for name, variants in cases.items():
        if args.only and not any(o in name for o in args.only):
            continue
        want = variants["cv2"]()
        for label, call in variants.items():
            assert np.array_equal(call(), want), (name, label)
        times = {label: [] for label in variants}
        for _ in range(args.repeat):
            for label, call in variants.items():
                started = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - started)
        ms = {label: statistics.median(t) * 1e3 for label, t in times.items()}
        cells = "  ".join(f"{label} {value:.2f}" for label, value in ms.items())
        ratios = "  ".join(f"{label}/cv2 {ms[label] / ms['cv2']:.2f}"
                           for label in ms if label != "cv2")
        print(f"{name:18s} {cells}   {ratios}", flush=True)
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
