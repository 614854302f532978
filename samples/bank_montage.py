"""Feature maps of a filter bank as a montage: the six edge detectors of samples/edges.npz.

Loads the bank, applies it to the grey camera photo (one input channel -> six feature maps) and
tiles the maps into one picture, each map stretched to 0..255 on its own. Written to OUTDIR:

* ``camera-maps.npy``: the ``(6, H, W)`` float32 feature maps;
* ``camera-montage.png``: the montage (3 columns, 2 rows, white lines between maps).

Usage: python samples/bank_montage.py [OUTDIR] [--image PATH] [--bank PATH]
(default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import imgfilt

SAMPLES = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--image", default=str(SAMPLES / "camera.png"), help="input photo")
    parser.add_argument("--bank", default=str(SAMPLES / "edges.npz"), help="a FilterBank .npz")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    bank = imgfilt.FilterBank.load(args.bank)
    with Image.open(args.image) as photo:
        gray = photo.convert("L").reduce(2)        # 256 x 256 keeps the montage small
    maps = bank.apply(gray)                        # (6, H, W) float32, borders reflected
    sheet = bank.montage(maps, cols=3)

    written = [outdir / "camera-maps.npy", outdir / "camera-montage.png"]
    np.save(written[0], maps)
    sheet.save(written[1])
    for name, feature in zip(bank.names, maps):
        print(f"{name:20s} min {feature.min():8.1f}  max {feature.max():8.1f}")
    print(f"{written[1]}: {len(bank)} maps, {sheet.width}x{sheet.height}")
    return written


if __name__ == "__main__":
    main()
