"""Hardening (issue 9): differential tests of apply, FilterBank and every conv method against the
oracle; crash fuzzing of the compiled engine; the input battery; threads; memory; untrusted files.

The engine's call site is :func:`engine_call` just below, the one place to update when the
engine's argument list changes. Methods under test are :data:`METHODS_UNDER_TEST`.
"""
import gc
import json
import os
import pickle
import resource
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import imgfilt
from imgfilt import FilterBank, Filter, filters
from imgfilt import _engine
from reference import reference_conv, same_pads
from strategies import DTYPES, MODES, conv_problems, examples

#: Every conv method the differential suite runs ("separable" and "fft" join when they land).
METHODS_UNDER_TEST = ("auto", "direct")


def engine_call(x5, weight5, bias, out5, maps, pad_left, groups, stride, dilation, ring, tags,
                ring_rows, threads):
    """The compiled engine, called exactly as :mod:`imgfilt.conv` calls it (the fuzzer's adapter).

    ``x5 (N, C_in, D, H, W)``, ``weight5 (C_out, C_in/groups, KD, KH, KW)``, ``out5`` and the
    scratch arrays as in ``imgfilt._engine.correlate``'s docstring; ``maps`` the three index maps.
    """
    _engine.correlate(x5, weight5, bias, out5, maps[0], maps[1], maps[2], pad_left, groups,
                      stride, dilation, ring, tags, ring_rows, threads)


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


def tolerance(x, weight, bias, terms, dtype):
    """Round-off bound of a correlation of ``terms`` products in ``dtype``."""
    scale = float(np.max(np.abs(np.asarray(x, dtype=np.float64)), initial=0.0))
    scale *= float(np.max(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)))
    if bias is not None:
        scale += float(np.max(np.abs(bias)))
    return 8 * terms * np.finfo(dtype).eps * max(scale, 1.0)


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


def conv_is_valid(problem):
    """Whether conv must accept the problem, by the rules written out independently."""
    ndim, kernel, sizes = problem["ndim"], problem["kernel"], problem["sizes"]
    per_axis = lambda v: v if isinstance(v, tuple) else (v,) * ndim  # noqa: E731
    stride, dilation = per_axis(problem["stride"]), per_axis(problem["dilation"])
    padding = problem["padding"]
    if padding == "valid":
        pads = [(0, 0)] * ndim
    elif padding == "same":
        pads = [same_pads(*a) for a in zip(sizes, kernel, stride, dilation)]
    else:
        pads = [(p, p) if np.isscalar(p) else p for p in per_axis(padding)]
    for size, k, d, (before, after) in zip(sizes, kernel, dilation, pads):
        if size + before + after < d * (k - 1) + 1:
            return False
        if problem["padding_mode"] == "reflect" and size == 1 and before + after > 0:
            return False
    return True


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
@settings(max_examples=examples(500), suppress_health_check=ONCE_PER_TEST)
@given(problem=conv_problems(), flip=st.booleans())
def test_every_method_matches_the_oracle(one_engine_thread, method, problem, flip):
    x, weight, bias = conv_arrays(problem)
    run = imgfilt.convolve if flip else imgfilt.conv
    if not conv_is_valid(problem):
        with pytest.raises(ValueError):
            run(x, weight, bias, method=method, **conv_options(problem))
        return
    result = run(x, weight, bias, method=method, **conv_options(problem))
    flipped = weight[(Ellipsis,) + (slice(None, None, -1),) * problem["ndim"]]
    expected = reference_conv(x, flipped if flip else weight, bias, **conv_options(problem))
    dtype = np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)
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


def oracle_apply(channels_first, filt, mode, stride, dilation):
    """``(C_out, *S_out)`` float64 by the definition, from ``(C, *S)``."""
    ndim = filt.ndim
    stride = (stride,) * ndim if np.isscalar(stride) else tuple(stride)
    dilation = (dilation,) * ndim if np.isscalar(dilation) else tuple(dilation)
    pads = [same_pads(s, k, 1, d) for s, k, d in zip(channels_first.shape[1:], filt.kernel_shape,
                                                    dilation)]
    # numpy.pad's 'reflect' repeats the one sample of a length-1 axis, as apply promises.
    canonical = {"constant": "zeros", "edge": "replicate", "wrap": "circular"}.get(mode, mode)
    take = (slice(None),) + tuple(slice(None, None, s) for s in stride)
    if filt.per_channel:
        responses = np.stack([
            reference_conv(channel[None], filt.weight, filt.bias, padding=pads,
                           padding_mode=canonical, dilation=dilation)[take]
            for channel in channels_first])  # (C, R, *S_out)
        if filt.combine == "magnitude":
            return np.sqrt(np.sum(responses ** 2, axis=1))
        if filt.combine == "sum":
            return responses.sum(axis=1)
        return responses[:, 0]
    responses = reference_conv(channels_first, filt.weight, filt.bias, padding=pads,
                               padding_mode=canonical, dilation=dilation)[take]
    return responses


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
