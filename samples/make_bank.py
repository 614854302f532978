"""Make the sample filter bank: six 3x3 edge detectors saved as samples/edges.npz.

Sobel along x and y, the two diagonal Sobels, and the 4- and 8-neighbour Laplacians: a
``(6, 1, 3, 3)`` FilterBank (one input channel, six feature maps), written with
``FilterBank.save`` and read back with ``imgfilt.FilterBank.load("samples/edges.npz")``.

Usage: python samples/make_bank.py [OUTDIR]    (default: the current directory)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import imgfilt
from imgfilt import filters


def edges_bank() -> imgfilt.FilterBank:
    """The six edge detectors as one FilterBank."""
    diagonal = np.array([[-2.0, -1, 0], [-1, 0, 1], [0, 1, 2]])  # along top-left -> bottom-right
    laplacian8 = np.array([[1.0, 1, 1], [1, -8, 1], [1, 1, 1]])
    return imgfilt.FilterBank(
        [filters.sobel_x(), filters.sobel_y(), diagonal, np.fliplr(diagonal),
         filters.laplacian(), laplacian8],
        names=["sobel_x", "sobel_y", "sobel_diagonal", "sobel_antidiagonal", "laplacian",
               "laplacian8"],
    )


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=".", help="where to write (default: .)")
    outdir = Path(parser.parse_args(argv).outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bank = edges_bank()
    path = Path(bank.save(outdir / "edges.npz"))
    print(f"{path}: {len(bank)} filters {', '.join(bank.names)}; weight {bank.weight.shape}")
    return [path]


if __name__ == "__main__":
    main()
