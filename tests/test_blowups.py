"""Calls whose cost could explode: each is either bounded by the work that reaches its output
or refused up front with a ValueError, before allocating. Run in a child under an
address-space limit, so an allocation the checks let through fails (and the test with it)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reference import reference_conv

import imgfilt

PACKAGE_PARENT = str(Path(imgfilt.__file__).parent.parent)

CALLS = """
import resource, sys, time, numpy as np, imgfilt
from imgfilt import learn
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
img = np.random.default_rng(0).random((10, 11))
calls = {
    "dilation 1e8": lambda: imgfilt.conv(np.ones((1, 5)), np.ones((1, 1, 3)), dilation=10**8,
                                         padding="same", padding_mode="reflect"),
    "dilation 1e8 zeros": lambda: imgfilt.conv(np.ones((2, 5)), np.ones((1, 2, 3)),
                                               dilation=10**8, padding="same"),
    "dilation 1e7 2-D": lambda: imgfilt.conv(np.ones((1, 6, 7), np.float32),
                                             np.ones((1, 1, 3, 3)), dilation=10**7,
                                             padding="same", padding_mode="symmetric"),
    "fft dilation 300": lambda: imgfilt.conv(np.ones((1, 8, 8, 8)), np.ones((1, 1, 3, 3, 3)),
                                             dilation=300, padding="same", method="fft"),
    "auto dilation 300": lambda: imgfilt.conv(np.ones((1, 8, 8, 8)), np.ones((1, 1, 11, 11, 11)),
                                              dilation=300, padding="same"),
    "gaussian 3000": lambda: imgfilt.apply(np.zeros((8, 8), np.float32), "gaussian",
                                           sigma=3000),
    "gaussian 1e9": lambda: imgfilt.apply(np.zeros((8, 8), np.uint8), "gaussian", sigma=1e9),
    "learn size 100": lambda: learn.fit(img[None], img[None], 100, ridge=1.0),
}
for name, call in calls.items():
    start = time.perf_counter()
    try:
        result = call()
        outcome = "computed"
    except ValueError:
        outcome = "ValueError"
    except MemoryError:
        outcome = "MemoryError"
    print(f"{name}: {outcome} {time.perf_counter() - start:.2f}")
print("alive")
"""

EXPECTED = {
    "dilation 1e8": "computed", "dilation 1e8 zeros": "computed", "dilation 1e7 2-D": "computed",
    "fft dilation 300": "ValueError", "auto dilation 300": "computed",
    "gaussian 3000": "ValueError", "gaussian 1e9": "ValueError", "learn size 100": "ValueError",
}


def test_blow_ups_are_bounded_or_refused_under_a_memory_limit():
    import psutil  # comes with the dask extra (distributed), as in test_reliability.py
    limit = psutil.Process().memory_info().vms + (1 << 30)  # 1 GiB more than this process
    done = subprocess.run([sys.executable, "-c", CALLS, str(limit)], capture_output=True,
                          text=True, timeout=300, cwd="/",
                          env={"PYTHONPATH": PACKAGE_PARENT, "PATH": "/usr/bin:/bin",
                               "IMGFILT_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(": ") for line in done.stdout.splitlines() if ": " in line)
    assert "alive" in done.stdout
    for name, outcome in EXPECTED.items():
        got, seconds = lines[name].split()
        assert got == outcome, (name, lines[name])
        assert float(seconds) < 20, (name, seconds)  # bounded: no minutes of padding


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
@pytest.mark.parametrize("dilation", [(1, 40), (30, 1), (25, 60)])
def test_a_dilation_beyond_the_input_gives_the_oracle(mode, dilation):
    # The compact index maps (only the runs of positions the outputs read) give the same
    # answer as the whole padded axis would.
    rng = np.random.default_rng(sum(dilation))
    x = rng.normal(size=(2, 2, 5, 7))
    weight = rng.normal(size=(3, 2, 3, 4))
    options = dict(padding="same", padding_mode=mode, dilation=dilation)
    expected = reference_conv(x, weight, **options)
    np.testing.assert_allclose(imgfilt.conv(x, weight, **options), expected, atol=1e-10)
    image = rng.random((5, 7, 3)).astype(np.float32)
    per_channel = rng.normal(size=(2, 1, 3, 3))
    got = imgfilt.correlate_channels_last(image, per_channel, **options)
    for c in range(3):
        want = reference_conv(image[..., c][None].astype(np.float64), per_channel, **options)
        np.testing.assert_allclose(got[..., c], want, atol=1e-4)
    separable = np.einsum("oi,oj->oij", rng.normal(size=(2, 5)), rng.normal(size=(2, 5)))[:, None]
    got = imgfilt.correlate_channels_last(image, separable, method="separable", **options)
    for c in range(3):
        want = reference_conv(image[..., c][None].astype(np.float64), separable, **options)
        np.testing.assert_allclose(got[..., c], want, atol=1e-4)


def test_a_huge_gaussian_is_refused_with_its_size():
    with pytest.raises(ValueError, match="24001, 24001"):
        imgfilt.kernels.gaussian(3000)
    with pytest.raises(ValueError, match="taps"):
        imgfilt.kernels.gaussian1d(1e9)
    with pytest.raises(ValueError, match="at most 16,777,216 taps"):
        imgfilt.kernels.gaussian(600)  # 4801 x 4801: 23 million taps
    assert imgfilt.kernels.gaussian(1000, ndim=1).shape == (8001,)


def test_a_huge_stride_with_a_compact_kernel_is_not_mistaken_for_a_whole_axis():
    # One output, taps next to each other, a stride far larger than the axis: the read run is
    # one position per tap, as long as the dilation (1).
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 4, 50))
    weight = rng.normal(size=(1, 1, 2, 3))
    for mode in ("zeros", "reflect"):
        options = dict(stride=(1, 100), padding=((0, 0), (0, 0)), padding_mode=mode)
        np.testing.assert_allclose(imgfilt.conv(x, weight, **options),
                                   reference_conv(x, weight, **options), atol=1e-12)
        image = rng.random((4, 50, 2)).astype(np.float32)
        got = imgfilt.correlate_channels_last(image, weight, stride=(100, 1), padding=0)
        want = reference_conv(np.moveaxis(image, -1, 0)[:, None].astype(np.float64), weight,
                              stride=(100, 1))
        np.testing.assert_allclose(got[0], np.moveaxis(want[:, 0], 0, -1), atol=1e-5)
