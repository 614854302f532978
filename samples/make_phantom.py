"""Make the synthetic volume: a 64³ phantom of ellipsoids, saved as .npy and multi-page TIFF.

A 3-D cousin of the Shepp-Logan head phantom: a bright skull shell around softer tissue, two
dark ventricles and a few small bright lesions, all axis-aligned ellipsoids (so only +, * and /
decide which voxel is inside: the result is the same on every machine), plus seeded Gaussian
noise so that smoothing has something to do. Stored as uint8 (256 KiB per file).

Usage: python samples/make_phantom.py [OUTDIR]    (default: the current directory)

The committed samples/phantom.npy and samples/phantom.tif were made with OUTDIR = samples/;
tests/test_samples.py checks that running this script gives the same voxels.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import imgfilt

SIZE = 64
SEED = 20240611
NOISE_SIGMA = 6.0  # grey levels

# (value added inside, semi-axes (az, ay, ax), centre (z, y, x)), coordinates in [-1, 1]
ELLIPSOIDS = [
    (0.80, (0.72, 0.92, 0.69), (0.00, 0.00, 0.00)),     # skull
    (-0.60, (0.66, 0.87, 0.63), (0.00, -0.02, 0.00)),   # brain (darker than the skull)
    (-0.15, (0.40, 0.31, 0.11), (0.05, 0.00, 0.22)),    # right ventricle
    (-0.15, (0.45, 0.41, 0.16), (0.05, 0.00, -0.22)),   # left ventricle
    (0.25, (0.20, 0.25, 0.21), (-0.25, 0.35, 0.00)),    # a large soft lesion
    (0.35, (0.06, 0.05, 0.05), (0.30, -0.50, -0.10)),   # small bright spots
    (0.35, (0.06, 0.05, 0.05), (0.30, -0.50, 0.10)),
    (0.35, (0.08, 0.08, 0.08), (-0.40, -0.35, 0.30)),
]


def phantom(size: int = SIZE, seed: int = SEED) -> np.ndarray:
    """The phantom as a ``(size, size, size)`` uint8 array, axes ``(z, y, x)``."""
    axis = (np.arange(size) - (size - 1) / 2) / ((size - 1) / 2)  # -1 .. 1
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    density = np.zeros((size, size, size))
    for value, (az, ay, ax), (cz, cy, cx) in ELLIPSOIDS:
        inside = ((z - cz) / az) ** 2 + ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0
        density[inside] += value
    grey = 40 + 200 * density + np.random.default_rng(seed).normal(0.0, NOISE_SIGMA, density.shape)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=".", help="where to write (default: .)")
    outdir = Path(parser.parse_args(argv).outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    volume = phantom()
    written = [outdir / "phantom.npy", outdir / "phantom.tif"]
    for path in written:
        imgfilt.io.write_volume(path, volume)
        print(f"{path}: {volume.shape} {volume.dtype} phantom")
    return written


if __name__ == "__main__":
    main()
