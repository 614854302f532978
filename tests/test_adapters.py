"""The one input/output adapter (imgfilt.arrays): each input type through each entry point gives
the type and layout it came in, and the NumPy path's numbers; the one dtype rule."""
import numpy as np
import pytest
from PIL import Image

import imgfilt
from imgfilt import FilterBank, Sequential

torch = pytest.importorskip("torch")
xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

RNG = np.random.default_rng(5)
PHOTO = (RNG.random((20, 24, 3)) * 255).astype(np.uint8)
VALUES = RNG.normal(size=(20, 24, 3)).astype(np.float32)
BANK = FilterBank(RNG.normal(size=(4, 3, 3, 3)))
NET = Sequential(BANK, FilterBank(RNG.normal(size=(2, 4, 1, 1))))


def entry_points():
    """``(name, call)``: each entry point with the options that say the layout."""
    return [
        ("apply", lambda x, **kw: imgfilt.apply(x, "gaussian", sigma=1.0, **kw)),
        ("apply kernel", lambda x, **kw: imgfilt.apply(x, np.ones((3, 3)) / 9, **kw)),
        ("FilterBank", lambda x, **kw: BANK.apply(x, **kw)),
        ("Sequential", lambda x, **kw: NET.apply(x, **kw)),
    ]


@pytest.mark.parametrize("name, call", entry_points())
def test_torch_tensors_come_back_as_tensors_in_their_layout(name, call):
    chw = np.ascontiguousarray(np.moveaxis(VALUES, -1, 0))
    expected = call(chw, channel_axis=0)
    tensor = torch.from_numpy(chw).requires_grad_(True)  # read detached, not refused
    result = call(tensor)  # torch's (C, H, W) contract
    assert isinstance(result, torch.Tensor) and result.device.type == "cpu"
    np.testing.assert_array_equal(result.numpy(), expected)
    batch = torch.from_numpy(np.stack([chw, chw[:, ::-1].copy()]))  # (N, C, H, W)
    got = call(batch)
    assert isinstance(got, torch.Tensor) and got.shape[0] == 2
    np.testing.assert_array_equal(got[0].numpy(), expected)


@pytest.mark.parametrize("name, call", entry_points())
def test_dataarrays_keep_dims_coords_and_attrs(name, call):
    array = xr.DataArray(VALUES, dims=("y", "x", "band"),
                         coords={"y": np.arange(20) * 0.5, "x": np.arange(24) * 0.25,
                                 "band": ["r", "g", "b"]},
                         attrs={"units": "counts"}, name="scene")
    result = call(array)
    expected = call(VALUES, channel_axis=-1)
    assert isinstance(result, xr.DataArray) and result.name == "scene"
    assert result.attrs == {"units": "counts"}
    np.testing.assert_array_equal(result.values, expected)
    np.testing.assert_array_equal(result.coords["x"].values, array.coords["x"].values)
    np.testing.assert_array_equal(result.coords["y"].values, array.coords["y"].values)
    if name.startswith("apply"):
        assert result.dims == array.dims
        assert list(result.coords["band"].values) == ["r", "g", "b"]
    else:  # feature maps replace the bands, first
        assert result.dims == ("feature", "y", "x")


def test_dataarray_dim_names_may_name_the_axes_and_strides_sample_the_coordinates():
    stack = xr.DataArray(RNG.normal(size=(3, 16, 18)), dims=("t", "row", "col"),
                         coords={"col": np.arange(18)})
    result = imgfilt.apply(stack, "box", axes=("row", "col"), stride=2)
    assert result.dims == ("t", "row", "col") and result.shape == (3, 8, 9)
    np.testing.assert_array_equal(result.coords["col"].values, np.arange(0, 18, 2))
    np.testing.assert_array_equal(result.values,
                                  imgfilt.apply(stack.values, "box", axes=(1, 2), stride=2))


@pytest.mark.parametrize("name, call", entry_points()[:2])
def test_dask_arrays_through_apply_stay_lazy_and_equal(name, call):
    lazy = da.from_array(PHOTO, chunks=(8, 8, 3))
    result = call(lazy)
    assert isinstance(result, da.Array)  # nothing computed yet
    np.testing.assert_array_equal(result.compute(), call(PHOTO))


def test_numpy_and_pil_through_each_entry_point():
    img = Image.fromarray(PHOTO)
    out = imgfilt.apply(img, "sobel")
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), imgfilt.apply(PHOTO, "sobel"))
    np.testing.assert_array_equal(BANK.apply(img), BANK.apply(PHOTO))
    np.testing.assert_array_equal(NET.apply(img), NET.apply(PHOTO))
    assert isinstance(imgfilt.apply(PHOTO.tolist(), "box", channel_axis=-1), np.ndarray)


class FakeDeviceArray:
    """What CuPy looks like to a library: a CUDA array interface, no host memory."""

    __cuda_array_interface__ = {"shape": (4, 4), "typestr": "<f4", "data": (0, False),
                                "version": 3}
    shape = (4, 4)


@pytest.mark.parametrize("call", [
    lambda x: imgfilt.apply(x, "box"), lambda x: imgfilt.conv(x, np.ones((1, 1, 3))),
    lambda x: BANK.apply(x),
])
def test_device_arrays_get_a_clear_type_error(call):
    with pytest.raises(TypeError) as error:
        call(FakeDeviceArray())
    message = str(error.value)
    assert "CUDA" in message and "PIL images" in message and "torch" in message


def test_integers_float32_cannot_hold_are_exact():
    # 2**25 + 1 has no float32: the one dtype rule computes 32/64-bit integers in float64.
    big = np.array([[2**25 + 1, 2**25 + 3, 7]], dtype=np.int64)
    identity = np.array([[[1.0]]])
    result = imgfilt.conv(big, identity)
    assert result.dtype == np.float64 and result[0, 0] == 2**25 + 1
    for dtype in (np.int32, np.uint32, np.int64, np.uint64):
        image = np.full((6, 6), 2**30 + 1, dtype=dtype)
        out = imgfilt.apply(image, "box")
        assert out.dtype == dtype and int(out[3, 3]) == 2**30 + 1
        maps = FilterBank(np.ones((1, 1, 1, 1))).apply(image)
        assert maps.dtype == np.float64 and maps[0, 3, 3] == 2**30 + 1
    assert imgfilt.compute_dtype(np.int16) == np.float32
    assert imgfilt.compute_dtype(np.uint32) == np.float64


def test_dask_apply_keeps_the_int64_rule():
    image = np.full((12, 12), 2**40 + 3, dtype=np.int64)
    result = imgfilt.apply(da.from_array(image, chunks=5), "box").compute()
    assert result.dtype == np.int64 and int(result[6, 6]) == 2**40 + 3
