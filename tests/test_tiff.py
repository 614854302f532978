"""TIFF through tifffile: bit-exact round trips for every dtype, BigTIFF, compression,
ImageJ/OME metadata, the Dask page reader, and the pixel limit over all pages."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from cli_support import cli_env, run_cli
from PIL import Image

import imgfilt
from imgfilt import tiff
from imgfilt.files import check_pixel_count
from imgfilt.io import read_volume, read_volume_with_metadata, write_volume
from imgfilt.tiff import TiffPageReader, read_tiff, write_tiff

DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16",
          "float32", "float64", "bool"]


def _random(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == bool:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        values = rng.standard_normal(shape) * 1e3
        values.flat[0] = np.finfo(dtype).max  # the extremes survive too
        return values.astype(dtype)
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    values.flat[0], values.flat[-1] = info.min, info.max
    return values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("colour", [False, True], ids=["gray", "rgb"])
@pytest.mark.parametrize("pages", [1, 3], ids=["single", "multi"])
def test_volumes_round_trip_bit_for_bit(tmp_path, dtype, colour, pages):
    rng = np.random.default_rng(len(dtype) + 10 * pages + colour)
    shape = (pages, 5, 7) + ((3,) if colour else ())
    volume = _random(rng, shape, dtype)
    path = tmp_path / "v.tif"
    if dtype == "bool" and colour:  # TIFF's 1-bit pixels have one sample
        with pytest.raises(ValueError, match="1-bit pixels with one sample"):
            write_volume(path, volume)
        return
    write_volume(path, volume)
    back, metadata = read_volume_with_metadata(path)
    assert back.dtype == volume.dtype and back.shape == volume.shape
    np.testing.assert_array_equal(back, volume)
    # The peer reads the same pixels, and sees RGB where there is colour.
    np.testing.assert_array_equal(tifffile.imread(path).reshape(shape), volume)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.photometric == (tifffile.PHOTOMETRIC.RGB if colour
                                               else tifffile.PHOTOMETRIC.MINISBLACK)
        assert len(tif.pages) == pages
        assert tif.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE  # zlib default
    # Written back with its metadata: the same file content.
    write_volume(tmp_path / "again.tif", back, metadata)
    np.testing.assert_array_equal(read_volume(tmp_path / "again.tif"), volume)


def test_values_pillow_lost_are_kept(tmp_path):
    """The cases of issue 14: 16-bit RGB, uint32 max, float64, int16 CT stacks."""
    rgb16 = np.full((4, 5, 3), 59998, np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    assert read_volume(tmp_path / "rgb16.tif").max() == 59998
    big = np.full((2, 3), 2**32 - 1, np.uint32)
    tifffile.imwrite(tmp_path / "u32.tif", big)
    assert read_volume(tmp_path / "u32.tif").max() == 2**32 - 1
    tifffile.imwrite(tmp_path / "f64.tif", np.full((2, 3), np.pi))
    assert read_volume(tmp_path / "f64.tif")[0, 0, 0] == np.pi
    ct = np.arange(-1000, 1000, 25, dtype=np.int16).reshape(4, 4, 5)
    tifffile.imwrite(tmp_path / "ct.tif", ct, photometric="minisblack")
    volume, metadata = read_volume_with_metadata(tmp_path / "ct.tif")
    assert volume.dtype == np.int16
    smooth = imgfilt.apply(volume, "gaussian3d", sigma=1)
    write_volume(tmp_path / "ct_smooth.tif", smooth, metadata)
    assert tifffile.imread(tmp_path / "ct_smooth.tif").dtype == np.int16


def test_bigtiff_forced_and_automatic(tmp_path, monkeypatch):
    data = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    write_tiff(tmp_path / "forced.tif", data, bigtiff=True, axes="QYX")
    with tifffile.TiffFile(tmp_path / "forced.tif") as tif:
        assert tif.is_bigtiff
    np.testing.assert_array_equal(read_tiff(tmp_path / "forced.tif")[0], data)
    write_tiff(tmp_path / "small.tif", data, axes="QYX")
    with tifffile.TiffFile(tmp_path / "small.tif") as tif:
        assert not tif.is_bigtiff
    # Past the threshold (4 GiB - 32 MiB; lowered here), BigTIFF without being asked.
    monkeypatch.setattr(tiff, "BIGTIFF_THRESHOLD", data.nbytes)
    write_tiff(tmp_path / "auto.tif", data, axes="QYX")
    with tifffile.TiffFile(tmp_path / "auto.tif") as tif:
        assert tif.is_bigtiff


@pytest.mark.parametrize("name, code", [("none", tifffile.COMPRESSION.NONE),
                                        ("zlib", tifffile.COMPRESSION.ADOBE_DEFLATE),
                                        ("lzma", tifffile.COMPRESSION.LZMA)])
def test_compressions(tmp_path, name, code):
    data = np.tile(np.arange(50, dtype=np.uint16), (40, 1))
    write_tiff(tmp_path / "c.tif", data, compression=name)
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        assert tif.pages.first.compression == code
    np.testing.assert_array_equal(read_tiff(tmp_path / "c.tif")[0], data)
    with pytest.raises(ValueError, match="compression must be one of"):
        write_tiff(tmp_path / "c.tif", data, compression="jpeg2000")


def test_imagej_metadata_kept(tmp_path):
    stack = np.random.default_rng(1).integers(0, 4000, (2, 3, 6, 7), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "TZYX", "spacing": 1.5, "unit": "um", "finterval": 2.0})
    volume, metadata = read_volume_with_metadata(tmp_path / "ij.tif")
    assert volume.shape == (6, 6, 7) and metadata.axes == "TZYX"
    smooth = imgfilt.apply(volume, "gaussian", sigma=1, channel_axis=0)
    write_volume(tmp_path / "out.tif", smooth, metadata)
    with tifffile.TiffFile(tmp_path / "ij.tif") as before, \
            tifffile.TiffFile(tmp_path / "out.tif") as after:
        assert after.is_imagej and after.series[0].axes == before.series[0].axes == "TZYX"
        assert after.series[0].shape == before.series[0].shape
        for key in ("spacing", "unit", "finterval", "frames", "slices"):
            assert after.imagej_metadata[key] == before.imagej_metadata[key], key
        assert after.pages.first.resolution == before.pages.first.resolution
        assert after.pages.first.resolutionunit == before.pages.first.resolutionunit
        np.testing.assert_array_equal(after.asarray(), smooth.reshape(stack.shape))
    # ImageJ cannot hold float64: refused by name rather than written without its metadata.
    with pytest.raises(ValueError, match="ImageJ.*float64"):
        write_volume(tmp_path / "f.tif", volume.astype(np.float64), metadata)
    assert not (tmp_path / "f.tif").exists()


def test_ome_metadata_kept(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    tifffile.imwrite(tmp_path / "a.ome.tif", data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.5,
        "PhysicalSizeZ": 2.0, "Channel": {"Name": ["DAPI"]}})
    volume, metadata = read_volume_with_metadata(tmp_path / "a.ome.tif")
    write_volume(tmp_path / "b.ome.tif", volume + 1, metadata)
    with tifffile.TiffFile(tmp_path / "b.ome.tif") as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
    assert pixels["PhysicalSizeX"] == 0.5 and pixels["PhysicalSizeXUnit"] == "µm"
    assert pixels["PhysicalSizeZ"] == 2.0 and pixels["Channel"]["Name"] == "DAPI"


def test_plain_tiff_tags_kept(tmp_path):
    data = np.zeros((5, 6, 3), np.uint8)
    tifffile.imwrite(tmp_path / "scan.tif", data, photometric="rgb", resolution=(300, 300),
                     resolutionunit="INCH", description="scanned page 1", shaped=False)
    pixels, metadata = read_tiff(tmp_path / "scan.tif")
    write_tiff(tmp_path / "out.tif", pixels, metadata)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert page.resolution == (300, 300) and page.resolutionunit == tifffile.RESUNIT.INCH
        assert page.description == "scanned page 1" and page.photometric == 2


def test_pages_of_different_sizes_are_refused_by_page(tmp_path):
    with tifffile.TiffWriter(tmp_path / "uneven.tif") as writer:
        writer.write(np.zeros((4, 5), np.uint8))
        writer.write(np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r"uneven\.tif.*page 1 is \(4, 6\)"):
        read_volume(tmp_path / "uneven.tif")


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("contiguous", [True, False])
def test_page_reader_matches_tifffile(tmp_path, compression, contiguous):
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 60000, (9, 6, 7, 3), dtype=np.uint16)
    path = tmp_path / "s.tif"
    with tifffile.TiffWriter(path, byteorder=">") as writer:  # big-endian too
        if contiguous:
            writer.write(stack, compression=compression, photometric="rgb")
        else:
            for page in stack:
                writer.write(page, compression=compression, photometric="rgb",
                             contiguous=False)
    reader = TiffPageReader(path)
    assert reader.shape == stack.shape and reader.dtype == np.uint16
    assert (reader.offset is not None) == (contiguous and compression is None)
    np.testing.assert_array_equal(reader[:], stack)
    np.testing.assert_array_equal(reader[2:5, 1:4, ::2], stack[2:5, 1:4, ::2])
    np.testing.assert_array_equal(reader[8], stack[8])


def test_page_reader_reads_only_its_pages(tmp_path, monkeypatch):
    """A chunk deep in the file parses one IFD, not every IFD before it."""
    path = tmp_path / "deep.tif"
    with tifffile.TiffWriter(path) as writer:
        for index in range(300):
            writer.write(np.full((4, 5), index, np.uint16), compression="zlib",
                         contiguous=False)
    reader = TiffPageReader(path)
    made = []
    original = tifffile.TiffPage.__init__

    def counting(self, *args, **kwargs):
        made.append(kwargs.get("index", args[1] if len(args) > 1 else None))
        original(self, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "__init__", counting)
    assert reader[290:292].max() == 291
    assert len(made) <= 3, made  # the first page (opening the file) and the two read


def test_filter_file_on_a_compressed_stack(tmp_path):
    import imgfilt.dask as idk

    stack = np.random.default_rng(4).integers(0, 255, (6, 20, 24), dtype=np.uint8)
    write_volume(tmp_path / "s.tif", stack)
    idk.filter_file(tmp_path / "s.tif", tmp_path / "o.npy", "box", chunks=(2, 20, 24),
                    progress=False)
    expected = np.stack([imgfilt.apply(page, "box") for page in stack])
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), expected)


def test_cli_sixteen_bit_rgb_tiff_keeps_its_bits_and_tags(tmp_path):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 65535, (12, 10, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", image, photometric="rgb", resolution=(600, 600),
                     resolutionunit="INCH")
    done = run_cli("apply", "box", "in.tif", "-o", "out.tif", "--compression", "lzma",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert page.dtype == np.uint16 and page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.resolution == (600, 600) and page.compression == tifffile.COMPRESSION.LZMA
        np.testing.assert_array_equal(tif.asarray(), imgfilt.apply(image, "box"))


def test_cli_imagej_stack_keeps_spacing(tmp_path):
    stack = np.random.default_rng(6).integers(0, 255, (5, 16, 18), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True,
                     metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    for filt in ("gaussian", "gaussian3d"):
        done = run_cli("apply", filt, "ij.tif", "-o", f"{filt}.tif", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        with tifffile.TiffFile(tmp_path / f"{filt}.tif") as tif:
            assert tif.imagej_metadata["spacing"] == 3.0 and tif.series[0].axes == "ZYX"
            assert tif.imagej_metadata["unit"] == "um"


@pytest.mark.parametrize("unit, per_unit", [("INCH", 300.0), ("CENTIMETER", 300.0 / 2.54)])
def test_cli_tiff_resolution_becomes_the_pictures_dpi(tmp_path, unit, per_unit):
    image = np.random.default_rng(7).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", image, photometric="rgb",
                     resolution=(per_unit, per_unit), resolutionunit=unit)
    for target in ("out.png", "out.jpg"):
        done = run_cli("apply", "box", "in.tif", "-o", target, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "note" not in done.stderr  # nothing was dropped
        with Image.open(tmp_path / target) as out:
            assert [round(v) for v in out.info["dpi"]] == [300, 300]


def test_cli_tiff_metadata_a_picture_cannot_hold_is_named(tmp_path):
    plane = np.random.default_rng(8).integers(0, 255, (16, 18), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", plane, imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 3.0, "unit": "um"})
    tifffile.imwrite(tmp_path / "ratio.tif", plane, resolution=(1.0, 2.0),
                     resolutionunit="NONE", description="plain words")
    done = run_cli("apply", "box", "ij.tif", "-o", "ij.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ij.png: its format cannot hold the input's" in done.stderr
    assert "ImageJ metadata" in done.stderr  # ImageJ keeps its unit there, not in the tag
    done = run_cli("apply", "box", "ratio.tif", "-o", "ratio.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resolution (no unit)" in done.stderr and "image description" in done.stderr
    # To TIFF nothing is dropped: the description (beside tifffile's shape record) comes back.
    for name in ("ij", "ratio"):
        done = run_cli("apply", "box", f"{name}.tif", "-o", f"{name}2.tif", cwd=tmp_path)
        assert done.returncode == 0 and "note" not in done.stderr, done.stderr
    with tifffile.TiffFile(tmp_path / "ratio2.tif") as tif:
        assert tif.pages.first.description == "plain words"
        assert tif.pages.first.resolution == (1.0, 2.0)


def test_pixel_limit_counts_every_page_in_bounded_memory(tmp_path):
    """Ten pages each under the limit, together over twice it: refused before any is read,
    in a child process that may not use more than 1 GiB of address space."""
    page = np.zeros((4000, 4000), np.uint8)  # 16 M pixels; the limit is set to 60 M
    with tifffile.TiffWriter(tmp_path / "ten.tif") as writer:
        for _ in range(10):
            writer.write(page, compression="zlib", contiguous=False)
    assert os.path.getsize(tmp_path / "ten.tif") < 2_000_000
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from imgfilt.cli import main
        sys.exit(main(["apply", "box", "ten.tif", "-o", "o.tif", "--max-pixels", "60000000"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "160000000 pixels is above the limit of 60000000" in done.stderr
    assert not (tmp_path / "o.tif").exists()
    # The library warns above the limit and refuses above twice it, as Pillow does.
    with pytest.warns(Image.DecompressionBombWarning):
        check_pixel_count(150, "x.tif", limit=100)
    with pytest.raises(Image.DecompressionBombError, match="x.tif"):
        check_pixel_count(201, "x.tif", limit=100)
