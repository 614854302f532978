"""Per-channel edge detectors on an RGB photo: where do the red, green and blue edges lie?

``imgfilt.filters.edge(channel, direction)`` is one filter of depth 3 (a ``(1, 3, 3, 3)``
weight) whose only non-zero slice sits on the chosen channel, so it sees edges in that colour
alone. The three responses (absolute values) are saved as grey pictures and put back together as
the channels of one RGB picture: a red fringe there is an edge that only the red channel has.
Written to OUTDIR: ``chelsea-edges-r.png``, ``-g.png``, ``-b.png`` (mode L) and
``chelsea-edges-rgb.png``.

Usage: python samples/rgb_edges.py [OUTDIR] [--image PATH] [--direction vertical|horizontal|diagonal]
(default OUTDIR: ./samples-out)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

import imgfilt

SAMPLES = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="samples-out", help="where to write")
    parser.add_argument("--image", default=str(SAMPLES / "chelsea.png"), help="an RGB photo")
    parser.add_argument("--direction", default="vertical",
                        choices=["vertical", "horizontal", "diagonal"])
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    with Image.open(args.image) as opened:
        photo = opened.convert("RGB")
    written, channels = [], []
    for channel in "rgb":
        edge = imgfilt.filters.edge(channel=channel, direction=args.direction)
        response = imgfilt.apply(photo, edge, output="abs")   # RGB in, L out: one output map
        path = outdir / f"chelsea-edges-{channel}.png"
        response.save(path)
        written.append(path)
        channels.append(response)
        print(f"{path}: {args.direction} edges of the {channel.upper()} channel")
    combined = Image.merge("RGB", channels)
    written.append(outdir / "chelsea-edges-rgb.png")
    combined.save(written[-1])
    print(f"{written[-1]}: the three responses as R, G, B")
    return written


if __name__ == "__main__":
    main()
