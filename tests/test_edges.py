"""imgfilt.canny against scikit-image (2-D) and a float64 NumPy/scipy oracle (2-D and 3-D)."""
import numpy as np
import pytest
from PIL import Image

from imgfilt.edges import canny
from rank_reference import reference_canny

def sample_grey(name):
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "samples" / f"{name}.png"
    return np.asarray(Image.open(path).convert("L"))


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_matches_skimage_canny_on_a_photo(sigma):
    skf = pytest.importorskip("skimage.feature")
    image = sample_grey("coffee")
    for options in ({}, dict(low_threshold=20, high_threshold=40),
                    dict(low_threshold=0.5, high_threshold=0.8, use_quantiles=True)):
        ours = canny(image, sigma, **options)
        theirs = skf.canny(image, sigma, **options)
        # float32 here, float64 there: a magnitude within rounding of its neighbour's or a
        # threshold may fall either way; allow 1 sample in 10,000.
        assert ours.sum() > 100
        assert (ours != theirs).mean() <= 1e-4
    floats = image.astype(np.float32) / 255
    assert (canny(floats, sigma) != skf.canny(floats, sigma)).mean() <= 1e-4


def test_matches_the_oracle_in_2d_and_3d():
    rng = np.random.default_rng(0)
    image = ndi_blur(rng.random((24, 30)) * 100, 1.5)
    got = canny(image, 1.0, 2.0, 5.0)
    want = reference_canny(image, 1.0, 2.0, 5.0)
    assert want.sum() > 20 and (got != want).mean() <= 2e-3
    volume = ndi_blur(rng.random((12, 14, 16)) * 100, 1.5)
    got = canny(volume, 1.0, 8.0, 20.0)
    want = reference_canny(volume, 1.0, 8.0, 20.0)
    assert want.sum() > 20 and (got != want).mean() <= 2e-3


def ndi_blur(x, sigma):
    import scipy.ndimage as ndi

    return ndi.gaussian_filter(x, sigma)


def test_a_volume_constant_along_z_gives_the_2d_edges_on_each_inner_slice():
    image = sample_grey("camera")[::4, ::4].astype(np.float32)
    volume = np.repeat(image[None], 5, axis=0)
    # In 3-D the Sobel smooths along z too ([1, 2, 1]: four times the gradient).
    edges3 = canny(volume, 1.0, 4 * 20, 4 * 40)
    edges2 = canny(image, 1.0, 20, 40)
    assert edges2.sum() > 100
    for z in range(1, 4):
        assert (edges3[z] != edges2).mean() <= 1e-3
    assert not edges3[0].any() and not edges3[-1].any()


def test_a_ball_has_its_edges_on_its_surface():
    grid = np.indices((33, 33, 33)) - 16
    radius = np.sqrt((grid ** 2).sum(axis=0))
    ball = (radius <= 10).astype(np.float32)
    edges = canny(ball, 1.0, 0.1, 0.2)
    assert edges.sum() > 500
    assert np.abs(radius[edges] - 10).max() <= 1.5


def test_batch_axes_and_bad_arguments():
    image = sample_grey("camera")[::8, ::8]
    stack = np.stack([image, image.T[: image.shape[0], : image.shape[1]]])
    got = canny(stack, 1.0, axes=(1, 2))
    np.testing.assert_array_equal(got[0], canny(image, 1.0))
    for bad, error in ((dict(sigma=0), ValueError), (dict(sigma="a"), TypeError),
                       (dict(low_threshold=5, high_threshold=1), ValueError),
                       (dict(low_threshold=2, use_quantiles=True), ValueError),
                       (dict(mode="bounce"), ValueError), (dict(axes=(0,)), ValueError)):
        with pytest.raises(error):
            canny(image, **bad)
    with pytest.raises(TypeError):
        canny(image.astype(np.int64))
    with pytest.raises(ValueError):
        canny(np.full((5, 5), np.nan))
    with pytest.raises(ValueError):
        canny(stack[None])


@pytest.mark.parametrize("seed", range(4))
def test_the_2d_suppression_marks_what_the_general_3d_code_marks(seed):
    # The 2-D suppression is an unrolled copy of the general (3-D) code for a zero z gradient:
    # run both on the same gradients (with ties, zeros, infinities and NaN) and compare marks.
    from imgfilt.rank import compiled
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 40)), int(rng.integers(3, 40)))
    gy = np.round(rng.standard_normal(shape) * 3).astype(np.float32)  # ties and zeros
    gx = np.round(rng.standard_normal(shape) * 3).astype(np.float32)
    for g in (gy, gx):
        g.flat[rng.integers(0, g.size, 3)] = rng.choice(
            np.array([np.inf, -np.inf, np.nan, 1e30], np.float32), 3)
    with np.errstate(all="ignore"):
        magnitude = np.sqrt(gy * gy + gx * gx).astype(np.float32)
    flat = np.empty((1,) + shape, np.uint8)
    compiled.canny_suppress(gy[None], gy[None], gx[None], magnitude[None], 1.0, 4.0, flat, 1)
    # A volume of three copies with gz = 0: the middle slice runs the general code.
    stack = lambda a: np.ascontiguousarray(np.broadcast_to(a, (3,) + shape))
    volume = np.empty((3,) + shape, np.uint8)
    compiled.canny_suppress(np.zeros((3,) + shape, np.float32), stack(gy), stack(gx),
                            stack(magnitude), 1.0, 4.0, volume, 1)
    np.testing.assert_array_equal(flat[0], volume[1])
    assert flat.any()
