"""Hardening (issue 9): differential tests of apply, FilterBank and every conv method against the
oracle; crash fuzzing of the compiled engine; the input battery; threads; memory; untrusted files.

The engine's call site is :func:`engine_call` just below, the one place to update when the
engine's argument list changes. Methods under test are :data:`METHODS_UNDER_TEST`.
"""
import gc
import json
import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from reference import oracle_apply, problem_is_valid, reference_conv, same_pads, tolerance
from strategies import DTYPES, MODES, conv_problems, examples

import imgfilt
from imgfilt import Filter, FilterBank, PillowFilter, filters

#: Every conv method the differential suite runs ("separable" needs rank-1 kernels: see
#: test_conv.py's test_separable_method_matches_oracle; here it must refuse the others).
METHODS_UNDER_TEST = ("auto", "direct", "fft")
#: imgfilt.conv the module (the package's ``conv`` attribute is the function).
CONV = sys.modules["imgfilt.convolution"]
#: Every engine build this CPU runs (baseline, AVX2, AVX-512): the fuzzer calls each.
ENGINES = list(CONV._engines.values())


def engine_call(x5, weight5, bias, out5, maps, pad_left, groups, stride, dilation, ring, tags,
                ring_rows, threads, engine=None):
    """The compiled engine, called exactly as :mod:`imgfilt.conv` calls it (the fuzzer's adapter).

    ``x5 (N, C_in, D, H, W)``, ``weight5 (C_out, C_in/groups, KD, KH, KW)``, ``out5`` and
    ``ring (threads, slots, padded width)``, ``tags`` as the fuzzer draws them; the engine takes
    the kernel flattened with its shape, and the ring flattened per thread with each row
    ``strip_width()`` longer (any lie in the drawn ring's shape stays a lie).
    """
    engine = engine or CONV._engine
    flat_ring = np.zeros((ring.shape[0], ring.shape[1] * (ring.shape[2] + engine.strip_width())),
                         ring.dtype)
    engine.correlate(x5, weight5.reshape(weight5.shape[0], -1), tuple(weight5.shape[2:]), bias,
                     out5, None, maps[0], maps[1], maps[2], pad_left, groups, stride, dilation,
                     flat_ring, tags, ring_rows, threads)


PACKAGE_PARENT = str(Path(imgfilt.__file__).parent.parent)
TESTS_DIR = str(Path(__file__).parent)
ALIASES = {"zeros": "constant", "replicate": "edge", "circular": "wrap"}


def child_env(**extra):
    """Environment for a child Python that imports this imgfilt and the tests' helpers."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_PARENT, TESTS_DIR]), **extra}


#: The fixtures these hypothesis tests use are meant to be set up once per test, not per example.
ONCE_PER_TEST = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture
def one_engine_thread():
    """The engine on one thread, for the many tiny calls of the differential tests: waking an
    OpenMP team costs up to a scheduler tick per call on a loaded machine, and the thread count
    does not change results (test_conv.py::test_thread_count_does_not_change_the_result)."""
    before = imgfilt.get_num_threads()
    imgfilt.set_num_threads(1)
    yield
    imgfilt.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Helpers: arrays, memory layouts, tolerances


def random_array(rng, shape, dtype):
    """Values of ``dtype`` that use its range: negatives, and the limits of small integers."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        low, high = max(info.min, -1000), min(info.max, 1000)
        array = rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
        if array.size:
            array.flat[0] = min(info.max, 2**20)
        return array
    return rng.normal(size=shape).astype(dtype)


LAYOUTS = ("c", "fortran", "strided", "negative", "readonly", "bigendian", "memmap")


def relayout(array, layout, directory):
    """The same values as ``array`` in another memory layout (``directory`` for memmaps)."""
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]
    if layout == "negative":  # negative strides on every axis
        flipped = np.ascontiguousarray(array[(slice(None, None, -1),) * array.ndim])
        return flipped[(slice(None, None, -1),) * array.ndim]
    if layout == "readonly":
        copy = array.copy()
        copy.flags.writeable = False
        return copy
    if layout == "bigendian":
        return array.astype(array.dtype.newbyteorder(">"))
    if layout == "memmap":
        path = Path(directory) / f"a-{np.random.default_rng().integers(1 << 40)}.dat"
        mapped = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
        mapped[...] = array
        mapped.flush()
        return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
    return array


def assert_rounded_matches(result, exact, atol, dtype):
    """``result`` is ``exact`` (float64) rounded half to even and saturated to ``dtype``, except
    where ``exact`` is within ``atol`` of a tie, where either neighbour is right."""
    info = np.iinfo(dtype)
    high = float(np.nextafter(float(info.max), 0)) if info.bits == 64 else float(info.max)
    result = result.astype(np.float64)
    expected = np.clip(np.rint(exact), info.min, high)
    near_tie = np.abs(np.abs(exact - np.floor(exact)) - 0.5) <= atol
    either = (result == np.clip(np.floor(exact), info.min, high)) | (
        result == np.clip(np.ceil(exact), info.min, high))
    # Far from a tie the rounded value is exact; away from saturation a float error can only
    # move a value across a tie, never by more than one.
    wrong = ~np.where(near_tie | (np.abs(exact - np.rint(exact)) <= atol), either,
                      result == expected)
    assert not wrong.any(), (result[wrong][:5], exact[wrong][:5])


# ---------------------------------------------------------------------------------------------
# Differential: conv and convolve, every method, against the oracle


def conv_arrays(problem):
    rng = np.random.default_rng(problem["seed"])
    shape = (problem["in_channels"],) + problem["sizes"]
    if problem["batch"] is not None:
        shape = (problem["batch"],) + shape
    x = random_array(rng, shape, problem["dtype"])
    weight = rng.normal(size=(problem["out_channels"], problem["group_in"]) + problem["kernel"])
    bias = rng.normal(size=problem["out_channels"]) if problem["bias"] else None
    return x, weight, bias


def conv_options(problem):
    return {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation", "groups")}


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
@settings(max_examples=examples(500), suppress_health_check=ONCE_PER_TEST)
@given(problem=conv_problems(), flip=st.booleans())
def test_every_method_matches_the_oracle(one_engine_thread, method, problem, flip):
    x, weight, bias = conv_arrays(problem)
    run = imgfilt.convolve if flip else imgfilt.conv
    if not problem_is_valid(problem):
        with pytest.raises(ValueError):
            run(x, weight, bias, method=method, **conv_options(problem))
        return
    result = run(x, weight, bias, method=method, **conv_options(problem))
    flipped = weight[(Ellipsis,) + (slice(None, None, -1),) * problem["ndim"]]
    expected = reference_conv(x, flipped if flip else weight, bias, **conv_options(problem))
    wide = x.dtype == np.float64 or (x.dtype.kind in "iu" and x.dtype.itemsize >= 4)
    dtype = np.dtype(np.float64) if wide else np.dtype(np.float32)  # docs/semantics.md
    assert result.dtype == dtype and result.shape == expected.shape
    terms = problem["group_in"] * int(np.prod(problem["kernel"]))
    np.testing.assert_allclose(result, expected, rtol=0,
                               atol=tolerance(x, weight, bias, terms, dtype))


# ---------------------------------------------------------------------------------------------
# Differential: imgfilt.apply against the oracle
#
# apply's definition (docs/images.md): per-channel filters (C_in = 1) run on each channel on its
# own, channel-mixing ones (C_in > 1) see all channels; 'same' padding as at stride 1, then every
# stride-th sample; the responses combined ('magnitude', 'sum' or kept); then the output range.


@st.composite
def apply_problems(draw):
    ndim = draw(st.integers(1, 3))
    cap = 8 if ndim < 3 else 5
    sizes = tuple(draw(st.lists(st.integers(1, cap), min_size=ndim, max_size=ndim)))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    # A Filter's weight has 2-3 spatial axes (a 3-axis array is a volume kernel): 1-D filters
    # are bare kernels.
    kind = "kernel" if ndim == 1 else draw(st.sampled_from(["kernel", "magnitude", "sum",
                                                            "mixing"]))
    channels = draw(st.one_of(st.none(), st.integers(1, 3)))
    if kind == "mixing":  # one channel would make it a per-channel filter
        channels = draw(st.integers(2, 3))
    per_axis = st.integers(1, 3)
    return {
        "ndim": ndim, "sizes": sizes, "kernel": kernel, "kind": kind, "channels": channels,
        "responses": draw(st.integers(1, 3)),
        "channel_axis": draw(st.sampled_from(["default", "first", "last", "negative"])),
        "stride": draw(st.one_of(per_axis, st.tuples(*[per_axis] * ndim))),
        "dilation": draw(st.one_of(per_axis, st.tuples(*[per_axis] * ndim))),
        "padding_mode": draw(st.sampled_from(MODES + ("constant", "edge", "wrap", None))),
        "output": draw(st.sampled_from([None, "clip", "abs", "float", "rescale"])),
        "dtype": draw(st.sampled_from(DTYPES)),
        "bias": draw(st.booleans()),
        "layout": draw(st.sampled_from(LAYOUTS)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def build_filter(problem, rng):
    kernel = problem["kernel"]
    if problem["kind"] == "kernel":
        return rng.normal(size=kernel)  # a bare kernel: run per channel
    if problem["kind"] in ("magnitude", "sum"):
        weight = rng.normal(size=(2, 1) + kernel)
        bias = rng.normal(size=2) if problem["bias"] else None
        return Filter(weight, bias, combine=problem["kind"])
    weight = rng.normal(size=(problem["responses"], problem["channels"]) + kernel)
    bias = rng.normal(size=problem["responses"]) if problem["bias"] else None
    return Filter(weight, bias)


@settings(max_examples=examples(1500), suppress_health_check=ONCE_PER_TEST)
@given(problem=apply_problems())
def test_apply_matches_the_oracle(one_engine_thread, tmp_path_factory, problem):
    rng = np.random.default_rng(problem["seed"])
    filt_arg = build_filter(problem, rng)
    filt = filt_arg if isinstance(filt_arg, Filter) else Filter(filt_arg)
    ndim, channels = problem["ndim"], problem["channels"]
    image = random_array(rng, problem["sizes"] + ((channels,) if channels else ()),
                         problem["dtype"])
    kwargs = {}
    if channels is None:
        if problem["channel_axis"] != "default":
            kwargs["channel_axis"] = None
    else:
        where = problem["channel_axis"]
        if where == "first":
            image, kwargs["channel_axis"] = np.moveaxis(image, -1, 0), 0
        elif where == "last":
            kwargs["channel_axis"] = ndim
        elif where == "negative":
            kwargs["channel_axis"] = -1
    for key in ("stride", "dilation", "padding_mode", "output"):
        if problem[key] is not None:
            kwargs[key] = problem[key]
    shown = relayout(image, problem["layout"], tmp_path_factory.getbasetemp())
    try:
        result = imgfilt.apply(shown, filt_arg, **kwargs)
    except ValueError as error:
        # Without channel_axis the layout is taken only where one reading fits (the rule
        # itself is tested case by case in test_layout.py); otherwise the error names the
        # argument that picks one, and saying it works.
        if channels is None or "channel_axis" in kwargs or "channel_axis" not in str(error):
            raise
        kwargs["channel_axis"] = -1
        result = imgfilt.apply(shown, filt_arg, **kwargs)

    axis = kwargs.get("channel_axis", ... if channels is None else -1)
    first = image[None] if channels is None else np.moveaxis(image, axis, 0)
    exact = oracle_apply(first.astype(np.float64), filt, problem["padding_mode"] or "reflect",
                         problem["stride"], problem["dilation"])
    if channels is None:
        exact = exact[0]
    else:
        exact = np.moveaxis(exact, 0, axis)
    dtype = np.dtype(problem["dtype"])  # native: big-endian input gives native output
    compute = np.dtype(np.float64 if dtype == np.float64 or (dtype.kind in "ui" and
                                                             dtype.itemsize >= 4) else np.float32)
    terms = filt.weight.shape[1] * int(np.prod(filt.kernel_shape)) * filt.weight.shape[0]
    atol = tolerance(first, filt.weight, filt.bias, terms, compute)
    output = problem["output"] or ("clip" if dtype.kind in "ui" else "float")
    assert result.shape == exact.shape
    if output == "abs":
        exact = np.abs(exact)
    if output == "rescale":
        finite = exact[np.isfinite(exact)]
        low, high = (np.iinfo(dtype).min, np.iinfo(dtype).max) if dtype.kind in "ui" else (0, 1)
        if finite.size and finite.max() - finite.min() > 1e3 * atol:
            exact = (exact - finite.min()) * ((float(high) - low) / (finite.max() - finite.min())) \
                + low
            atol *= (float(high) - low) / (finite.max() - finite.min()) * 4
            if dtype.kind in "ui":  # stretched values are far from ties only by luck
                assert result.dtype == dtype
                difference = np.abs(result.astype(np.float64) - np.clip(exact, low, high))
                assert difference.max() <= atol + 1 + np.spacing(float(high))
                return
        else:  # a (nearly) constant result has no contrast to stretch: only the range is promised
            assert result.min() >= low and result.max() <= high
            return
    if output == "float" or dtype.kind not in "ui":
        assert result.dtype == compute
        if output == "clip":
            exact = np.clip(exact, 0, 1)
        np.testing.assert_allclose(result, exact, rtol=0, atol=atol)
    else:
        assert result.dtype == dtype
        assert_rounded_matches(result, exact, atol, dtype)


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">u2", ">i4", "<f8"])
def test_apply_to_a_big_endian_array_computes_at_full_precision_in_native_order(dtype):
    # Found by the differential test: big-endian float64 used to be computed in float32, and
    # integer results came back big-endian, which array_to_pil and most code do not expect.
    values = np.arange(30.0).reshape(5, 6) * (1 + 1e-9 if dtype[1] == "f" else 1)
    image = values.astype(dtype)  # (arithmetic would give native order again)
    assert not image.dtype.isnative or dtype[0] == "<"
    native = image.astype(np.dtype(dtype).newbyteorder("="))
    for output in ("float", "clip"):
        result = imgfilt.apply(image, "box", output=output)
        assert result.dtype.isnative
        np.testing.assert_array_equal(result, imgfilt.apply(native, "box", output=output))
    assert imgfilt.apply(image, "box", output="float").dtype == (
        np.float64 if dtype[1:] in ("f8", "i4") else np.float32)


# ---------------------------------------------------------------------------------------------
# Differential: FilterBank.apply (and a cascade) against the oracle
#
# A bank is conv's layer: padding='same' by default (TensorFlow's rule at stride > 1), reflect
# by default, 'reflect' on a 1-sample axis repeating it; float32 maps (float64 for float64 and
# wide integer input), channel-first (C_out, *S_out) unless channels_last.


@settings(max_examples=examples(1000), suppress_health_check=ONCE_PER_TEST)
@given(problem=conv_problems(), layout=st.sampled_from(LAYOUTS),
       placement=st.sampled_from(["last", "first", "axis"]), chain=st.booleans(),
       channels_last=st.booleans())
def test_filter_bank_matches_the_oracle(one_engine_thread, tmp_path_factory, problem, layout,
                                        placement, chain, channels_last):
    assume(problem["batch"] is None)  # banks take one image; conv's batches are tested above
    rng = np.random.default_rng(problem["seed"])
    x, weight, bias = conv_arrays(problem)
    bank = FilterBank(weight, bias, groups=problem["groups"])
    options = {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation")}
    second = None
    if chain and problem["padding"] == "same":  # a 1x..x1 second layer mixing the maps
        second = FilterBank(rng.normal(size=(2, problem["out_channels"]) + (1,) * problem["ndim"]))
    if placement == "last":
        image, kwargs = np.moveaxis(x, 0, -1), {"channel_axis": -1}
    elif placement == "first":
        image, kwargs = x, {"channel_axis": 0}
    else:
        image, kwargs = np.moveaxis(x, 0, 1), {"channel_axis": 1}
    image = relayout(image, layout, tmp_path_factory.getbasetemp())
    if problem["padding"] == "same":
        ok = problem_is_valid({**problem, "padding_mode": "zeros"})  # 'reflect' on 1 sample repeats
    else:
        ok = problem_is_valid(problem)
    net = bank if second is None else bank.then(second)
    if not ok:
        with pytest.raises(ValueError):
            net.apply(image, channels_last=channels_last, **kwargs, **options)
        return
    maps = net.apply(image, channels_last=channels_last, **kwargs, **options)
    expected = reference_conv(x, weight, bias, **conv_options(problem))
    terms = problem["group_in"] * int(np.prod(problem["kernel"]))
    dtype = np.dtype(problem["dtype"])
    compute = np.dtype(np.float64 if dtype == np.float64 or (dtype.kind in "ui" and
                                                             dtype.itemsize >= 4) else np.float32)
    atol = tolerance(x, weight, bias, terms, compute)
    if second is not None:
        # The second layer reads the first one's maps with the same options; a 1x1 kernel at
        # stride s keeps every s-th sample of the maps.
        stride = problem["stride"]
        stride = (stride,) * problem["ndim"] if np.isscalar(stride) else stride
        expected = reference_conv(expected, second.weight, None, stride=stride)
        atol = atol * float(np.abs(second.weight).sum(axis=1).max()) * 2 + tolerance(
            expected, second.weight, None, problem["out_channels"], compute)
    if channels_last:
        expected = np.moveaxis(expected, 0, -1)
    assert maps.dtype == compute and maps.shape == expected.shape
    np.testing.assert_allclose(maps, expected, rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------------
# Input battery: every bad argument of apply / FilterBank names itself

IMG = np.zeros((8, 8), np.uint8)
RGB = np.zeros((8, 8, 3), np.uint8)
BANK = FilterBank(np.ones((2, 3, 3, 3)))


BATTERY = [
    (lambda: imgfilt.apply(IMG, None), TypeError, ["filter", "NoneType"]),
    (lambda: imgfilt.apply(IMG, "sobell"), ValueError, ["'sobell'", "sobel"]),
    (lambda: imgfilt.apply(IMG, "box", padding_mode="bounce"), ValueError,
     ["padding_mode='bounce'", "reflect"]),
    (lambda: imgfilt.apply(IMG, "box", stride=0), ValueError, ["stride", ">= 1"]),
    (lambda: imgfilt.apply(IMG, "box", stride=1.5), TypeError, ["stride", "1.5"]),
    (lambda: imgfilt.apply(IMG, "box", dilation=-1), ValueError, ["dilation", "-1"]),
    (lambda: imgfilt.apply(IMG, "box", output="wrap"), ValueError, ["output", "'wrap'", "clip"]),
    (lambda: imgfilt.apply(RGB, "box", channel_axis=5), ValueError, ["channel_axis=5", "range"]),
    (lambda: imgfilt.apply(RGB, "box", channel_axis="last"), TypeError, ["channel_axis"]),
    (lambda: imgfilt.apply(RGB, "box", channel_axis=True), TypeError, ["channel_axis"]),
    (lambda: imgfilt.apply(IMG.astype(object), "box"), TypeError, ["image", "object"]),
    (lambda: imgfilt.apply(IMG.astype(complex), "box"), TypeError, ["image", "complex"]),
    (lambda: imgfilt.apply(None, "box"), TypeError, ["image", "NoneType"]),
    (lambda: imgfilt.apply(np.zeros((0, 8)), "box"), ValueError, ["empty", "0"]),
    (lambda: imgfilt.apply(np.zeros((2, 3, 4, 5)), "box"), ValueError,
     ["image", "(2, 3, 4, 5)", "2-D filter", "axes="]),
    (lambda: imgfilt.apply(IMG, "gaussian", sigma=-1), ValueError, ["sigma", "-1"]),
    (lambda: imgfilt.apply(IMG, "gaussian", sigma=float("nan")), ValueError, ["sigma", "nan"]),
    (lambda: imgfilt.apply(IMG, "gaussian", sigma="2"), TypeError, ["sigma", "'2'"]),
    (lambda: imgfilt.apply(IMG, "box", size=4), ValueError, ["size", "odd", "4"]),
    (lambda: imgfilt.apply(IMG, "box", sigma=1), TypeError, ["sigma", "size"]),
    (lambda: imgfilt.apply(IMG, np.full((3, 3), np.nan)), ValueError, ["weight", "NaN"]),
    (lambda: imgfilt.apply(IMG, np.zeros((0, 3))), ValueError, ["weight", "empty"]),
    (lambda: imgfilt.apply(IMG, np.array([["a"]])), TypeError, ["weight", "<U1"]),
    (lambda: imgfilt.apply(RGB, np.zeros((1, 2, 3, 3))), ValueError,
     ["mixes C_in = 2 channels", "(8, 8, 3)", "channel_axis"]),
    (lambda: imgfilt.apply(IMG, np.zeros((1,) * 6)), ValueError, ["weight", "(1, 1, 1, 1, 1, 1)"]),
    (lambda: imgfilt.apply(IMG, BANK, output="clip"), TypeError, ["output", "FilterBank"]),
    (lambda: imgfilt.apply(IMG, "box", padding=1), TypeError, ["padding"]),
    (lambda: imgfilt.apply(Image.new("CMYK", (4, 4)), "box"), ValueError, ["'CMYK'", "RGB"]),
    (lambda: imgfilt.apply(Image.new("L", (4, 4)), "box", channel_axis=0), TypeError,
     ["channel_axis", "Pillow"]),
    (lambda: imgfilt.apply(Image.new("L", (4, 4)), "box3d"), ValueError, ["2-D", "3 spatial"]),
    (lambda: FilterBank(None), TypeError, ["filters", "NoneType"]),
    (lambda: FilterBank("sobel"), TypeError, ["filters", "str"]),
    (lambda: FilterBank([]), ValueError, ["filters", "(0,)"]),
    (lambda: FilterBank(np.zeros((3, 3))), ValueError, ["filters", "(3, 3)"]),
    (lambda: FilterBank(np.full((1, 1, 3, 3), np.inf)), ValueError, ["weight", "infinity"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), bias=np.zeros(3)), ValueError, ["bias", "(3,)"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), bias=[np.nan, 0]), ValueError, ["bias", "NaN"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), names=["a"]), ValueError, ["names", "2"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), groups=0), ValueError, ["groups", ">= 1"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), groups=3), ValueError, ["groups=3", "C_out=2"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3)), groups=1.0), TypeError, ["groups", "1.0"]),
    (lambda: FilterBank(np.zeros((2, 1, 3, 3), complex)), TypeError, ["filters", "complex"]),
    (lambda: FilterBank([filters.sobel()]), ValueError, ["filters[0]", "magnitude"]),
    (lambda: FilterBank([filters.box(3), filters.gaussian(1, radius=2)]), None, []),
    (lambda: BANK.apply(np.zeros((8, 8, 4))), ValueError, ["(8, 8, 4)", "C_in = 3"]),
    (lambda: BANK.apply(RGB, sigma=2), TypeError, ["sigma", "padding_mode"]),
    (lambda: BANK.apply(RGB, padding_mode="x"), ValueError, ["padding_mode='x'"]),
    (lambda: BANK.apply(RGB, padding=-1), ValueError, ["padding", "-1"]),
    (lambda: BANK.apply(RGB, padding=10**12), ValueError, ["GiB", "padding"]),
    (lambda: BANK.apply(RGB, stride=0), ValueError, ["stride", ">= 1"]),
    (lambda: BANK.apply(RGB.astype(object)), TypeError, ["image", "object"]),
    (lambda: BANK.apply(RGB, channel_axis=7), ValueError, ["channel_axis=7", "range"]),
    (lambda: BANK.apply(RGB, channel_axis="x"), TypeError, ["channel_axis", "'x'"]),
    (lambda: BANK.apply(RGB, channel_axis=1.0), TypeError, ["channel_axis", "1.0"]),
    (lambda: BANK.apply(None), TypeError, ["image"]),
    (lambda: BANK.apply(np.zeros((0, 8, 3))), ValueError, ["empty"]),
    (lambda: BANK.output_shape((4, 8, 8)), ValueError, ["C_in = 4", "(4, 8, 8)"]),
    (lambda: BANK.then(3), TypeError, ["FilterBank", "int"]),
    # A string is a filter stage's name (a median after the bank...): an unknown one says so.
    (lambda: BANK.then("layer"), ValueError, ["unknown filter", "'layer'"]),
    (lambda: BANK.then(FilterBank(np.ones((1, 5, 1, 1)))), ValueError, ["C_in = 5", "2 maps"]),
]


@pytest.mark.parametrize("call, error, words", BATTERY,
                         ids=[f"{i:02d}:{words[0] if words else 'accepted'}"
                              for i, (_, _, words) in enumerate(BATTERY)])
def test_bad_arguments_of_apply_and_filter_bank_name_themselves(call, error, words):
    if error is None:
        call()
        return
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_absurd_sizes_raise_before_allocating():
    x = np.zeros((1, 4, 4), np.float32)
    for options in ({"padding": 10**13}, {"padding": ((0, 0), (0, 10**14))}):
        with pytest.raises(ValueError, match="GiB"):
            imgfilt.conv(x, np.zeros((1, 1, 3, 3)), **options)
    # A huge dilation costs what reaches the output (the engine reads only those positions):
    # computed, not refused (tests/test_blowups.py).
    assert imgfilt.conv(x, np.ones((1, 1, 3, 3)), padding="same", dilation=10**13).shape == (
        1, 4, 4)
    with pytest.raises(ValueError, match="GiB"):
        BANK.output_shape((3, 2**40, 2**40))


ABSURD_CALLS = """
import resource, sys, numpy as np, imgfilt
from imgfilt import FilterBank
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
x = np.zeros((1, 4, 4), np.float32)
calls = [
    lambda: imgfilt.conv(x, np.zeros((1, 1, 3, 3)), padding=2 * 10**11),
    lambda: imgfilt.conv(x, np.zeros((1, 1, 3, 3)), padding="same", dilation=10**11),
    lambda: imgfilt.conv(np.broadcast_to(np.float32(1), (1, 2**17, 2**17)), np.ones((1, 1, 1, 1))),
    lambda: imgfilt.apply(np.zeros((8, 8), np.uint8), "box", dilation=10**12),
    lambda: imgfilt.apply(np.zeros((8, 8), np.uint8), "gaussian", sigma=1e9),
    # Inputs that take no memory (broadcast views) whose float copies cannot fit:
    lambda: imgfilt.apply(np.broadcast_to(np.uint8(0), (2**16, 2**15)), "gaussian", sigma=30),
    lambda: FilterBank(np.ones((1, 1, 3, 3))).apply(np.broadcast_to(0.0, (2**15, 2**15)),
                                                    padding=2**14),
]
for index, call in enumerate(calls):
    try:
        call()
        print(index, "computed")
    except (ValueError, MemoryError) as error:
        print(index, type(error).__name__)
print("alive")
"""


def test_absurd_sizes_give_a_clean_error_under_a_memory_limit():
    # Under an address-space limit every allocation the checks let through fails at once; the
    # process must come back with ValueError or MemoryError, never die or hang.
    import psutil

    limit = psutil.Process().memory_info().vms + (1 << 30)
    done = subprocess.run([sys.executable, "-c", ABSURD_CALLS, str(limit)], env=child_env(),
                          cwd=TESTS_DIR, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.split("\n")
    assert "alive" in lines
    outcomes = [line.split()[1] for line in lines if line[:1].isdigit()]
    # Calls 1 and 3 (huge dilations) are bounded by the work that reaches their 4x4 and 8x8
    # outputs and compute; every other one is refused or runs out of memory cleanly.
    assert len(outcomes) == 7, done.stdout
    assert outcomes[1] == outcomes[3] == "computed", done.stdout
    assert "computed" not in outcomes[:1] + outcomes[2:3] + outcomes[4:], done.stdout


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_stay_in_the_windows_that_touch_them(mode, bad):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 9, 11))
    x[0, 4, 5] = bad
    x[1, 0, 10] = bad  # a corner: reaches the other side only through the padding
    weight = rng.uniform(0.5, 1.5, size=(3, 2, 3, 3))  # no zero tap: every window sees it
    for dtype in (np.float64, np.float32):
        result = imgfilt.conv(x.astype(dtype), weight, padding="same", padding_mode=mode)
        expected = reference_conv(x, weight, padding="same", padding_mode=mode)
        assert np.array_equal(np.isnan(result), np.isnan(expected))
        assert np.array_equal(np.isposinf(result), np.isposinf(expected))
        assert np.array_equal(np.isneginf(result), np.isneginf(expected))
        finite = np.isfinite(expected)
        assert 0 < finite.sum() < finite.size
        np.testing.assert_allclose(result[finite], expected[finite], rtol=1e-4, atol=1e-4)
    # apply: the same, per channel, and the clipped integer output of a float image stays local
    image = np.moveaxis(x, 0, -1)
    smooth = imgfilt.apply(image, "box", padding_mode=mode, channel_axis=-1)
    assert 0 < np.isfinite(smooth).sum() < smooth.size
    assert np.isfinite(smooth[..., 0][6:, :3]).all()


@pytest.mark.parametrize("mode, works, result_mode", [
    ("P", True, "RGB"), ("1", True, "L"), ("CMYK", False, None), ("LA", True, "LA"),
    ("I", True, "I"), ("F", True, "F"), ("I;16", True, "I;16"), ("PA", True, "RGBA"),
    ("YCbCr", False, None), ("RGBa", False, None), ("I;16B", False, None),
])
def test_pillow_modes_work_or_are_refused_clearly(mode, works, result_mode):
    rng = np.random.default_rng(4)
    base = Image.fromarray(rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8))
    if mode.startswith("I;16"):
        image = Image.new(mode, (7, 6))
        image.putdata(rng.integers(0, 65536, size=42).tolist())
    else:
        image = base.convert(mode)
    if not works:
        for run in (lambda: imgfilt.apply(image, "box"), lambda: image.filter(PillowFilter(filters.box()))):
            with pytest.raises(ValueError, match=f"'{mode}'.*supported modes"):
                run()
        return
    result = imgfilt.apply(image, "box")
    assert result.mode == result_mode and result.size == image.size
    # The values: box of the pixels as the documented conversion reads them
    converted = {"P": "RGB", "1": "L", "PA": "RGBA"}.get(mode, mode)
    pixels = np.asarray(image.convert(converted) if converted != mode else image)
    pixels = pixels.astype(np.float64)
    alpha = None
    if result_mode in ("LA", "RGBA"):
        pixels, alpha = pixels[..., :-1], pixels[..., -1]
    first = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
    exact = oracle_apply(first, filters.box(), "reflect", 1, 1)
    exact = exact[0] if pixels.ndim == 2 else np.moveaxis(exact, 0, -1)
    got = np.asarray(result).astype(np.float64)
    if alpha is not None:
        assert np.array_equal(got[..., -1], alpha)  # alpha untouched
        got = got[..., :-1]
    if result_mode == "F":
        np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-3)
    else:
        assert np.abs(got - np.rint(exact)).max() <= 1


# ---------------------------------------------------------------------------------------------
# Library fixes found by the battery


def test_filter_bank_channel_axis_is_checked_like_apply():
    with pytest.raises(ValueError, match="channel_axis=-4 is out of range"):
        BANK.apply(RGB, channel_axis=-4)
    np.testing.assert_array_equal(BANK.apply(RGB, channel_axis=-1), BANK.apply(RGB))
    np.testing.assert_array_equal(BANK.apply(np.moveaxis(RGB, -1, 0), channel_axis=np.int64(0)),
                                  BANK.apply(RGB))


# ---------------------------------------------------------------------------------------------
# Untrusted weight and volume files: never unpickled


class RunsCode:
    """Unpickling this runs ``touch <marker>``: a stand-in for a malicious file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickled_files(directory):
    marker = Path(directory) / "pwned"
    payload = np.array([RunsCode(marker)], dtype=object)
    np.save(directory / "evil.npy", payload, allow_pickle=True)
    np.savez(directory / "evil.npz", weight=payload, bias=np.zeros(1), names=np.array(["a"]))
    (directory / "pickle.npy").write_bytes(pickle.dumps(RunsCode(marker)))  # raw pickle
    return marker


@pytest.mark.parametrize("load", [
    lambda d: FilterBank.from_torch(d / "evil.npy"),
    lambda d: FilterBank.from_keras(d / "evil.npy"),
    lambda d: FilterBank.from_torch(d / "evil.npz", key="weight"),
    lambda d: FilterBank.from_keras(d / "evil.npz", key="weight"),
    lambda d: FilterBank.load(d / "evil.npz"),
    lambda d: imgfilt.io.read_volume(d / "evil.npy"),
    lambda d: imgfilt.io.load_npy(d / "pickle.npy"),
    lambda d: imgfilt.learn._read_example(str(d / "evil.npy"), False, None),
])
def test_pickle_bearing_numpy_files_are_refused_unopened(tmp_path, load):
    marker = pickled_files(tmp_path)
    with pytest.raises(ValueError, match="pickled Python objects.*allow_pickle=False") as caught:
        load(tmp_path)
    assert "evil" in str(caught.value) or "pickle.npy" in str(caught.value)  # names the file
    assert not marker.exists()


@pytest.mark.parametrize("content, words", [
    (b"", ["empty.npz", "not a readable .npz"]),
    (b"PK\x03\x04 not really a zip", ["empty.npz", "not a readable .npz"]),
])
def test_broken_npz_files_are_refused_by_name(tmp_path, content, words):
    (tmp_path / "empty.npz").write_bytes(content)
    with pytest.raises(ValueError) as caught:
        FilterBank.load(tmp_path / "empty.npz")
    for word in words:
        assert word in str(caught.value)


def test_truncated_and_mislabelled_npy_files_are_refused_by_name(tmp_path):
    np.save(tmp_path / "whole.npy", np.arange(1000.0))
    data = (tmp_path / "whole.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "archive.npy", a=np.ones(2))  # an archive under a .npy name
    os.replace(tmp_path / "archive.npy.npz", tmp_path / "archive.npy")
    for name in ("cut.npy", "archive.npy"):
        with pytest.raises(ValueError, match=name):
            imgfilt.io.read_volume(tmp_path / name)


def test_torch_files_are_read_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")  # torch is optional, not a test dependency
    marker = tmp_path / "pwned"
    torch.save({"conv.weight": RunsCode(marker)}, tmp_path / "evil.pt")
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps({"w": RunsCode(marker)}, protocol=2))
    for name in ("evil.pt", "legacy.pth"):
        with pytest.raises(ValueError, match=f"{name}.*weights_only=True"):
            FilterBank.from_torch(tmp_path / name)
    assert not marker.exists()
    torch.save({"conv.weight": torch.ones(2, 1, 3, 3)}, tmp_path / "good.pt")
    assert FilterBank.from_torch(tmp_path / "good.pt").weight.shape == (2, 1, 3, 3)


UMASK_CHILD = """
import os, sys
os.umask(0o027)
import numpy as np, imgfilt
from imgfilt import FilterBank
directory = sys.argv[1]
imgfilt.io.write_volume(os.path.join(directory, "v.npy"), np.zeros((2, 2, 2)))
imgfilt.io.write_volume(os.path.join(directory, "v.tif"), np.zeros((2, 2, 2), np.uint8))
FilterBank(np.ones((1, 1, 3, 3))).save(os.path.join(directory, "bank.npz"))
print(" ".join(oct(os.stat(os.path.join(directory, n)).st_mode & 0o777)
               for n in ("v.npy", "v.tif", "bank.npz")))
"""


def test_written_files_follow_the_umask_like_any_new_file(tmp_path):
    # mkstemp makes 0600 files; imgfilt's outputs get 0666 & ~umask, as open() would give.
    done = subprocess.run([sys.executable, "-c", UMASK_CHILD, str(tmp_path)], env=child_env(),
                          cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0o640"] * 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


# ---------------------------------------------------------------------------------------------
# Concurrency: threads share read-only inputs and get the sequential answers


def test_many_threads_applying_filters_get_the_sequential_answers():
    rng = np.random.default_rng(8)
    colour = rng.integers(0, 256, size=(61, 47, 3), dtype=np.uint8)
    volume = rng.normal(size=(9, 20, 21)).astype(np.float32)
    for shared in (colour, volume):
        shared.flags.writeable = False
    picture = Image.fromarray(colour)
    bank = FilterBank([filters.sobel_x(), filters.sobel_y(), filters.box(3)])
    jobs = [
        lambda: imgfilt.apply(colour, "gaussian", sigma=1.5),
        lambda: imgfilt.apply(colour, "sobel", padding_mode="symmetric", stride=2),
        lambda: np.asarray(imgfilt.apply(picture, "sharpen")),
        lambda: np.asarray(picture.filter(PillowFilter(filters.emboss()))),
        lambda: imgfilt.apply(volume, "gaussian3d", sigma=1.0),
        lambda: bank.apply(colour[..., 0], padding_mode="circular"),
        lambda: bank.then(FilterBank(np.ones((2, 3, 3, 3)))).apply(colour[..., 1]),
        lambda: imgfilt.convolve(volume[None], np.ones((2, 1, 3, 3, 3)), padding="same"),
        lambda: imgfilt.apply(colour, np.ones((1, 3, 5, 5)), output="float"),
    ]
    expected = [job() for job in jobs]
    failures = []

    def work(index):
        try:
            for _ in range(8):
                if not np.array_equal(jobs[index](), expected[index]):
                    failures.append(index)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))

    def flip_threads():
        for n in (1, 3, 2) * 20:
            imgfilt.set_num_threads(n)

    before = imgfilt.get_num_threads()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    threads.append(threading.Thread(target=flip_threads))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        imgfilt.set_num_threads(before)
    assert failures == []
    assert not colour.flags.writeable and np.array_equal(np.asarray(picture), colour)


# ---------------------------------------------------------------------------------------------
# Memory: no growth over repeated calls; peak within one padded input and the output


def rss():
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def test_ten_thousand_small_calls_do_not_grow_memory(one_engine_thread):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 9, 9)).astype(np.float32)
    weight = rng.normal(size=(3, 2, 3, 3))
    image = rng.integers(0, 256, size=(9, 9, 3), dtype=np.uint8)
    for _ in range(500):  # warm up: caches, free lists, lazily imported code
        imgfilt.conv(x, weight, padding="same", padding_mode="reflect")
        imgfilt.apply(image, "sobel")
    start = rss()
    for i in range(10_000):
        imgfilt.conv(x, weight, padding="same", padding_mode=MODES[i % 5])
        if i % 10 == 0:
            imgfilt.apply(image, "sobel")
    # One leaked output (324 B) per call would be 3 MB.
    assert rss() - start < 2 * 2**20


def test_a_hundred_large_calls_do_not_grow_memory():
    rng = np.random.default_rng(10)
    image = rng.integers(0, 256, size=(600, 600, 3), dtype=np.uint8)  # 1 MB (4 MB as float)
    x = rng.normal(size=(2, 512, 512)).astype(np.float32)  # 2 MB
    weight = rng.normal(size=(2, 2, 3, 3))
    for _ in range(3):
        imgfilt.apply(image, "box")
        imgfilt.conv(x, weight, padding="same")
    start = rss()
    for _ in range(50):
        imgfilt.apply(image, "box")
        imgfilt.conv(x, weight, padding="same", padding_mode="circular")
    # A leaked result would be 1-2 MB per call: 150 MB in all.
    assert rss() - start < 16 * 2**20


@pytest.mark.parametrize("dtype, mode, stride", [
    (np.float32, "zeros", 1), (np.uint8, "reflect", 1), (np.float64, "circular", 2),
])
def test_peak_memory_of_a_large_call_is_one_padded_input_and_the_output(dtype, mode, stride):
    # docs/reliability.md: beyond its arguments, conv allocates at most one padded copy of the
    # input (in the compute dtype) and the output, plus O(rows) of scratch.
    x = np.ones((4, 400, 400), dtype=dtype)
    weight = np.ones((6, 4, 7, 7))
    compute = np.dtype(np.float64 if dtype == np.float64 else np.float32)
    out_bytes = 6 * (400 // stride) ** 2 * compute.itemsize
    padded_bytes = 4 * 406 * 406 * compute.itemsize
    imgfilt.conv(x[:, :50, :50], weight, padding="same", padding_mode=mode)  # warm up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = imgfilt.conv(x, weight, padding="same", padding_mode=mode, stride=stride)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert result.nbytes == out_bytes
    assert peak <= out_bytes + padded_bytes + 2**20, (peak, out_bytes, padded_bytes)


def test_peak_memory_of_the_separable_method_is_one_intermediate_and_the_output():
    # The passes keep one intermediate (here the size of the output) besides input and output.
    x = np.ones((4, 400, 400), dtype=np.float32)
    factor = np.arange(1.0, 16.0)
    weight = np.repeat(np.outer(factor, factor)[None, None], 4, axis=0)
    out_bytes = 4 * 400 * 400 * 4
    imgfilt.conv(x[:, :50, :50], weight, padding="same", groups=4, method="separable")
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = imgfilt.conv(x, weight, padding="same", groups=4, method="separable")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert result.nbytes == out_bytes
    assert peak <= 2 * out_bytes + 2**20, (peak, out_bytes)


# ---------------------------------------------------------------------------------------------
# Crash fuzzing of the compiled engine, in a child process (a crash fails the test; it cannot
# take the test run down). The engine must compute, or raise ValueError; never anything else.


def numpy_engine(x5, weight5, bias, out_shape, maps, pad_left, groups, stride, dilation):
    """What the engine computes, from the index maps (-1: zero), in float64. The column map's
    ``pad_left .. pad_left + W`` are the input's columns in order, whatever the map says there
    (the engine copies the interior straight)."""
    maps = list(maps)
    width = x5.shape[4]
    maps[2] = maps[2].copy()
    maps[2][pad_left:pad_left + width] = np.arange(width)
    take = [np.where(m >= 0, m, 0) for m in maps]
    keep = [m >= 0 for m in maps]
    xpad = x5[:, :, take[0]][:, :, :, take[1]][..., take[2]].astype(np.float64)
    xpad *= keep[0][:, None, None] * keep[1][None, :, None] * keep[2][None, None, :]
    n, c_out = x5.shape[0], weight5.shape[0]
    group_in, group_out = weight5.shape[1], c_out // groups
    result = np.zeros((n, c_out) + tuple(out_shape))
    for o in range(c_out):
        g = o // group_out
        for i in range(group_in):
            for kd, kh, kw in np.ndindex(*weight5.shape[2:]):
                window = xpad[:, g * group_in + i,
                              kd * dilation[0]::stride[0], kh * dilation[1]::stride[1],
                              kw * dilation[2]::stride[2]][:, :out_shape[0], :out_shape[1],
                                                           :out_shape[2]]
                result[:, o] += weight5[o, i, kd, kh, kw] * window
        result[:, o] += bias[o]
    return result


def fuzz_engine(seed, count):
    """Call the engine ``count`` times with random, partly inconsistent arguments; print a JSON
    summary. Any exception other than ValueError propagates (and fails the child)."""
    rng = np.random.default_rng(seed)
    computed = refused = 0
    for _ in range(count):
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        lie = lambda: rng.random() < 0.04  # a small chance to break each fact
        groups = int(rng.integers(1, 3))
        group_in, group_out = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        batch = int(rng.integers(1, 3))
        sizes = rng.integers(1, 6, size=3)
        kernel = rng.integers(1, 4, size=3)
        stride = rng.integers(1, 3, size=3)
        dilation = rng.integers(1, 3, size=3)
        pads = rng.integers(0, 4, size=(3, 2))
        if lie():
            stride[rng.integers(3)] = rng.integers(-1, 1)
        if lie():
            dilation[rng.integers(3)] = rng.integers(-1, 1)
        maps = []
        for axis in range(3):
            before, after = pads[axis]
            inside = np.arange(sizes[axis])
            padded = np.concatenate([rng.integers(-1, sizes[axis], size=before), inside,
                                     rng.integers(-1, sizes[axis], size=after)])
            if lie():  # an entry pointing outside the input
                padded[rng.integers(len(padded))] = rng.choice([-2, sizes[axis],
                                                                sizes[axis] + 5])
            if lie() and len(padded) > 1:  # a map of the wrong length
                padded = padded[: rng.integers(1, len(padded))]
            maps.append(np.ascontiguousarray(padded, dtype=np.intp))
        out_shape = [
            max(0, (len(maps[a]) - int(dilation[a]) * (int(kernel[a]) - 1) - 1)
                // max(int(stride[a]), 1) + 1)
            for a in range(3)]
        for axis in range(3):
            if lie():
                out_shape[axis] += int(rng.choice([-1, 1, 3]))
        out_shape = [max(v, 0) for v in out_shape]
        in_channels = groups * group_in + (int(rng.choice([-1, 1])) if lie() else 0)
        out_channels = groups * group_out + (1 if lie() else 0)
        x5 = rng.normal(size=(batch, max(in_channels, 1), *sizes)).astype(dtype)
        weight5 = rng.normal(size=(out_channels, group_in, *kernel)).astype(dtype)
        bias = rng.normal(size=out_channels + (1 if lie() else 0)).astype(dtype)
        out5 = np.full((batch + (1 if lie() else 0), out_channels, *out_shape), np.nan, dtype)
        pad_left = int(pads[2][0]) + (int(rng.choice([-5, -1, 1, 9])) if lie() else 0)
        threads = int(rng.integers(1, 4))
        span = int(max(dilation[1], 1)) * (int(kernel[1]) - 1) + 1
        ring_rows = span + (int(rng.choice([-span, -1, 2])) if lie() else 0)
        slots = group_in * int(kernel[0]) * ring_rows + (1 if lie() else 0)
        ring = np.empty((threads - (1 if lie() else 0), max(slots, 0),
                         len(maps[2]) + (int(rng.choice([-1, 2])) if lie() else 0)), dtype)
        tags = np.full((ring.shape[0], max(slots, 0) + (1 if lie() else 0)), -1, np.intp)
        try:
            engine_call(x5, weight5, bias, out5, maps, pad_left, groups,
                        tuple(int(s) for s in stride), tuple(int(d) for d in dilation),
                        ring, tags, ring_rows, threads,
                        engine=ENGINES[int(rng.integers(len(ENGINES)))])
        except ValueError:
            refused += 1
            continue
        computed += 1
        expected = numpy_engine(x5, weight5, bias, out_shape, maps, pad_left, groups, stride,
                                dilation)
        np.testing.assert_allclose(out5, expected, rtol=1e-4, atol=1e-4)
    print(json.dumps({"computed": computed, "refused": refused}))


def test_the_engine_computes_or_refuses_but_never_crashes():
    code = ("import sys, test_reliability as t; "
            "t.fuzz_engine(int(sys.argv[1]), int(sys.argv[2]))")
    count = examples(1500)
    done = subprocess.run([sys.executable, "-c", code, "11", str(count)], cwd=TESTS_DIR,
                          env=child_env(), capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["computed"] + summary["refused"] == count
    # Both paths are exercised: most consistent calls compute, most broken ones are refused.
    assert summary["computed"] > count // 4 and summary["refused"] > count // 10, summary
