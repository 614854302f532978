"""Every script in samples/ runs, writes only into the folder it is given, and writes what
independent calls (scipy.ndimage, numpy.pad, Pillow) say it should; the committed sample data
is what its generator script makes."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from scipy import ndimage

import imgfilt

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ENV = {**os.environ, "PYTHONPATH": str(Path(imgfilt.__file__).resolve().parent.parent)}


def _listing():
    return {p.name: p.stat().st_mtime_ns for p in SAMPLES.iterdir()}


def run_sample(script, *args, cwd):
    """Run samples/<script> as a user would, from ``cwd``; samples/ must not change."""
    before = _listing()
    result = subprocess.run([sys.executable, str(SAMPLES / script), *map(str, args)], check=False,
                            cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _listing() == before, "a sample script wrote into samples/"
    return result.stdout


def _gray(name, reduce=1):
    with Image.open(SAMPLES / name) as photo:
        gray = photo.convert("L")
    return np.asarray(gray.reduce(reduce) if reduce > 1 else gray)


def test_sources_lists_every_data_file():
    sources = (SAMPLES / "SOURCES.md").read_text()
    data = [p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".npy", ".tif", ".npz")]
    assert {"phantom.npy", "phantom.tif", "ecg.npy", "edges.npz", "coffee.png"} <= set(data)
    for name in data:
        assert f"| {name} |" in sources, f"{name} has no row in samples/SOURCES.md"


# -- generated data: regenerating gives the committed files -------------------------------------

def test_phantom_regenerates_and_both_files_agree(tmp_path):
    run_sample("make_phantom.py", "out", cwd=tmp_path)
    committed = np.load(SAMPLES / "phantom.npy", allow_pickle=False)
    assert committed.shape == (64, 64, 64) and committed.dtype == np.uint8
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "phantom.npy"), committed)
    with Image.open(SAMPLES / "phantom.tif") as stack:  # read with Pillow alone
        pages = [np.asarray(page) for page in ImageSequence.Iterator(stack)]
    np.testing.assert_array_equal(np.stack(pages), committed)
    np.testing.assert_array_equal(imgfilt.io.read_volume(tmp_path / "out" / "phantom.tif"),
                                  committed)
    # The shapes are there: bright skull shell, darker brain, dark background at the corners.
    row = committed[32, 32].astype(int)  # along x through the centre: x = (i - 31.5) / 31.5
    assert row[:9].max() < 70                    # outside (|x| > 0.72): background 40 + noise
    assert row[10:12].min() > 180                # the shell, 0.63 < |x| < 0.69: 40 + 200 * 0.8
    assert 60 < np.median(row[13:20]) < 100      # brain: 40 + 200 * 0.2


def test_ecg_regenerates(tmp_path):
    run_sample("make_ecg.py", cwd=tmp_path)  # default OUTDIR: the current directory
    committed = np.load(SAMPLES / "ecg.npy", allow_pickle=False)
    assert committed.shape == (2500,) and committed.dtype == np.float32
    # exp/sin may differ by an ulp between C libraries: compare to far below the 0.02 mV noise
    np.testing.assert_allclose(np.load(tmp_path / "ecg.npy"), committed, rtol=0, atol=1e-6)
    # About 72 beats per minute: 12 R peaks (the only samples above 0.9 mV) in 10 s.
    peaks = ndimage.label(committed > 0.9)[1]
    assert 11 <= peaks <= 13


def test_edges_bank_regenerates(tmp_path):
    run_sample("make_bank.py", "out", cwd=tmp_path)
    committed = imgfilt.FilterBank.load(SAMPLES / "edges.npz")
    fresh = imgfilt.FilterBank.load(tmp_path / "out" / "edges.npz")
    np.testing.assert_array_equal(fresh.weight, committed.weight)
    np.testing.assert_array_equal(fresh.bias, committed.bias)
    assert fresh.names == committed.names
    assert committed.weight.shape == (6, 1, 3, 3)
    textbook_sobel_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    np.testing.assert_array_equal(committed.weight[0, 0], textbook_sobel_x)
    np.testing.assert_array_equal(committed.weight[1, 0], np.transpose(textbook_sobel_x))
    assert committed.weight.reshape(6, -1).sum(axis=1).tolist() == [0] * 6  # all edge detectors


# -- example scripts: their outputs against independent computations ----------------------------

def test_pipeline(tmp_path):
    run_sample("pipeline.py", cwd=tmp_path)  # default OUTDIR: ./samples-out
    out = tmp_path / "samples-out"
    features = np.load(out / "coffee-features.npy")
    gray = _gray("coffee.png", reduce=2)
    assert features.shape == (2,) + gray.shape and features.dtype == np.float32
    smooth = ndimage.gaussian_filter(gray.astype(float), 1.5, mode="mirror")
    assert np.abs(features[0] * 255 - smooth).max() <= 1.0  # uint8 rounding only
    smooth8 = np.rint(features[0] * 255)
    magnitude = np.hypot(ndimage.sobel(smooth8, axis=1, mode="mirror"),
                         ndimage.sobel(smooth8, axis=0, mode="mirror"))
    np.testing.assert_allclose(features[1], magnitude / magnitude.max(), atol=1e-5)
    mask = np.asarray(Image.open(out / "coffee-edge-mask.png")) > 0
    np.testing.assert_array_equal(mask, features[1] > np.quantile(features[1], 0.9))
    assert 0.09 < mask.mean() < 0.11


def test_bank_montage(tmp_path):
    run_sample("bank_montage.py", "maps", cwd=tmp_path)
    maps = np.load(tmp_path / "maps" / "camera-maps.npy")
    gray = _gray("camera.png", reduce=2).astype(float)
    bank = imgfilt.FilterBank.load(SAMPLES / "edges.npz")
    assert maps.shape == (6, 256, 256)
    for feature, kernel in zip(maps, bank.weight[:, 0]):
        np.testing.assert_allclose(feature, ndimage.correlate(gray, kernel, mode="mirror"),
                                   atol=1e-3)
    sheet = Image.open(tmp_path / "maps" / "camera-montage.png")
    assert sheet.size == (3 * 256 + 2, 2 * 256 + 1)  # 3 columns, 2 rows, 1-pixel lines
    sheet = np.asarray(sheet)
    assert (sheet[256, :] == 255).all() and (sheet[:, 256] == 255).all()
    laplacian8 = maps[5]
    stretched = np.rint((laplacian8 - laplacian8.min()) * 255 / np.ptp(laplacian8))
    np.testing.assert_array_equal(sheet[257:, 514:], stretched)


def test_rgb_edges(tmp_path):
    run_sample("rgb_edges.py", cwd=tmp_path)
    out = tmp_path / "samples-out"
    rgb = np.asarray(Image.open(SAMPLES / "chelsea.png").convert("RGB")).astype(float)
    planes = []
    for index, channel in enumerate("rgb"):
        with Image.open(out / f"chelsea-edges-{channel}.png") as picture:
            assert picture.mode == "L"
            plane = np.asarray(picture)
        # integer image x integer kernel: exact in float32, so the pictures match exactly
        expected = np.clip(np.abs(ndimage.sobel(rgb[..., index], axis=1, mode="mirror")), 0, 255)
        np.testing.assert_array_equal(plane, expected)
        planes.append(plane)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "chelsea-edges-rgb.png")),
                                  np.stack(planes, axis=-1))


def test_volume_filter(tmp_path):
    run_sample("volume_filter.py", "vol", cwd=tmp_path)
    out = tmp_path / "vol"
    volume = np.load(SAMPLES / "phantom.npy").astype(float)
    smooth = imgfilt.io.read_volume(out / "phantom-smooth.tif")
    assert smooth.dtype == np.uint8
    expected = ndimage.gaussian_filter(volume, 1.0, mode="mirror")
    assert np.abs(smooth - expected).max() <= 0.5 + 1e-3  # rounded to the nearest integer
    edges = np.load(out / "phantom-edges.npy")
    magnitude = np.sqrt(sum(ndimage.sobel(smooth.astype(float), axis=k, mode="mirror") ** 2
                            for k in range(3)))
    np.testing.assert_allclose(edges, magnitude, rtol=1e-5, atol=1e-3)
    assert Image.open(out / "phantom-slices.png").size == (3 * 64, 3 * 64)


def test_padding_modes(tmp_path):
    run_sample("padding_modes.py", "pads", "--pad", "40", cwd=tmp_path)
    with np.load(tmp_path / "pads" / "padding-modes.npz") as saved:
        arrays = dict(saved)
    numpy_names = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap", "symmetric": "symmetric"}
    assert list(arrays) == list(numpy_names)
    crop = arrays["zeros"][40:-40, 40:-40]
    assert crop.shape == (96, 96, 3) and crop.std() > 10  # a real piece of the photo
    for mode, numpy_name in numpy_names.items():
        np.testing.assert_array_equal(arrays[mode],
                                      np.pad(crop, ((40, 40), (40, 40), (0, 0)), numpy_name))
    width, height = Image.open(tmp_path / "pads" / "padding-modes.png").size
    assert width >= 5 * (96 + 80) and height > 96 + 80


def test_ecg_filter(tmp_path):
    run_sample("ecg_filter.py", cwd=tmp_path)
    trace = np.load(SAMPLES / "ecg.npy").astype(float)
    cleaned = np.load(tmp_path / "samples-out" / "ecg-clean.npy")
    expected = (ndimage.gaussian_filter1d(trace, 2.0, mode="mirror")
                - ndimage.gaussian_filter1d(trace, 75.0, mode="mirror"))
    np.testing.assert_allclose(cleaned, expected, atol=1e-5)
    # The point of the lesson: the 50 Hz hum is gone. A Gaussian of sigma 2 samples passes
    # exp(-(2 pi f sigma)^2 / 2) = 4 % of it at f = 50 / 250 cycles per sample.
    hum_bin = 50 * trace.size // 250
    assert np.abs(np.fft.rfft(cleaned))[hum_bin] < 0.05 * np.abs(np.fft.rfft(trace))[hum_bin]
    assert Image.open(tmp_path / "samples-out" / "ecg-filtered.png").width == 900


def test_edges_script(tmp_path):
    out = run_sample("edges.py", SAMPLES / "coffee.png", "coffee-sobel.png", cwd=tmp_path)
    assert "coffee-sobel.png" in out
    gray = _gray("coffee.png").astype(float)
    magnitude = np.hypot(ndimage.sobel(gray, axis=1, mode="mirror"),
                         ndimage.sobel(gray, axis=0, mode="mirror"))
    written = np.asarray(Image.open(tmp_path / "coffee-sobel.png"))
    # the script truncates (astype) after clipping: float32 vs float64 may move an integer by one
    assert np.abs(written - np.clip(magnitude, 0, 255).astype(np.uint8).astype(int)).max() <= 1


@pytest.mark.parametrize("script", ["pipeline.py", "bank_montage.py", "rgb_edges.py",
                                    "volume_filter.py", "padding_modes.py", "ecg_filter.py",
                                    "make_phantom.py", "make_ecg.py", "make_bank.py"])
def test_scripts_explain_themselves(script, tmp_path):
    text = run_sample(script, "--help", cwd=tmp_path)
    assert "OUTDIR" in text.upper() and list(tmp_path.iterdir()) == []
