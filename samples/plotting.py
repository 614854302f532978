"""Small Pillow-only picture helpers shared by the sample scripts and docs/gen_figures.py.

imgfilt needs only NumPy and Pillow, so its pictures are drawn with Pillow too (no matplotlib):
labelled tiles side by side, and line plots of 1-D signals.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def font(size: int = 14) -> ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` pixels (scalable where FreeType is available)."""
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretch any real array to 0..255 (a constant array becomes black)."""
    values = np.asarray(array, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def tile(image: Image.Image, caption: str, scale: int = 1, size: int = 14) -> Image.Image:
    """The image (enlarged ``scale`` times, nearest neighbour) with a caption above it."""
    image = image.convert("RGB")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    text_height = size + 8
    text_width = int(ImageDraw.Draw(image).textlength(caption, font=font(size))) + 6
    canvas = Image.new("RGB", (max(image.width, text_width), image.height + text_height), "white")
    canvas.paste(image, (0, text_height))
    ImageDraw.Draw(canvas).text((2, 3), caption, fill="black", font=font(size))
    return canvas


def side_by_side(images: Sequence[Image.Image], gap: int = 8, cols: int | None = None) -> Image.Image:
    """Images in a grid of ``cols`` columns (default: one row) on a white background."""
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images)
    sheet = Image.new("RGB", (cols * cell_w + (cols - 1) * gap, rows * cell_h + (rows - 1) * gap),
                      "white")
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        sheet.paste(image.convert("RGB"), (col * (cell_w + gap), row * (cell_h + gap)))
    return sheet


def plot_signals(signals: Sequence[np.ndarray], labels: Sequence[str], width: int = 900,
                 height: int = 160, title: str = "") -> Image.Image:
    """Line plots of 1-D signals, one panel each, every panel with its own vertical scale."""
    panels = []
    for index, (signal, label) in enumerate(zip(signals, labels)):
        values = np.asarray(signal, dtype=np.float64)
        panel = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(panel)
        low, high = float(values.min()), float(values.max())
        span = high - low or 1.0
        xs = np.linspace(4, width - 5, values.size)
        ys = (height - 6) - (values - low) / span * (height - 30)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=COLOURS[index % len(COLOURS)], width=1)
        draw.rectangle((0, 0, width - 1, height - 1), outline=(180, 180, 180))
        draw.text((6, 3), f"{label}   [{low:.2f} .. {high:.2f}]", fill="black", font=font(13))
        panels.append(panel)
    sheet = side_by_side(panels, gap=4, cols=1)
    return tile(sheet, title) if title else sheet
