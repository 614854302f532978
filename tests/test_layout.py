"""The one axis rule (imgfilt.layout): what is read without being asked, what is refused, and
``axes=`` equal to filtering slice by slice, through every entry point."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from strategies import examples

import imgfilt
from imgfilt import FilterBank, Sequential
from imgfilt.layout import resolve


# ---------------------------------------------------------------------------------------------
# Only one reading fits: taken


@pytest.mark.parametrize("shape, ndim, spatial, channel", [
    ((480, 640), 2, (0, 1), None),
    ((480, 640, 3), 2, (0, 1), 2),
    ((480, 640, 4), 2, (0, 1), 2),
    ((480, 640, 1), 2, (0, 1), 2),
    ((30, 40, 50), 3, (0, 1, 2), None),
    ((30, 40, 50, 3), 3, (0, 1, 2), 3),
    ((1000,), 1, (0,), None),
    ((1000, 3), 1, (0,), 1),
])
def test_one_reading_is_taken(shape, ndim, spatial, channel):
    layout = resolve(shape, ndim)
    assert (layout.spatial, layout.channel) == (spatial, channel)
    assert sorted(layout.order) == list(range(len(shape)))


@pytest.mark.parametrize("shape, ndim, channel, spatial", [
    ((3, 224, 224), 2, 0, (1, 2)),        # torch's (C, H, W)
    ((8, 3, 224, 224), 2, 1, (2, 3)),     # torch's (N, C, H, W)
    ((2, 16, 16, 16), 3, 0, (1, 2, 3)),
])
def test_torch_tensors_follow_torchs_contract(shape, ndim, channel, spatial):
    layout = resolve(shape, ndim, convention="torch")
    assert (layout.channel, layout.spatial) == (channel, spatial)


def test_a_channel_mixing_filter_finds_the_one_end_axis_with_its_channel_count():
    assert resolve((3, 400, 600), 2, in_channels=3).channel == 0
    assert resolve((400, 600, 3), 2, in_channels=3).channel == 2
    assert resolve((5, 400, 600), 2, in_channels=5).channel == 0
    with pytest.raises(ValueError, match="two readings"):  # both ends have 3 entries
        resolve((3, 40, 3), 2, in_channels=3)
    with pytest.raises(ValueError, match="C_in = 2"):
        resolve((400, 600, 3), 2, in_channels=2)


def test_xarray_dim_names_say_which_axes_are_which():
    layout = resolve((3, 50, 60), 2, dims=("band", "y", "x"))
    assert (layout.channel, layout.spatial) == (0, (1, 2))
    layout = resolve((7, 50, 60), 2, dims=("time", "y", "x"))
    assert (layout.channel, layout.spatial, layout.batch) == (None, (1, 2), (0,))
    assert resolve((5, 6, 7), 2, axes=("x", "y"), dims=("t", "y", "x")).spatial == (2, 1)
    with pytest.raises(ValueError, match="not a dimension"):
        resolve((5, 6, 7), 2, axes=("q", "y"), dims=("t", "y", "x"))
    with pytest.raises(TypeError, match="dim names"):
        resolve((5, 6, 7), 2, axes=("y", "x"))


# ---------------------------------------------------------------------------------------------
# Two readings fit: refused, naming both and the argument that picks one


@pytest.mark.parametrize("shape, ndim", [
    ((200, 25, 25), 2),     # a stack of faces, or one 200x25 image with 25 channels?
    ((3, 400, 600), 2),     # channels first, or 600 channels?
    ((64, 128, 128), 2),    # a (Z, Y, X) volume given a 2-D filter
    ((4, 4, 3), 2),         # a 4x4 RGB image, or four 4x3 images?
    ((500, 2), 1),          # two channels, or 500 signals of 2 samples?
    ((10, 20, 30, 2), 3),
])
def test_two_readings_are_refused_by_name(shape, ndim):
    with pytest.raises(ValueError) as error:
        resolve(shape, ndim)
    message = str(error.value)
    assert "two readings" in message and str(shape) in message
    assert "channel_axis=0" in message and "channel_axis=-1" in message and "axes=" in message


@pytest.mark.parametrize("shape, ndim", [((10, 480, 640, 3), 2), ((5, 6, 7, 8, 9), 3)])
def test_more_axes_than_one_reading_need_axes(shape, ndim):
    with pytest.raises(ValueError, match=r"axes="):
        resolve(shape, ndim)


def test_entry_points_refuse_the_same_way():
    faces = np.random.default_rng(0).random((200, 25, 25))
    bank = FilterBank(np.ones((2, 1, 3, 3)))
    for call in (lambda: imgfilt.apply(faces, "box"), lambda: bank.apply(faces),
                 lambda: Sequential(bank, FilterBank(np.ones((1, 2, 1, 1)))).apply(faces)):
        with pytest.raises(ValueError, match="two readings"):
            call()


@pytest.mark.parametrize("kwargs, words", [
    ({"channel_axis": 3}, ["channel_axis=3", "out of range"]),
    ({"channel_axis": 1.5}, ["channel_axis", "int"]),
    ({"channel_axis": True}, ["channel_axis", "int"]),
    ({"axes": (0, 0)}, ["twice"]),
    ({"axes": (0,)}, ["1 axes", "2 spatial axes"]),
    ({"axes": (0, 1), "channel_axis": 1}, ["also one of axes"]),
    ({"channel_axis": None}, ["channel_axis=None", "axes="]),
    ({"channel_axis": 0, "axes": (1, 5)}, ["axes=5", "out of range"]),
])
def test_bad_axis_arguments_name_themselves(kwargs, words):
    with pytest.raises((ValueError, TypeError)) as error:
        imgfilt.apply(np.zeros((6, 7, 8)), "box", **kwargs)
    for word in words:
        assert word in str(error.value), (word, str(error.value))


# ---------------------------------------------------------------------------------------------
# axes= is filtering each slice on its own


@st.composite
def axes_problems(draw):
    ndim = draw(st.integers(1, 3))
    rank = draw(st.integers(ndim, ndim + 2))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=rank, max_size=rank)))
    spatial = tuple(draw(st.permutations(range(rank)))[:ndim])
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
    return shape, spatial, kernel, mode, draw(st.integers(0, 2**31))


@settings(max_examples=examples(80), deadline=None)
@given(problem=axes_problems())
def test_axes_equals_filtering_each_slice(problem):
    shape, spatial, kernel_shape, mode, seed = problem
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=kernel_shape)
    result = imgfilt.apply(x, kernel, axes=spatial, padding_mode=mode)
    assert result.shape == x.shape and result.dtype == np.float64
    others = [a for a in range(len(shape)) if a not in spatial]
    moved = np.moveaxis(x, others + list(spatial), range(len(shape)))
    got = np.moveaxis(result, others + list(spatial), range(len(shape)))
    for index in np.ndindex(*moved.shape[: len(others)]):
        expected = imgfilt.apply(moved[index], kernel, channel_axis=None, padding_mode=mode)
        np.testing.assert_allclose(got[index], expected, rtol=1e-12, atol=1e-12)


def test_a_stack_of_volumes_with_a_3d_filter_in_memory():
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(3, 6, 7, 8))  # (T, Z, Y, X)
    result = imgfilt.apply(stack, "gaussian3d", sigma=0.7, axes=(1, 2, 3))
    for t in range(3):
        np.testing.assert_allclose(result[t], ndimage.gaussian_filter(stack[t], 0.7,
                                                                      mode="mirror"),
                                   atol=1e-12)


def test_a_bank_over_a_batch_gives_batch_then_features():
    rng = np.random.default_rng(2)
    frames = rng.normal(size=(4, 12, 13, 3))  # (T, H, W, C)
    bank = FilterBank(rng.normal(size=(5, 3, 3, 3)))
    maps = bank.apply(frames, axes=(1, 2), channel_axis=-1)
    assert maps.shape == (4, 5, 12, 13)
    for t in range(4):
        np.testing.assert_allclose(maps[t], bank.apply(frames[t], channel_axis=-1), atol=1e-12)
    last = bank.apply(frames, axes=(1, 2), channel_axis=-1, channels_last=True)
    np.testing.assert_array_equal(last, np.moveaxis(maps, 1, -1))
