"""Photos and animations keep what they came with: EXIF (upright), ICC profile, DPI, JPEG
quality, every frame with its duration; what Pillow would truncate is refused by name."""
import numpy as np
import pytest
from cli_support import run_cli
from PIL import Image, ImageCms, ImageOps

import imgfilt
from imgfilt.pictures import Picture, read_picture, write_picture

ORIENTATION = 0x0112


_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _icc():
    return _ICC


@pytest.fixture
def portrait(tmp_path):
    """A phone photo: landscape pixels with EXIF orientation 6 (turn 90° clockwise to view),
    an ICC profile, 300 DPI, quality 88."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 60).astype(np.uint8)
    pixels[:8, :16] = 250  # a bright corner that shows which way is up
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    path = tmp_path / "portrait.jpg"
    Image.fromarray(pixels).save(path, exif=exif, icc_profile=_icc(), dpi=(300, 300), quality=88)
    return path


def test_portrait_jpeg_comes_out_upright_with_its_tags(portrait, tmp_path):
    done = run_cli("apply", "box", portrait.name, "-o", "out.jpg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(portrait) as source, Image.open(tmp_path / "out.jpg") as out:
        upright = ImageOps.exif_transpose(source)
        assert out.size == upright.size == (48, 64)  # portrait, as the phone showed it
        exif = out.getexif()
        assert ORIENTATION not in exif and exif[0x010F] == "PhoneMaker"
        assert out.info["icc_profile"] == source.info["icc_profile"] == _icc()
        assert out.info["dpi"] == (300, 300)
        assert out.quantization == source.quantization  # quality 88 kept
        # The pixels are the filter of the upright picture (within JPEG's loss).
        expected = np.asarray(imgfilt.apply(upright.convert("RGB"), "box"), dtype=float)
        assert np.abs(np.asarray(out, dtype=float) - expected).mean() < 3


def test_quality_is_settable(portrait, tmp_path):
    done = run_cli("apply", "box", portrait.name, "-o", "q50.jpg", "--quality", "50",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference.jpg"
    Image.new("RGB", (8, 8)).save(reference, quality=50)
    with Image.open(tmp_path / "q50.jpg") as out, Image.open(reference) as pillow:
        assert out.quantization == pillow.quantization
    done = run_cli("apply", "box", portrait.name, "-o", "bad.jpg", "--quality", "101",
                   cwd=tmp_path)
    assert done.returncode == 2 and "1-100" in done.stderr


def test_png_keeps_exif_icc_and_dpi_and_bmp_says_what_it_drops(portrait, tmp_path):
    done = run_cli("apply", "box", portrait.name, "-o", "out.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (48, 64) and out.info["icc_profile"] == _icc()
        assert [round(v) for v in out.info["dpi"]] == [300, 300]
        assert out.getexif()[0x010F] == "PhoneMaker"
    done = run_cli("apply", "box", portrait.name, "-o", "out.bmp", cwd=tmp_path)
    assert done.returncode == 0 and "cannot hold the input's exif, icc profile" in done.stderr


def test_sixteen_bit_colour_png_is_refused_by_name(tmp_path):
    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 5, 3), 59998, np.uint16))
    with Image.open(tmp_path / "deep.png") as image:
        assert np.asarray(image).max() == 234  # what Pillow would have given
    with pytest.raises(ValueError, match=r"deep\.png.*16-bit RGB PNG"):
        read_picture(tmp_path / "deep.png")
    done = run_cli("apply", "box", "deep.png", "-o", "o.png", cwd=tmp_path)
    assert done.returncode == 1 and "16-bit RGB PNG" in done.stderr
    assert not (tmp_path / "o.png").exists()
    # 16-bit grey is exact in Pillow (mode I;16) and is read.
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((4, 5), 59998, np.uint16))
    assert np.asarray(read_picture(tmp_path / "grey.png").frames[0]).max() == 59998


def _animation(path, frames=24, **extra):
    rng = np.random.default_rng(1)
    images = [Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8))
              for _ in range(frames)]
    durations = [40 + 10 * (i % 5) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=3,
                   **extra)
    return durations


@pytest.mark.parametrize("name, extra", [("anim.gif", {}), ("anim.webp", {"lossless": True}),
                                         ("anim.png", {})])
def test_animations_keep_every_frame_and_its_duration(tmp_path, name, extra):
    durations = _animation(tmp_path / name, **extra)
    done = run_cli("apply", "gaussian", name, "-o", "out" + name[4:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / name) as source, Image.open(tmp_path / ("out" + name[4:])) as out:
        assert out.n_frames == source.n_frames == 24
        assert out.info.get("loop") == 3
        seen = []
        for index in range(out.n_frames):
            out.seek(index)
            out.load()  # WebP sets a frame's duration when it is decoded
            seen.append(out.info["duration"])
        assert seen == durations
        # Each frame is the filtered source frame (GIF re-quantises: a loose bound there).
        for index in (0, 11, 23):
            source.seek(index)
            out.seek(index)
            expected = np.asarray(imgfilt.apply(source.convert("RGB"), "gaussian"), float)
            error = np.abs(np.asarray(out.convert("RGB"), float) - expected).mean()
            assert error < (12 if name.endswith(".gif") else 0.5), (index, error)


def test_animation_to_a_one_frame_format_is_refused_by_name(tmp_path):
    _animation(tmp_path / "a.gif", frames=3)
    done = run_cli("apply", "box", "a.gif", "-o", "a.jpg", cwd=tmp_path)
    assert done.returncode == 1 and "JPEG holds one frame and this result has 3" in done.stderr
    assert not (tmp_path / "a.jpg").exists()
    # A TIFF takes the frames as pages.
    done = run_cli("apply", "box", "a.gif", "-o", "a.tif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert imgfilt.io.read_volume(tmp_path / "a.tif").shape == (3, 20, 30, 3)


def test_pixel_limit_counts_frames(tmp_path):
    _animation(tmp_path / "a.gif", frames=10)  # 600 pixels a frame, 6000 in all
    done = run_cli("apply", "box", "a.gif", "-o", "b.gif", "--max-pixels", "1000", cwd=tmp_path)
    assert done.returncode == 1 and "6000 pixels is above the limit of 1000" in done.stderr
    with pytest.raises(ValueError, match=r"a\.gif.*6000 pixels") as refused:
        read_picture(tmp_path / "a.gif", max_pixels=2000)
    assert isinstance(refused.value.__cause__, Image.DecompressionBombError)


def test_write_picture_refusals():
    with pytest.raises(ValueError, match="quality must be 1-100"):
        write_picture("x.jpg", Image.new("L", (2, 2)), quality=0)
    with pytest.raises(ValueError, match="unknown image extension"):
        write_picture("x.nope", Image.new("L", (2, 2)))
    assert Picture([Image.new("L", (1, 1))] * 2).n_frames == 2
