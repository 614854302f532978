"""A preprocessing pipeline: Pillow -> imgfilt -> NumPy -> files.

Pillow loads, shrinks and greys the photo; imgfilt smooths it (a Pillow image in, a Pillow image
out) and takes the Sobel gradient magnitude as floats; NumPy scales the features to [0, 1] and
keeps the strongest 10 % of edges as a mask. Written to OUTDIR:

* ``coffee-features.npy``: ``(2, H, W)`` float32, the smoothed image and the edge strength;
* ``coffee-edge-mask.png``: the mask (white = edge).

Usage: python samples/pipeline.py [OUTDIR] [--image PATH]    (default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import imgfilt

SAMPLES = Path(__file__).resolve().parent
SIGMA = 1.5
EDGE_FRACTION = 0.10  # keep the strongest 10 % of the gradient magnitudes


def preprocess(photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """``(features (2, H, W) float32, mask (H, W) bool)`` of a photo at half size."""
    gray = photo.reduce(2).convert("L")                              # Pillow: half size, grey
    smooth = imgfilt.apply(gray, "gaussian", sigma=SIGMA)            # PIL L in, PIL L out
    edges = imgfilt.apply(np.asarray(smooth), "sobel", output="float")  # uint8 in, float32 out
    features = np.stack([np.asarray(smooth, np.float32) / 255, edges / edges.max()])
    mask = features[1] > np.quantile(features[1], 1 - EDGE_FRACTION)
    return features, mask


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--image", default=str(SAMPLES / "coffee.png"), help="input photo")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with Image.open(args.image) as photo:
        features, mask = preprocess(photo)
    written = [outdir / "coffee-features.npy", outdir / "coffee-edge-mask.png"]
    np.save(written[0], features)
    Image.fromarray(mask.astype(np.uint8) * 255).save(written[1])
    print(f"{written[0]}: features {features.shape} {features.dtype}")
    print(f"{written[1]}: {mask.mean():.0%} of the pixels are edges")
    return written


if __name__ == "__main__":
    main()
