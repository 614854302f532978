"""Photos and animations through Pillow, with what they came with: EXIF, ICC profile, DPI,
JPEG quantisation, every frame with its duration and the loop count.

The rule for EXIF orientation: :func:`read_picture` turns the pixels upright
(:func:`PIL.ImageOps.exif_transpose`) and removes the orientation tag from the EXIF it keeps,
so a filtered photo is never shown sideways by any viewer, whether it honours the tag or not.

Pillow cannot hold every file's bits: it reads a 16-bit colour PNG as 8 bits. Such a file is
refused by name (:class:`ValueError`) rather than truncated; convert it to TIFF, which imgfilt
reads exactly through tifffile.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence, Union

from PIL import Image, ImageOps, ImageSequence

from .errors import file_errors
from .files import PixelLimit, atomic_write, check_pixel_count, check_regular_file

__all__ = ["Picture", "read_picture", "write_picture", "MULTI_FRAME_FORMATS"]

PathLike = Union[str, "os.PathLike[str]"]

#: Pillow formats that hold several frames (TIFF is written by imgfilt.tiff instead).
MULTI_FRAME_FORMATS = ("GIF", "PNG", "WEBP")

#: What each format can keep of a photo's metadata, as Pillow writes it.
_KEEPS = {
    "JPEG": {"exif", "icc_profile", "dpi"},
    "PNG": {"exif", "icc_profile", "dpi", "durations"},
    "WEBP": {"exif", "icc_profile", "durations"},
    "GIF": {"durations"},
    "BMP": {"dpi"},
    "TIFF": {"exif", "icc_profile", "dpi"},
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass
class Picture:
    """A decoded picture: its upright frames and what it came with.

    Attributes
    ----------
    frames : list of PIL.Image.Image
        Every frame, decoded, upright (EXIF orientation applied). Frames of an animation share
        one mode (``RGBA`` when any frame has transparency, else ``RGB``; ``L``/``LA``/``I;16``
        frames stay as they are).
    format : str or None
        Pillow's format name of the file.
    exif : bytes or None
        The EXIF block, orientation tag removed.
    icc_profile : bytes or None
    dpi : (float, float) or None
    durations : list of int or None
        Milliseconds per frame of an animation.
    loop : int or None
        The loop count of an animation (0: forever).
    jpeg : dict or None
        A JPEG's quantisation tables and chroma subsampling: writing a JPEG with
        ``quality="keep"`` reuses them (Pillow's ``quality="keep"``).
    lossless : bool
        A WebP whose frames are all lossless (VP8L): written back lossless with
        ``quality="keep"``.

    Examples
    --------
    >>> Picture([Image.new("L", (2, 2))]).n_frames
    1
    """

    frames: list
    format: Optional[str] = None
    exif: Optional[bytes] = None
    icc_profile: Optional[bytes] = None
    dpi: Optional[tuple] = None
    durations: Optional[list] = None
    loop: Optional[int] = None
    jpeg: Optional[dict] = None
    lossless: bool = False

    @property
    def n_frames(self) -> int:
        """The number of frames."""
        return len(self.frames)


def _refuse_truncating(path: str) -> None:
    """A PNG with 16-bit colour (RGB, grey+alpha or RGBA): Pillow would keep 8 of its bits."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    if len(header) == 26 and header[:8] == _PNG_SIGNATURE and header[12:16] == b"IHDR" \
            and header[24] == 16 \
            and header[25] in (2, 4, 6):
        kind = {2: "RGB", 4: "grey+alpha", 6: "RGBA"}[header[25]]
        raise ValueError(
            f"{path}: a 16-bit {kind} PNG, which Pillow reads as 8 bits; imgfilt refuses it "
            "rather than lose the low bits: convert it to 16-bit TIFF (e.g. with "
            "tifffile.imwrite) and filter that")


def _webp_is_lossless(path: str) -> bool:
    """Every image chunk of the WebP is VP8L (lossless), none VP8 (lossy)."""
    import mmap

    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"VP8L") >= 0 and data.find(b"VP8 ") < 0


def _one_mode(frames: list) -> list:
    modes = {frame.mode for frame in frames}
    if len(modes) == 1 and modes <= {"L", "LA", "RGB", "RGBA", "I;16", "I", "F"}:
        return frames
    alpha = any(f.mode in ("RGBA", "LA", "PA") or "transparency" in f.info for f in frames)
    return [frame.convert("RGBA" if alpha else "RGB") for frame in frames]


def read_picture(path: PathLike, *, max_pixels: PixelLimit = ...
                 ) -> Picture:
    """Read every frame of a picture, upright, with its EXIF, ICC profile, DPI and timing.

    Parameters
    ----------
    path : str or os.PathLike
    max_pixels : int or None
        The decompression-bomb limit counts every frame (see
        :func:`imgfilt.tiff.check_pixel_count`); checked before any frame is decoded.

    Raises
    ------
    ValueError
        A 16-bit colour PNG (Pillow would truncate it), naming the file.
    OSError, PIL.UnidentifiedImageError
        A missing, unreadable or unknown file.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.gif")
    >>> frames = [Image.new("L", (4, 4), v) for v in (0, 128, 255)]
    >>> frames[0].save(path, save_all=True, append_images=frames[1:], duration=[40, 50, 60],
    ...                loop=0)
    >>> picture = read_picture(path)
    >>> picture.n_frames, picture.durations, picture.loop
    (3, [40, 50, 60], 0)
    """
    name = os.fspath(path)
    check_regular_file(name)
    with file_errors(name, "image"):
        return _read_picture(name, max_pixels)


def _read_picture(name: str, max_pixels: PixelLimit) -> Picture:
    _refuse_truncating(name)
    with Image.open(name) as image:
        count = getattr(image, "n_frames", 1)
        check_pixel_count(image.size[0] * image.size[1] * count, name, max_pixels)
        exif = image.getexif()
        jpeg = None
        if image.format == "JPEG":
            from PIL import JpegImagePlugin

            if isinstance(image, JpegImagePlugin.JpegImageFile):  # what Pillow opens as JPEG
                jpeg = {"qtables": image.quantization,
                        "subsampling": JpegImagePlugin.get_sampling(image)}
        info = dict(image.info)
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frame.load()
            durations.append(frame.info.get("duration"))
            frames.append(ImageOps.exif_transpose(frame.copy()))
        picture_format = image.format
    lossless = picture_format == "WEBP" and _webp_is_lossless(name)
    if exif:
        exif.pop(0x0112, None)  # the orientation is now in the pixels
    timed = count > 1 and any(d is not None for d in durations)
    return Picture(
        frames=_one_mode(frames) if count > 1 else frames, format=picture_format,
        exif=exif.tobytes() if exif else None, icc_profile=info.get("icc_profile") or None,
        dpi=tuple(float(v) for v in info["dpi"]) if "dpi" in info else None,
        durations=[int(d or 0) for d in durations] if timed else None,
        loop=info.get("loop") if count > 1 else None, jpeg=jpeg, lossless=lossless)


def write_picture(path: PathLike, frames: Union[Image.Image, Sequence[Image.Image]],
                  source: Optional[Picture] = None, *,
                  quality: Union[int, str, None] = "keep") -> list[str]:
    """Write a picture atomically, with what ``source`` came with where the format holds it.

    Parameters
    ----------
    path : str or os.PathLike
        The format comes from the extension (Pillow's names).
    frames : PIL.Image.Image or sequence of them
        Several frames are written as an animation (GIF, APNG ``.png``, WebP) with the
        source's durations and loop count; another format refuses them.
    source : Picture, optional
        From :func:`read_picture`: EXIF, ICC profile, DPI, durations, loop and JPEG tables.
    quality : int, ``'keep'`` or None
        JPEG and WebP quality 1-100. ``'keep'`` (default): a JPEG from a JPEG reuses the
        source's quantisation tables and subsampling (the same quality), a WebP from a
        lossless WebP is lossless; otherwise Pillow's default (JPEG 75, WebP 80).

    Returns
    -------
    list of str
        What the source had that the format cannot hold (e.g. ``['exif']`` for a BMP); the
        command line prints it.

    Raises
    ------
    ValueError
        Several frames for a one-frame format, an unknown extension or a bad quality.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> write_picture(path, Image.new("RGB", (4, 4)), Picture([], dpi=(300.0, 300.0)))
    []
    >>> [round(v) for v in read_picture(path).dpi]   # PNG stores pixels per metre
    [300, 300]
    """
    name = os.fspath(path)
    fmt = Image.registered_extensions().get(os.path.splitext(name)[1].lower())
    if fmt is None:
        raise ValueError(f"{name}: unknown image extension; use e.g. .png, .jpg, .webp, .gif")
    frames = [frames] if isinstance(frames, Image.Image) else list(frames)
    if not frames:
        raise ValueError(f"{name}: no frame to write")
    if len(frames) > 1 and fmt not in MULTI_FRAME_FORMATS:
        raise ValueError(f"{name}: {fmt} holds one frame and this result has {len(frames)}; "
                         "write .gif, .png (APNG), .webp or .tif, or .npy")
    if quality not in ("keep", None) and (isinstance(quality, bool) or not isinstance(
            quality, int) or not 1 <= quality <= 100):
        raise ValueError(f"quality must be 1-100 or 'keep', got {quality!r}")
    keeps = _KEEPS.get(fmt, set())
    options: dict[str, Any] = {}
    dropped = []
    if source is not None:
        for key in ("exif", "icc_profile", "dpi"):
            value = getattr(source, key)
            if value is None:
                continue
            if key in keeps:
                options[key] = value
            else:
                dropped.append(key)
        if len(frames) > 1:
            if source.durations is not None:
                options["duration"] = list(source.durations[:len(frames)])
            if source.loop is not None:
                options["loop"] = source.loop
    if fmt == "JPEG":
        if isinstance(quality, int):
            options["quality"] = quality
        elif quality == "keep" and source is not None and source.jpeg is not None:
            # The same tables (hence quality) when the result has the source's bands; a grey
            # result of a colour JPEG takes the luminance table alone.
            tables = source.jpeg["qtables"]
            if frames[0].mode == "L" and tables:
                options["qtables"] = [tables[0]]
            elif frames[0].mode == "RGB" and len(tables) >= 2:
                options["qtables"] = tables
                if source.jpeg["subsampling"] >= 0:
                    options["subsampling"] = source.jpeg["subsampling"]
    elif fmt == "WEBP":
        if isinstance(quality, int):
            options["quality"] = quality
        elif quality == "keep" and source is not None and source.lossless:
            options["lossless"] = True
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:])
    with atomic_write(name) as handle:
        frames[0].save(handle, format=fmt, **options)
    return dropped
