"""Sobel edges of a photo with imgfilt.conv: two 3x3 filters, one call, then the magnitude.

Usage: python samples/edges.py INPUT OUTPUT
"""
import sys

import numpy as np
from PIL import Image

import imgfilt


def sobel_edges(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude sqrt(gx² + gy²) of a 2-D image, borders reflected."""
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    weight = np.stack([sobel_x, sobel_x.T])[:, None]  # (C_out=2, C_in=1, 3, 3)
    gx, gy = imgfilt.conv(gray[None], weight, padding="same", padding_mode="reflect")
    return np.hypot(gx, gy)


def main(source: str, target: str) -> None:
    gray = np.asarray(Image.open(source).convert("L"))
    edges = sobel_edges(gray)
    Image.fromarray(np.clip(edges, 0, 255).astype(np.uint8)).save(target)
    print(f"{target}: Sobel edges of {source}, {edges.shape[1]}x{edges.shape[0]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1], sys.argv[2])
