"""Volumes on disk: .npy and multi-page TIFF round trips, refusals, atomic writes."""
import os

import numpy as np
import pytest
from PIL import Image, ImageSequence

import imgfilt
from imgfilt.io import atomic_write, load_npz, read_volume, write_volume

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("volume", [
    RNG.normal(size=(3, 5, 6)),
    RNG.integers(-5, 5, size=(2, 3, 4, 2)).astype(np.int16),
    RNG.random((4, 4, 4)) > 0.5,
])
def test_npy_round_trip(tmp_path, volume):
    path = tmp_path / "v.npy"
    write_volume(path, volume)
    back = read_volume(path)
    assert back.dtype == volume.dtype and np.array_equal(back, volume)


@pytest.mark.parametrize("volume", [
    RNG.integers(0, 256, size=(3, 5, 6), dtype=np.uint8),
    RNG.integers(0, 65536, size=(4, 5, 6)).astype(np.uint16),
    RNG.integers(-2**31, 2**31 - 1, size=(2, 5, 6)).astype(np.int32),
    RNG.normal(size=(3, 5, 6)).astype(np.float32),
    RNG.integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8),
    RNG.integers(0, 256, size=(2, 5, 6, 4), dtype=np.uint8),
])
@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_tiff_round_trip(tmp_path, volume, suffix):
    path = tmp_path / ("v" + suffix)
    write_volume(path, volume)
    with Image.open(path) as stack:  # really one page per slice, readable by Pillow alone
        assert stack.n_frames == volume.shape[0]
    back = read_volume(path)
    assert back.dtype == volume.dtype and np.array_equal(back, volume)


def test_sixteen_bit_pages_stay_sixteen_bit(tmp_path):
    volume = (np.arange(2 * 3 * 4).reshape(2, 3, 4) * 2700).astype(np.uint16)
    write_volume(tmp_path / "v.tif", volume)
    with Image.open(tmp_path / "v.tif") as stack:
        modes = {page.mode for page in ImageSequence.Iterator(stack)}
    assert modes == {"I;16"} and read_volume(tmp_path / "v.tif").max() == volume.max() > 255


def test_single_page_tiff_reads_as_depth_one(tmp_path):
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "one.tif")
    assert read_volume(tmp_path / "one.tif").shape == (1, 4, 5)


def test_refusals_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="path must end in"):
        write_volume(tmp_path / "v.png", np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        write_volume(tmp_path / "v.tif", np.zeros((3, 3), np.uint8))
    with pytest.raises(TypeError, match="real numbers"):
        write_volume(tmp_path / "v.npy", np.zeros(3, dtype=object))
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        read_volume(tmp_path / "objects.npy")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "v.npy"
    write_volume(path, np.ones((2, 2, 2)))

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_volume(path, np.zeros((2, 2, 2)))
    monkeypatch.undo()
    assert np.array_equal(read_volume(path), np.ones((2, 2, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    # mkstemp's temporary file is 0600; the written file gets what open() would give it, and a
    # replaced file keeps its own mode.
    mask = os.umask(0o022)
    os.umask(mask)
    fresh = tmp_path / "fresh.bin"
    with atomic_write(fresh) as handle:
        handle.write(b"x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~mask
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    with atomic_write(kept) as handle:
        handle.write(b"new")
    assert kept.stat().st_mode & 0o777 == 0o640


def test_read_filter_write_a_volume(tmp_path):
    volume = RNG.integers(0, 4000, size=(6, 8, 9)).astype(np.uint16)
    write_volume(tmp_path / "in.tif", volume)
    smoothed = imgfilt.apply(read_volume(tmp_path / "in.tif"), "gaussian3d", sigma=0.7)
    assert smoothed.dtype == np.uint16 and smoothed.shape == volume.shape
    write_volume(tmp_path / "out.tif", smoothed)
    assert np.array_equal(read_volume(tmp_path / "out.tif"), smoothed)


def _bomb(path, declared_bytes):
    """An .npz holding one honest uint8 array of ``declared_bytes`` zeros, deflated: a small
    file that inflates to ``declared_bytes`` (built in chunks, never in memory)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (declared_bytes,)})
            chunk = bytes(1 << 23)
            for _ in range(declared_bytes >> 23):
                member.write(chunk)


def test_zip_bomb_is_refused_before_inflating_under_a_memory_limit(tmp_path):
    import subprocess
    import sys
    import textwrap

    from cli_support import cli_env

    _bomb(tmp_path / "bomb.npz", 512 << 20)  # 512 MiB of zeros in about 2 MB
    assert os.path.getsize(tmp_path / "bomb.npz") < 3_000_000
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (384 << 20, 384 << 20))
        from imgfilt.io import load_npz
        try:
            load_npz("bomb.npz")
        except ValueError as error:
            print(error)
            sys.exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "bomb.npz" in done.stdout and "536870912 bytes once inflated" in done.stdout


def test_npz_member_whose_header_lies_is_refused(tmp_path):
    import zipfile

    from imgfilt.io import check_npz_sizes

    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive:
        with archive.open("w.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
            member.write(bytes(80))
    with pytest.raises(ValueError, match=r"liar\.npz.*w\.npy declares an array of 8000000000"):
        load_npz(tmp_path / "liar.npz")
    np.savez(tmp_path / "fine.npz", a=np.ones(10), b=np.zeros((2, 3), np.int16))
    check_npz_sizes(tmp_path / "fine.npz", budget=80 + 12)
    with pytest.raises(ValueError, match="92 bytes once inflated, more than the 91"):
        check_npz_sizes(tmp_path / "fine.npz", budget=91)
