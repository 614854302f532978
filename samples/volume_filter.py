"""Volume filtering: smooth the 64³ phantom in 3-D and find its surfaces with a 3-D Sobel.

Reads ``samples/phantom.tif`` (a multi-page TIFF, one page per z slice) with
``imgfilt.io.read_volume``, applies ``gaussian3d`` (the noise goes, uint8 stays uint8) and
``sobel3d`` (gradient magnitude as floats), and writes to OUTDIR:

* ``phantom-smooth.tif``: the smoothed volume, multi-page uint8;
* ``phantom-edges.npy``: the 3-D gradient magnitude, float32;
* ``phantom-slices.png``: the centre slice along z, y and x of the input, the smoothed volume and
  the edges, one row each.

Usage: python samples/volume_filter.py [OUTDIR] [--volume PATH] [--sigma S]
(default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import imgfilt

SAMPLES = Path(__file__).resolve().parent


def centre_slices(volume: np.ndarray) -> np.ndarray:
    """The three orthogonal centre slices of a ``(D, H, W)`` volume side by side, as uint8."""
    d, h, w = (n // 2 for n in volume.shape)
    slices = [volume[d], volume[:, h], volume[:, :, w]]
    low, high = float(volume.min()), float(volume.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.hstack([np.rint((s - low) * scale).astype(np.uint8) for s in slices])


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--volume", default=str(SAMPLES / "phantom.tif"), help=".tif or .npy")
    parser.add_argument("--sigma", type=float, default=1.0, help="Gaussian sigma in voxels")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    volume = imgfilt.io.read_volume(args.volume)                      # (64, 64, 64) uint8
    smooth = imgfilt.apply(volume, "gaussian3d", sigma=args.sigma)    # uint8, rounded, clipped
    edges = imgfilt.apply(smooth, "sobel3d", output="float")          # float32

    written = [outdir / "phantom-smooth.tif", outdir / "phantom-edges.npy",
               outdir / "phantom-slices.png"]
    imgfilt.io.write_volume(written[0], smooth)
    np.save(written[1], edges)
    rows = [centre_slices(v) for v in (volume, smooth, edges)]
    Image.fromarray(np.vstack(rows)).save(written[2])
    print(f"{written[0]}: {smooth.shape} {smooth.dtype}, noise std "
          f"{volume[:8].std():.1f} -> {smooth[:8].std():.1f} in the empty top slices")
    print(f"{written[1]}: edges {edges.shape} {edges.dtype}, max {edges.max():.0f}")
    return written


if __name__ == "__main__":
    main()
