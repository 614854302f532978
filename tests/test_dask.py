"""imgfilt.dask: lazy conv/apply equal bit for bit to the in-memory results, across chunk seams;
filter_file on .npy and TIFF; a distributed LocalCluster; an out-of-core run of bounded RSS."""
import doctest
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")

from reference import reference_conv
from strategies import MODES, conv_problems, examples

import imgfilt
import imgfilt.dask as idk
from imgfilt.io import read_volume, write_volume


def lazy(array, chunks):
    return da.from_array(array, chunks=chunks)


def assert_same(got, expected):
    """Bit for bit: same shape, dtype and values (NaN where NaN)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# conv


# (x shape, weight shape, chunks of x, options): odd and even kernels, dilation, stride 2, pads
# wider than the input, explicit pairs, 1-D/2-D/3-D, batches, chunked channels, groups; chunk
# sizes down to 1, smaller than the halo.
CASES = [
    ((3, 23, 19), (4, 3, 3, 3), (3, (1, 5, 17), (2, 2, 15)), {"padding": "same"}),
    ((2, 23, 19), (2, 2, 4, 2), (1, 6, 5), {"padding": "same"}),
    ((2, 23, 19), (2, 1, 4, 4), (2, 3, (1, 1, 17)), {"padding": "same", "groups": 2}),
    ((1, 30, 25), (1, 1, 3, 4), (1, 4, 4), {"padding": "same", "dilation": (3, 2)}),
    ((2, 3, 31, 17), (2, 3, 5, 4), ((1, 1), 2, 7, 5), {"padding": "same", "stride": 2}),
    ((2, 31, 17), (2, 2, 4, 3), (2, 5, 3), {"padding": ((7, 2), (0, 9)), "stride": (3, 2),
                                               "dilation": (2, 3)}),
    ((1, 6, 5), (1, 1, 3, 3), (1, 2, 2), {"padding": 20}),
    ((1, 40), (2, 1, 6), (1, (3, 9, 1, 27)), {"padding": "same", "dilation": 3}),
    ((2, 9, 11, 13), (3, 2, 3, 4, 2), (1, 2, 3, 5), {"padding": "same", "stride": (1, 2, 2)}),
    ((2, 9, 11, 13), (1, 2, 2, 3, 3), (2, 4, 4, 4), {"padding": "valid", "dilation": (1, 2, 3)}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv_equals_in_memory_conv_across_seams(mode, case):
    x_shape, w_shape, chunks, options = CASES[case]
    rng = np.random.default_rng(case)
    x = rng.normal(size=x_shape).astype(np.float32)
    weight = rng.normal(size=w_shape).astype(np.float32)
    bias = rng.normal(size=w_shape[0]).astype(np.float32)
    expected = imgfilt.conv(x, weight, bias, padding_mode=mode, **options)
    result = idk.conv(lazy(x, chunks), weight, bias, padding_mode=mode, **options)
    assert result.shape == expected.shape  # known before computing
    assert_same(result.compute(), expected)


def test_conv_agrees_with_the_oracle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 17, 13))
    weight = rng.normal(size=(3, 2, 4, 3))
    result = idk.conv(lazy(x, (1, 4, 5)), weight, padding="same", padding_mode="reflect",
                      stride=2).compute()
    expected = reference_conv(x, weight, padding="same", padding_mode="reflect", stride=2)
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


@st.composite
def chunked_problems(draw):
    problem = draw(conv_problems())
    shape = (problem["in_channels"],) + problem["sizes"]
    if problem["batch"] is not None:
        shape = (problem["batch"],) + shape
    chunks = []
    for size in shape:
        cuts = draw(st.lists(st.integers(1, size - 1), max_size=3, unique=True)) if size > 1 else []
        bounds = [0] + sorted(cuts) + [size]
        chunks.append(tuple(b - a for a, b in zip(bounds, bounds[1:])))
    return problem, shape, tuple(chunks)


@settings(max_examples=examples(150))
@given(chunked_problems())
def test_conv_random_problems_and_chunks(drawn):
    problem, shape, chunks = drawn
    rng = np.random.default_rng(problem["seed"])
    x = rng.normal(size=shape).astype(problem["dtype"])
    weight = rng.normal(size=(problem["out_channels"], problem["group_in"]) + problem["kernel"])
    bias = rng.normal(size=problem["out_channels"]) if problem["bias"] else None
    options = {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation", "groups")}
    try:
        expected = imgfilt.conv(x, weight, bias, **options)
    except ValueError as error:
        # The same check, with the same words, before anything is computed.
        with pytest.raises(ValueError) as raised:
            idk.conv(lazy(x, chunks), weight, bias, **options)
        assert str(raised.value) == str(error)
        return
    assert_same(idk.conv(lazy(x, chunks), weight, bias, **options).compute(), expected)


def test_integer_input_and_convolve():
    x = np.arange(2 * 12 * 10, dtype=np.uint8).reshape(2, 12, 10)
    weight = np.random.default_rng(1).normal(size=(1, 2, 3, 2))
    assert_same(idk.conv(lazy(x, (1, 5, 3)), weight, padding="same").compute(),
                imgfilt.conv(x, weight, padding="same"))
    assert_same(idk.convolve(lazy(x, (2, 4, 4)), weight, padding=1,
                             padding_mode="circular").compute(),
                imgfilt.convolve(x, weight, padding=1, padding_mode="circular"))


def test_output_chunks_follow_the_input_and_the_stride_grid():
    x = lazy(np.zeros((1, 100, 90), np.float32), (1, (30, 30, 40), (45, 45)))
    w = np.ones((2, 1, 5, 5), np.float32)
    assert idk.conv(x, w, padding="same").chunks == ((2,), (30, 30, 40), (45, 45))
    # Stride 2: output j reads around input 2j, so the seam at input 45 falls at output 23,
    # and every block starts on the global grid (23 is odd: not "half of each chunk").
    strided = idk.conv(x, w, padding=2, stride=2)
    assert strided.chunks == ((2,), (15, 15, 20), (23, 22))
    reference = imgfilt.conv(np.zeros((1, 100, 90), np.float32), w, padding=2, stride=2)
    assert strided.shape == reference.shape


def test_channels_are_rechunked_and_batches_keep_their_chunks():
    x = np.random.default_rng(2).random((4, 6, 20, 20))
    w = np.random.default_rng(3).random((5, 6, 3, 3))
    result = idk.conv(lazy(x, (3, 2, 7, 7)), w, padding="same")
    assert result.chunks[:2] == ((3, 1), (5,))
    assert_same(result.compute(), imgfilt.conv(x, w, padding="same"))


def test_threads_inside_tasks(monkeypatch):
    seen = []
    real = idk.engine_conv

    def spy(*args, **kwargs):
        seen.append(imgfilt.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(idk, "engine_conv", spy)
    x = lazy(np.ones((1, 20, 20)), (1, 10, 10))
    w = np.ones((1, 1, 3, 3))
    before = imgfilt.get_num_threads()
    idk.conv(x, w).compute()
    assert seen and set(seen) == {1}  # no oversubscription by default
    seen.clear()
    idk.conv(x, w, threads=3).compute()
    assert set(seen) == {3}
    seen.clear()
    idk.conv(x, w, threads=None).compute()
    assert set(seen) == {before}
    assert imgfilt.get_num_threads() == before  # the global setting is untouched


def test_bad_arguments():
    x = lazy(np.ones((2, 10, 10)), 5)
    with pytest.raises(ValueError, match="C_in"):
        idk.conv(x, np.ones((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="padding_mode"):
        idk.conv(x, np.ones((1, 2, 3, 3)), padding_mode="mirror101")
    with pytest.raises(ValueError, match="bias"):
        idk.conv(x, np.ones((1, 2, 3, 3)), np.ones(2))
    with pytest.raises(ValueError, match="method"):
        idk.conv(x, np.ones((1, 2, 3, 3)), method="winograd")
    with pytest.raises(ValueError, match="threads"):
        idk.conv(x, np.ones((1, 2, 3, 3)), threads=0)
    with pytest.raises(TypeError, match="dtype"):
        idk.conv(lazy(np.ones((1, 4, 4), complex), 2), np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="FilterBank"):
        idk.apply(lazy(np.ones((8, 8)), 4), imgfilt.FilterBank(np.ones((2, 1, 3, 3))))


# ---------------------------------------------------------------------------------------------
# apply


@pytest.fixture(scope="module")
def photo():
    return (np.random.default_rng(5).random((45, 38, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("filter_name, options", [
    ("gaussian", {"sigma": 2}),
    ("sobel", {}),
    ("sobel_x", {"output": "rescale"}),
    ("laplacian", {"output": "abs", "stride": 2}),
    ("box", {"padding_mode": "circular", "dilation": 2}),
    ("sharpen", {"padding_mode": "symmetric", "output": "float"}),
    ("emboss", {"padding_mode": "zeros"}),
    ("unsharp", {"padding_mode": "replicate", "stride": (3, 2)}),
    ("edge", {"channel": "r"}),
])
def test_apply_uint8_image(photo, filter_name, options):
    expected = imgfilt.apply(photo, filter_name, **options)
    result = idk.apply(lazy(photo, (7, 9, 2)), filter_name, **options)
    assert_same(result.compute(), expected)


def test_apply_volumes_float_and_uint16():
    rng = np.random.default_rng(6)
    volume = rng.random((9, 11, 13)).astype(np.float32)
    for name in ("gaussian3d", "sobel3d", "laplacian3d"):
        assert_same(idk.apply(lazy(volume, (2, 3, 5)), name).compute(),
                    imgfilt.apply(volume, name))
    stack = (rng.random((6, 10, 12, 2)) * 65535).astype(np.uint16)
    assert_same(idk.apply(lazy(stack, (4, 3, 5, 1)), "box3d", output="rescale",
                          channel_axis=-1).compute(),
                imgfilt.apply(stack, "box3d", output="rescale", channel_axis=-1))
    with pytest.raises(ValueError, match="two readings"):  # 2 channels, or 6 volumes 10x12x2?
        idk.apply(lazy(stack, (4, 3, 5, 1)), "box3d")


def test_apply_layouts(photo):
    channels_first = np.moveaxis(photo, -1, 0)
    assert_same(idk.apply(lazy(channels_first, (1, 10, 10)), "sobel", channel_axis=0).compute(),
                imgfilt.apply(channels_first, "sobel", channel_axis=0))
    gray = photo[..., 0]
    assert_same(idk.apply(lazy(gray, 11), "gaussian").compute(), imgfilt.apply(gray, "gaussian"))
    # 'reflect' on an axis of one sample repeats it, as imgfilt.apply does.
    row = gray[:1].astype(np.float32)
    assert_same(idk.apply(lazy(row, (1, 7)), "gaussian").compute(), imgfilt.apply(row, "gaussian"))
    kernel = np.random.default_rng(7).random((4, 3))
    assert_same(idk.apply(lazy(photo, 16), kernel).compute(), imgfilt.apply(photo, kernel))


def test_apply_frames(photo):
    video = np.stack([photo, photo[::-1], photo[:, ::-1]])  # (T, H, W, C)
    result = idk.apply(lazy(video, (2, 8, 8, 3)), "sobel", axes=(1, 2), channel_axis=-1).compute()
    assert_same(result, np.stack([imgfilt.apply(frame, "sobel") for frame in video]))
    assert_same(result, imgfilt.apply(video, "sobel", axes=(1, 2), channel_axis=-1))
    gray = video[..., 1]
    result = idk.apply(lazy(gray, (1, 8, 40)), "gaussian", axes=(1, 2)).compute()
    assert_same(result, np.stack([imgfilt.apply(frame, "gaussian") for frame in gray]))
    with pytest.raises(ValueError, match="axes="):  # (T, H, W, C) with a 2-D filter: say which
        idk.apply(lazy(video, (2, 8, 8, 3)), "sobel")


# ---------------------------------------------------------------------------------------------
# filter_file


def test_filter_file_npy(tmp_path, photo):
    source = tmp_path / "photo.npy"
    np.save(source, photo)
    target = tmp_path / "out.npy"
    written = idk.filter_file(source, target, "gaussian", sigma=1.5, chunks=16, progress=False)
    assert written == str(target)
    assert_same(np.load(target), imgfilt.apply(photo, "gaussian", sigma=1.5))
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "photo.npy"]  # no temporary left
    # A byte budget and per-axis chunks give the same file.
    idk.filter_file(source, target, "gaussian", sigma=1.5, chunks="2KiB", progress=False,
                    overwrite=True)
    assert_same(np.load(target), imgfilt.apply(photo, "gaussian", sigma=1.5))
    idk.filter_file(source, target, "sobel", chunks=(10, 40, 3), progress=False, overwrite=True,
                    output="rescale")
    assert_same(np.load(target), imgfilt.apply(photo, "sobel", output="rescale"))


def test_filter_file_tiff(tmp_path):
    rng = np.random.default_rng(8)
    gray = (rng.random((5, 30, 26)) * 255).astype(np.uint8)
    write_volume(tmp_path / "gray.tif", gray)
    idk.filter_file(tmp_path / "gray.tif", tmp_path / "pages.npy", "sobel", chunks=8,
                    progress=False)
    # A 2-D filter filters each page on its own ...
    assert_same(np.load(tmp_path / "pages.npy"),
                np.stack([imgfilt.apply(page, "sobel") for page in gray]))
    # ... a 3-D filter the volume.
    idk.filter_file(tmp_path / "gray.tif", tmp_path / "vol.npy", "gaussian3d", chunks=8,
                    progress=False)
    assert_same(np.load(tmp_path / "vol.npy"), imgfilt.apply(read_volume(tmp_path / "gray.tif"),
                                                            "gaussian3d"))
    colour = (rng.random((3, 20, 21, 3)) * 255).astype(np.uint8)
    write_volume(tmp_path / "rgb.tiff", colour)
    idk.filter_file(tmp_path / "rgb.tiff", tmp_path / "rgb.npy", "box", chunks=(1, 7, 7, 3),
                    progress=False)
    assert_same(np.load(tmp_path / "rgb.npy"),
                np.stack([imgfilt.apply(page, "box") for page in colour]))
    deep = (rng.random((4, 9, 10)) * 65535).astype(np.uint16)
    write_volume(tmp_path / "deep.tif", deep)
    idk.filter_file(tmp_path / "deep.tif", tmp_path / "deep.npy", "laplacian3d", chunks=3,
                    progress=False, padding_mode="replicate")
    assert_same(np.load(tmp_path / "deep.npy"),
                imgfilt.apply(deep, "laplacian3d", padding_mode="replicate"))


def test_filter_file_refuses_and_leaves_nothing_behind(tmp_path):
    from PIL import Image

    source = tmp_path / "in.npy"
    np.save(source, np.ones((20, 20), np.float32))
    with pytest.raises(ValueError, match="refusing to overwrite the input"):
        idk.filter_file(source, source, "box", progress=False, overwrite=True)
    (tmp_path / "taken.npy").write_bytes(b"keep")
    with pytest.raises(ValueError, match="exists"):
        idk.filter_file(source, tmp_path / "taken.npy", "box", progress=False)
    assert (tmp_path / "taken.npy").read_bytes() == b"keep"
    with pytest.raises(ValueError, match=r"\.npy"):
        idk.filter_file(source, tmp_path / "out.png", "box", progress=False)
    with pytest.raises(ValueError, match="no such file"):
        idk.filter_file(tmp_path / "missing.npy", tmp_path / "o.npy", "box", progress=False)
    with pytest.raises(ValueError, match="chunks"):
        idk.filter_file(source, tmp_path / "o.npy", "box", chunks="lots", progress=False)
    with pytest.raises(ValueError, match="in.npy.*sigma"):
        idk.filter_file(source, tmp_path / "o.npy", "gaussian", sigma=-1, progress=False)
    # A TIFF whose third page differs fails while computing: no output, no temporary.
    pages = [Image.new("L", (12, 10)), Image.new("L", (12, 10)), Image.new("L", (9, 10))]
    pages[0].save(tmp_path / "uneven.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ValueError, match="page 2"):
        idk.filter_file(tmp_path / "uneven.tif", tmp_path / "o.npy", "box", chunks=1,
                        progress=False)
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "taken.npy", "uneven.tif"]


def test_filter_file_progress_bar(tmp_path, capfd):
    np.save(tmp_path / "in.npy", np.ones((40, 40), np.float32))
    idk.filter_file(tmp_path / "in.npy", tmp_path / "out.npy", "box", chunks=10)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "100%" in captured.err and "task" in captured.err


# ---------------------------------------------------------------------------------------------
# A distributed cluster and an out-of-core run


def test_local_cluster_with_two_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(9)
    image = (rng.random((64, 50, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "in.npy", image)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            weight = rng.normal(size=(2, 3, 4, 3))
            x = np.moveaxis(image, -1, 0)
            result = client.compute(idk.conv(lazy(x, (3, 16, 20)), weight, padding="same",
                                             padding_mode="reflect")).result()
            assert_same(result, imgfilt.conv(x, weight, padding="same", padding_mode="reflect"))
            assert len(client.scheduler_info()["workers"]) == 2
        idk.filter_file(tmp_path / "in.npy", tmp_path / "out.npy", "gaussian", sigma=2,
                        chunks=(20, 20, 3), scheduler=cluster.scheduler_address, progress=False)
    assert_same(np.load(tmp_path / "out.npy"), imgfilt.apply(image, "gaussian", sigma=2))


def test_out_of_core_run_keeps_rss_bounded(tmp_path):
    """An 8192 x 8192 float32 .npy (256 MB; 512 MB with its result) filtered in 4 MiB chunks
    on two Dask threads: the process's peak RSS grows by less than a 128 MB budget."""
    side = 8192
    source = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32,
                                       shape=(side, side))
    rng = np.random.default_rng(10)
    for row in range(0, side, 1024):
        source[row:row + 1024] = rng.random((1024, side), dtype=np.float32)
    source.flush()
    del source
    budget_mb = 128
    script = textwrap.dedent("""
        import resource, sys
        import imgfilt.dask
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        imgfilt.dask.filter_file("big.npy", "out.npy", "box", chunks="4MiB", progress=False)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) / 1024)  # ru_maxrss is in KiB on Linux
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(imgfilt.__file__)),
               DASK_NUM_WORKERS="2")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    growth_mb = float(done.stdout.split()[-1])
    assert growth_mb < budget_mb, f"peak RSS grew by {growth_mb:.0f} MB"
    # The result is right at the top, bottom and across chunk seams (slabs of 128 rows): the
    # box filter at a row needs only the rows next to it, so a band is filtered on its own.
    source = np.load(tmp_path / "big.npy", mmap_mode="r")
    result = np.load(tmp_path / "out.npy", mmap_mode="r")
    assert result.shape == (side, side) and result.dtype == np.float32
    assert_same(np.asarray(result[:300]), imgfilt.apply(np.asarray(source[:301]), "box")[:300])
    assert_same(np.asarray(result[-300:]), imgfilt.apply(np.asarray(source[-301:]), "box")[1:])
    band = imgfilt.apply(np.asarray(source[4000:4300]), "box")[1:-1]
    assert_same(np.asarray(result[4001:4299]), band)


def test_docstring_examples():
    failures, tried = doctest.testmod(idk, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_a_block_wholly_in_the_zero_padding():
    # With a pad of 1 and stride 2 along a one-row axis, the first output row reads padding only:
    # its task has no input pieces and must still know the block's channels.
    x = np.random.default_rng(3).random((2, 1, 100))
    weight = np.random.default_rng(4).random((3, 2, 1, 1))
    expected = imgfilt.conv(x, weight, stride=2, padding=1)
    got = idk.conv(lazy(x, ((2,), (1,), (1, 99))), weight, stride=2, padding=1).compute()
    assert_same(got, expected)
