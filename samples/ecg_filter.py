"""Cleaning a 1-D signal: the ECG-like trace of samples/ecg.npy, filtered three ways.

1. A narrow Gaussian (sigma = 8 ms, 2 samples) removes the 50 Hz mains hum and most of the
   white noise but keeps the sharp QRS spikes.
2. A wide Gaussian (sigma = 0.3 s) follows only the slow baseline wander (breathing);
   subtracting it flattens the trace.
3. ``gradient1d`` (the central difference) of the cleaned trace: the QRS complexes are where it
   swings hardest, the first step of a heartbeat detector.

All three are ``imgfilt.apply`` on a plain ``(N,)`` array, borders reflected. Written to OUTDIR:
``ecg-clean.npy`` (float32, the cleaned trace), ``ecg-filtered.png`` (the four traces).

Usage: python samples/ecg_filter.py [OUTDIR] [--signal PATH]    (default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import imgfilt

SAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(SAMPLES))
from plotting import plot_signals  # samples/plotting.py, after the path is set

SAMPLING_RATE = 250  # Hz, as made by samples/make_ecg.py
SMOOTH_SIGMA = 0.008 * SAMPLING_RATE    # 8 ms = 2 samples
BASELINE_SIGMA = 0.3 * SAMPLING_RATE    # 0.3 s = 75 samples


def clean(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(baseline, cleaned)``: the slow wander, and the smoothed trace minus it."""
    smooth = imgfilt.apply(trace, "gaussian1d", sigma=SMOOTH_SIGMA)
    baseline = imgfilt.apply(trace, "gaussian1d", sigma=BASELINE_SIGMA)
    return baseline, smooth - baseline


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--signal", default=str(SAMPLES / "ecg.npy"), help="a 1-D .npy signal")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    trace = np.load(args.signal, allow_pickle=False)      # (2500,) float32, mV
    baseline, cleaned = clean(trace)
    slope = imgfilt.apply(cleaned, "gradient1d")          # mV per sample

    written = [outdir / "ecg-clean.npy", outdir / "ecg-filtered.png"]
    np.save(written[0], cleaned)
    first = slice(0, 3 * SAMPLING_RATE)                   # three seconds are easier to see
    plot_signals([trace[first], baseline[first], cleaned[first], slope[first]],
                 ["raw trace (mV)", "baseline: gaussian1d, sigma 0.3 s",
                  "cleaned: gaussian1d sigma 8 ms, minus the baseline", "gradient1d of cleaned"],
                 title="samples/ecg.npy, first 3 s").save(written[1])
    print(f"{written[0]}: {cleaned.size} samples, std {trace.std():.3f} -> {cleaned.std():.3f} mV")
    print(f"{written[1]}: raw, baseline, cleaned, slope")
    return written


if __name__ == "__main__":
    main()
