"""imgfilt.conv / convolve against the NumPy oracle, scipy.ndimage and textbook examples."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import event, given, settings
from hypothesis import strategies as st

import imgfilt
from imgfilt.convolution import choose_method, correlate_channels_last, plan, rank1_factors
from reference import problem_is_valid, reference_conv
from strategies import MODES, conv_problems, examples

SCIPY_MODE = {
    "zeros": "constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "wrap",
    "symmetric": "reflect",
}


def make_arrays(problem):
    """x, weight, bias for a problem drawn by ``conv_problems``."""
    rng = np.random.default_rng(problem["seed"])
    dtype = np.dtype(problem["dtype"])
    shape = (problem["in_channels"],) + problem["sizes"]
    if problem["batch"] is not None:
        shape = (problem["batch"],) + shape
    if dtype == bool:
        x = rng.random(shape) < 0.5
    elif dtype.kind in "ui":
        info = np.iinfo(dtype)
        # Values near the type's limits: an engine that wrapped integers would be caught.
        low, high = max(info.min, -(2**20)), min(info.max, 2**20)
        x = rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
        x.flat[0] = high
    else:
        x = rng.normal(size=shape).astype(dtype)
    weight = rng.normal(
        size=(problem["out_channels"], problem["group_in"]) + problem["kernel"]
    )
    bias = rng.normal(size=problem["out_channels"]) if problem["bias"] else None
    return x, weight, bias


def options(problem):
    return {
        key: problem[key]
        for key in ("stride", "padding", "padding_mode", "dilation", "groups")
    }


def assert_matches_oracle(result, expected, x, weight, bias, group_in, compute_dtype,
                          fft=False):
    assert result.dtype == compute_dtype
    assert result.shape == expected.shape
    scale = float(np.max(np.abs(x.astype(np.float64)))) * float(
        np.max(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1))
    )
    if bias is not None:
        scale += float(np.max(np.abs(bias)))
    terms = group_in * np.prod(weight.shape[2:])
    if fft:  # a spectrum's rounding grows with the transform's length, not the kernel's taps
        terms = group_in * max(terms, 4 * np.prod(x.shape[-(weight.ndim - 2):]))
    eps = np.finfo(compute_dtype).eps
    np.testing.assert_allclose(
        result.astype(np.float64), expected, rtol=0, atol=4 * terms * eps * max(scale, 1.0)
    )


def compute_dtype_of(dtype):
    # docs/semantics.md: float64, and the integers float32 cannot hold exactly (32 and 64 bits),
    # compute in float64; every other dtype in float32.
    dtype = np.dtype(dtype)
    wide = dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4)
    return np.dtype(np.float64) if wide else np.dtype(np.float32)


# ---------------------------------------------------------------------------------------------
# The oracle, over random problems


@settings(max_examples=examples(4000))
@given(conv_problems())
def test_conv_matches_oracle(problem):
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem):
        event("invalid: must raise")
        with pytest.raises(ValueError):
            imgfilt.conv(x, weight, bias, **options(problem))
        return
    event("compared with the oracle")
    result = imgfilt.conv(x, weight, bias, **options(problem))
    expected = reference_conv(x, weight, bias, **options(problem))
    assert_matches_oracle(result, expected, x, weight, bias, problem["group_in"],
                          compute_dtype_of(problem["dtype"]))


def rank_one_weight(problem):
    """A weight of rank-1 kernels (outer products of random 1-D factors) for ``problem``."""
    rng = np.random.default_rng(problem["seed"] + 1)
    weight = np.ones((problem["out_channels"], 1) + problem["kernel"])
    for axis, size in enumerate(problem["kernel"]):
        shape = [problem["out_channels"], 1] + [1] * problem["ndim"]
        shape[2 + axis] = size
        weight = weight * rng.normal(size=shape)
    return weight


@settings(max_examples=examples(700))
@given(conv_problems())
def test_fft_method_matches_oracle(problem):
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem):
        with pytest.raises(ValueError):
            imgfilt.conv(x, weight, bias, method="fft", **options(problem))
        return
    result = imgfilt.conv(x, weight, bias, method="fft", **options(problem))
    expected = reference_conv(x, weight, bias, **options(problem))
    assert_matches_oracle(result, expected, x, weight, bias, problem["group_in"],
                          compute_dtype_of(problem["dtype"]), fft=True)


@settings(max_examples=examples(700))
@given(conv_problems())
def test_separable_method_matches_oracle(problem):
    problem = dict(problem, group_in=1, in_channels=problem["groups"])
    x, _, bias = make_arrays(problem)
    weight = rank_one_weight(problem)
    if not problem_is_valid(problem):
        with pytest.raises(ValueError):
            imgfilt.conv(x, weight, bias, method="separable", **options(problem))
        return
    result = imgfilt.conv(x, weight, bias, method="separable", **options(problem))
    expected = reference_conv(x, weight, bias, **options(problem))
    # The passes round after each axis: allow one rounding per pass on top of the taps'.
    assert_matches_oracle(result, expected, x, weight, bias, problem["ndim"],
                          compute_dtype_of(problem["dtype"]))


@pytest.mark.parametrize("method", ["direct", "separable", "fft", "auto"])
@pytest.mark.parametrize("mode", MODES)
def test_channels_last_equals_conv_bit_for_bit(method, mode):
    rng = np.random.default_rng(5)
    image = rng.random((37, 150, 3)).astype(np.float32)
    weight = rank_one_weight({"seed": 5, "out_channels": 2, "kernel": (5, 13), "ndim": 2})
    options = {"padding": "same", "padding_mode": mode, "dilation": (1, 2), "method": method}
    got = correlate_channels_last(image, weight, [0.5, -1.0], **options)
    planes = np.moveaxis(image, -1, 0)[:, None]
    expected = np.moveaxis(imgfilt.conv(planes, weight, [0.5, -1.0], **options), 0, -1)
    np.testing.assert_array_equal(got, expected)


def test_separable_refuses_what_is_not_rank_one():
    x = np.ones((2, 8, 8))
    with pytest.raises(ValueError, match="rank 1"):
        imgfilt.conv(x, np.eye(3)[None, None].repeat(2, 0), groups=2, method="separable")
    with pytest.raises(ValueError, match="one input channel per group"):
        imgfilt.conv(x, np.ones((1, 2, 3, 3)), method="separable")
    with pytest.raises(ValueError, match="not a method"):
        imgfilt.conv(x, np.ones((1, 2, 3, 3)), method="winograd")


def test_rank1_factors():
    sobel = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    factors = rank1_factors(sobel, 1e-12)
    np.testing.assert_allclose(np.outer(*factors), sobel, atol=1e-12)
    cube = np.multiply.outer(np.outer([1.0, 2.0], [3.0, 4.0, 5.0]), [1.0, -1.0])
    np.testing.assert_allclose(np.multiply.outer(np.outer(*rank1_factors(cube, 1e-12)[:2]),
                                                 rank1_factors(cube, 1e-12)[2]), cube, atol=1e-12)
    assert rank1_factors(np.eye(3), 1e-6) is None
    assert rank1_factors(np.array([[1.0, 0.0], [0.0, 1e-3]]), 1e-6) is None
    assert np.all(np.outer(*rank1_factors(np.zeros((3, 3)), 1e-6)) == 0)


def test_auto_chooses_by_the_kernel_alone():
    def chosen(weight, groups=1, **kwargs):
        p = plan((groups * weight.shape[1], 50, 60), np.float32, weight.shape, groups=groups,
                 **kwargs)
        return choose_method("auto", weight, p)[0]

    gaussian = np.outer(*[np.exp(-np.arange(-3, 4) ** 2 / 4.0)] * 2)[None, None]
    assert chosen(gaussian[..., 1:6, 1:6]) == "direct"  # 25 taps: the passes cost more
    wide = np.outer(*[np.exp(-np.arange(-7, 8) ** 2 / 20.0)] * 2)[None, None]
    assert chosen(wide) == "separable"
    assert chosen(np.random.default_rng(0).random((1, 1, 31, 31))) == "direct"
    assert chosen(np.random.default_rng(0).random((1, 1, 41, 41))) == "direct"  # 1,681 taps
    rough = np.random.default_rng(0).random((1, 1, 47, 47))  # 2,209 taps
    assert chosen(rough, padding="same") == "fft"
    assert chosen(rough, stride=2) == "direct"
    assert chosen(np.random.default_rng(0).random((4, 4, 3, 3))) == "direct"


@settings(max_examples=examples(800))
@given(conv_problems())
def test_channels_last_matches_the_oracle_per_channel(problem):
    """correlate_channels_last on (*S, C) is the oracle run on each channel alone."""
    x, weight, bias = make_arrays(problem)
    if problem["batch"] is not None or problem["group_in"] != 1 or problem["groups"] != 1:
        x = x.reshape((-1,) + problem["sizes"])  # the channels of every sample
        weight = weight[:, :1]
    problem = dict(problem, groups=1, group_in=1)
    stride = problem["stride"]
    if not isinstance(stride, tuple):
        stride = (stride,) * problem["ndim"]
    stride = stride[:-1] + (1,)  # interleaved rows need stride 1 along them
    opts = dict(options(problem), stride=stride)
    del opts["groups"]
    channels_last = np.moveaxis(x, 0, -1)
    if not problem_is_valid(dict(problem, stride=stride)):
        with pytest.raises(ValueError):
            correlate_channels_last(channels_last, weight, bias, **opts)
        return
    result = correlate_channels_last(channels_last, weight, bias, **opts)
    expected = np.stack([reference_conv(x[c][None], weight, bias, **opts)
                         for c in range(x.shape[0])], axis=-1)
    assert_matches_oracle(result, expected, x, weight, bias, 1,
                          compute_dtype_of(problem["dtype"]))


@settings(max_examples=examples(600))
@given(conv_problems())
def test_convolve_is_conv_with_flipped_kernel(problem):
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem):
        with pytest.raises(ValueError):
            imgfilt.convolve(x, weight, bias, **options(problem))
        return
    result = imgfilt.convolve(x, weight, bias, **options(problem))
    flipped = np.flip(weight, axis=tuple(range(2, weight.ndim)))
    expected = reference_conv(x, flipped, bias, **options(problem))
    assert_matches_oracle(result, expected, x, weight, bias, problem["group_in"],
                          compute_dtype_of(problem["dtype"]))


LAYOUTS = ("fortran", "strided", "negative", "readonly", "bigendian", "memmap", "list")


def relayout(x, layout, tmp_path):
    """The same values as ``x`` in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "strided":
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "negative":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if layout == "readonly":
        copy = x.copy()
        copy.flags.writeable = False
        return copy
    if layout == "bigendian":
        return x.astype(x.dtype.newbyteorder(">"))
    if layout == "memmap":
        path = tmp_path / f"x-{np.random.default_rng().integers(1 << 30)}.dat"
        mapped = np.memmap(path, dtype=x.dtype, mode="w+", shape=x.shape)
        mapped[...] = x
        mapped.flush()
        return np.memmap(path, dtype=x.dtype, mode="r", shape=x.shape)
    return x.tolist()


@settings(max_examples=examples(600))
@given(conv_problems(), st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS[:-1]))
def test_memory_layouts_give_identical_results(tmp_path_factory, problem, x_layout, w_layout):
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem):
        return
    tmp = tmp_path_factory.mktemp("layout")
    expected = imgfilt.conv(x, weight, bias, **options(problem))
    result = imgfilt.conv(
        relayout(x, x_layout, tmp), relayout(weight, w_layout, tmp), bias, **options(problem)
    )
    if x_layout == "list" and x.dtype != np.float64:
        # A list forgets the dtype: ints come back as int64, floats as float64.
        expected = imgfilt.conv(np.asarray(x.tolist()), weight, bias, **options(problem))
    np.testing.assert_array_equal(result, expected)


@settings(max_examples=examples(150))
@given(conv_problems(max_size=12, max_pad=3))
def test_thread_count_does_not_change_the_result(problem):
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem):
        return
    before = imgfilt.get_num_threads()
    try:
        imgfilt.set_num_threads(1)
        one = imgfilt.conv(x, weight, bias, **options(problem))
        imgfilt.set_num_threads(3)
        three = imgfilt.conv(x, weight, bias, **options(problem))
    finally:
        imgfilt.set_num_threads(before)
    np.testing.assert_array_equal(one, three)


# ---------------------------------------------------------------------------------------------
# Agreement with scipy.ndimage (single channel, stride 1, its centring: k//2 before)


@settings(max_examples=examples(800))
@given(
    ndim=st.integers(1, 3),
    data=st.data(),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_single_channel_matches_scipy_correlate(ndim, data, mode, seed):
    sizes = data.draw(st.tuples(*[st.integers(2, 9)] * ndim), label="sizes")
    # Kernels up to twice the input: scipy, like us, keeps bouncing for wide pads.
    kernel = tuple(data.draw(st.integers(1, 2 * s), label="k") for s in sizes)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=sizes)
    w = rng.normal(size=kernel)
    pads = [(k // 2, k - 1 - k // 2) for k in kernel]
    result = imgfilt.conv(x[None], w[None, None], padding=pads, padding_mode=mode)[0]
    expected = ndi.correlate(x, w, mode=SCIPY_MODE[mode], cval=0.0)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=examples(300))
@given(ndim=st.integers(1, 3), data=st.data(), mode=st.sampled_from(MODES),
       seed=st.integers(0, 2**32 - 1))
def test_odd_kernel_convolve_matches_scipy_convolve(ndim, data, mode, seed):
    sizes = data.draw(st.tuples(*[st.integers(2, 8)] * ndim), label="sizes")
    kernel = data.draw(st.tuples(*[st.sampled_from([1, 3, 5])] * ndim), label="kernel")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=sizes)
    w = rng.normal(size=kernel)
    result = imgfilt.convolve(x[None], w[None, None], padding="same", padding_mode=mode)[0]
    expected = ndi.convolve(x, w, mode=SCIPY_MODE[mode], cval=0.0)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Worked examples from Dive into Deep Learning (d2l.ai), chapter 7, checked by hand


def test_d2l_cross_correlation_3x3():
    # 0*0 + 1*1 + 3*2 + 4*3 = 19, and so on (d2l 7.2.1).
    x = np.arange(9.0).reshape(1, 3, 3)
    k = np.array([[0.0, 1.0], [2.0, 3.0]])[None, None]
    np.testing.assert_array_equal(imgfilt.conv(x, k), [[[19.0, 25.0], [37.0, 43.0]]])


def test_d2l_edge_detection():
    # A white image with a black stripe; the kernel [1, -1] marks its two edges (d2l 7.2.3).
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    y = imgfilt.conv(x[None], np.array([[[[1.0, -1.0]]]]))[0]
    expected = np.zeros((6, 7))
    expected[:, 1] = 1
    expected[:, 5] = -1
    np.testing.assert_array_equal(y, expected)


def test_d2l_multiple_input_channels():
    # Channel 0: 0*0+1*1+3*2+4*3 = 19; channel 1: 1*1+2*2+4*3+5*4 = 37; 19 + 37 = 56 (d2l 7.4.1).
    x = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], float)
    k = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], float)
    np.testing.assert_array_equal(imgfilt.conv(x, k[None]), [[[56, 72], [104, 120]]])
    # Multiple outputs: the kernels k, k+1, k+2 (d2l 7.4.2).
    stacked = np.stack([k, k + 1, k + 2])
    np.testing.assert_array_equal(
        imgfilt.conv(x, stacked),
        [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]],
    )


def test_d2l_1x1_convolution_is_a_matrix_multiply():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 3, 3))
    k = rng.normal(size=(2, 3, 1, 1))
    expected = (k[:, :, 0, 0] @ x.reshape(3, 9)).reshape(2, 3, 3)
    np.testing.assert_allclose(imgfilt.conv(x, k), expected, rtol=1e-12)


def test_d2l_padding_and_stride_shapes():
    x = np.ones((1, 8, 8))
    assert imgfilt.conv(x, np.ones((1, 1, 3, 3)), padding=1).shape == (1, 8, 8)
    assert imgfilt.conv(x, np.ones((1, 1, 5, 3)), padding=(2, 1)).shape == (1, 8, 8)
    assert imgfilt.conv(x, np.ones((1, 1, 3, 3)), padding=1, stride=2).shape == (1, 4, 4)
    assert imgfilt.conv(x, np.ones((1, 1, 3, 5)), padding=(0, 1), stride=(3, 4)).shape == (
        1, 2, 2)


def test_cs231n_two_filters_stride_two():
    # CS231n's demo: a 5x5x3 input padded by 1, two 3x3x3 filters at stride 2 -> 3x3x2.
    # Output (0, 0, 0) sees rows/cols -1..1, of which the padding is zero.
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(3, 5, 5)).astype(float)
    w = rng.integers(-1, 2, size=(2, 3, 3, 3)).astype(float)
    bias = np.array([1.0, 0.0])
    out = imgfilt.conv(x, w, bias, padding=1, stride=2)
    assert out.shape == (2, 3, 3)
    assert out[0, 0, 0] == bias[0] + np.sum(w[0, :, 1:, 1:] * x[:, :2, :2])
    assert out[1, 2, 1] == bias[1] + np.sum(w[1, :, :2, :] * x[:, 3:5, 1:4])


# ---------------------------------------------------------------------------------------------
# Semantics


def test_same_padding_puts_the_even_kernels_extra_row_after():
    x = np.arange(5.0)[None]
    # Kernel [1, 1] with pads (0, 1): out[i] = x[i] + x[i+1], last one sees a zero.
    np.testing.assert_array_equal(
        imgfilt.conv(x, np.ones((1, 1, 2)), padding="same"), [[1, 3, 5, 7, 4]]
    )


def test_same_padding_with_stride_is_tensorflows_rule():
    x = np.arange(7.0)[None]
    out = imgfilt.conv(x, np.array([[[0.0, 1.0, 0.0]]]), padding="same", stride=2)
    # ceil(7/2) = 4 outputs; total pad 2 -> 1 before: centre taps land on x[0], x[2], ...
    np.testing.assert_array_equal(out, [[0, 2, 4, 6]])


def test_dtypes():
    x8 = np.full((1, 4, 4), 200, dtype=np.uint8)
    out = imgfilt.conv(x8, np.ones((1, 1, 3, 3)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, 1800)  # no uint8 wrap-around
    assert imgfilt.conv(x8.astype(np.float64), np.ones((1, 1, 3, 3))).dtype == np.float64
    assert imgfilt.conv(x8.astype(np.float16), np.ones((1, 1, 3, 3))).dtype == np.float32
    assert imgfilt.conv(x8 > 0, np.ones((1, 1, 3, 3), np.float32)).dtype == np.float32


def test_wide_reflect_padding_keeps_bouncing():
    x = np.array([[0.0, 1.0, 2.0]])
    # Reading the pad right to left from the edge: 1 2 1 0 1 (cb|abc, then keep bouncing).
    out = imgfilt.conv(x, np.array([[[1.0] + [0.0] * 5]]), padding=(5,), padding_mode="reflect")
    np.testing.assert_array_equal(out, [[1, 0, 1, 2, 1, 0, 1, 2]])


def test_aliases_mean_the_same_mode():
    x = np.random.default_rng(3).normal(size=(1, 6, 5))
    w = np.random.default_rng(4).normal(size=(1, 1, 3, 3))
    for alias, canonical in [("constant", "zeros"), ("edge", "replicate"),
                             ("nearest", "replicate"), ("wrap", "circular"),
                             ("mirror", "reflect")]:
        np.testing.assert_array_equal(
            imgfilt.conv(x, w, padding=4, padding_mode=alias),
            imgfilt.conv(x, w, padding=4, padding_mode=canonical),
        )


def test_out_argument():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 7, 6)).astype(np.float32)
    w = rng.normal(size=(2, 2, 3, 3))
    expected = imgfilt.conv(x, w, padding="same")
    out = np.empty_like(expected)
    assert imgfilt.conv(x, w, padding="same", out=out) is out
    np.testing.assert_array_equal(out, expected)
    # Strided, or the input itself: written through a temporary, same answer.
    strided = np.empty((2, 7, 12), np.float32)[..., ::2]
    imgfilt.conv(x, w, padding="same", out=strided)
    np.testing.assert_array_equal(strided, expected)
    in_place = x.copy()
    imgfilt.conv(in_place, w, padding="same", out=in_place)
    np.testing.assert_array_equal(in_place, expected)


def test_plan_allocates_nothing_and_reports_shapes():
    p = plan((4, 3, 10, 12), "uint8", (6, 3, 3, 3), padding="same", stride=2)
    assert p.result_shape == (4, 6, 5, 6)
    assert p.dtype == np.float32 and p.batched


# ---------------------------------------------------------------------------------------------
# Threads and the GIL


def test_eight_threads_at_once_get_the_sequential_answers():
    rng = np.random.default_rng(6)
    jobs = [
        (rng.normal(size=(3, 40 + i, 37)).astype(np.float32), rng.normal(size=(4, 3, 3, 5)), i)
        for i in range(8)
    ]
    modes = MODES * 2
    expected = [imgfilt.conv(x, w, padding="same", padding_mode=modes[i]) for x, w, i in jobs]
    results = [None] * len(jobs)
    errors = []

    def work(index):
        x, w, i = jobs[index]
        try:
            for _ in range(20):
                results[index] = imgfilt.conv(x, w, padding="same", padding_mode=modes[i])
                if not np.array_equal(results[index], expected[index]):
                    errors.append(index)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    def flip_threads():
        for n in (1, 2, 3, 1, 2) * 10:
            imgfilt.set_num_threads(n)

    before = imgfilt.get_num_threads()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    threads.append(threading.Thread(target=flip_threads))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        imgfilt.set_num_threads(before)
    assert errors == []


def test_the_gil_is_released_while_the_engine_runs():
    x = np.random.default_rng(7).normal(size=(8, 700, 700)).astype(np.float32)
    w = np.ones((8, 8, 11, 11), np.float32)
    before = imgfilt.get_num_threads()
    imgfilt.set_num_threads(1)
    try:
        started = time.perf_counter()
        imgfilt.conv(x, w, padding="same")
        alone = time.perf_counter() - started
        ticks = 0
        worker = threading.Thread(target=imgfilt.conv, args=(x, w), kwargs={"padding": "same"})
        worker.start()
        while worker.is_alive():
            ticks += 1
            time.sleep(0.001)
        worker.join()
    finally:
        imgfilt.set_num_threads(before)
    # Had the call held the GIL, this thread could not have run while it computed.
    assert alone > 0.02
    assert ticks >= 5


def test_num_threads_settings():
    before = imgfilt.get_num_threads()
    imgfilt.set_num_threads(2)
    assert imgfilt.get_num_threads() == 2
    imgfilt.set_num_threads(before)
    for bad, error in [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                       (True, TypeError)]:
        with pytest.raises(error, match="n"):
            imgfilt.set_num_threads(bad)


def test_thread_count_for_the_calling_thread_only():
    """The Dask adapter's per-task setting: this thread's engine calls use it, others and the
    global setting are untouched, and the answer is the same bits."""
    from imgfilt.convolution import threads_in_this_thread

    before = imgfilt.get_num_threads()
    seen = {}
    x = np.random.default_rng(0).random((3, 40, 30))
    w = np.random.default_rng(1).random((2, 3, 5, 4))
    with threads_in_this_thread(1):
        assert imgfilt.get_num_threads() == 1
        other = threading.Thread(target=lambda: seen.update(other=imgfilt.get_num_threads()))
        other.start()
        other.join()
        with threads_in_this_thread(3):
            assert imgfilt.get_num_threads() == 3
        assert imgfilt.get_num_threads() == 1
        one = imgfilt.conv(x, w, padding="same", padding_mode="reflect")
    assert seen["other"] == before and imgfilt.get_num_threads() == before
    np.testing.assert_array_equal(one, imgfilt.conv(x, w, padding="same", padding_mode="reflect"))
    with pytest.raises(ValueError, match="threads"), threads_in_this_thread(0):
        pass


def test_environment_variable_sets_the_threads(tmp_path):
    # The imgfilt under test, imported from outside the source tree (which may lack the engine).
    code = "import imgfilt; print(imgfilt.get_num_threads())"
    package_parent = os.path.dirname(os.path.dirname(imgfilt.__file__))
    env = {"IMGFILT_NUM_THREADS": "3", "PATH": "", "PYTHONPATH": package_parent}
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    done = run()
    assert done.stdout.strip() == "3", done.stderr
    env["IMGFILT_NUM_THREADS"] = "many"
    done = run()
    assert done.returncode == 0
    assert "IMGFILT_NUM_THREADS" in done.stderr and int(done.stdout) >= 1


# ---------------------------------------------------------------------------------------------
# Bad arguments: each names the argument, what was given and what is allowed

X = np.zeros((3, 8, 8))
W = np.zeros((2, 3, 3, 3))


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((np.zeros((4, 8, 8)), W), {}, ValueError, ["C_in", "4"]),
        ((X, np.zeros((2, 3, 3))), {}, ValueError, ["C_in = 8", "read as (N, C_in, W)"]),
        ((X, np.zeros((2, 3, 3, 3, 3))), {}, ValueError, ["x must have shape", "(3, 8, 8)"]),
        ((X, np.zeros((4, 1, 3, 3))), {"groups": 2}, ValueError, ["groups=2", "C_in=3"]),
        ((X, np.zeros((3, 1, 3, 3))), {"groups": 3, "padding": 0}, None, []),
        ((X, np.zeros((3, 1, 3, 3))), {"groups": 0}, ValueError, ["groups", ">= 1"]),
        ((X, np.zeros((2, 3, 9, 3))), {}, ValueError, ["larger than the padded input", "9"]),
        ((X, W), {"stride": 0}, ValueError, ["stride", ">= 1", "0"]),
        ((X, W), {"stride": (1, -2)}, ValueError, ["stride[1]", "-2"]),
        ((X, W), {"stride": (1, 2, 3)}, ValueError, ["stride", "2 ints", "(1, 2, 3)"]),
        ((X, W), {"stride": float("nan")}, TypeError, ["stride", "nan"]),
        ((X, W), {"stride": 1.5}, TypeError, ["stride", "1.5"]),
        ((X, W), {"stride": True}, TypeError, ["stride", "boolean"]),
        ((X, W), {"dilation": 0}, ValueError, ["dilation", ">= 1"]),
        ((X, W), {"padding": -1}, ValueError, ["padding", ">= 0", "-1"]),
        ((X, W), {"padding": ((1, -1), 0)}, ValueError, ["padding[0][1]", "-1"]),
        ((X, W), {"padding": (1, 2, 3)}, ValueError, ["padding", "one entry per spatial axis"]),
        ((X, W), {"padding": ((1, 2, 3), 0)}, ValueError, ["padding[0]", "(before, after)"]),
        ((X, W), {"padding": "full"}, ValueError, ["padding='full'", "'same'", "'valid'"]),
        ((X, W), {"padding": 10**12}, ValueError, ["GiB", "padding"]),
        ((X, W), {"padding_mode": "bounce"}, ValueError, ["'bounce'", "'reflect'", "'symmetric'"]),
        ((X, W), {"padding_mode": 3}, TypeError, ["padding_mode", "int"]),
        ((np.zeros((3, 1, 8)), W), {"padding": 1, "padding_mode": "reflect"}, ValueError,
         ["reflect", "length 1"]),
        ((X, np.zeros((2, 6))), {}, ValueError, ["weight", "(2, 6)"]),
        ((X, np.zeros((1, 1, 1, 1, 1, 1, 1))), {}, ValueError, ["weight", "1, 2 or 3 spatial"]),
        ((X, W, np.zeros(3)), {}, ValueError, ["bias", "(2,)", "(3,)"]),
        ((X, W, np.zeros((2, 1))), {}, ValueError, ["bias", "(2, 1)"]),
        ((X.astype(object), W), {}, TypeError, ["x", "object"]),
        ((X.astype(complex), W), {}, TypeError, ["x", "complex"]),
        ((X, W.astype(complex)), {}, TypeError, ["weight", "complex"]),
        ((X.astype(str), W), {}, TypeError, ["x", "<U"]),
        (("image.png", W), {}, TypeError, ["x", "str"]),
        ((None, W), {}, TypeError, ["x", "None"]),
        ((X, W, np.array(["a", "b"])), {}, TypeError, ["bias"]),
        ((np.zeros((3, 0, 8)), W), {}, ValueError, ["x", "empty", "(3, 0, 8)"]),
        ((X, np.zeros((2, 3, 0, 3))), {}, ValueError, ["weight", "empty"]),
        ((X, W), {"method": "magic"}, ValueError, ["method='magic'", "direct"]),
        ((X, W), {"out": np.zeros((2, 5, 5))}, ValueError, ["out", "(2, 6, 6)", "(2, 5, 5)"]),
        ((X, W), {"out": np.zeros((2, 6, 6), np.float32)}, ValueError, ["out", "float64"]),
        ((X, W), {"out": [0]}, TypeError, ["out", "list"]),
    ],
)
def test_bad_arguments_raise_clear_errors(args, kwargs, error, words):
    if error is None:
        imgfilt.conv(*args, **kwargs)
        return
    with pytest.raises(error) as caught:
        imgfilt.conv(*args, **kwargs)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_read_only_out_is_refused():
    out = np.zeros((2, 6, 6))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        imgfilt.conv(X, W, out=out)


# ---------------------------------------------------------------------------------------------
# Agreement with PyTorch, where its semantics match (torch is optional: not a test dependency)


@settings(max_examples=examples(900))
@given(conv_problems(max_size=8, max_pad=4))
def test_matches_pytorch_where_it_can_pad(problem):  # about a third are comparable
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, weight, bias = make_arrays(problem)
    if not problem_is_valid(problem) or problem["padding_mode"] == "symmetric":
        event("not comparable: invalid, or symmetric (PyTorch has none)")
        return
    p = plan(x.shape, x.dtype, weight.shape, **options(problem))
    sizes = problem["sizes"]
    if any(max(pair) >= size for pair, size in zip(p.padding, sizes)) and (
            problem["padding_mode"] != "zeros"):
        event("not comparable: PyTorch refuses non-zero pads as wide as the input")
        return
    event("compared with PyTorch")
    tx = torch.from_numpy(np.asarray(x, np.float64))
    if problem["batch"] is None:
        tx = tx[None]
    pads = [width for pair in reversed(p.padding) for width in pair]  # last axis first
    torch_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                  "circular": "circular"}[problem["padding_mode"]]
    padded = functional.pad(tx, pads, mode=torch_mode)
    layer = (functional.conv1d, functional.conv2d, functional.conv3d)[problem["ndim"] - 1]
    expected = layer(padded, torch.from_numpy(weight),
                     None if bias is None else torch.from_numpy(bias),
                     stride=p.stride, dilation=p.dilation, groups=p.groups).numpy()
    if problem["batch"] is None:
        expected = expected[0]
    result = imgfilt.conv(x, weight, bias, **options(problem))
    assert_matches_oracle(result, expected, x, weight, bias, problem["group_in"],
                          compute_dtype_of(problem["dtype"]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_magnitude_matches_numpy(dtype, axis):
    from imgfilt.convolution import magnitude

    responses = (np.random.default_rng(2).normal(size=(3, 70, 2100)) * 50).astype(dtype)
    got = magnitude(responses, axis)
    expected = np.sqrt(np.sum(np.square(responses.astype(np.float64)), axis=axis))
    assert got.shape == expected.shape
    terms = responses.shape[axis]  # a sequential sum's rounding grows with its length
    np.testing.assert_allclose(got, expected, rtol=2 * terms * np.finfo(got.dtype).eps)
    # The same bits whichever axis holds the responses.
    np.testing.assert_array_equal(magnitude(np.moveaxis(responses, axis, 0), 0), got)


CONV_MODULE = sys.modules["imgfilt.convolution"]


@pytest.mark.parametrize("isa", sorted(CONV_MODULE._engines))
def test_every_engine_build_matches_the_oracle(isa, monkeypatch):
    """The baseline, AVX2 and AVX-512 builds (those this CPU runs) all pass the oracle."""
    monkeypatch.setattr(CONV_MODULE, "_engine", CONV_MODULE._engines[isa])
    assert CONV_MODULE.engine_isa() == isa

    @settings(max_examples=examples(400))
    @given(conv_problems())
    def check(problem):
        x, weight, bias = make_arrays(problem)
        if not problem_is_valid(problem):
            return
        result = imgfilt.conv(x, weight, bias, method="direct", **options(problem))
        expected = reference_conv(x, weight, bias, **options(problem))
        assert_matches_oracle(result, expected, x, weight, bias, problem["group_in"],
                              compute_dtype_of(problem["dtype"]))

    check()
    image = np.random.default_rng(1).integers(0, 256, (40, 300, 3), dtype=np.uint8)
    got = imgfilt.apply(image, "sharpen")
    floats = imgfilt.apply(image.astype(np.float32), "sharpen", output="float")
    np.testing.assert_array_equal(got, np.clip(np.rint(floats), 0, 255).astype(np.uint8))


def test_non_finite_kernels_take_a_method_that_propagates_them():
    x = np.ones((1, 30, 30))
    weight = np.ones((1, 1, 15, 15))
    weight[0, 0, 7, 7] = np.nan
    for method in ("auto", "direct", "fft"):
        assert np.isnan(imgfilt.conv(x, weight, method=method)).all()
    with pytest.raises(ValueError, match="rank 1"):
        imgfilt.conv(x, weight, method="separable")
