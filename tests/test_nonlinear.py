"""Nonlinear filters as data (imgfilt.nonlinear) through the registry, imgfilt.apply, Pillow, the
CLI: the same numbers as imgfilt.rank / imgfilt.edges and scipy.ndimage."""
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

import imgfilt
from imgfilt.edges import canny
from imgfilt.nonlinear import CannyFilter, RankFilter
from imgfilt.pillow import PillowFilter

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("name, scipy_call", [
    ("median", lambda x, s: ndi.median_filter(x, s, mode="mirror")),
    ("minimum", lambda x, s: ndi.minimum_filter(x, s, mode="mirror")),
    ("maximum", lambda x, s: ndi.maximum_filter(x, s, mode="mirror")),
    ("erosion", lambda x, s: ndi.grey_erosion(x, s, mode="mirror")),
    ("dilation", lambda x, s: ndi.grey_dilation(x, s, mode="mirror")),
    ("opening", lambda x, s: ndi.grey_opening(x, s, mode="mirror")),
    ("closing", lambda x, s: ndi.grey_closing(x, s, mode="mirror")),
    ("morphological_gradient", lambda x, s: ndi.morphological_gradient(x, s, mode="mirror")),
    ("white_tophat", lambda x, s: ndi.white_tophat(x, s, mode="mirror")),
    ("black_tophat", lambda x, s: ndi.black_tophat(x, s, mode="mirror")),
])
def test_named_filters_match_scipy_per_channel(name, scipy_call):
    # imgfilt.apply's default border is "reflect" (scipy's "mirror").
    got = imgfilt.apply(RGB, name, size=(3, 5))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, scipy_call(RGB, (3, 5, 1)))


def test_rank_percentile_median3d_and_canny():
    np.testing.assert_array_equal(imgfilt.apply(RGB, "rank", rank=2, size=3),
                                  ndi.rank_filter(RGB, 2, (3, 3, 1), mode="mirror"))
    np.testing.assert_array_equal(imgfilt.apply(RGB, "percentile", percentile=75, size=3),
                                  ndi.percentile_filter(RGB, 75, (3, 3, 1), mode="mirror"))
    volume = RNG.random((9, 10, 11)).astype(np.float32)
    np.testing.assert_array_equal(imgfilt.apply(volume, "median3d"),
                                  ndi.median_filter(volume, 3, mode="mirror"))
    grey = ndi.gaussian_filter(RGB[..., 0].astype(float), 2)
    edges = imgfilt.apply(grey, "canny", sigma=1.0, low_threshold=2, high_threshold=4)
    np.testing.assert_array_equal(edges, np.where(canny(grey, 1.0, 2, 4), 1.0, 0.0))


def test_layouts_pillow_and_outputs():
    stack = RNG.integers(0, 256, (4, 3, 20, 22), dtype=np.uint8)  # N, C, H, W
    got = imgfilt.apply(stack, "median", size=3, channel_axis=1, axes=(2, 3))
    np.testing.assert_array_equal(got, ndi.median_filter(stack, (1, 1, 3, 3), mode="mirror"))
    image = Image.fromarray(RGB)
    via_plugin = np.asarray(image.filter(PillowFilter("median", size=3)))
    np.testing.assert_array_equal(via_plugin, imgfilt.apply(RGB, "median", size=3))
    assert imgfilt.apply(image, "maximum").mode == "RGB"
    floats = imgfilt.apply(RGB, "median", output="float")
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats, imgfilt.apply(RGB, "median").astype(np.float32))
    # "reflect" on an axis of one sample repeats it, as for linear filters.
    row = RGB[:1, :, 0]
    want = ndi.median_filter(np.pad(row, ((1, 1), (0, 0)), mode="edge"), 3, mode="mirror")[1:2]
    np.testing.assert_array_equal(imgfilt.apply(row, "median", size=3, channel_axis=None), want)


def test_images_with_alpha_keep_their_alpha():
    # A rank filter has no weights to tell whether it smooths: alpha is kept, the colour bands
    # are filtered as an RGB image's (through apply and through Pillow's Image.filter).
    alpha = RNG.integers(0, 256, (30, 40, 1), dtype=np.uint8)
    image = Image.fromarray(np.concatenate([RGB, alpha], axis=-1), "RGBA")
    for got in (imgfilt.apply(image, "median", size=3),
                image.filter(PillowFilter("median", size=3))):
        assert got.mode == "RGBA"
        pixels = np.asarray(got)
        np.testing.assert_array_equal(pixels[..., :3], imgfilt.apply(RGB, "median", size=3))
        np.testing.assert_array_equal(pixels[..., 3], alpha[..., 0])


def test_filters_are_data_and_refuse_what_they_cannot_do():
    filt = imgfilt.get_filter("median", size=5)
    assert isinstance(filt, RankFilter) and filt.rank == 12 and filt.kernel_shape == (5, 5)
    assert not filt.footprint.flags.writeable
    assert isinstance(imgfilt.get_filter("canny"), CannyFilter)
    assert filt.with_options(padding_mode="replicate").options == {"padding_mode": "replicate"}
    mine = RankFilter(np.eye(3, dtype=bool), "rank", 1, name="diagonal")
    np.testing.assert_array_equal(imgfilt.apply(RGB[..., 0], mine),
                                  ndi.median_filter(RGB[..., 0], footprint=np.eye(3),
                                                    mode="mirror"))
    for bad in (lambda: imgfilt.apply(RGB, "median", stride=2),
                lambda: imgfilt.apply(RGB, "median", dilation=2),
                lambda: imgfilt.get_filter("median", size=0),
                lambda: imgfilt.get_filter("percentile", percentile=200),
                lambda: RankFilter(np.zeros((3, 3)), "rank"),
                lambda: RankFilter(np.ones((3, 3)), "sort"),
                lambda: RankFilter(np.ones((3, 3)), "rank", 9)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError):
        imgfilt.get_filter("median", size="big")
    with pytest.raises(TypeError):
        RankFilter(np.ones(3), "rank", options={"stride": 2})


def test_dask_runs_rank_filters_and_refuses_tiled_canny_clearly():
    # (the seams are tested in test_dask_nonlinear.py)
    da = pytest.importorskip("dask.array")
    lazy = imgfilt.apply(da.zeros((20, 20), chunks=10), "median")
    assert isinstance(lazy, da.Array) and not lazy.compute().any()
    with pytest.raises(ValueError, match="Canny cannot run on tiles"):
        imgfilt.apply(da.zeros((20, 20), chunks=10), "canny")
