"""imgfilt beside OpenCV, scipy.ndimage, PyTorch and Pillow: one process, interleaved runs, medians.

Usage::

    pip install ".[bench]"            # opencv-python-headless, scipy; torch, scikit-image optional
    python benchmarks/run.py [--threads 2] [--repeat 7] [--quick] [--only TEXT] [--json out.json]

Each case runs every library in turn, ``--repeat`` rounds (interleaved, so a busy machine slows
all of them alike), and reports the median time of each and the ratio imgfilt / peer (below 1:
imgfilt is faster). Before timing, each peer's result is compared with imgfilt's; a peer that
disagrees is reported, not timed, and makes the exit status 1. Every comparison is also checked
to be able to fail: imgfilt's result shifted by one pixel must not pass it.

Sections (``--only`` matches a substring of the printed names, case-insensitively):

1. per-channel k x k on RGB float32 as images come (H, W, C), reflect borders;
2. the same on uint8 in, uint8 out;
3. Gaussian sigma = 3 (float32 and uint8) and the Sobel magnitude;
4. filter banks 3->16 and 16->64 (torch NCHW and channels_last);
5. a 3-D volume;
6. a 31 x 31 kernel (cv2.filter2D switches to the DFT there);
7. time against pixel count (beside cv2 and imgfilt on one thread), imgfilt at 1 and 2
   threads at 1080p, peak memory of one large call;
8. rank filters, grey morphology and Canny (``--only median``, ``--only 15x15 u8``,
   ``--only canny``): the targets of issue 15.

The last lines are a Markdown table of every case, ready for docs/performance.md.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import numpy as np

import imgfilt

try:
    import cv2
except ImportError:  # pragma: no cover - optional peer
    cv2 = None
try:
    import scipy.ndimage as ndi
except ImportError:  # pragma: no cover - optional peer
    ndi = None
try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - optional peer
    torch = None
try:
    from PIL import Image, ImageFilter
except ImportError:  # pragma: no cover - optional peer (imgfilt itself needs Pillow)
    Image = None
try:
    import skimage.filters as skfilters
except ImportError:  # pragma: no cover - optional peer
    skfilters = None

# The summary table has one column per library, in this order.
LIBRARIES = ("cv2", "scipy", "torch", "torch channels_last", "Pillow", "skimage",
             "imgfilt 1 thread")

# Peers whose numbers are not the same computation (Pillow's Gaussian is three box blurs):
# their error is reported and their ratio marked, but a large error does not fail the run.
APPROXIMATE = "approximate"


class Peer:
    """One library's version of a case.

    ``run`` is what is timed; ``to_array`` (not timed) turns its result into an array of
    imgfilt's shape for the comparison; ``region`` restricts the comparison (Pillow leaves the
    border pixels unfiltered); ``repeat`` caps the rounds for slow peers.
    """

    def __init__(self, library: str, label: str, run: Callable[[], Any], *,
                 tolerance: float | None = None, approximate: bool = False,
                 region: tuple[slice, ...] = (), to_array: Callable[[Any], np.ndarray] = np.asarray,
                 repeat: int | None = None):
        self.library = library
        self.label = label
        self.run = run
        self.tolerance = tolerance
        self.approximate = approximate
        self.region = region
        self.to_array = to_array
        self.repeat = repeat


class Case:
    """One benchmark: imgfilt's call and its peers', each comparable to ours.

    ``tolerance`` is relative to ``max(1, max|ours|)`` for float results and in grey levels
    for integer results. ``shift_axis`` is a spatial axis of the result, used to check that the
    comparison can fail.
    """

    def __init__(self, name: str, ours: Callable[[], np.ndarray], *, tolerance: float = 1e-4,
                 shift_axis: int = -1, repeat: int | None = None, dtype: Any = None):
        self.name = name
        self.ours = ours
        self.tolerance = tolerance
        self.shift_axis = shift_axis
        self.repeat = repeat
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.peers: list[Peer] = []

    def peer(self, library: str, label: str, run: Callable[[], Any], **options: Any) -> Case:
        self.peers.append(Peer(library, label, run, **options))
        return self


class Selection:
    """What ``--only`` keeps; case builders ask before allocating a case's data."""

    def __init__(self, only: str | None):
        self.only = only.lower() if only else None

    def __call__(self, name: str) -> bool:
        return self.only is None or self.only in name.lower()


def case_rng(name: str) -> np.random.Generator:
    """A generator seeded by the case's name: the same data whatever ``--only`` selects."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def hwc_image(rng: np.random.Generator, height: int, width: int, dtype: Any) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return rng.random((height, width, 3), dtype=np.float32)


def as_filter(kernel: np.ndarray, name: str = "kernel") -> imgfilt.Filter:
    return imgfilt.Filter(kernel, name=name)


def hwc_from_chw(result: Any) -> np.ndarray:
    """A torch ``(1, C, H, W)`` result as ``(H, W, C)``, a view."""
    return result[0].numpy().transpose(1, 2, 0)


# ---------------------------------------------------------------------------------------------
# 1, 2, 6: per-channel k x k on (H, W, C) images


def per_channel_case(name: str, hwc: np.ndarray, kernel: np.ndarray, *, ours_options: dict,
                     peers: Sequence[str], repeat: int | None = None,
                     slow_repeat: int | None = None) -> Case:
    """imgfilt.apply on an HWC image with a per-channel kernel, beside the named peers."""
    k = kernel.shape[0]
    filt = as_filter(kernel)
    integer = hwc.dtype == np.uint8
    case = Case(name, lambda: imgfilt.apply(hwc, filt, padding_mode="reflect", **ours_options),
                tolerance=1.0 if integer else 1e-4, shift_axis=1, repeat=repeat,
                dtype=hwc.dtype)
    kernel32 = kernel.astype(np.float32)
    if "cv2" in peers and cv2 is not None:
        case.peer("cv2", "cv2.filter2D (HWC)", lambda: cv2.filter2D(
            hwc, -1, kernel32, borderType=cv2.BORDER_REFLECT_101))
    if "scipy" in peers and ndi is not None:
        # scipy takes the HWC array as it is, with a (k, k, 1) kernel; 'mirror' is our 'reflect'.
        case.peer("scipy", "scipy.ndimage.correlate (HWC)", lambda: ndi.correlate(
            hwc, kernel32[:, :, None], mode="mirror"), repeat=slow_repeat)
    if "torch" in peers and torch is not None:
        # torch wants (N, C, H, W): converted once here, untimed; a channels_last tensor is the
        # HWC array itself, seen through permute.
        weight = torch.from_numpy(np.repeat(kernel32[None, None], 3, axis=0))
        nchw = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))[None]
        as_nhwc = torch.from_numpy(hwc).permute(2, 0, 1)[None]
        pad = (k // 2,) * 4

        def depthwise(x):
            return lambda: F.conv2d(F.pad(x, pad, mode="reflect"), weight, groups=3)

        case.peer("torch", "torch depthwise (NCHW)", depthwise(nchw), to_array=hwc_from_chw,
                  repeat=slow_repeat)
        case.peer("torch channels_last", "torch depthwise (channels_last = HWC)",
                  depthwise(as_nhwc), to_array=hwc_from_chw, repeat=slow_repeat)
    if "Pillow" in peers and Image is not None and k in (3, 5):
        # Pillow's Kernel flips the kernel vertically (documented) and is then a correlation;
        # scale=1 because the weights are used as given; border pixels are copied unfiltered.
        pil_kernel = ImageFilter.Kernel((k, k), kernel[::-1].ravel().tolist(), scale=1, offset=0)
        image = Image.fromarray(hwc)
        inner = (slice(k // 2, -(k // 2)),) * 2
        case.peer("Pillow", "Pillow ImageFilter.Kernel", lambda: image.filter(pil_kernel),
                  region=inner)
    return case


def per_channel_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    for k in (3, 5, 7):
        name = f"per-channel {k}x{k} f32 reflect {width}x{height}x3"
        if select(name):
            rng = case_rng(name)
            yield per_channel_case(
                name, hwc_image(rng, height, width, np.float32),
                rng.random((k, k)) - 0.25, ours_options={"output": "float"},
                peers=("cv2", "scipy", "torch"), slow_repeat=5)


def uint8_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    for k in (3, 5, 7):
        name = f"per-channel {k}x{k} u8->u8 reflect {width}x{height}x3"
        if select(name):
            rng = case_rng(name)
            # Some negative weights, summing to 1: results stay near the input's range, and
            # some saturate, so the rounding and clipping are compared too.
            kernel = rng.random((k, k)) - 0.3
            kernel /= kernel.sum()
            yield per_channel_case(name, hwc_image(rng, height, width, np.uint8), kernel,
                                   ours_options={}, peers=("cv2", "Pillow"))


def large_kernel_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    k = 31
    name = f"per-channel {k}x{k} f32 reflect {width}x{height}x3"
    if select(name):
        rng = case_rng(name)
        options = {"output": "float"}
        if "method" in inspect.signature(imgfilt.apply).parameters:
            options["method"] = "auto"
        yield per_channel_case(name, hwc_image(rng, height, width, np.float32),
                               rng.random((k, k)) - 0.25, ours_options=options, peers=("cv2",),
                               repeat=5)


# ---------------------------------------------------------------------------------------------
# 3: Gaussian and Sobel


def gaussian_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    sigma = 3.0
    radius = imgfilt.kernels.gaussian_radius(sigma)  # scipy's int(4 * sigma + 0.5)
    size = 2 * radius + 1
    # OpenCV's ksize for (0, 0) and float images is cvRound(sigma * 4 * 2 + 1) | 1 (uint8: * 3).
    cv2_float_size = round(sigma * 4 * 2 + 1) | 1
    assert cv2_float_size == size, (cv2_float_size, size)

    name = f"gaussian sigma=3 f32 reflect {width}x{height}x3"
    if select(name):
        hwc = hwc_image(case_rng(name), height, width, np.float32)
        case = Case(name, lambda: imgfilt.apply(hwc, "gaussian", sigma=sigma,
                                                padding_mode="reflect", output="float"),
                    shift_axis=1, dtype=np.float32)
        if cv2 is not None:
            case.peer("cv2", "cv2.GaussianBlur ksize (0, 0)", lambda: cv2.GaussianBlur(
                hwc, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101))
        if ndi is not None:
            case.peer("scipy", "scipy.ndimage.gaussian_filter", lambda: ndi.gaussian_filter(
                hwc, (sigma, sigma, 0), mode="mirror", truncate=4.0), repeat=5)
        yield case

    name = f"gaussian sigma=3 u8->u8 reflect {width}x{height}x3"
    if select(name):
        hwc = hwc_image(case_rng(name), height, width, np.uint8)
        case = Case(name, lambda: imgfilt.apply(hwc, "gaussian", sigma=sigma,
                                                padding_mode="reflect"),
                    tolerance=1.0, shift_axis=1, dtype=np.uint8)
        if cv2 is not None:
            # (0, 0) would give cv2's uint8 size, cvRound(sigma * 3 * 2 + 1) | 1 = 19: say 25.
            # OpenCV blurs uint8 in fixed point (whatever its AlgorithmHint): on this case it
            # strays up to 1.6 grey levels from the float64 result before rounding, where
            # imgfilt's float32 stays within 0.5, so 2 grey levels apart is still agreement.
            case.peer("cv2", f"cv2.GaussianBlur ksize ({size}, {size})", lambda: cv2.GaussianBlur(
                hwc, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101), tolerance=2.0)
        if Image is not None:
            image = Image.fromarray(hwc)
            # Extended box blurs approximate the Gaussian; their borders replicate the edge.
            case.peer("Pillow", "Pillow GaussianBlur (box approximation)",
                      lambda: image.filter(ImageFilter.GaussianBlur(sigma)), approximate=True,
                      region=(slice(size, -size),) * 2, tolerance=2.0)
        yield case


def sobel_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    name = f"sobel magnitude f32 reflect {width}x{height}x3"
    if not select(name):
        return
    hwc = hwc_image(case_rng(name), height, width, np.float32)
    case = Case(name, lambda: imgfilt.apply(hwc, "sobel", padding_mode="reflect",
                                            output="float"),
                shift_axis=1, dtype=np.float32)
    if cv2 is not None:
        def cv2_sobel():
            gx = cv2.Sobel(hwc, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
            gy = cv2.Sobel(hwc, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
            return cv2.magnitude(gx, gy)

        case.peer("cv2", "cv2.Sobel x2 + cv2.magnitude", cv2_sobel)
    if ndi is not None:
        # Per channel: on the whole HWC array, ndi.sobel would also smooth across the channels.
        case.peer("scipy", "scipy.ndimage.sobel x2 + np.hypot", lambda: np.stack(
            [np.hypot(ndi.sobel(hwc[..., c], axis=1, mode="mirror"),
                      ndi.sobel(hwc[..., c], axis=0, mode="mirror")) for c in range(3)],
            axis=-1), repeat=5)
    if skfilters is not None:
        # scikit-image normalises the smoothing to [1, 2, 1] / 4 and divides the sum of squares
        # by ndim: its magnitude is ours / (4 * sqrt(2)). A 3-D array would get a 3-D Sobel,
        # so each channel goes alone.
        case.peer("skimage", "skimage.filters.sobel per channel", lambda: np.stack(
            [skfilters.sobel(hwc[..., c], mode="mirror") for c in range(3)], axis=-1),
            to_array=lambda r: np.asarray(r) * (4 * math.sqrt(2)), repeat=5)
    yield case


# ---------------------------------------------------------------------------------------------
# 4, 5: filter banks and a volume


def bank_cases(select: Selection, height: int, width: int) -> Iterator[Case]:
    shapes = [(3, 16, k, height, width) for k in (3, 5, 7)]
    shapes.append((16, 64, 3, height // 2, width // 2))
    for c_in, c_out, k, h, w in shapes:
        name = f"bank {c_in}->{c_out} {k}x{k} zeros {w}x{h}"
        if not select(name):
            continue
        rng = case_rng(name)
        x = rng.random((c_in, h, w), dtype=np.float32)
        weight = rng.random((c_out, c_in, k, k), dtype=np.float32) - 0.5
        case = Case(name, lambda x=x, wt=weight: imgfilt.conv(x, wt, padding="same"),
                    shift_axis=-1, dtype=np.float32)
        if torch is not None:
            tx, tw = torch.from_numpy(x)[None], torch.from_numpy(weight)
            cx = tx.contiguous(memory_format=torch.channels_last)
            cw = tw.contiguous(memory_format=torch.channels_last)
            case.peer("torch", "torch conv2d NCHW", lambda tx=tx, tw=tw, p=k // 2:
                      F.conv2d(tx, tw, padding=p)[0].numpy())
            case.peer("torch channels_last", "torch conv2d channels_last",
                      lambda cx=cx, cw=cw, p=k // 2: F.conv2d(cx, cw, padding=p)[0].numpy())
        yield case


def volume_cases(select: Selection, side: int) -> Iterator[Case]:
    name = f"3-D {side}^3 3x3x3 reflect"
    if not select(name):
        return
    rng = case_rng(name)
    volume = rng.random((1, side, side, side), dtype=np.float32)
    kernel = rng.random((3, 3, 3), dtype=np.float32) - 0.25
    case = Case(name, lambda: imgfilt.conv(volume, kernel[None, None], padding="same",
                                           padding_mode="reflect"),
                shift_axis=-1, dtype=np.float32)
    if ndi is not None:
        case.peer("scipy", "scipy.ndimage.correlate", lambda: ndi.correlate(
            volume[0], kernel, mode="mirror")[None], repeat=5)
    if torch is not None:
        tv = torch.from_numpy(volume)[None]
        tk = torch.from_numpy(kernel)[None, None]
        case.peer("torch", "torch conv3d", lambda: F.conv3d(
            F.pad(tv, (1,) * 6, mode="reflect"), tk)[0].numpy())
    yield case


# ---------------------------------------------------------------------------------------------
# 7: pixel count, threads, memory


def one_thread(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` run with imgfilt on one thread (then back to the number it had)."""

    def run() -> Any:
        before = imgfilt.get_num_threads()
        imgfilt.set_num_threads(1)
        try:
            return call()
        finally:
            imgfilt.set_num_threads(before)

    return run


def scaling_cases(select: Selection, sizes: Sequence[tuple[int, int]]) -> Iterator[Case]:
    for height, width in sizes:
        name = f"scaling 5x5 f32 {width}x{height}x3"
        if select(name):
            rng = case_rng(name)
            case = per_channel_case(name, hwc_image(rng, height, width, np.float32),
                                    rng.random((5, 5)) - 0.25,
                                    ours_options={"output": "float"}, peers=("cv2",))
            # imgfilt on one thread as a peer: its ratio is the cost (or gain) of the threads at
            # each size, and its comparison checks that the threads do not change the result.
            case.peer("imgfilt 1 thread", "imgfilt on 1 thread", one_thread(case.ours))
            yield case


def thread_calls(select: Selection, height: int, width: int) -> Iterator[tuple[str, Callable]]:
    name = f"threads per-channel 7x7 f32 {width}x{height}x3"
    if select(name):
        rng = case_rng(name)
        hwc = hwc_image(rng, height, width, np.float32)
        filt = as_filter(rng.random((7, 7)) - 0.25)
        yield name, lambda: imgfilt.apply(hwc, filt, padding_mode="reflect", output="float")
    name = f"threads bank 3->16 3x3 {width}x{height}"
    if select(name):
        rng = case_rng(name)
        x = rng.random((3, height, width), dtype=np.float32)
        weight = rng.random((16, 3, 3, 3), dtype=np.float32) - 0.5
        yield name, lambda: imgfilt.conv(x, weight, padding="same")


def thread_scaling(name: str, call: Callable[[], Any], repeat: int) -> dict:
    before = imgfilt.get_num_threads()
    times: dict[int, list[float]] = {1: [], 2: []}
    try:
        call()  # warm-up
        for _ in range(repeat):
            for threads, values in times.items():
                imgfilt.set_num_threads(threads)
                started = time.perf_counter()
                call()
                values.append(time.perf_counter() - started)
    finally:
        imgfilt.set_num_threads(before)
    medians = {t: statistics.median(v) * 1e3 for t, v in times.items()}
    print(f"\n{name}: 1 thread {medians[1]:.2f} ms, 2 threads {medians[2]:.2f} ms, "
          f"speed-up {medians[1] / medians[2]:.2f}x")
    return {"case": name, "median_ms": medians, "speedup": medians[1] / medians[2]}


def memory_calls(select: Selection, height: int, width: int) -> Iterator[tuple[str, Any, Callable]]:
    name = f"memory per-channel 7x7 f32 {width}x{height}x3"
    if select(name):
        rng = case_rng(name)
        hwc = hwc_image(rng, height, width, np.float32)
        filt = as_filter(rng.random((7, 7)) - 0.25)
        yield name, hwc, lambda: imgfilt.apply(hwc, filt, padding_mode="reflect", output="float")
    name = f"memory bank 3->16 3x3 {width}x{height}"
    if select(name):
        rng = case_rng(name)
        x = rng.random((3, height, width), dtype=np.float32)
        weight = rng.random((16, 3, 3, 3), dtype=np.float32) - 0.5
        yield name, x, lambda: imgfilt.conv(x, weight, padding="same")


def peak_memory(name: str, data: np.ndarray, call: Callable[[], np.ndarray]) -> dict:
    """Peak traced bytes of one call beyond its result, against input + output bytes.

    NumPy reports its allocations to tracemalloc (the engine's scratch arrays are NumPy arrays
    too); memory malloc'ed by C code that bypasses NumPy would not be seen. The input exists
    before tracing starts, so the peak holds the output and whatever else the call needed.
    """
    call()  # warm-up: lazily built tables and imports are not the call's memory
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    io_bytes = data.nbytes + result.nbytes
    extra = max(0, peak - result.nbytes)
    print(f"\n{name}: input {data.nbytes / 2**20:.1f} MiB, output {result.nbytes / 2**20:.1f} "
          f"MiB, peak traced {peak / 2**20:.1f} MiB, extra / (input + output) = "
          f"{extra / io_bytes:.3f}")
    return {"case": name, "input_bytes": data.nbytes, "output_bytes": result.nbytes,
            "peak_traced_bytes": peak, "extra_bytes": extra, "extra_ratio": extra / io_bytes}


# ---------------------------------------------------------------------------------------------
# 8: rank filters, grey morphology and Canny (the issue-15 targets)


def rank_cases(select: Selection, height: int, width: int, side: int) -> Iterator[Case]:
    """Median, minimum/maximum and Canny beside OpenCV, scipy.ndimage, Pillow, scikit-image.

    OpenCV's medianBlur and erode/dilate replicate the border (for min/max that is the same as
    ignoring the outside), so imgfilt runs with mode="replicate"; scipy gets "nearest".
    """
    import imgfilt.rank as rank
    from imgfilt.edges import canny

    for dtype, sizes in ((np.uint8, (3, 5, 7, 15)), (np.float32, (3, 5, 7)),
                         (np.uint16, (5, 9))):
        for k in sizes:
            label = {np.uint8: "u8", np.float32: "f32", np.uint16: "u16"}[dtype]
            name = f"median {k}x{k} {label} {width}x{height}x3"
            if not select(name):
                continue
            rng = case_rng(name)
            hwc = (rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
                   if dtype == np.uint16 else hwc_image(rng, height, width, dtype))
            case = Case(name, lambda hwc=hwc, k=k: rank.median(hwc, k, axes=(0, 1),
                                                               mode="replicate"),
                        tolerance=0.0, shift_axis=1, dtype=hwc.dtype, repeat=5)
            # OpenCV refuses float and 16-bit data above 5 x 5.
            if cv2 is not None and (dtype == np.uint8 or k <= 5):
                case.peer("cv2", "cv2.medianBlur", lambda hwc=hwc, k=k: cv2.medianBlur(hwc, k))
            slow = {3: 3, 5: 1, 7: 1, 9: 1}
            if ndi is not None and k in slow and (dtype != np.uint8 or k == 3):
                case.peer("scipy", "scipy.ndimage.median_filter",
                          lambda hwc=hwc, k=k: ndi.median_filter(hwc, (k, k, 1), mode="nearest"),
                          repeat=slow[k])
            if Image is not None and dtype == np.uint8 and k in (3, 5):
                image = Image.fromarray(hwc)
                case.peer("Pillow", "Pillow MedianFilter", lambda image=image, k=k: image.filter(
                    ImageFilter.MedianFilter(k)), region=(slice(k, -k),) * 2, repeat=3)
            yield case

    name = f"median 5x5x5 u8 {side}^3"
    if select(name):
        volume = case_rng(name).integers(0, 256, (side,) * 3, dtype=np.uint8)
        case = Case(name, lambda: rank.median(volume, 5, mode="replicate"), tolerance=0.0,
                    dtype=np.uint8, repeat=5)
        if ndi is not None:
            case.peer("scipy", "scipy.ndimage.median_filter", lambda: ndi.median_filter(
                volume, 5, mode="nearest"), repeat=1)
        yield case

    for which, cv2_name in (("minimum", "erode"), ("maximum", "dilate")):
        name = f"{which} 15x15 u8 {width}x{height}x3"
        if not select(name):
            continue
        hwc = hwc_image(case_rng(name), height, width, np.uint8)
        call = getattr(rank, which)
        case = Case(name, lambda hwc=hwc, call=call: call(hwc, 15, axes=(0, 1),
                                                          mode="replicate"),
                    tolerance=0.0, shift_axis=1, dtype=np.uint8)
        if cv2 is not None:
            kernel = np.ones((15, 15), np.uint8)
            case.peer("cv2", f"cv2.{cv2_name}", lambda hwc=hwc, f=getattr(cv2, cv2_name),
                      kernel=kernel: f(hwc, kernel))
        if ndi is not None:
            peer = getattr(ndi, f"{which}_filter")
            case.peer("scipy", f"scipy.ndimage.{which}_filter", lambda hwc=hwc, peer=peer: peer(
                hwc, (15, 15, 1), mode="nearest"), repeat=3)
        yield case

    name = f"canny sigma=1 u8 grey {width}x{height}"
    if select(name):
        # A photograph, not noise: Canny's work depends on how many edges there are.
        path = os.path.join(os.path.dirname(__file__), "..", "samples", "camera.png")
        grey = np.asarray(Image.open(path).convert("L").resize((width, height)))
        case = Case(name, lambda: canny(grey, 1.0).astype(np.uint8), tolerance=0.0,
                    dtype=np.uint8)
        if cv2 is not None:
            # OpenCV's Canny has no Gaussian step and other thresholds: timed, not compared.
            case.peer("cv2", "cv2.Canny (no smoothing)", lambda: cv2.Canny(
                grey, 25, 51, L2gradient=True), approximate=True, to_array=lambda r: r // 255)
        try:
            from skimage.feature import canny as skimage_canny
        except ImportError:  # pragma: no cover - optional peer
            skimage_canny = None
        if skimage_canny is not None:
            # float32 here, float64 there: ties differ on about 1 pixel in 10^5
            # (tests/test_canny.py holds the exact comparison).
            case.peer("skimage", "skimage.feature.canny", lambda: skimage_canny(grey, 1.0),
                      to_array=lambda r: r.astype(np.uint8), tolerance=1.0, repeat=5,
                      approximate=True)
        yield case


# ---------------------------------------------------------------------------------------------
# Running, comparing, reporting


def agree(ours: np.ndarray, theirs: np.ndarray, tolerance: float,
          region: tuple[slice, ...] = ()) -> tuple[str | None, float]:
    """(problem or None, error): integer results in grey levels, float relative to max|ours|."""
    if ours.shape != theirs.shape:
        return f"shape {theirs.shape} != {ours.shape}", math.inf
    if ours.dtype.kind in "ui" and theirs.dtype != ours.dtype:
        return f"dtype {theirs.dtype} != {ours.dtype}", math.inf
    a = ours[region].astype(np.float64)
    b = theirs[region].astype(np.float64)
    if a.size == 0:
        return "nothing to compare (empty region)", math.inf
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return "NaN or infinity in a result", math.inf
    scale = 1.0 if ours.dtype.kind in "ui" else max(1.0, float(np.max(np.abs(a))))
    error = float(np.max(np.abs(a - b))) / scale
    unit = "grey levels" if ours.dtype.kind in "ui" else "relative"
    return (None if error <= tolerance else f"error {error:.3g} {unit} > {tolerance:g}"), error


def can_fail(case: Case, reference: np.ndarray) -> str | None:
    """None if a one-pixel shift of imgfilt's own result fails the comparison, else why not.

    The loosest tolerance of the peers that must agree is the one tested.
    """
    tolerance = max([case.tolerance] + [p.tolerance for p in case.peers
                                        if p.tolerance is not None and not p.approximate])
    shifted = np.roll(reference, 1, axis=case.shift_axis)
    problem, _ = agree(reference, shifted, tolerance)
    return None if problem else (f"a one-pixel shift of the result passes the comparison at "
                                 f"tolerance {tolerance:g}")


def run_case(case: Case, repeat: int) -> dict:
    reference = np.asarray(case.ours())
    result: dict[str, Any] = {"case": case.name, "median_ms": {}, "labels": {}, "error": {},
                              "tolerance": {}, "approximate": [], "disagree": {}}
    if case.dtype is not None and reference.dtype != case.dtype:
        result["disagree"]["imgfilt"] = f"imgfilt returned {reference.dtype}, not {case.dtype}"
    vacuous = can_fail(case, reference)
    if vacuous:
        result["disagree"]["check"] = vacuous
    if not case.peers:
        result["disagree"]["check"] = "no peer to compare with (install cv2/scipy/torch)"
    timed = []
    for peer in case.peers:
        tolerance = case.tolerance if peer.tolerance is None else peer.tolerance
        problem, error = agree(reference, np.asarray(peer.to_array(peer.run())), tolerance,
                               peer.region)
        result["labels"][peer.library] = peer.label
        result["error"][peer.library] = error
        result["tolerance"][peer.library] = tolerance
        if peer.approximate:
            result["approximate"].append(peer.library)
        if problem and not peer.approximate:
            result["disagree"][peer.library] = problem
        else:
            timed.append(peer)
    rounds = min(repeat, case.repeat or repeat)
    runs = [("imgfilt", case.ours, rounds)] + [
        (p.library, p.run, min(rounds, p.repeat or rounds)) for p in timed]
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for round_index in range(rounds):  # interleaved: every library once per round
        for name, run, count in runs:
            if round_index < count:
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    result["median_ms"] = {name: statistics.median(values) * 1e3
                           for name, values in times.items()}
    result["rounds"] = {name: len(values) for name, values in times.items()}
    return result


def print_result(result: dict) -> None:
    ours = result["median_ms"]["imgfilt"]
    print(f"\n{result['case']}")
    print(f"  {'imgfilt':40s} {ours:9.2f} ms")
    for library, label in result["labels"].items():
        error = result["error"][library]
        note = " (approximate)" if library in result["approximate"] else ""
        if library in result["median_ms"]:
            ms = result["median_ms"][library]
            print(f"  {label:40s} {ms:9.2f} ms   imgfilt/peer = {ours / ms:5.2f}x   "
                  f"error {error:.2g}{note}")
    for name, problem in result["disagree"].items():
        label = result["labels"].get(name, name)
        print(f"  {label:40s} DISAGREES: {problem}")


def ratio_cell(result: dict, library: str) -> str:
    if library in result["disagree"]:
        return "disagrees"
    if library not in result["median_ms"]:
        return ""
    ratio = result["median_ms"]["imgfilt"] / result["median_ms"][library]
    return f"{ratio:.2f}" + (" ≈" if library in result["approximate"] else "")


def markdown_summary(results: list[dict], threads: list[dict], memory: list[dict]) -> str:
    columns = [lib for lib in LIBRARIES if any(lib in r["labels"] for r in results)]
    lines = ["| case | imgfilt ms | " + " | ".join(f"/ {c}" for c in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for r in results:
        cells = [ratio_cell(r, c) for c in columns]
        lines.append(f"| {r['case']} | {r['median_ms']['imgfilt']:.1f} | " + " | ".join(cells)
                     + " |")
    text = "\n".join(lines)
    text += ("\n\nRatios are imgfilt time / peer time (below 1: imgfilt is faster); "
             "≈ marks an approximation of the same filter (not the same numbers).")
    if threads:
        text += "\n\n| imgfilt call | 1 thread ms | 2 threads ms | speed-up |\n|---|---:|---:|---:|"
        for t in threads:
            text += (f"\n| {t['case'].removeprefix('threads ')} | {t['median_ms'][1]:.1f} | "
                     f"{t['median_ms'][2]:.1f} | {t['speedup']:.2f} |")
    if memory:
        text += ("\n\n| imgfilt call | input + output MiB | peak traced MiB | "
                 "extra / (input + output) |\n|---|---:|---:|---:|")
        for m in memory:
            io_mib = (m["input_bytes"] + m["output_bytes"]) / 2**20
            text += (f"\n| {m['case'].removeprefix('memory ')} | {io_mib:.1f} | "
                     f"{m['peak_traced_bytes'] / 2**20:.1f} | {m['extra_ratio']:.3f} |")
    return text


def versions() -> dict[str, str]:
    found = {"imgfilt": imgfilt.__version__, "numpy": np.__version__}
    for label, module in (("cv2", cv2), ("scipy", ndi), ("torch", torch), ("Pillow", Image),
                          ("skimage", skfilters)):
        if module is not None:
            top = sys.modules[module.__name__.split(".")[0]]
            found[label] = getattr(top, "__version__", "?")
    found["imgfilt engine"] = imgfilt.engine_isa()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for imgfilt, cv2 and torch (default 2)")
    parser.add_argument("--repeat", type=int, default=11,
                        help="rounds per case (slow peers and cases use fewer)")
    parser.add_argument("--quick", action="store_true", help="small images, for a smoke run")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the cases whose name contains TEXT (case-insensitive)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeat < 1:
        parser.error("--threads and --repeat must be >= 1")

    imgfilt.set_num_threads(args.threads)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    select = Selection(args.only)
    if args.quick:
        height, width, side = 270, 480, 48
        sizes = [(128, 128), (256, 256), (512, 512)]
    else:
        height, width, side = 1080, 1920, 128
        sizes = [(256, 256), (512, 512), (1024, 1024), (2048, 2048), (2160, 3840)]
    info = versions()
    # Other processes on the machine make OpenMP barriers wait: the load says how busy it was.
    load_before = os.getloadavg()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, load {load_before[0]:.2f}, "
          f"{args.threads} threads, median of {args.repeat} (fewer for slow cases); scipy and "
          "Pillow run on one thread; " + ", ".join(f"{k} {v}" for k, v in info.items()))
    started = time.perf_counter()

    cases = [
        per_channel_cases(select, height, width),
        uint8_cases(select, height, width),
        gaussian_cases(select, height, width),
        sobel_cases(select, height, width),
        bank_cases(select, height, width),
        volume_cases(select, side),
        large_kernel_cases(select, height, width),
        scaling_cases(select, sizes),
        rank_cases(select, height, width, side),
    ]
    results = []
    for builder in cases:
        for case in builder:  # built one at a time: each case's data is freed after it runs
            result = run_case(case, args.repeat)
            print_result(result)
            results.append(result)
            del case
    threads = [thread_scaling(name, call, args.repeat)
               for name, call in thread_calls(select, height, width)]
    memory = [peak_memory(name, data, call) for name, data, call in memory_calls(select, height, width)]
    if not (results or threads or memory):
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 2

    failed = [r for r in results if r["disagree"]]
    load_after = os.getloadavg()
    print(f"\n## Summary ({args.threads} threads, {time.perf_counter() - started:.0f} s, "
          f"load {load_before[0]:.2f} -> {load_after[0]:.2f})\n")
    print(markdown_summary(results, threads, memory))
    for r in failed:
        for name, problem in r["disagree"].items():
            print(f"FAILED: {r['case']}: {r['labels'].get(name, name)}: {problem}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"threads": args.threads, "repeat": args.repeat, "quick": args.quick,
                       "machine": platform.machine(), "cpus": os.cpu_count(),
                       "load_average": [load_before[0], load_after[0]], "python": sys.version,
                       "versions": info, "results": results, "threads_scaling": threads,
                       "memory": memory}, handle, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
