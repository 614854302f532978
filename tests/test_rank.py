"""imgfilt.rank against the sorting oracle (tests/rank_reference.py), scipy.ndimage, Pillow, OpenCV."""
import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

import imgfilt
from imgfilt import rank as R
from rank_reference import SCIPY_MODE, reference_rank
from strategies import MODES, examples

RANK_DTYPES = ("uint8", "uint16", "int16", "float32", "float64", "int8", "int32", "uint32",
               "int64", "uint64", "float16", "bool")


def random_array(rng, shape, dtype, special=False):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        # Sometimes few distinct values (ties), sometimes the whole range.
        if rng.integers(0, 2):
            return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        return rng.integers(max(info.min, -3), 4, shape).astype(dtype)
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    if rng.integers(0, 3) == 0:
        x = np.round(x / 50).astype(dtype)  # ties
    if special and x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, max(1, flat.size // 5))
        flat[picks] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype),
                                 picks.size)
    return x


def methods_for(dtype, footprint, k):
    count = int(footprint.sum())
    names = ["auto", "network"]
    if np.dtype(dtype).itemsize <= 2 and np.dtype(dtype).kind in "uib":
        names.append("histogram")
    if (footprint.shape[-2:] in ((3, 3), (5, 5)) and all(n == 1 for n in footprint.shape[:-2])
            and footprint.all() and k == count // 2):
        names.append("columns")
    if k in (0, count - 1):
        names.append("scan")
        if footprint.all():
            names += ["box", "van-herk"]
    return names


@st.composite
def rank_problems(draw):
    ndim = draw(st.integers(1, 3))
    cap = 9 if ndim < 3 else 6
    mode = draw(st.sampled_from(MODES))
    low = 2 if mode == "reflect" else 1
    sizes = [draw(st.integers(low, cap)) for _ in range(ndim)]
    if ndim < 3 and draw(st.integers(0, 3)) == 0:
        sizes[-1] = draw(st.integers(60, 150))  # whole LANES strips and a tail
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    fshape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        footprint = np.ones(fshape, bool)
    else:
        footprint = rng.integers(0, 2, fshape).astype(bool)
        footprint.flat[rng.integers(0, footprint.size)] = True
    count = int(footprint.sum())
    k = draw(st.sampled_from(sorted({0, count - 1, count // 2, draw(st.integers(0, count - 1))})))
    origin = tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in fshape)
    dtype = draw(st.sampled_from(RANK_DTYPES))
    method = draw(st.sampled_from(methods_for(dtype, footprint, k)))
    channels = draw(st.sampled_from([None, None, 1, 2, 3, 4]))  # channels last, or not
    shape = batch + tuple(sizes) + (() if channels is None else (channels,))
    x = random_array(rng, shape, dtype, special=draw(st.booleans()))
    cval = random_array(rng, (), dtype).item() if mode == "zeros" else 0
    return x, k, footprint, mode, cval, origin, method, channels is not None


@settings(max_examples=examples(300))
@given(rank_problems())
def test_every_method_matches_the_sorting_oracle(problem):
    x, k, footprint, mode, cval, origin, method, channels_last = problem
    end = x.ndim - 1 if channels_last else x.ndim
    spatial = tuple(range(end - footprint.ndim, end))
    got = R.rank_window(x, k, footprint, spatial, mode=mode, cval=cval, origin=origin,
                        method=method)
    if channels_last:  # the oracle wants the spatial axes last
        want = np.moveaxis(reference_rank(np.moveaxis(x, -1, 0), k, footprint, mode=mode,
                                          cval=cval, origin=origin), 0, -1)
    else:
        want = reference_rank(x, k, footprint, mode=mode, cval=cval, origin=origin)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=examples(60))
@given(st.integers(0, 2**32 - 1), st.sampled_from(RANK_DTYPES), st.sampled_from(MODES),
       st.integers(3, 150), st.sampled_from([3, 5]))
def test_sorted_columns_median_matches_the_oracle(seed, dtype, mode, width, size):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (int(rng.integers(2, 5)), int(rng.integers(2, 9)), width), dtype,
                     special=bool(rng.integers(0, 2)))
    box = np.ones((size, size), bool)
    k = size * size // 2
    assert R.choose_method(x.dtype, box, k) == "columns"
    got = R.rank_window(x, k, box, (1, 2), mode=mode, method="columns")
    np.testing.assert_array_equal(got, reference_rank(x, k, box, mode=mode))
    # Channels last: rows of interleaved channels (window columns x.shape[-1] samples apart).
    got = R.rank_window(x, k, box, (0, 1), mode=mode, method="columns")
    want = np.moveaxis(reference_rank(np.moveaxis(x, -1, 0), k, box, mode=mode), 0, -1)
    np.testing.assert_array_equal(got, want)


def _compiled_5x5_comparators():
    """The comparators of IMGFILT_MEDIAN5X5 as compiled (src/imgfilt/_rank_core.pxi)."""
    import pathlib
    import re
    source = (pathlib.Path(R.__file__).parent / "_rank_core.pxi").read_text()
    start = source.index("#define IMGFILT_MEDIAN5X5(")
    macro = source[start: source.index("\n        }\n", start)]
    pairs = [(int(a), int(b)) for a, b in re.findall(r"IMGFILT_CMP\(T, v(\d+), v(\d+)\)", macro)]
    return pairs[:9], pairs[9:]


def test_the_5x5_sorted_columns_network_selects_the_median_of_every_binary_input():
    # The 0-1 principle over inputs whose columns are sorted (what the kernel's first loop
    # makes): the network is right on every input iff it is right on these 6**5.
    column_sort, network = _compiled_5x5_comparators()
    assert len(column_sort) == 9 and len(network) == 85
    wires = np.array(list(itertools.product((0, 1), repeat=5)), dtype=np.uint8).T.copy()
    for a, b in column_sort:
        wires[a], wires[b] = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
    np.testing.assert_array_equal(wires, np.sort(wires, axis=0))
    zeros = np.array(list(itertools.product(range(6), repeat=5)))
    wire = np.arange(25)
    inputs = (wire[:, None] % 5 >= zeros[:, wire // 5].T).astype(np.uint8)  # wire 5c+i
    wires = inputs.copy()
    for a, b in network:
        assert 0 <= a < b < 25
        wires[a], wires[b] = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
    np.testing.assert_array_equal(wires[12], np.sort(inputs, axis=0)[12])


@pytest.mark.parametrize("n", range(1, 12))
def test_selection_networks_select_every_rank_of_every_binary_input(n):
    # The 0-1 principle: a comparator network selects correctly on every input if it does on
    # every 0/1 input.
    inputs = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.uint8).T.copy()
    want = np.sort(inputs, axis=0)
    for k in range(n):
        wires = inputs.copy()
        for a, b in R.selection_network(n, k):
            low, high = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
            wires[a], wires[b] = low, high
        np.testing.assert_array_equal(wires[k], want[k])


# ---------------------------------------------------------------------------------------------
# scipy.ndimage


@st.composite
def scipy_problems(draw):
    ndim = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(MODES))
    sizes = tuple(draw(st.integers(2, 8 if ndim < 3 else 5)) for _ in range(ndim))
    fshape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    footprint = rng.integers(0, 2, fshape).astype(bool)
    footprint.flat[rng.integers(0, footprint.size)] = True
    origin = tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in fshape)
    dtype = draw(st.sampled_from(("uint8", "uint16", "int16", "float32", "float64")))
    x = random_array(rng, sizes, dtype)
    cval = random_array(rng, (), dtype).item() if mode == "zeros" else 0
    return x, footprint, mode, cval, origin


@settings(max_examples=examples(120))
@given(scipy_problems(), st.sampled_from(["median", "rank", "percentile", "minimum", "maximum"]))
def test_matches_scipy_ndimage_with_the_mode_mapping(problem, which):
    x, footprint, mode, cval, origin = problem
    if x.ndim == 1:
        # scipy's 1-D rank path (scipy 1.11+) ignores a footprint's holes: ask its n-D code.
        x, footprint, origin = x[None], footprint[None], (0,) + origin
    options = dict(footprint=footprint, mode=mode, cval=cval, origin=origin)
    theirs = dict(footprint=footprint, mode=SCIPY_MODE[mode], cval=cval, origin=origin)
    count = int(footprint.sum())
    if which == "median":
        got, want = R.median(x, **options), ndi.median_filter(x, **theirs)
    elif which == "rank":
        k = count // 3 - count
        got, want = R.rank(x, k, **options), ndi.rank_filter(x, k, **theirs)
    elif which == "percentile":
        got, want = R.percentile(x, 30, **options), ndi.percentile_filter(x, 30, **theirs)
    elif which == "minimum":
        got, want = R.minimum(x, **options), ndi.minimum_filter(x, **theirs)
    else:
        got, want = R.maximum(x, **options), ndi.maximum_filter(x, **theirs)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=examples(80))
@given(scipy_problems(), st.sampled_from(["erosion", "dilation", "opening", "closing",
                                           "gradient", "white_tophat", "black_tophat"]),
       st.booleans())
def test_grey_morphology_matches_scipy(problem, which, by_size):
    x, footprint, mode, cval, origin = problem
    if x.ndim == 1:  # scipy's 1-D rank path ignores a footprint's holes (see above)
        x, footprint, origin = x[None], footprint[None], (0,) + origin
    ours = getattr(R, which)
    theirs = {"erosion": ndi.grey_erosion, "dilation": ndi.grey_dilation,
              "opening": ndi.grey_opening, "closing": ndi.grey_closing,
              "gradient": ndi.morphological_gradient, "white_tophat": ndi.white_tophat,
              "black_tophat": ndi.black_tophat}[which]
    window = dict(size=footprint.shape) if by_size else dict(footprint=footprint)
    got = ours(x, **window, mode=mode, cval=cval, origin=origin)
    want = theirs(x, **window, mode=SCIPY_MODE[mode], cval=cval, origin=origin)
    np.testing.assert_array_equal(got, want)


def test_even_sized_dilation_follows_scipys_reflection():
    x = np.zeros((7, 8), np.uint8)
    x[3, 4] = 9
    for size in ((2, 2), (4, 3), (2, 1)):
        np.testing.assert_array_equal(R.dilation(x, size), ndi.grey_dilation(x, size))
        np.testing.assert_array_equal(R.closing(x, size), ndi.grey_closing(x, size))


# ---------------------------------------------------------------------------------------------
# NaN, dtypes, layouts, threads


def test_nan_sorts_last():
    x = np.array([1.0, np.nan, 3.0, 2.0, np.nan, np.nan, 0.0], np.float32)
    assert np.isnan(R.maximum(x, 3)).tolist() == [True, True, True, True, True, True, True]
    np.testing.assert_array_equal(R.minimum(x, 3), [1, 1, 2, 2, 2, 0, 0])
    np.testing.assert_array_equal(R.median(x, 3), reference_rank(x, 1, np.ones(3, bool)))
    # A window of NaN only gives NaN; the constant may be NaN too.
    got = R.minimum(x, 3, mode="constant", cval=np.nan)
    np.testing.assert_array_equal(got, reference_rank(x, 0, np.ones(3, bool), "zeros", np.nan))


@pytest.mark.parametrize("dtype", RANK_DTYPES)
def test_result_keeps_the_dtype_and_extremes(dtype):
    rng = np.random.default_rng(1)
    x = random_array(rng, (5, 70), dtype)
    if np.dtype(dtype).kind in "ui":
        x[0, :3] = np.iinfo(dtype).min
        x[1, :3] = np.iinfo(dtype).max
    for k in (0, 4, 8):
        got = R.rank(x, k, 3)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, reference_rank(x, k, np.ones((3, 3), bool)))


def test_axes_and_channels_last_images():
    rng = np.random.default_rng(2)
    hwc = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    got = R.median(hwc, 5, axes=(0, 1))
    want = np.stack([ndi.median_filter(hwc[..., c], 5) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(R.median(hwc, (5, 5, 1)), want)
    # Batch axes in front: each image filtered on its own.
    nchw = rng.random((2, 3, 9, 11)).astype(np.float32)
    np.testing.assert_array_equal(R.maximum(nchw, (3, 3)), ndi.maximum_filter(nchw, (1, 1, 3, 3)))
    # Non-contiguous, Fortran-order, read-only input.
    view = np.asfortranarray(hwc)[::2, ::-1]
    view.setflags(write=False)
    np.testing.assert_array_equal(R.minimum(view, 3, axes=(0, 1)),
                                  ndi.minimum_filter(np.ascontiguousarray(view), (3, 3, 1)))


def test_result_does_not_depend_on_threads():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 65536, (3, 300, 400), dtype=np.uint16)
    results = []
    for threads in (1, 2, 3):
        imgfilt.set_num_threads(threads)
        try:
            results.append([R.median(x, (5, 5), method=m) for m in ("network", "histogram")]
                           + [R.median(x, (5, 5)), R.minimum(x, (7, 5)), R.maximum(x, (1, 4, 9))])
        finally:
            imgfilt.set_num_threads(2)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@settings(max_examples=examples(40))
@given(st.integers(0, 2**32 - 1), st.sampled_from(["uint8", "uint16", "float32", "float64"]),
       st.sampled_from(MODES), st.booleans())
def test_box_extremes_with_and_without_kept_rows_match_scipy(seed, dtype, mode, kept):
    # "box" keeps rows between output rows unless they would take too much memory; both
    # paths, on 2-D and 3-D boxes, channels first and last, several threads (each thread
    # starts its run of rows with nothing kept).
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(2, 4))
    shape = tuple(int(n) for n in rng.integers(2 if mode == "reflect" else 1, 12, ndim))
    size = tuple(int(n) for n in rng.integers(1, 18 if ndim == 2 else 6, ndim))
    x = random_array(rng, (2,) + shape, dtype)
    channels_last = bool(rng.integers(0, 2))
    axes = tuple(range(ndim)) if channels_last else tuple(range(1, ndim + 1))
    if channels_last:
        x = np.moveaxis(x, 0, -1).copy()
    scipy_size = tuple(size) + (1,) if channels_last else (1,) + tuple(size)
    limit = R._BOX_ROWS_BYTES
    imgfilt.set_num_threads(int(rng.integers(1, 4)))
    try:
        if not kept:
            R._BOX_ROWS_BYTES = 0
        for ours, theirs in ((R.minimum, ndi.minimum_filter), (R.maximum, ndi.maximum_filter)):
            got = ours(x, size, axes=axes, mode=mode, method="box")
            want = theirs(x, scipy_size, mode=SCIPY_MODE[mode])
            np.testing.assert_array_equal(got, want)
    finally:
        R._BOX_ROWS_BYTES = limit
        imgfilt.set_num_threads(2)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_instruction_set_build_gives_the_oracles_result(isa, monkeypatch):
    from imgfilt.engine import load_nonlinear
    module = load_nonlinear(isa)
    if module.instruction_set() != isa:
        pytest.skip(f"this CPU or build has no {isa} nonlinear module")
    monkeypatch.setattr(R, "compiled", module)
    rng = np.random.default_rng(11)
    for dtype in ("uint8", "uint16", "float32", "float64"):
        x = random_array(rng, (23, 150, 3), dtype)
        for method, k, size in (("columns", 4, 3), ("columns", 12, 5), ("network", 12, 5),
                                ("network", 24, 7), ("box", 0, 9), ("box", 80, 9),
                                ("scan", 0, 3)):
            box = np.ones((size, size), bool)
            want = np.moveaxis(reference_rank(np.moveaxis(x, -1, 0), k, box, mode="symmetric"),
                               0, -1)
            got = R.rank_window(x, k, box, (0, 1), method=method)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} {dtype} {method} {size}")
        if x.dtype.itemsize <= 2:
            box = np.ones((11, 11), bool)
            np.testing.assert_array_equal(
                R.rank_window(x[..., 0], 60, box, (0, 1), method="histogram"),
                reference_rank(x[..., 0], 60, box, mode="symmetric"))


def test_three_d_median_matches_scipy():
    rng = np.random.default_rng(4)
    volume = rng.integers(0, 256, (12, 13, 14), dtype=np.uint8)
    for method in ("network", "histogram"):
        np.testing.assert_array_equal(R.median(volume, 3, method=method),
                                      ndi.median_filter(volume, 3))
    np.testing.assert_array_equal(R.median(volume, 5), ndi.median_filter(volume, 5))


# ---------------------------------------------------------------------------------------------
# Pillow and OpenCV


@pytest.mark.parametrize("size", [3, 5])
def test_pillow_rank_filters_on_the_interior(size):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    image = Image.fromarray(x)
    inner = (slice(size // 2, -(size // 2)),) * 2
    for ours, theirs in ((R.median, ImageFilter.MedianFilter), (R.minimum, ImageFilter.MinFilter),
                         (R.maximum, ImageFilter.MaxFilter)):
        got = ours(x, size)
        want = np.asarray(image.filter(theirs(size)))
        np.testing.assert_array_equal(got[inner], want[inner])


def test_opencv_median_blur_erode_and_dilate():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    for size in (3, 5, 7):  # OpenCV replicates the border
        np.testing.assert_array_equal(R.median(x, size, axes=(0, 1), mode="replicate"),
                                      cv2.medianBlur(x, size))
    xf = x.astype(np.float32)
    for size in (3, 5):
        np.testing.assert_array_equal(R.median(xf, size, axes=(0, 1), mode="replicate"),
                                      cv2.medianBlur(xf, size))
    x16 = rng.integers(0, 65536, (60, 90, 3), dtype=np.uint16)
    for size in (3, 5):
        np.testing.assert_array_equal(R.median(x16, size, axes=(0, 1), mode="replicate"),
                                      cv2.medianBlur(x16, size))
    kernel = np.ones((5, 7), np.uint8)
    inner = (slice(2, -2), slice(3, -3))
    np.testing.assert_array_equal(R.erosion(x, (5, 7), axes=(0, 1))[inner],
                                  cv2.erode(x, kernel)[inner])
    np.testing.assert_array_equal(R.dilation(x, (5, 7), axes=(0, 1))[inner],
                                  cv2.dilate(x, kernel)[inner])


# ---------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize("call, error", [
    (lambda x: R.median(x), ValueError),
    (lambda x: R.median(x, 3, footprint=np.ones((3, 3))), ValueError),
    (lambda x: R.median(x, 0), ValueError),
    (lambda x: R.median(x, 2.5), TypeError),
    (lambda x: R.median(x, "3"), TypeError),
    (lambda x: R.median(x, footprint=np.zeros((3, 3), bool)), ValueError),
    (lambda x: R.median(x, footprint=np.full((3, 3), 2)), ValueError),
    (lambda x: R.median(x, 3, mode="mirrored"), ValueError),
    (lambda x: R.median(x, 3, mode=3), TypeError),
    (lambda x: R.median(x, 3, method="quick"), ValueError),
    (lambda x: R.median(x, 3, method="box"), ValueError),
    (lambda x: R.median(x, 7, method="columns"), ValueError),
    (lambda x: R.rank(x, 11, 5, method="columns"), ValueError),
    (lambda x: R.median(x.astype(np.float32), 3, method="histogram"), ValueError),
    (lambda x: R.median(x, 3, origin=2), ValueError),
    (lambda x: R.median(x, 3, origin=(0, 0, 0)), ValueError),
    (lambda x: R.rank(x, 9, 3), ValueError),
    (lambda x: R.rank(x, -10, 3), ValueError),
    (lambda x: R.percentile(x, 101, 3), ValueError),
    (lambda x: R.percentile(x, "half", 3), TypeError),
    (lambda x: R.median(x, 3, mode="constant", cval=300), ValueError),
    (lambda x: R.median(x, 3, mode="constant", cval=1.5), ValueError),
    (lambda x: R.median(x, 3, mode="constant", cval="a"), TypeError),
    (lambda x: R.median(x, 3, axes=(0, 0)), ValueError),
    (lambda x: R.median(x, 3, axes=(0, 5)), ValueError),
    (lambda x: R.median(x, (3, 3, 3), axes=(0, 1)), ValueError),
    (lambda x: R.median(x[None, None], 3), ValueError),
    (lambda x: R.median(x.astype(complex), 3), TypeError),
    (lambda x: R.median(x.astype(object), 3), TypeError),
    (lambda x: R.median(np.array(5), 3), ValueError),
    (lambda x: R.median(x[:1], 3, mode="reflect"), ValueError),
])
def test_bad_arguments_raise(call, error):
    x = np.arange(30, dtype=np.uint8).reshape(5, 6)
    with pytest.raises(error):
        call(x)


def test_empty_input_gives_empty_output():
    x = np.zeros((0, 5), np.float32)
    assert R.median(x, 3).shape == (0, 5)
