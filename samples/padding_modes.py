"""The five padding modes in one picture: a crop of a photo padded by half its size each way.

The padding is done by ``imgfilt.conv`` itself, with a 1x1 identity filter (one per channel) and
``padding=PAD``: the result *is* the padded input that every filter in imgfilt sees. The red
frame marks the original crop. Written to OUTDIR:

* ``padding-modes.png``: zeros, reflect, replicate, circular, symmetric side by side;
* ``padding-modes.npz``: the five padded crops as ``(H + 2 PAD, W + 2 PAD, 3)`` uint8 arrays.

Usage: python samples/padding_modes.py [OUTDIR] [--image PATH] [--pad N]
(default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import imgfilt

SAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(SAMPLES))
from plotting import side_by_side, tile  # samples/plotting.py, after the path is set

MODES = {  # imgfilt's name -> how the border of "abcd" is padded
    "zeros": "00|abcd|00",
    "reflect": "cb|abcd|cb",
    "replicate": "aa|abcd|dd",
    "circular": "cd|abcd|ab",
    "symmetric": "ba|abcd|dc",
}


def padded(rgb: np.ndarray, pad: int, mode: str) -> np.ndarray:
    """``rgb`` (H, W, 3) padded by ``pad`` on every side, as imgfilt.conv pads it."""
    channels = rgb.shape[-1]
    identity = np.ones((channels, 1, 1, 1), np.float32)  # a 1x1 kernel of 1 for each channel
    out = imgfilt.conv(np.moveaxis(rgb, -1, 0), identity, padding=pad, padding_mode=mode,
                       groups=channels)
    return np.moveaxis(out, 0, -1).astype(rgb.dtype)  # exact: 1 * x + 0 is x


def crop(photo: Image.Image, size: int = 96) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop of the photo's centre, shrunk from twice that."""
    w, h = photo.size
    box = (w // 2 - size, h // 2 - size, w // 2 + size, h // 2 + size)
    return np.asarray(photo.convert("RGB").crop(box).reduce(2))


def picture(rgb: np.ndarray, pad: int) -> tuple[Image.Image, dict[str, np.ndarray]]:
    """The picture of the five modes and the padded arrays it shows."""
    arrays = {mode: padded(rgb, pad, mode) for mode in MODES}
    tiles = []
    for mode, array in arrays.items():
        image = Image.fromarray(array)
        ImageDraw.Draw(image).rectangle(
            (pad - 1, pad - 1, pad + rgb.shape[1], pad + rgb.shape[0]), outline=(230, 0, 0))
        tiles.append(tile(image, f"{mode}  {MODES[mode]}", size=13))
    return side_by_side(tiles), arrays


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--image", default=str(SAMPLES / "astronaut.png"), help="input photo")
    parser.add_argument("--pad", type=int, default=48, help="pad width on every side")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with Image.open(args.image) as photo:
        rgb = crop(photo)
    sheet, arrays = picture(rgb, args.pad)
    written = [outdir / "padding-modes.png", outdir / "padding-modes.npz"]
    sheet.save(written[0])
    np.savez(written[1], **arrays)
    print(f"{written[0]}: {', '.join(MODES)}; crop {rgb.shape[1]}x{rgb.shape[0]}, pad {args.pad}")
    return written


if __name__ == "__main__":
    main()
