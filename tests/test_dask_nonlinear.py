"""imgfilt.dask on rank filters, grey morphology and Canny: lazy results equal bit for bit to
imgfilt.apply in memory across every seam (any chunks, smaller than the halo too), every padding
mode with cval, footprints, 1-D to 3-D, channels last, two-pass morphology at the borders;
Canny on whole frames only; filter_file and the CLI's --chunks route."""
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")

from cli_support import run_cli
from strategies import MODES, examples

import imgfilt
import imgfilt.dask as idk
from imgfilt.nonlinear import CannyFilter, RankFilter
from imgfilt import rank as rank_ops
from imgfilt.io import write_volume
from imgfilt.rank import OPERATIONS

#: imgfilt's mode names -> scipy.ndimage's (docs/semantics.md).
SCIPY_MODES = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest",
               "circular": "wrap", "symmetric": "reflect"}
DTYPES = ("uint8", "int16", "uint16", "float32", "float64", "bool")


def assert_same(got, expected):
    """Bit for bit: same shape, dtype and bytes (so -0.0 and NaN payloads count)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(np.ascontiguousarray(got).view(np.uint8),
                          np.ascontiguousarray(expected).view(np.uint8))


def random_values(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        values = rng.normal(size=shape).astype(dtype)
        # Ties and the awkward floats: repeated values, both zeros, now and then a NaN.
        values[rng.random(shape) < 0.2] = 0.0
        values[rng.random(shape) < 0.15] = -0.0
        if rng.random() < 0.4:
            values[rng.random(shape) < 0.05] = np.nan
        return values
    info = np.iinfo(dtype)
    low, high = max(info.min, -60), min(info.max, 60)  # a small range: many ties
    return rng.integers(low, high + 1, shape).astype(dtype)


@st.composite
def rank_problems(draw):
    ndim = draw(st.integers(1, 3))
    cap = (13, 9, 6)[ndim - 1]
    sizes = tuple(draw(st.lists(st.integers(1, cap), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(1, n)) for n in sizes)
    footprint_shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    footprint = rng.random(footprint_shape) < 0.7
    footprint.flat[rng.integers(footprint.size)] = True
    operation = draw(st.sampled_from(OPERATIONS))
    k = draw(st.integers(0, int(footprint.sum()) - 1))
    mode = draw(st.sampled_from(MODES))
    dtype = draw(st.sampled_from(DTYPES))
    channels = draw(st.sampled_from([None, 1, 3]))
    channel_chunk = draw(st.integers(1, channels)) if channels else None
    if mode == "zeros" and dtype != "bool":
        cval = draw(st.sampled_from([0, 7, -0.0, 1.5] if dtype.startswith("float") else [0, 7]))
    else:
        cval = draw(st.sampled_from([0, 1])) if mode == "zeros" else 0
    return dict(sizes=sizes, chunks=chunks, footprint=footprint, operation=operation, k=k,
                mode=mode, dtype=dtype, channels=channels, channel_chunk=channel_chunk,
                cval=cval, seed=seed)


@settings(max_examples=examples(150))
@given(rank_problems())
def test_rank_filters_equal_in_memory_across_seams(problem):
    rng = np.random.default_rng(problem["seed"])
    shape, chunks = problem["sizes"], problem["chunks"]
    if problem["channels"]:
        shape, chunks = shape + (problem["channels"],), chunks + (problem["channel_chunk"],)
        layout = dict(channel_axis=-1, axes=tuple(range(len(problem["sizes"]))))
    else:
        layout = dict(channel_axis=None, axes=tuple(range(len(shape))))
    x = random_values(rng, shape, problem["dtype"])
    filt = RankFilter(problem["footprint"], problem["operation"], problem["k"],
                      cval=problem["cval"])
    expected = imgfilt.apply(x, filt, padding_mode=problem["mode"], **layout)
    lazy = idk.apply(da.from_array(x, chunks=chunks), filt, padding_mode=problem["mode"],
                     **layout)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    assert_same(lazy.compute(), expected)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("mode", MODES)
def test_morphology_matches_scipy_through_dask(operation, mode):
    # Two-pass operations at the image borders, chunks of 1 to 3 samples (below the halo).
    rng = np.random.default_rng(3)
    x = rng.integers(0, 200, (11, 10)).astype(np.uint8)
    footprint = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], bool)
    filt = RankFilter(footprint, operation, 5, cval=9)
    lazy = idk.apply(da.from_array(x, chunks=((1, 3, 2, 5), (3, 1, 3, 3))), filt,
                     padding_mode=mode).compute()
    assert_same(lazy, imgfilt.apply(x, filt, padding_mode=mode))
    options = dict(footprint=footprint, mode=SCIPY_MODES[mode], cval=9)
    scipy_call = {
        "rank": lambda: ndi.rank_filter(x, 5, **options),
        "erosion": lambda: ndi.grey_erosion(x, **options),
        "dilation": lambda: ndi.grey_dilation(x, **options),
        "opening": lambda: ndi.grey_opening(x, **options),
        "closing": lambda: ndi.grey_closing(x, **options),
        "gradient": lambda: ndi.morphological_gradient(x, **options),
        "white_tophat": lambda: ndi.white_tophat(x, **options),
        "black_tophat": lambda: ndi.black_tophat(x, **options),
    }[operation]
    np.testing.assert_array_equal(lazy, scipy_call())


def test_named_filters_layouts_outputs_and_one_sample_axes():
    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    lazy = da.from_array(photo, chunks=(8, 11, 2))
    for (name, params), output in zip(
            (("median", {"size": 5}), ("median", {"size": 4}),
             ("percentile", {"percentile": 80, "size": (2, 3)}), ("opening", {"size": 6}),
             ("morphological_gradient", {"size": 3})),
            (None, "float", "rescale", "abs", "rescale")):
        expected = imgfilt.apply(photo, name, output=output, **params)
        assert_same(idk.apply(lazy, name, output=output, **params).compute(), expected)
    # imgfilt.apply routes a Dask array to the adapter, lazily.
    routed = imgfilt.apply(lazy, "median", size=3, padding_mode="zeros", cval=200)
    assert isinstance(routed, da.Array)
    assert_same(routed.compute(),
                imgfilt.apply(photo, "median", size=3, padding_mode="zeros", cval=200))
    # 'reflect' on an axis of one sample repeats it, as in memory; channels first; 3-D.
    row = photo[:1, :, 0]
    assert_same(idk.apply(da.from_array(row, chunks=(1, 4)), "closing", size=3).compute(),
                imgfilt.apply(row, "closing", size=3))
    first = np.moveaxis(photo, -1, 0)
    assert_same(idk.apply(da.from_array(first, chunks=(2, 6, 7)), "maximum", size=4,
                          channel_axis=0).compute(),
                imgfilt.apply(first, "maximum", size=4, channel_axis=0))
    volume = rng.random((7, 9, 8)).astype(np.float32)
    assert_same(idk.apply(da.from_array(volume, chunks=2), "median3d", size=3,
                          padding_mode="circular").compute(),
                imgfilt.apply(volume, "median3d", size=3, padding_mode="circular"))


def test_bad_options_and_cval_are_refused():
    lazy = da.from_array(np.zeros((8, 8), np.uint8), chunks=4)
    with pytest.raises(ValueError, match="stride"):
        idk.apply(lazy, "median", stride=2)
    with pytest.raises(ValueError, match="cval"):
        idk.apply(lazy, "median", padding_mode="zeros", cval=300)
    with pytest.raises(ValueError, match="cval"):  # the same message as in memory
        imgfilt.apply(np.zeros((8, 8), np.uint8), "median", padding_mode="zeros", cval=300)


def test_negative_zero_has_one_order_whatever_the_block():
    # -0.0 sorts below +0.0 wherever a -0.0 is present (docs/rank.md), so a block without a
    # NaN or a -0.0 orders exactly as the whole image does.
    x = np.array([0.0, -0.0, 0.0, np.nan, 0.0, 0.0, -0.0], np.float32)
    # Windows {x[i-1], x[i]} (size 2: the centre is the second sample), symmetric borders.
    assert np.signbit(rank_ops.minimum(x, size=2)).tolist() == [
        False, True, True, False, False, False, True]
    assert np.signbit(rank_ops.maximum(x[:3], size=2)).tolist() == [False, False, False]
    assert_same(idk.apply(da.from_array(x, chunks=2), RankFilter(np.ones(2, bool), "rank", 0),
                          channel_axis=None).compute(),
                imgfilt.apply(x, RankFilter(np.ones(2, bool), "rank", 0), channel_axis=None))


def test_canny_runs_on_whole_frames_only():
    rng = np.random.default_rng(5)
    video = np.zeros((5, 24, 30), np.uint8)
    video[:, 6:18, 8:22] = 200
    video = (video + rng.integers(0, 30, video.shape)).astype(np.uint8)
    canny = imgfilt.get_filter("canny", sigma=1.5, low_threshold=0.2, high_threshold=0.6,
                               use_quantiles=True)
    expected = imgfilt.apply(video, canny, axes=(1, 2))
    assert expected.any()
    got = idk.apply(da.from_array(video, chunks=(2, 24, 30)), canny, axes=(1, 2)).compute()
    assert_same(got, expected)
    with pytest.raises(ValueError, match=r"rechunk\(\{1: -1, 2: -1\}\)") as error:
        idk.apply(da.from_array(video, chunks=(2, 12, 30)), canny, axes=(1, 2))
    assert "hysteresis" in str(error.value) and "axis 1 (2 chunks)" in str(error.value)
    assert isinstance(canny, CannyFilter)


def test_filter_file_and_the_command_line(tmp_path):
    rng = np.random.default_rng(6)
    image = rng.integers(0, 65535, (60, 45), dtype=np.uint16)
    np.save(tmp_path / "in.npy", image)
    idk.filter_file(tmp_path / "in.npy", tmp_path / "out.npy", "white_tophat", size=5,
                    chunks=7, padding_mode="symmetric", progress=False)
    assert_same(np.load(tmp_path / "out.npy"),
                imgfilt.apply(image, "white_tophat", size=5, padding_mode="symmetric"))
    # A TIFF's pages with a 2-D filter are frames, each filtered on its own (as for linear ones).
    stack = rng.integers(0, 255, (3, 20, 17), dtype=np.uint8)
    write_volume(tmp_path / "stack.tif", stack)
    idk.filter_file(tmp_path / "stack.tif", tmp_path / "stack.npy", "closing", size=4,
                    chunks=(1, 6, 5), progress=False)
    assert_same(np.load(tmp_path / "stack.npy"), imgfilt.apply(stack, "closing", size=4,
                                                               axes=(1, 2)))
    done = run_cli("apply", "median", "in.npy", "-o", "cli.npy", "--chunks", "16", "--set",
                   "size=4", "--padding-mode", "replicate", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same(np.load(tmp_path / "cli.npy"),
                imgfilt.apply(image, "median", size=4, padding_mode="replicate",
                              output="float"))
