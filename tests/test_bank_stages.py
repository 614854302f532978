"""Nonlinear and per-channel filters as Sequential stages: the same maps as applying the stages
one by one; what a FilterBank refuses (nonlinear maps: it is one convolution weight)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

import imgfilt
from imgfilt import FilterBank, Sequential, filters
from imgfilt.bank import FilterStage
from imgfilt.nonlinear import RankFilter

RNG = np.random.default_rng(11)
PHOTO = RNG.integers(0, 256, (21, 26, 3), dtype=np.uint8)


def assert_same(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)


def one_by_one(maps, *stages, padding_mode="reflect"):
    """Each stage on each map, by imgfilt.apply with float output: the oracle."""
    for name, params in stages:
        maps = np.stack([imgfilt.apply(m, name, padding_mode=padding_mode, output="float",
                                       **params) for m in maps])
    return maps


@pytest.mark.parametrize("padding_mode", ["reflect", "zeros", "circular"])
def test_median_then_sobel_equals_the_stages_one_by_one(padding_mode):
    net = Sequential([imgfilt.get_filter("median", size=3), "sobel"])
    got = net.apply(PHOTO, padding_mode=padding_mode)
    maps = np.moveaxis(PHOTO, -1, 0).astype(np.float32)  # (C, H, W): a stage keeps C maps
    expected = one_by_one(maps, ("median", {"size": 3}), ("sobel", {}),
                          padding_mode=padding_mode)
    assert_same(got, expected)
    assert net.output_shape((3, 21, 26)) == (3, 21, 26) and net.n_params == 0
    assert imgfilt.apply(PHOTO, net, padding_mode=padding_mode).shape == (3, 21, 26)


def test_a_bank_then_a_maximum_and_morphology_on_maps():
    bank = FilterBank([filters.gaussian(1.0), filters.sobel_x(), filters.laplacian()])
    net = bank.then("maximum").then(RankFilter(np.ones((2, 3), bool), "opening"))
    gray = PHOTO[..., 0]
    got = net.apply(gray)
    maps = bank.apply(gray)
    expected = one_by_one(maps, ("maximum", {}))
    opening = RankFilter(np.ones((2, 3), bool), "opening")
    expected = np.stack([imgfilt.apply(m, opening, output="float") for m in expected])
    assert_same(got, expected)
    # A batch of frames, channels last on the way out; float64 stays float64.
    frames = RNG.random((2, 12, 14))
    got = Sequential(bank, "median").apply(frames, axes=(1, 2), channels_last=True)
    expected = np.stack([one_by_one(bank.apply(f), ("median", {})) for f in frames])
    assert_same(got, np.moveaxis(expected, 1, -1))
    assert got.dtype == np.float64


def test_a_stage_first_reads_any_channels_and_banks_check_theirs():
    net = Sequential("median", FilterBank(np.ones((2, 3, 3, 3))))
    maps = net.apply(PHOTO)
    first = one_by_one(np.moveaxis(PHOTO, -1, 0).astype(np.float32), ("median", {}))
    np.testing.assert_allclose(maps, FilterBank(np.ones((2, 3, 3, 3))).apply(first,
                                                                            channel_axis=0))
    with pytest.raises(ValueError, match="C_in = 3"):
        net.apply(PHOTO[..., :2], channel_axis=-1)
    with pytest.raises(ValueError, match="expects C_in = 4"):
        Sequential(FilterBank(np.ones((2, 1, 3, 3))), "median", FilterBank(np.ones((1, 4, 3, 3))))
    with pytest.raises(ValueError, match="spatial dimensions"):
        Sequential("median", "median3d")
    html = net._repr_html_()
    assert "median" in html and "per map" in html
    assert repr(net) == "<Sequential median -> (2, 3, 3, 3)>"


def test_what_cannot_be_a_bank_map_or_a_stage_is_refused_by_name():
    with pytest.raises(TypeError, match=r"filters\[1\] is the nonlinear filter 'median'.*"
                                        r"Sequential"):
        FilterBank([filters.gaussian(1.0), imgfilt.get_filter("median", size=3)])
    with pytest.raises(TypeError, match=r"filters\[0\] is the name 'sobel_x'"):
        FilterBank(["sobel_x"])
    with pytest.raises(TypeError, match="got int"):
        Sequential("median", 3)
    with pytest.raises(TypeError, match="mixes 3 channels"):
        FilterStage(imgfilt.Filter(np.ones((1, 3, 3, 3))))
    with pytest.raises(ValueError, match="no-such-filter"):
        Sequential("no-such-filter")


def test_feature_names_follow_the_maps():
    xr = pytest.importorskip("xarray")
    bank = FilterBank([filters.sobel_x(), filters.sobel_y()])
    image = xr.DataArray(PHOTO[..., 0].astype(np.float32), dims=("y", "x"))
    maps = Sequential(bank, "maximum").apply(image)
    assert maps.dims == ("feature", "y", "x")
    assert maps.coords["feature"].values.tolist() == ["maximum(sobel_x)", "maximum(sobel_y)"]
    assert_same(maps.values, one_by_one(bank.apply(image.values), ("maximum", {})))
    colour = xr.DataArray(PHOTO, dims=("y", "x", "c"))
    names = Sequential("median").apply(colour, channel_axis="c").coords["feature"].values
    assert names.tolist() == ["median[0]", "median[1]", "median[2]"]


STAGES = [("median", {"size": 3}), ("minimum", {"size": 2}), ("opening", {"size": 4}),
          ("percentile", {"percentile": 30, "size": 3}), ("sobel", {}), ("gaussian", {"sigma": 1.0}),
          ("white_tophat", {"size": 3})]


@settings(max_examples=examples(25))
@given(st.lists(st.sampled_from(range(len(STAGES))), min_size=1, max_size=3),
       st.sampled_from(["reflect", "zeros", "replicate", "circular", "symmetric"]),
       st.sampled_from(["uint8", "float32", "float64"]), st.integers(1, 9), st.integers(1, 9),
       st.integers(0, 2 ** 31))
def test_random_stage_chains_equal_the_stages_one_by_one(chosen, mode, dtype, height, width,
                                                         seed):
    rng = np.random.default_rng(seed)
    image = (rng.random((height, width)) * 200).astype(dtype)
    stages = [STAGES[i] for i in chosen]
    net = Sequential([imgfilt.get_filter(name, **params) for name, params in stages])
    expected = one_by_one(image[None].astype(np.float64 if dtype == "float64" else np.float32),
                          *stages, padding_mode=mode)
    assert_same(net.apply(image, padding_mode=mode), expected)
