"""The fixed cost of one call: imgfilt.conv and imgfilt.apply beside cv2.filter2D and
scipy.ndimage.correlate on small images, one call at a time (what a data loader does).

    python benchmarks/per_call.py                 # one process, interleaved medians
    python benchmarks/per_call.py --processes 5   # the same in 5 separate processes: the spread

Each case checks first that every library gives the same numbers (3x3 kernel, reflect-101
borders), then times them interleaved (imgfilt, cv2, scipy, imgfilt, ...), each sample the
median over many calls, and prints microseconds per call and the ratio to cv2.filter2D. Times
are the calling thread's CPU time (time.thread_time), which a busy machine disturbs far less
than the wall clock; the engine runs calls this small on the calling thread. cv2 runs on one
thread here too (cv2.setNumThreads(1)), as it does for images this small.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

CASES = [(32, "float32"), (32, "uint8"), (224, "float32"), (224, "uint8")]


def _per_call(function, calls: int) -> float:
    start = time.thread_time()
    for _ in range(calls):
        function()
    return (time.thread_time() - start) / calls * 1e6


def measure(rounds: int) -> list[dict]:
    import cv2
    import scipy.ndimage as ndi

    import imgfilt

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    kernel = rng.random((3, 3)).astype(np.float32)
    box = imgfilt.filters.box(3)
    rows = []
    for size, dtype in CASES:
        image = (rng.random((size, size, 3)) * 255).astype(dtype)
        planes = np.ascontiguousarray(np.moveaxis(image, -1, 0))[:, None]  # (3, 1, H, W)
        weight = kernel[None, None]
        mean = np.full((3, 3), 1 / 9, np.float32)
        runs = {
            "cv2.filter2D": lambda: cv2.filter2D(image, -1, kernel,
                                                 borderType=cv2.BORDER_REFLECT_101),
            "scipy.correlate": lambda: ndi.correlate(image, kernel[:, :, None], mode="mirror"),
            "imgfilt.conv": lambda: imgfilt.conv(planes, weight, padding=1,
                                                 padding_mode="reflect"),
            "imgfilt.apply(kernel)": lambda: imgfilt.apply(image, kernel),
            "imgfilt.apply(Filter)": lambda: imgfilt.apply(image, box),
            "imgfilt.apply('box')": lambda: imgfilt.apply(image, "box"),
        }
        _check_agreement(image, kernel, mean, planes, weight, cv2, ndi, imgfilt)
        calls = 2000 if size <= 64 else 200
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for name, run in runs.items():  # warm up: caches, lazily imported code
            _per_call(run, calls // 10)
        for _ in range(rounds):
            for name, run in runs.items():
                samples[name].append(_per_call(run, calls // 5 if "scipy" in name else calls))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        rows.append({"case": f"{size}x{size}x3 {dtype}", "us": medians,
                     "ratio": {name: medians[name] / medians["cv2.filter2D"] for name in runs}})
    return rows


def _check_agreement(image, kernel, mean, planes, weight, cv2, ndi, imgfilt) -> None:
    """Every library gives the same numbers before any is timed (so a ratio compares equals)."""
    reference = ndi.correlate(image.astype(np.float64), kernel[:, :, None].astype(np.float64),
                              mode="mirror")
    ours = np.moveaxis(imgfilt.conv(planes, weight, padding=1, padding_mode="reflect")[:, 0],
                       0, -1)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-3)
    theirs = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    applied = imgfilt.apply(image, kernel)
    if image.dtype == np.uint8:  # both round and saturate; cv2's rounding may differ by 1
        assert np.max(np.abs(applied.astype(int) - theirs.astype(int))) <= 1
    else:
        np.testing.assert_allclose(applied, theirs, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(imgfilt.apply(image.astype(np.float64), "box"),
                               ndi.correlate(image.astype(np.float64), mean[:, :, None]
                                             .astype(np.float64), mode="mirror"), atol=1e-9)


def print_table(rows: list[dict], spread: dict | None = None) -> None:
    names = list(rows[0]["us"])
    print("| case | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for row in rows:
        cells = []
        for name in names:
            cell = f"{row['us'][name]:.1f} us"
            if name != "cv2.filter2D":
                cell += f" ({row['ratio'][name]:.2f}x"
                if spread:
                    low, high = spread[row["case"]][name]
                    cell += f", {low:.2f}-{high:.2f}"
                cell += ")"
            cells.append(cell)
        print(f"| {row['case']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved samples per case")
    parser.add_argument("--processes", type=int, default=1,
                        help="run in this many separate processes and show each ratio's range")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    if args.processes <= 1:
        rows = measure(args.rounds)
        if args.json:
            print(json.dumps(rows))
        else:
            print_table(rows)
        return
    runs = []
    for _ in range(args.processes):
        done = subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds), "--json"],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout))
    spread = {}
    for index, row in enumerate(runs[0]):
        spread[row["case"]] = {name: (min(r[index]["ratio"][name] for r in runs),
                                      max(r[index]["ratio"][name] for r in runs))
                               for name in row["ratio"]}
    medians = []
    for index, row in enumerate(runs[0]):
        us = {name: statistics.median(r[index]["us"][name] for r in runs) for name in row["us"]}
        medians.append({"case": row["case"], "us": us,
                        "ratio": {n: us[n] / us["cv2.filter2D"] for n in us}})
    print(f"medians of {args.processes} processes (ratio to cv2.filter2D, min-max over processes)")
    print_table(medians, spread)


if __name__ == "__main__":
    main()
