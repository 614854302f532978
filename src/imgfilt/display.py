"""Pictures of filters, banks, networks and feature maps for Jupyter (``_repr_html_`` and
``_repr_png_``), made with NumPy and Pillow only.

This module imports no other imgfilt module: it reads the objects it draws by their attributes
(``weight``, ``bias``, ``name``, ``names``, ``groups``, ``layers``, ``output_shape``), so the
classes can call it from one-line methods. The HTML uses inline styles only (no script, no
``<style>`` element), which Jupyter shows in untrusted notebooks and GitHub renders.

Colours: a weight is red when positive and blue when negative, the stronger the larger its
magnitude relative to the largest weight of the same filter.

Examples
--------
>>> import numpy as np
>>> page = kernel_html(np.array([[[[-1.0, 0, 1]]]]), title="dx")
>>> page.count("<td"), "dx" in page
(3, True)
"""
from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "kernel_html", "kernel_image", "filter_html", "bank_html", "network_html", "FeatureMaps",
    "feature_maps", "to_png", "Drawing", "MAX_NUMBER_GRID", "footprint_html", "footprint_image",
    "nonlinear_html",
]

#: Kernels larger than this (along any axis) are drawn as a picture rather than as numbers.
MAX_NUMBER_GRID = 11
#: Feature maps shown at most, and their thumbnail size in pixels.
MAX_MAPS, THUMBNAIL = 64, 160
#: Outputs (rows) and input channels (kernels per row) drawn at most by :func:`kernel_html`.
MAX_ROWS, MAX_KERNELS_PER_ROW = 32, 16

_TABLE = "border-collapse:collapse;font-family:monospace;font-size:12px;margin:2px"
_CELL = "border:1px solid #ccc;min-width:2.4em;height:1.6em;text-align:center;padding:0 3px;color:#111"
_CAPTION = "font-size:11px;color:#555;text-align:left;padding:0 2px"
_BOX = "display:inline-block;vertical-align:top;margin:0 10px 8px 0"


def _number(value: float, digits: int) -> str:
    value = float(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def _colour(value: float, scale: float) -> tuple[int, int, int]:
    """Red for positive, blue for negative, white for zero; stronger for larger magnitudes."""
    strength = 0.0 if scale == 0 else min(1.0, abs(float(value)) / scale)
    fade = 1.0 - 0.75 * strength
    if value >= 0:
        return 255, round(255 * fade), round(255 * fade)
    return round(255 * fade), round(255 * (1.0 - 0.55 * strength)), 255


def to_png(image: Image.Image) -> bytes:
    """PNG bytes of a Pillow image."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _img_tag(image: Image.Image, alt: str) -> str:
    data = base64.b64encode(to_png(image)).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" style="image-rendering:pixelated;margin:2px" '
            f'src="data:image/png;base64,{data}">')


def _planes(kernel: np.ndarray) -> list[np.ndarray]:
    """A 1-D kernel as one row, a 2-D one as itself, a 3-D one as its depth planes."""
    if kernel.ndim == 1:
        return [kernel[None, :]]
    if kernel.ndim == 2:
        return [kernel]
    return list(kernel)


def _grid(plane: np.ndarray, scale: float, digits: int) -> str:
    rows = []
    for row in plane:
        cells = []
        for value in row:
            r, g, b = _colour(value, scale)
            cells.append(f'<td style="{_CELL};background:rgb({r},{g},{b})">'
                         f"{_number(value, digits)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table style="{_TABLE}">' + "".join(rows) + "</table>"


def _heatmap(plane: np.ndarray, scale: float, cell: int) -> Image.Image:
    """A plane as an RGB picture, each weight a ``cell`` x ``cell`` square."""
    strength = np.zeros_like(plane, dtype=np.float64) if scale == 0 else np.minimum(
        1.0, np.abs(plane) / scale)
    fade = 1.0 - 0.75 * strength
    positive = plane >= 0
    red = np.where(positive, 1.0, fade)
    green = np.where(positive, fade, 1.0 - 0.55 * strength)
    blue = np.where(positive, fade, 1.0)
    rgb = np.rint(np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)
    rgb = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    return Image.fromarray(rgb, "RGB")


def _kernel_block(kernel: np.ndarray, scale: float, caption: str, digits: int) -> str:
    """One ``(*K)`` kernel: a grid of numbers per plane, or pictures when it is large."""
    parts = []
    planes = _planes(kernel)
    large = max(kernel.shape) > MAX_NUMBER_GRID
    for index, plane in enumerate(planes):
        label = f"plane {index}" if kernel.ndim == 3 else ""
        if large:
            cell = max(2, 120 // max(plane.shape))
            body = _img_tag(_heatmap(plane, scale, cell), f"{caption} {label}".strip())
        else:
            body = _grid(plane, scale, digits)
        parts.append(f'<div style="{_BOX};margin-right:4px">'
                     + (f'<div style="{_CAPTION}">{label}</div>' if label else "")
                     + body + "</div>")
    extra = ""
    if large:
        extra = (f'<div style="{_CAPTION}">{"x".join(map(str, kernel.shape))}, min '
                 f"{_number(kernel.min(), digits)}, max {_number(kernel.max(), digits)}</div>")
    return (f'<div style="{_BOX}"><div style="{_CAPTION}">{html.escape(caption)}</div>'
            + "".join(parts) + extra + "</div>")


def kernel_html(weight: Any, bias: Any = None, *, names: Optional[Sequence[str]] = None,
                title: str = "", note: str = "", digits: int = 3,
                in_offset: Optional[Sequence[int]] = None, per_channel: bool = False) -> str:
    """The kernels of a ``(C_out, C_in, *K)`` weight as coloured grids, one row per output.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in, *K)`` with 1-3 spatial axes.
    bias : array_like, optional
        ``(C_out,)``, written beside each row.
    names : sequence of str, optional
        One per output (row).
    title, note : str
        A heading and a line of text under it.
    digits : int
        Significant digits of non-integer weights.
    in_offset : sequence of int, optional
        Per row, the index of its first input channel (for grouped banks).
    per_channel : bool
        A ``C_in = 1`` kernel that runs on every channel on its own (a Filter's), captioned so.

    Returns
    -------
    str
        An HTML fragment.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim not in (3, 4, 5):
        raise ValueError(f"weight must be (C_out, C_in, *K) with 1-3 spatial axes, got shape "
                         f"{w.shape}")
    b = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    rows = []
    for o, response in enumerate(w[:MAX_ROWS]):
        scale = float(np.max(np.abs(response))) if response.size else 0.0
        name = names[o] if names is not None else f"{o}"
        first = in_offset[o] if in_offset is not None else 0
        blocks = [_kernel_block(kernel, scale, "each channel" if per_channel else
                                f"input channel {first + c}", digits)
                  for c, kernel in enumerate(response[:MAX_KERNELS_PER_ROW])]
        if len(response) > MAX_KERNELS_PER_ROW:
            blocks.append(f'<div style="{_BOX};{_CAPTION}">... and '
                          f"{len(response) - MAX_KERNELS_PER_ROW} more input channels</div>")
        head = f"<b>{html.escape(str(name))}</b>"
        if b is not None:
            head += f" &nbsp;bias {_number(b[o], digits)}"
        # One kernel per output: the outputs side by side; several: one row per output.
        layout = "display:inline-block;vertical-align:top;margin:2px 12px 2px 0" \
            if w.shape[1] == 1 else "margin:2px 0"
        rows.append(f'<div style="{layout}"><div style="font-size:12px">{head}</div>'
                    + "".join(blocks) + "</div>")
    if len(w) > MAX_ROWS:
        rows.append(f'<div style="font-size:12px">... and {len(w) - MAX_ROWS} more outputs</div>')
    heading = f'<div style="font-weight:bold">{html.escape(title)}</div>' if title else ""
    if note:
        heading += f'<div style="font-size:12px;color:#444;margin-bottom:4px">{html.escape(note)}</div>'
    return '<div style="font-family:sans-serif">' + heading + "".join(rows) + "</div>"


def kernel_image(weight: Any, cell: Optional[int] = None, gap: int = 4) -> Image.Image:
    """The kernels of a ``(C_out, C_in, *K)`` weight as one RGB picture: a row per output, a
    column per input channel (and per depth plane), red positive, blue negative.

    Examples
    --------
    >>> kernel_image(np.ones((2, 3, 3, 3))).size
    (232, 156)
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim not in (3, 4, 5):
        raise ValueError(f"weight must be (C_out, C_in, *K) with 1-3 spatial axes, got shape "
                         f"{w.shape}")
    planes = [[plane for kernel in response for plane in _planes(kernel)] for response in w]
    height, width = planes[0][0].shape
    if cell is None:
        cell = max(2, min(24, 96 // max(height, width)))
    per_output = len(planes[0])
    # One plane per output (a bank of 2-D kernels on one channel): tile them in a near square.
    cols = math.ceil(math.sqrt(len(w))) if per_output == 1 else per_output
    positions = [divmod(o, cols) for o in range(len(w))] if per_output == 1 else [
        (o, c) for o in range(len(w)) for c in range(per_output)]
    rows = max(r for r, _ in positions) + 1
    step_x, step_y = width * cell + gap, height * cell + gap
    sheet = Image.new("RGB", (cols * step_x + gap, rows * step_y + gap), (255, 255, 255))
    for index, (row, col) in enumerate(positions):
        o, p = (index, 0) if per_output == 1 else divmod(index, per_output)
        scale = float(np.max(np.abs(w[o])))
        sheet.paste(_heatmap(planes[o][p], scale, cell), (gap + col * step_x, gap + row * step_y))
    return sheet


def filter_html(f: Any) -> str:
    """A :class:`~imgfilt.Filter`: its name, parameters, description and kernels."""
    params = ", ".join(f"{k}={v!r}" for k, v in getattr(f, "params", {}).items())
    weight = np.asarray(f.weight)
    title = f"{f.name}({params}) · weight {tuple(weight.shape)} (responses, C_in, *K)"
    notes = []
    if getattr(f, "combine", None):
        notes.append(f"responses combined by {f.combine}")
    if weight.shape[1] == 1:
        notes.append("runs on every channel on its own")
    else:
        notes.append(f"mixes {weight.shape[1]} input channels into one")
    description = getattr(f, "description", "")
    note = description + (" — " if description else "") + "; ".join(notes)
    names = [f"response {r}" for r in range(weight.shape[0])] if weight.shape[0] > 1 else [f.name]
    return kernel_html(weight, getattr(f, "bias", None), names=names, title=title, note=note,
                       per_channel=weight.shape[1] == 1)


# What each operation of a RankFilter computes, in words (its ``operation`` attribute).
_OPERATION_WORDS = {
    "erosion": "grey erosion: the minimum over the footprint",
    "dilation": "grey dilation: the maximum over the footprint reflected through its centre",
    "opening": "grey opening: erosion, then dilation",
    "closing": "grey closing: dilation, then erosion",
    "gradient": "morphological gradient: dilation minus erosion",
    "white_tophat": "white top-hat: the image minus its opening",
    "black_tophat": "black top-hat: the closing minus the image",
}
_IN, _OUT = (64, 64, 64), (255, 255, 255)  # footprint cells: in the window, outside it


def _footprint_grid(plane: np.ndarray, centre: Optional[tuple[int, int]]) -> str:
    rows = []
    for r, row in enumerate(plane):
        cells = []
        for c, inside in enumerate(row):
            colour = "rgb(64,64,64);color:#fff" if inside else "rgb(255,255,255)"
            mark = "●" if centre == (r, c) else ("1" if inside else "0")
            cells.append(f'<td style="{_CELL};background:{colour}">{mark}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table style="{_TABLE}">' + "".join(rows) + "</table>"


def footprint_image(footprint: Any, cell: Optional[int] = None, gap: int = 4) -> Image.Image:
    """A boolean footprint as an RGB picture: dark cells are in the window (3-D: one picture
    per depth plane, side by side).

    Examples
    --------
    >>> footprint_image(np.ones((3, 3), bool)).size
    (104, 104)
    """
    fp = np.asarray(footprint, dtype=bool)
    if fp.ndim not in (1, 2, 3) or fp.size == 0:
        raise ValueError(f"footprint must be a non-empty array with 1-3 axes, got shape {fp.shape}")
    planes = _planes(fp)
    height, width = planes[0].shape
    if cell is None:
        cell = max(2, min(32, 96 // max(height, width)))
    step = width * cell + gap
    sheet = Image.new("RGB", (len(planes) * step + gap, height * cell + 2 * gap), (230, 230, 230))
    for index, plane in enumerate(planes):
        rgb = np.where(plane[..., None], np.array(_IN, np.uint8), np.array(_OUT, np.uint8))
        rgb = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
        sheet.paste(Image.fromarray(rgb, "RGB"), (gap + index * step, gap))
    return sheet


def footprint_html(footprint: Any, *, title: str = "", note: str = "") -> str:
    """A boolean footprint as grids of 1 (in the window, dark) and 0, the centre marked ●
    (a picture when it is larger than :data:`MAX_NUMBER_GRID`).

    Examples
    --------
    >>> page = footprint_html(np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool), title="cross")
    >>> page.count("<td"), page.count("●")
    (9, 1)
    """
    fp = np.asarray(footprint, dtype=bool)
    planes = _planes(fp)
    centre_plane = fp.shape[0] // 2 if fp.ndim == 3 else 0
    centre = (0, fp.shape[0] // 2) if fp.ndim == 1 else tuple(n // 2 for n in fp.shape[-2:])
    parts = []
    if max(fp.shape) > MAX_NUMBER_GRID:
        parts.append(_img_tag(footprint_image(fp), title or "footprint"))
    else:
        for index, plane in enumerate(planes):
            label = f"plane {index}" if fp.ndim == 3 else ""
            parts.append(f'<div style="{_BOX};margin-right:4px">'
                         + (f'<div style="{_CAPTION}">{label}</div>' if label else "")
                         + _footprint_grid(plane, centre if index == centre_plane else None)
                         + "</div>")
    size = "x".join(map(str, fp.shape))
    return (f'<div style="font-family:sans-serif"><b>{html.escape(title)}</b>'
            f'<div style="{_CAPTION}">{html.escape(note)}</div>'
            f'<div style="{_CAPTION}">footprint {size}, {int(fp.sum())} samples</div>'
            + "".join(parts) + "</div>")


def nonlinear_html(f: Any) -> str:
    """A rank filter (its operation and footprint) or a Canny filter (its steps and
    parameters), read from ``name``, ``params`` and ``operation``/``rank``/``footprint``."""
    params = ", ".join(f"{k}={v!r}" for k, v in getattr(f, "params", {}).items())
    title = f"{f.name}({params})"
    footprint = getattr(f, "footprint", None)
    if footprint is None:  # Canny
        note = ("Canny edges, each channel on its own: Gaussian smoothing, Sobel gradients, "
                "non-maximum suppression along the gradient, hysteresis by connectivity; edges "
                "at the dtype's maximum")
        return (f'<div style="font-family:sans-serif"><b>{html.escape(title)}</b>'
                f'<div style="{_CAPTION}">{html.escape(note)}</div></div>')
    count = int(np.asarray(footprint, dtype=bool).sum())
    operation = getattr(f, "operation", "rank")
    if operation == "rank":
        k = int(getattr(f, "rank", 0))
        what = ("minimum" if k == 0 else "maximum" if k == count - 1
                else "median" if k == count // 2 else f"rank {k}")
        note = f"the {what} (rank {k} of {count}, 0-based) of each window, each channel on its own"
    else:
        note = _OPERATION_WORDS.get(operation, operation) + ", each channel on its own"
    return footprint_html(footprint, title=title, note=note)


def bank_html(bank: Any, maps: Any = None) -> str:
    """A :class:`~imgfilt.FilterBank`: one row per feature map (its kernels per input channel),
    and the maps themselves when ``maps`` (``(C_out, H, W)``) is given."""
    weight = np.asarray(bank.weight)
    groups = int(getattr(bank, "groups", 1))
    per_group_in, per_group_out = weight.shape[1], weight.shape[0] // groups
    offsets = [(o // per_group_out) * per_group_in for o in range(weight.shape[0])]
    title = (f"FilterBank: {weight.shape[0]} maps from {per_group_in * groups} channel(s), "
             f"weight {tuple(weight.shape)}, groups={groups}, {weight.size + weight.shape[0]} "
             "parameters")
    body = kernel_html(weight, bank.bias, names=list(bank.names), title=title, in_offset=offsets)
    if maps is not None:
        body += feature_maps(maps, bank.names)._repr_html_()
    return body


def network_html(net: Any, input_shape: Optional[Sequence[int]] = None, **conv_options: Any) -> str:
    """A :class:`~imgfilt.Sequential`: a table of its layers (channels, kernel, groups,
    parameters) and, given a channel-first ``input_shape``, the shape after every layer."""
    shape = tuple(input_shape) if input_shape is not None else None
    head = ["layer", "C_in → C_out", "kernel", "groups", "parameters"]
    if shape is not None:
        head.append("output shape")
    cell = "border:1px solid #ccc;padding:2px 8px;text-align:right"
    rows = ["<tr>" + "".join(f'<th style="{cell}">{h}</th>' for h in head) + "</tr>"]
    if shape is not None:
        rows.append(f'<tr><td style="{cell}">input</td>' + f'<td style="{cell}"></td>' * 4
                    + f'<td style="{cell}">{shape}</td></tr>')
    total = 0
    for index, layer in enumerate(net.layers):
        if getattr(layer, "weight", None) is None:  # a filter stage: each map on its own
            values = [f"{index + 1} {html.escape(str(layer.name))}", "C → C",
                      "x".join(map(str, layer.filter.kernel_shape)), "per map", "0"]
        else:
            w = np.asarray(layer.weight)
            groups = int(getattr(layer, "groups", 1))
            params = int(w.size + np.asarray(layer.bias).size)
            total += params
            values = [str(index + 1), f"{w.shape[1] * groups} → {w.shape[0]}",
                      "x".join(map(str, w.shape[2:])), str(groups), str(params)]
        if shape is not None:
            shape = tuple(layer.output_shape(shape, **conv_options))
            values.append(str(shape))
        rows.append("<tr>" + "".join(f'<td style="{cell}">{v}</td>' for v in values) + "</tr>")
    return (f'<div style="font-family:sans-serif"><b>Sequential: {len(net.layers)} layers, '
            f"{total} parameters</b>"
            f'<table style="border-collapse:collapse;font-size:12px">{"".join(rows)}</table>'
            "</div>")


class Drawing:
    """An HTML fragment (and optionally a picture) that Jupyter shows as such.

    Examples
    --------
    >>> Drawing("<b>hi</b>")._repr_html_()
    '<b>hi</b>'
    """

    def __init__(self, html_text: str, picture: Optional[Image.Image] = None) -> None:
        self.html = html_text
        self.picture = picture

    def _repr_html_(self) -> str:
        return self.html

    def _repr_png_(self) -> Optional[bytes]:
        return None if self.picture is None else to_png(self.picture)

    def __repr__(self) -> str:
        return f"<Drawing: {len(self.html)} characters of HTML>"


class FeatureMaps:
    """Feature maps ``(C, H, W)`` (or one ``(H, W)`` map) that draw themselves in Jupyter:
    each stretched to black..white, with its name.

    Examples
    --------
    >>> shown = FeatureMaps(np.random.rand(3, 20, 30), ["a", "b", "c"])
    >>> shown._repr_png_()[:4]
    b'\\x89PNG'
    """

    def __init__(self, maps: Any, names: Optional[Sequence[str]] = None) -> None:
        array = np.asarray(maps, dtype=np.float64)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or 0 in array.shape:
            raise ValueError(f"maps must be (C, H, W) 2-D feature maps, got shape {array.shape}")
        self.maps = array
        self.names = [str(n) for n in names] if names is not None else [
            f"map {i}" for i in range(len(array))]
        if len(self.names) != len(array):
            raise ValueError(f"names has {len(self.names)} entries for {len(array)} maps")

    def thumbnails(self) -> list[Image.Image]:
        """One grey picture per map (at most :data:`MAX_MAPS`), at most THUMBNAIL pixels."""
        pictures = []
        for feature in self.maps[:MAX_MAPS]:
            finite = np.nan_to_num(feature)
            low, high = float(finite.min()), float(finite.max())
            scaled = np.zeros_like(finite) if high == low else (finite - low) / (high - low)
            picture = Image.fromarray(np.rint(scaled * 255).astype(np.uint8), "L")
            factor = THUMBNAIL / max(picture.size)
            size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
            resample = Image.Resampling.NEAREST if factor > 1 else Image.Resampling.LANCZOS
            pictures.append(picture.resize(size, resample))
        return pictures

    def _repr_html_(self) -> str:
        parts = []
        for name, picture in zip(self.names, self.thumbnails()):
            parts.append(f'<div style="{_BOX};font-size:11px;text-align:center">'
                         + _img_tag(picture, name) + f"<br>{html.escape(name)}</div>")
        more = len(self.maps) - MAX_MAPS
        note = f"<div>... and {more} more</div>" if more > 0 else ""
        return (f'<div style="font-family:sans-serif"><b>{len(self.maps)} feature map(s) of '
                f"{self.maps.shape[1]}x{self.maps.shape[2]}</b><br>" + "".join(parts) + note
                + "</div>")

    def _repr_png_(self) -> bytes:
        pictures = self.thumbnails()
        cols = math.ceil(math.sqrt(len(pictures)))
        rows = math.ceil(len(pictures) / cols)
        width = max(p.width for p in pictures) + 4
        height = max(p.height for p in pictures) + 4
        sheet = Image.new("L", (cols * width, rows * height), 255)
        for index, picture in enumerate(pictures):
            row, col = divmod(index, cols)
            sheet.paste(picture, (col * width + 2, row * height + 2))
        return to_png(sheet)


def feature_maps(maps: Any, names: Optional[Sequence[str]] = None) -> FeatureMaps:
    """Feature maps that draw themselves in Jupyter: see :class:`FeatureMaps`."""
    return FeatureMaps(maps, names)
