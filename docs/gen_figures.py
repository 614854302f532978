"""Make every picture of the docs from the samples: ``python docs/gen_figures.py [OUTDIR]``.

The pictures are computed by imgfilt itself (no picture is drawn by hand), so they change when
the library does and never go stale: tests/test_figures.py checks that the committed
docs/figures/ (so that the pages show their pictures on GitHub too) are what this script makes,
and ``mkdocs build --strict`` fails on a page that shows a picture this script did not make.
OUTDIR defaults to docs/figures/. Needs only NumPy, Pillow and imgfilt; runs in a few seconds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

import imgfilt

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(SAMPLES))
import padding_modes  # samples/padding_modes.py, after the path is set
import volume_filter  # samples/volume_filter.py
from plotting import (  # samples/plotting.py
    font,
    plot_signals,
    side_by_side,
    tile,
    to_uint8,
)

FIGURES: dict[str, Callable[[], Image.Image]] = {}


def figure(name: str) -> Callable[[Callable[[], Image.Image]], Callable[[], Image.Image]]:
    """Register a function that returns the picture ``name`` (a .png under figures/)."""
    def register(make: Callable[[], Image.Image]) -> Callable[[], Image.Image]:
        FIGURES[name] = make
        return make
    return register


def photo(name: str, mode: str = "RGB", reduce: int = 1) -> Image.Image:
    with Image.open(SAMPLES / name) as opened:
        image = opened.convert(mode)
    return image.reduce(reduce) if reduce > 1 else image


def number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".replace("0.", ".", 1) if abs(value) < 1 else f"{value:.1f}"


def grid(values: np.ndarray, cell: int = 24, highlight: np.ndarray | None = None) -> Image.Image:
    """A 2-D array drawn as a table of numbers (cells tinted by value; ``highlight`` in yellow)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    rows, cols = values.shape
    image = Image.new("RGB", (cols * cell + 1, rows * cell + 1), "white")
    draw = ImageDraw.Draw(image)
    peak = float(np.abs(values).max()) or 1.0
    text_font = font(max(9, cell // 2 - 1))
    for (r, c), value in np.ndenumerate(values):
        shade = int(255 - 110 * abs(value) / peak)
        fill = (255, shade, shade) if value > 0 else (shade, shade, 255) if value < 0 else "white"
        if highlight is not None and highlight[r, c]:
            fill = (255, 230, 120)
        box = (c * cell, r * cell, (c + 1) * cell, (r + 1) * cell)
        draw.rectangle(box, fill=fill, outline=(150, 150, 150))
        draw.text((box[0] + cell / 2, box[1] + cell / 2), number(value), fill="black",
                  font=text_font, anchor="mm")
    return image


def kernel_picture(kernel: np.ndarray, max_cells: int = 7) -> Image.Image:
    """Small kernels as numbers, large ones as a stretched grey picture."""
    if kernel.ndim == 1:
        kernel = kernel[None]
    if max(kernel.shape) <= max_cells:
        return grid(kernel, cell=22 if max(kernel.shape) <= 5 else 18)
    scale = max(1, 120 // max(kernel.shape))
    picture = Image.fromarray(to_uint8(kernel))
    return picture.resize((kernel.shape[1] * scale, kernel.shape[0] * scale), Image.NEAREST)


def filter_kernels(filt: imgfilt.Filter) -> Image.Image:
    """Every 2-D slice of a filter's weight, labelled (responses, input channels, z slices)."""
    weight = filt.weight
    parts = []
    for r in range(weight.shape[0]):
        for i in range(weight.shape[1]):
            kernel = weight[r, i]
            slices = [kernel] if kernel.ndim < 3 else list(kernel)
            for z, plane in enumerate(slices):
                label = []
                if weight.shape[0] > 1:
                    label.append(f"r{r}")
                if weight.shape[1] > 1:
                    label.append("RGB"[i] if weight.shape[1] == 3 else f"c{i}")
                if len(slices) > 1:
                    label.append(f"z{z}")
                parts.append(tile(kernel_picture(plane), " ".join(label), size=10)
                             if label else kernel_picture(plane))
    if len(parts) > 9:  # e.g. the 3 x 3 x 3 slices of sobel3d: show the first response only
        parts = parts[: len(parts) // weight.shape[0]]
    return side_by_side(parts, gap=4, cols=min(len(parts), 3 if weight.ndim == 5 else 6))


# -- concepts --------------------------------------------------------------------------------

@figure("correlation.png")
def correlation() -> Image.Image:
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    weight = kernel[None, None]
    corr = imgfilt.conv(impulse[None], weight, padding="same")[0]
    conv = imgfilt.convolve(impulse[None], weight, padding="same")[0]
    return side_by_side([
        tile(grid(impulse), "input: one impulse", size=13),
        tile(grid(kernel), "kernel w", size=13),
        tile(grid(corr), "imgfilt.conv (correlation):", size=13),
        tile(grid(conv), "imgfilt.convolve:", size=13),
    ], gap=24)


@figure("channels.png")
def channels() -> Image.Image:
    rgb = photo("chelsea.png", reduce=2)
    planes = [np.asarray(rgb)[..., c] for c in range(3)]
    tinted = []
    for c, plane in enumerate(planes):
        colour = np.zeros(plane.shape + (3,), np.uint8)
        colour[..., c] = plane
        tinted.append(tile(Image.fromarray(colour), f"input channel {'RGB'[c]}"))
    weight = np.concatenate([imgfilt.kernels.edge("r", "vertical"),
                       imgfilt.kernels.edge("all", "horizontal")])  # (2, 3, 3, 3)
    x = np.moveaxis(np.asarray(rgb, np.float32), -1, 0)
    maps = imgfilt.conv(x, weight, bias=[0.0, 0.0], padding="same", padding_mode="reflect")
    outputs = [tile(Image.fromarray(to_uint8(np.abs(m))), f"feature map {o}: |filter {o}|")
               for o, m in enumerate(maps)]
    filters_row = [tile(side_by_side([grid(weight[o, c], cell=18) for c in range(3)], gap=6),
                        f"filter {o}: weight[{o}], depth 3 (R, G, B)", size=12) for o in range(2)]
    return side_by_side([side_by_side(tinted), side_by_side(filters_row, gap=40),
                         side_by_side(outputs)], cols=1, gap=14)


@figure("shapes.png")
def shapes() -> Image.Image:
    gray = np.asarray(photo("camera.png", "L", reduce=2))  # 256 x 256
    box = imgfilt.kernels.box(31)[None, None]
    x = gray[None].astype(np.float32)
    tiles = []
    for label, options in [("'same', stride 1", {"padding": "same", "padding_mode": "reflect"}),
                           ("'valid', stride 1", {"padding": "valid"}),
                           ("'same', stride 4", {"padding": "same", "stride": 4,
                                                     "padding_mode": "reflect"})]:
        out = imgfilt.conv(x, box, **options)[0]
        tiles.append(tile(Image.fromarray(to_uint8(out)), f"{label}: {out.shape[0]}x{out.shape[1]}",
                          size=13))
    return side_by_side([tile(Image.fromarray(gray), "input 256x256, box 31x31", size=13)] + tiles)


@figure("padding-modes.png")
def padding() -> Image.Image:
    rgb = padding_modes.crop(photo("astronaut.png"))
    return padding_modes.picture(rgb, 48)[0]


@figure("stride.png")
def stride() -> Image.Image:
    gray = photo("camera.png", "L", reduce=2)
    tiles = []
    for s in (1, 2, 4, 8):
        out = imgfilt.apply(gray, "gaussian", sigma=s / 2, stride=s)
        tiles.append(tile(out, f"stride {s}: {out.width}x{out.height}", size=12))
    return side_by_side(tiles)


@figure("dilation.png")
def dilation() -> Image.Image:
    gray = photo("camera.png", "L", reduce=2)
    tiles = []
    for d in (1, 2, 4):
        span = 2 * d + 1
        taps = np.zeros((span, span), bool)
        taps[::d, ::d] = True
        footprint = np.zeros((span, span))
        footprint[::d, ::d] = imgfilt.kernels.sobel_x()
        out = imgfilt.apply(gray, "sobel_x", dilation=d, output="abs")
        tiles.append(side_by_side([tile(grid(footprint, cell=16, highlight=taps),
                                        f"dilation {d}: span {span}", size=12),
                                   tile(out, f"|sobel_x|, dilation {d}", size=12)], gap=6))
    return side_by_side(tiles, gap=16)


@figure("one-by-one.png")
def one_by_one() -> Image.Image:
    rgb = photo("coffee.png", reduce=2)
    x = np.moveaxis(np.asarray(rgb, np.float32), -1, 0)  # (3, H, W)
    luma = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168],
                      [0.272, 0.534, 0.131]]).reshape(3, 3, 1, 1)
    swap = np.eye(3)[::-1].reshape(3, 3, 1, 1)  # RGB -> BGR
    pictures = [tile(rgb, "input (3, H, W)")]
    for label, weight in [("weight (1, 3, 1, 1): grey", luma), ("weight (3, 3, 1, 1): sepia", sepia),
                          ("weight (3, 3, 1, 1): R and B swapped", swap)]:
        out = np.clip(np.rint(imgfilt.conv(x, weight)), 0, 255).astype(np.uint8)
        image = Image.fromarray(out[0] if len(out) == 1 else np.moveaxis(out, 0, -1))
        pictures.append(tile(image, label))
    return side_by_side(pictures)


@figure("volumes.png")
def volumes() -> Image.Image:
    volume = imgfilt.io.read_volume(SAMPLES / "phantom.tif")
    smooth = imgfilt.apply(volume, "gaussian3d", sigma=1.0)
    edges = imgfilt.apply(smooth, "sobel3d", output="float")
    rows = [tile(Image.fromarray(volume_filter.centre_slices(v)).resize((3 * 128, 128)), label,
                 size=12)
            for v, label in [(volume, "phantom: slices z = 32, y = 32, x = 32"),
                             (smooth, "gaussian3d, sigma 1"), (edges, "sobel3d of that")]]
    return side_by_side(rows, cols=1, gap=6)


def moving_disk(frames: int = 12, height: int = 48, width: int = 96) -> np.ndarray:
    """A ``(T, H, W)`` video: a bright disk moving right on a still striped background."""
    y, x = np.mgrid[:height, :width]
    background = 60 + 30 * (np.sin(x / 4.0) > 0)
    video = np.empty((frames, height, width), np.float32)
    for t in range(frames):
        disk = (x - 12 - 6 * t) ** 2 + (y - height / 2) ** 2 < 10 ** 2
        video[t] = np.where(disk, 220, background)
    return video


@figure("video.png")
def video() -> Image.Image:
    clip = moving_disk()
    time_derivative = np.zeros((3, 3, 3))
    time_derivative[:, 1, 1] = [-0.5, 0, 0.5]  # along t only: (T, H, W) kernel
    motion = imgfilt.apply(clip, time_derivative, padding_mode="replicate", output="float")
    frames = [tile(Image.fromarray(clip[t].astype(np.uint8)), f"frame {t}", scale=2, size=12)
              for t in (2, 5, 8)]
    moving = [tile(Image.fromarray(to_uint8(np.abs(motion[t]))), f"|d/dt| at frame {t}", scale=2,
                   size=12) for t in (2, 5, 8)]
    return side_by_side([side_by_side(frames), side_by_side(moving)], cols=1)


# -- quickstart and how-tos ------------------------------------------------------------------

@figure("coffee-sobel.png")
def coffee_sobel() -> Image.Image:
    rgb = photo("coffee.png", reduce=2)
    return side_by_side([tile(rgb, "samples/coffee.png"),
                         tile(imgfilt.apply(rgb, "sobel"), "imgfilt apply sobel")])


@figure("montage.png")
def montage() -> Image.Image:
    bank = imgfilt.FilterBank.load(SAMPLES / "edges.npz")
    maps = bank.apply(photo("camera.png", "L", reduce=4))
    return bank.montage(maps, cols=3)


@figure("feature-maps.png")
def feature_maps() -> Image.Image:
    """README's picture: a photo and the six feature maps of samples/edges.npz."""
    camera = photo("camera.png", "L", reduce=4)
    bank = imgfilt.FilterBank.load(SAMPLES / "edges.npz")
    maps = bank.apply(camera)
    tiles = [tile(Image.fromarray(to_uint8(m)), name, size=12) for name, m in zip(bank.names, maps)]
    grid_of_maps = side_by_side(tiles, cols=3, gap=6)
    left = tile(camera.resize((2 * camera.width, 2 * camera.height), Image.LANCZOS),
                "samples/camera.png -> 6 feature maps (samples/edges.npz)", size=12)
    sheet = Image.new("RGB", (left.width + 14 + grid_of_maps.width,
                              max(left.height, grid_of_maps.height)), "white")
    sheet.paste(left, (0, 0))
    sheet.paste(grid_of_maps, (left.width + 14, 0))
    return sheet


@figure("ecg.png")
def ecg() -> Image.Image:
    trace = np.load(SAMPLES / "ecg.npy")[:750]
    smooth = imgfilt.apply(trace, "gaussian1d", sigma=2)
    baseline = imgfilt.apply(trace, "gaussian1d", sigma=75)
    return plot_signals([trace, smooth - baseline],
                        ["samples/ecg.npy, first 3 s (mV)",
                         "gaussian1d sigma 2 minus gaussian1d sigma 75"], width=760, height=130)


@figure("alpha.png")
def alpha() -> Image.Image:
    """A red disc on transparent black, blurred: straight (every band on its own, as Pillow's
    filter does), imgfilt's premultiplied rule, and the edge map that keeps alpha; each shown
    over a checkerboard so that transparency is visible."""
    size = 96
    yy, xx = np.mgrid[:size, :size]
    pixels = np.zeros((size, size, 4), np.uint8)
    pixels[(yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= 30 ** 2] = (220, 30, 30, 255)
    disc = Image.fromarray(pixels, "RGBA")
    board = Image.fromarray(np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 255, 200)
                            .astype(np.uint8).repeat(3, axis=2), "RGB")
    blur = imgfilt.get_filter("gaussian", sigma=4)
    straight = np.stack([np.asarray(imgfilt.apply(pixels[..., c], blur)) for c in range(4)], -1)
    shown = []
    for picture, label in ((disc, "RGBA input"),
                           (Image.fromarray(straight, "RGBA"), "straight: dark fringe"),
                           (imgfilt.apply(disc, blur), "imgfilt: premultiplied"),
                           (imgfilt.apply(disc, "sobel"), "sobel: alpha kept")):
        over = board.copy()
        over.paste(picture, (0, 0), picture)
        shown.append(tile(over.resize((size * 2, size * 2), Image.NEAREST), label))
    return side_by_side(shown, gap=10)


# -- gallery ---------------------------------------------------------------------------------

def gallery_groups() -> dict[int, list[str]]:
    """Registered filter names by number of spatial axes (1, 2, 3)."""
    groups: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for info in imgfilt.list_filters():
        groups[imgfilt.get_filter(info.name).ndim].append(info.name)
    return groups


def gallery_tile(name: str, result: Image.Image, filt: imgfilt.Filter) -> Image.Image:
    combine = f", combine: {filt.combine}" if getattr(filt, "combine", None) else ""
    return tile(side_by_side([result, filter_kernels(filt)], gap=6), f"{name}{combine}", size=13)


@figure("gallery-2d.png")
def gallery_2d() -> Image.Image:
    rgb = photo("chelsea.png", reduce=2)
    tiles = []
    for name in gallery_groups()[2]:
        filt = imgfilt.get_filter(name)
        if not isinstance(filt, imgfilt.Filter):
            continue  # rank filters, morphology and Canny: gallery-nonlinear.png
        keeps_level = abs(filt.weight[0].sum() - 1) < 1e-6 and filt.combine is None
        # smoothing-like kernels keep the grey level: show them as they are; derivatives have
        # negative responses: stretch those to 0..255 so that they are visible
        result = imgfilt.apply(rgb, filt, output="clip" if keeps_level else "rescale")
        tiles.append(gallery_tile(name, result, filt))
    return side_by_side(tiles, cols=3, gap=12)


@figure("gallery-3d.png")
def gallery_3d() -> Image.Image:
    volume = imgfilt.io.read_volume(SAMPLES / "phantom.tif")
    tiles = []
    for name in gallery_groups()[3]:
        filt = imgfilt.get_filter(name)
        if not isinstance(filt, imgfilt.Filter):
            continue  # shown in gallery-nonlinear.png
        result = imgfilt.apply(volume, filt, output="float")[32]
        tiles.append(gallery_tile(name, Image.fromarray(to_uint8(result)).resize((128, 128)), filt))
    return side_by_side(tiles, cols=2, gap=12)


@figure("gallery-nonlinear.png")
def gallery_nonlinear() -> Image.Image:
    """Every registered nonlinear filter (imgfilt.nonlinear) on salt-and-pepper noise: rank
    filters and morphology in 2-D (size 5), median3d on a slice of the phantom, Canny."""
    rgb = np.asarray(photo("chelsea.png", reduce=2))
    rng = np.random.default_rng(0)
    noisy = rgb.copy()
    salt = rng.random(rgb.shape[:2])
    noisy[salt < 0.03] = 0
    noisy[salt > 0.97] = 255
    tiles = [tile(Image.fromarray(noisy), "input (3 % salt and pepper)", size=13)]
    volume = imgfilt.io.read_volume(SAMPLES / "phantom.tif")
    for name in sorted(n for group in gallery_groups().values() for n in group):
        filt = imgfilt.get_filter(name)
        if isinstance(filt, imgfilt.Filter):
            continue
        if filt.ndim == 3:
            result = imgfilt.apply(volume, imgfilt.get_filter(name, size=5), output="float")[32]
            shown = Image.fromarray(to_uint8(result)).resize((128, 128))
            label = f"{name} size=5"
        elif name == "canny":  # on the clean photo: noise is all edges
            shown = Image.fromarray(imgfilt.apply(rgb, name, sigma=2.0))
            label = "canny sigma=2 (clean input)"
        else:
            params = {"size": 5, **({"rank": 5} if name == "rank" else {})}
            shown = Image.fromarray(imgfilt.apply(noisy, name, **params))
            label = f"{name} " + " ".join(f"{k}={v}" for k, v in params.items())
        tiles.append(tile(shown, label, size=13))
    return side_by_side(tiles, cols=4, gap=12)


@figure("gallery-1d.png")
def gallery_1d() -> Image.Image:
    trace = np.load(SAMPLES / "ecg.npy")[:500]
    names = gallery_groups()[1]
    results = [imgfilt.apply(trace, name) for name in names]
    plots = plot_signals([trace] + results, ["samples/ecg.npy, first 2 s"] + names, width=700,
                         height=110)
    kernels = [tile(filter_kernels(imgfilt.get_filter(name)), name, size=12) for name in names]
    return side_by_side([plots, side_by_side(kernels, cols=1, gap=10)], gap=12)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default=str(Path(__file__).parent / "figures"))
    parser.add_argument("--only", nargs="*", help="make only these figures")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FIGURES.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        make().save(outdir / name, optimize=True)
        written.append(outdir / name)
        print(f"{outdir / name}  ({time.perf_counter() - start:.2f} s)")
    return written


if __name__ == "__main__":
    main()
