"""Make the 1-D sample signal: ten seconds of a synthetic, ECG-like trace at 250 Hz.

Each heartbeat is a sum of Gaussian bumps for the P wave, the QRS complex and the T wave (the
shape of McSharry et al.'s ECGSYN model, without its differential equations), at about 72 beats
per minute with a little beat-to-beat variation. On top: baseline wander (breathing, 0.25 Hz),
50 Hz mains hum and white noise, the three things a first filtering lesson removes. Seeded, so
the same trace comes out every time. Values are in millivolts, stored as float32 (10 kB).

Usage: python samples/make_ecg.py [OUTDIR]    (default: the current directory)

The committed samples/ecg.npy was made with OUTDIR = samples/; tests/test_samples.py checks that
running this script gives the same samples.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SAMPLING_RATE = 250  # Hz
DURATION = 10.0  # seconds
SEED = 72
MAINS_HZ = 50.0

# (amplitude in mV, offset from the R peak in s, width in s) of each wave of one beat
WAVES = {
    "P": (0.15, -0.20, 0.025),
    "Q": (-0.12, -0.035, 0.010),
    "R": (1.20, 0.0, 0.011),
    "S": (-0.25, 0.035, 0.010),
    "T": (0.30, 0.27, 0.045),
}


def ecg(seed: int = SEED) -> np.ndarray:
    """The trace as a float32 array of ``SAMPLING_RATE * DURATION`` samples, in mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLING_RATE * DURATION)) / SAMPLING_RATE
    signal = np.zeros_like(t)
    peak = 0.35
    while peak < DURATION + 0.5:
        for amplitude, offset, width in WAVES.values():
            signal += amplitude * np.exp(-0.5 * ((t - peak - offset) / width) ** 2)
        peak += 60.0 / 72.0 + rng.normal(0.0, 0.03)  # heart-rate variability
    wander = 0.20 * np.sin(2 * np.pi * 0.25 * t) + 0.08 * np.sin(2 * np.pi * 0.07 * t + 1.0)
    hum = 0.04 * np.sin(2 * np.pi * MAINS_HZ * t)
    noise = rng.normal(0.0, 0.02, t.shape)
    return (signal + wander + hum + noise).astype(np.float32)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=".", help="where to write (default: .)")
    outdir = Path(parser.parse_args(argv).outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    trace = ecg()
    path = outdir / "ecg.npy"
    np.save(path, trace, allow_pickle=False)
    print(f"{path}: {trace.size} samples at {SAMPLING_RATE} Hz ({trace.size / SAMPLING_RATE:g} s)")
    return [path]


if __name__ == "__main__":
    main()
