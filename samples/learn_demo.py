"""A convolution layer learns its kernel: a classroom demo of imgfilt.learn.fit.

1. Blur a photo with a hidden 7x7 kernel (a diagonal motion blur), recover the kernel from the
   (photo, blurred) pair by least squares, and again from a noisy blurred photo; draw the hidden
   and recovered kernels and the residual.
2. Fit a 3 -> 2 bank from an RGB photo to the Sobel x and y responses of its luminance: the
   fitted kernels are the Sobel kernels weighted by the luminance coefficients of R, G and B.

Usage: python samples/learn_demo.py [OUTPUT_FOLDER]   (default: learn-demo)
See docs/learning.md for what the pictures show.
"""
import os
import sys

import numpy as np
from PIL import Image

import imgfilt
from imgfilt import kernels, learn
from imgfilt.bank import montage

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIONS = {"padding": "same", "padding_mode": "reflect"}


def kernel_sheet(stack: np.ndarray, cols: int, cell: int = 24) -> Image.Image:
    """Kernels ``(n, kh, kw)`` side by side on one grey scale (0 is mid-grey, the largest
    magnitude black or white), each tap a ``cell``-pixel square, white lines between kernels."""
    grey = 127.5 + 127.5 * stack / np.abs(stack).max()
    tiles = [np.kron(np.rint(g), np.ones((cell, cell))) for g in grey]
    rows = []
    for start in range(0, len(tiles), cols):
        row = tiles[start:start + cols]
        line = np.full((row[0].shape[0], cell // 3), 255.0)
        rows.append(np.hstack([part for tile in row for part in (tile, line)][:-1]))
    gap = np.full((cell // 3, rows[0].shape[1]), 255.0)
    sheet = np.vstack([part for row in rows for part in (row, gap)][:-1])
    return Image.fromarray(sheet.astype(np.uint8))


def load(name: str, mode: str, size: int) -> np.ndarray:
    """A sample photo as channels-first float64, its centre cropped to size x size."""
    with Image.open(os.path.join(HERE, name)) as image:
        image = image.convert(mode)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        pixels = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float64)
    return pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def hidden_kernel() -> np.ndarray:
    """A 7x7 diagonal motion blur, slightly uneven so it has no symmetry to lean on."""
    kernel = np.eye(7) + 0.3 * np.eye(7, k=1)
    kernel[1, 1] += 0.5
    return kernel / kernel.sum()


def recover_a_blur(folder: str) -> None:
    photo = load("camera.png", "L", 256)
    hidden = hidden_kernel()[None, None]  # (C_out=1, C_in=1, 7, 7)
    blurred = imgfilt.conv(photo, hidden, **OPTIONS)
    rng = np.random.default_rng(0)
    noisy = blurred + rng.normal(scale=2.0, size=blurred.shape)  # about 1% of the range

    exact = learn.fit(photo, blurred, 7, **OPTIONS)
    from_noisy = learn.fit(photo, noisy, 7, **OPTIONS)
    error = np.abs(exact.weight - hidden).max()
    noisy_error = np.abs(from_noisy.weight - hidden).max()
    print(f"hidden kernel recovered: largest tap error {error:.2e} from the exact pair, "
          f"{noisy_error:.2e} from the noisy one (taps up to {hidden.max():.3f})")
    fit_score = learn.score(from_noisy, photo, noisy, **OPTIONS)
    print(f"noisy pair: RMS error {fit_score.rms:.3f} (the noise's sigma is 2), "
          f"R² {fit_score.r2:.5f}")

    pair = np.concatenate([photo[0], blurred[0]], axis=1)
    Image.fromarray(np.clip(np.rint(pair), 0, 255).astype(np.uint8)).save(
        os.path.join(folder, "1-blurred.png"))
    three = np.stack([hidden[0, 0], exact.weight[0, 0], from_noisy.weight[0, 0]])
    kernel_sheet(three, cols=3).save(os.path.join(folder, "2-kernels.png"))
    residual = imgfilt.conv(photo, from_noisy.weight, from_noisy.bias, **OPTIONS) - noisy
    montage(residual[0]).save(os.path.join(folder, "3-residual.png"))


def fit_sobel_from_rgb(folder: str) -> None:
    rgb = load("astronaut.png", "RGB", 192)
    luma = np.array([0.299, 0.587, 0.114])
    gray = np.tensordot(luma, rgb, axes=1)[None]
    sobel = np.stack([kernels.sobel_x(), kernels.sobel_y()])[:, None]  # (2, 1, 3, 3)
    responses = imgfilt.conv(gray, sobel, **OPTIONS)

    bank = learn.fit(rgb, responses, 3, **OPTIONS)  # weight (2, 3, 3, 3)
    expected = sobel * luma[None, :, None, None]  # each channel's share of the Sobel kernel
    print(f"3 -> 2 Sobel bank: weight {bank.weight.shape}, largest difference from "
          f"luma x Sobel {np.abs(bank.weight - expected).max():.2e}")
    print("fitted sobel_x on R, G, B (each scaled by its luma weight back to Sobel):")
    for index, (channel, weight) in enumerate(zip("RGB", luma)):
        rescaled = np.round(bank.weight[0, index] / weight, 4) + 0.0  # + 0.0: no "-0.0"
        print(f"  {channel}: {rescaled.tolist()}")
    # One row per output map, one column per input channel, on one grey scale.
    kernel_sheet(bank.weight.reshape(6, 3, 3), cols=3, cell=32).save(
        os.path.join(folder, "4-sobel-bank.png"))
    montage(np.abs(bank.apply(rgb.astype(np.float32), channel_axis=0)), cols=2).save(
        os.path.join(folder, "5-sobel-maps.png"))


def main(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    recover_a_blur(folder)
    fit_sobel_from_rgb(folder)
    print(f"pictures written to {folder}/")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit(__doc__.strip().splitlines()[-2])
    main(sys.argv[1] if len(sys.argv) == 2 else "learn-demo")
