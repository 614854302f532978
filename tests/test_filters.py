"""Named filters through imgfilt.apply against scipy.ndimage, plus the registry and Filter itself.

scipy's mode "mirror" is our "reflect" (the default of apply); scipy's "reflect" is our
"symmetric". Literal kernels written here (not taken from imgfilt.kernels) serve where scipy has
no named filter.
"""
import numpy as np
import pytest
from PIL import ImageFilter
from scipy import ndimage

import imgfilt
from imgfilt import filters
from imgfilt.kernels import outer

RNG = np.random.default_rng(1234)
IMAGE = RNG.normal(size=(23, 31))
RGB = RNG.normal(size=(17, 19, 3))
VOLUME = RNG.normal(size=(9, 10, 11))
SIGNAL = RNG.normal(size=40)


def run(name, image=IMAGE, **params):
    return imgfilt.apply(image, name, **params)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


SCIPY_2D = {
    "identity": lambda x: x,
    "sobel_x": lambda x: ndimage.sobel(x, axis=1, mode="mirror"),
    "sobel_y": lambda x: ndimage.sobel(x, axis=0, mode="mirror"),
    "sobel": lambda x: np.hypot(ndimage.sobel(x, 1, mode="mirror"), ndimage.sobel(x, 0, mode="mirror")),
    "prewitt_x": lambda x: ndimage.prewitt(x, axis=1, mode="mirror"),
    "prewitt_y": lambda x: ndimage.prewitt(x, axis=0, mode="mirror"),
    "prewitt": lambda x: np.hypot(ndimage.prewitt(x, 1, mode="mirror"), ndimage.prewitt(x, 0, mode="mirror")),
    "scharr_x": lambda x: ndimage.correlate(x, np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3.0]]), mode="mirror"),
    "scharr_y": lambda x: ndimage.correlate(x, np.array([[-3, -10, -3], [0, 0, 0], [3, 10, 3.0]]), mode="mirror"),
    "scharr": lambda x: np.hypot(
        ndimage.correlate(x, np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3.0]]), mode="mirror"),
        ndimage.correlate(x, np.array([[-3, -10, -3], [0, 0, 0], [3, 10, 3.0]]), mode="mirror")),
    "laplacian": lambda x: ndimage.laplace(x, mode="mirror"),
    "sharpen": lambda x: x - ndimage.laplace(x, mode="mirror"),
    "emboss": lambda x: ndimage.correlate(x, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2.0]]), mode="mirror"),
    "box": lambda x: ndimage.uniform_filter(x, 3, mode="mirror"),
    "gaussian": lambda x: ndimage.gaussian_filter(x, 1.0, mode="mirror"),
}


@pytest.mark.parametrize("name", sorted(SCIPY_2D))
def test_named_2d_filter_matches_scipy(name):
    close(run(name), SCIPY_2D[name](IMAGE))


@pytest.mark.parametrize("name", ["sobel", "gaussian", "laplacian", "box"])
def test_per_channel_filters_run_on_each_channel(name):
    result = run(name, RGB)
    assert result.shape == RGB.shape
    for c in range(3):
        close(result[..., c], SCIPY_2D[name](RGB[..., c]))


def test_gaussian_parameters_match_scipy():
    close(run("gaussian", sigma=2.3), ndimage.gaussian_filter(IMAGE, 2.3, mode="mirror"))
    close(run("gaussian", sigma=(0.5, 2.0)), ndimage.gaussian_filter(IMAGE, (0.5, 2.0), mode="mirror"))
    close(run("gaussian", sigma=1.5, radius=2),
          ndimage.gaussian_filter(IMAGE, 1.5, radius=2, mode="mirror"))


def test_box_size_matches_uniform_filter():
    close(run("box", size=5), ndimage.uniform_filter(IMAGE, 5, mode="mirror"))


def test_unsharp_matches_its_definition():
    blurred = ndimage.gaussian_filter(IMAGE, 2.0, mode="mirror")
    close(run("unsharp", sigma=2.0, amount=0.8), IMAGE + 0.8 * (IMAGE - blurred))


@pytest.mark.parametrize("channel", ["r", "g", "b"])
@pytest.mark.parametrize("direction,axis", [("vertical", 1), ("horizontal", 0)])
def test_edge_sees_one_channel(channel, direction, axis):
    index = "rgb".index(channel)
    result = run("edge", RGB, channel=channel, direction=direction)
    assert result.shape == RGB.shape[:2] + (1,)
    close(result[..., 0], ndimage.sobel(RGB[..., index], axis=axis, mode="mirror"))


def test_edge_diagonal_and_all():
    diagonal = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2.0]])
    close(run("edge", RGB, channel="b", direction="diagonal")[..., 0],
          ndimage.correlate(RGB[..., 2], diagonal, mode="mirror"))
    close(run("edge", RGB, channel="all")[..., 0],
          ndimage.sobel(RGB.sum(axis=-1), axis=1, mode="mirror"))


SCIPY_3D = {
    "box3d": lambda v: ndimage.uniform_filter(v, 3, mode="mirror"),
    "gaussian3d": lambda v: ndimage.gaussian_filter(v, 1.0, mode="mirror"),
    "laplacian3d": lambda v: ndimage.laplace(v, mode="mirror"),
    "sobel3d": lambda v: np.sqrt(sum(ndimage.sobel(v, a, mode="mirror") ** 2 for a in range(3))),
}


@pytest.mark.parametrize("name", sorted(SCIPY_3D))
def test_named_3d_filter_matches_scipy(name):
    close(run(name, VOLUME), SCIPY_3D[name](VOLUME))


def test_gaussian3d_sigma_per_axis():
    close(run("gaussian3d", VOLUME, sigma=(0.5, 1.0, 0.7)),
          ndimage.gaussian_filter(VOLUME, (0.5, 1.0, 0.7), mode="mirror"))


def test_1d_filters_match_scipy_and_numpy():
    close(run("gaussian1d", SIGNAL, sigma=2.0), ndimage.gaussian_filter1d(SIGNAL, 2.0, mode="mirror"))
    gradient = run("gradient1d", SIGNAL)
    close(gradient[1:-1], np.gradient(SIGNAL)[1:-1])
    close(gradient, ndimage.correlate1d(SIGNAL, [-0.5, 0, 0.5], mode="mirror"))


@pytest.mark.parametrize("ours,scipys", [
    ("reflect", "mirror"), ("mirror", "mirror"), ("symmetric", "reflect"), ("zeros", "constant"),
    ("replicate", "nearest"), ("circular", "wrap"),
])
def test_padding_modes_follow_the_table(ours, scipys):
    close(run("gaussian", padding_mode=ours, sigma=2.0),
          ndimage.gaussian_filter(IMAGE, 2.0, mode=scipys))


# ---- rank-1 factors -------------------------------------------------------------------------

RANK_ONE = ["box", "gaussian", "sobel_x", "sobel_y", "sobel", "prewitt_x", "prewitt_y", "prewitt",
            "scharr_x", "scharr_y", "scharr", "box3d", "gaussian3d", "sobel3d", "gaussian1d",
            "gradient1d"]


@pytest.mark.parametrize("name", RANK_ONE)
def test_rank_one_filters_record_their_factors(name):
    f = imgfilt.get_filter(name)
    assert f.factors is not None and len(f.factors) == f.weight.shape[0]
    for response, vectors in enumerate(f.factors):
        assert len(vectors) == f.ndim and all(v.ndim == 1 for v in vectors)
        np.testing.assert_allclose(outer(vectors), f.weight[response, 0], rtol=1e-12)


def test_non_separable_filters_have_no_factors():
    for name in ["laplacian", "sharpen", "emboss", "unsharp", "edge"]:
        assert imgfilt.get_filter(name).factors is None


# ---- the registry ---------------------------------------------------------------------------

EXPECTED_NAMES = {
    "identity", "box", "gaussian", "sharpen", "unsharp", "laplacian", "sobel_x", "sobel_y",
    "sobel", "scharr_x", "scharr_y", "scharr", "prewitt_x", "prewitt_y", "prewitt", "emboss",
    "edge", "box3d", "gaussian3d", "sobel3d", "laplacian3d", "gradient1d", "gaussian1d",
}


def test_list_filters_names_parameters_and_descriptions():
    rows = {row.name: row for row in imgfilt.list_filters()}
    assert EXPECTED_NAMES <= set(rows)
    assert rows["gaussian"].parameters == {"sigma": 1.0, "radius": None}
    assert rows["box"].parameters == {"size": 3}
    assert rows["edge"].parameters == {"channel": "r", "direction": "vertical"}
    assert rows["unsharp"].parameters == {"sigma": 1.0, "amount": 1.0}
    assert all(row.description for row in rows.values())


def test_get_filter_by_name_and_parameters():
    f = imgfilt.get_filter("gaussian", sigma=2)
    assert f.kernel_shape == (17, 17) and f.params == {"sigma": 2, "radius": None}
    assert imgfilt.get_filter("Sobel-X").name == "sobel_x"


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean 'gaussian'"):
        imgfilt.get_filter("gausian")
    with pytest.raises(ValueError, match="sobel"):
        imgfilt.apply(IMAGE, "sobell")
    with pytest.raises(TypeError, match="string"):
        imgfilt.get_filter(3)


def test_bad_parameters_name_the_parameter():
    with pytest.raises(TypeError, match="unknown parameter.*sigmaa.*sigma, radius"):
        imgfilt.get_filter("gaussian", sigmaa=2)
    with pytest.raises(TypeError, match="takes no parameters"):
        imgfilt.get_filter("sobel", sigma=1)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            imgfilt.get_filter("gaussian", sigma=bad)
    with pytest.raises(ValueError, match="size must be an odd"):
        imgfilt.get_filter("box", size=4)
    with pytest.raises(ValueError, match="size must be an odd"):
        imgfilt.apply(IMAGE, "box", size=2)
    with pytest.raises(ValueError, match="direction"):
        imgfilt.get_filter("edge", direction="up")


# ---- Filter objects -------------------------------------------------------------------------

def test_filter_is_plain_data_and_the_pillow_plug_in_is_a_multiband_filter():
    f = filters.sobel()
    assert not isinstance(f, ImageFilter.Filter)  # the Pillow protocol lives in imgfilt.pillow
    plug = imgfilt.PillowFilter(f)
    assert isinstance(plug, ImageFilter.MultibandFilter)
    assert not callable(plug)  # Pillow would call it with no arguments, as a filter class
    assert plug.filt is f


def test_filter_from_bare_kernel_and_weight():
    assert imgfilt.Filter(np.ones((3, 3))).weight.shape == (1, 1, 3, 3)
    assert imgfilt.Filter(np.ones(5)).weight.shape == (1, 1, 5)
    assert imgfilt.Filter(np.ones((2, 2, 2))).weight.shape == (1, 1, 2, 2, 2)
    assert imgfilt.Filter(np.ones((4, 3, 3, 3))).in_channels == 3


def test_filter_rejects_bad_construction():
    with pytest.raises(ValueError, match="finite"):
        imgfilt.Filter([[np.nan]])
    with pytest.raises(TypeError, match="real numbers"):
        imgfilt.Filter(np.array([["a"]]))
    with pytest.raises(ValueError, match="combine"):
        imgfilt.Filter(np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="combine must be"):
        imgfilt.Filter(np.ones((2, 1, 3, 3)), combine="max")
    with pytest.raises(ValueError, match="bias"):
        imgfilt.Filter(np.ones((3, 3)), bias=[1.0, 2.0])
    with pytest.raises(ValueError, match="factors"):
        imgfilt.Filter(np.ones((3, 3)), factors=[(np.ones(3), np.arange(3.0))])
    with pytest.raises(ValueError, match="weight must be"):
        imgfilt.Filter(np.ones((1,) * 6))
    with pytest.raises(TypeError, match="options"):
        imgfilt.Filter(np.ones((3, 3)), options={"sigma": 1})


def test_with_options_sets_apply_defaults():
    f = filters.sobel_x().with_options(output="float", padding_mode="zeros")
    close(imgfilt.apply(IMAGE, f), ndimage.sobel(IMAGE, axis=1, mode="constant"))
    assert f.factors is not None and filters.sobel_x().options == {}


def test_filter_bias_is_added():
    f = imgfilt.Filter(np.ones((1, 1, 1, 1)), bias=[2.5])
    close(imgfilt.apply(IMAGE, f), IMAGE + 2.5)


def test_filter_weight_is_read_only():
    with pytest.raises(ValueError):
        filters.box().weight[0, 0, 0, 0] = 5
