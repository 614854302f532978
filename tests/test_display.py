"""Filters, banks, networks and feature maps drawn for Jupyter (``_repr_html_``, ``_repr_png_``):
the HTML parsed back and its numbers and colours compared with the weights, for every filter in
the registry."""
import doctest
import html.parser
import io
import re

import numpy as np
import pytest
from PIL import Image

import imgfilt
from imgfilt import FilterBank, Sequential, display, explainer
from imgfilt.filters import get_filter, list_filters
from cli_support import SAMPLES


class Cells(html.parser.HTMLParser):
    """Collects each <td>'s text and background, every <img>, and all text."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self.text = [], [], []
        self._cell = None
        self.stack = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td":
            self._cell = [attrs.get("style", ""), ""]
        if tag == "img":
            self.images.append(attrs)
        if tag not in ("img", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "td":
            self.cells.append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[1] += data


def parse(fragment):
    parser = Cells()
    parser.feed(fragment)
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    assert "<script" not in fragment and "<style" not in fragment
    return parser


def background(style):
    r, g, b = map(int, re.search(r"background:rgb\((\d+),(\d+),(\d+)\)", style).groups())
    return r, g, b


def check_grid(cells, weight, digits=3):
    """Cells hold the weights in order (every plane of every kernel of every output), coloured
    by sign and size: white to red for 0..max, white to blue for 0..-max, max being the largest
    magnitude of that output's weights (the scale docs/notebooks describe)."""
    expected = []
    for response in np.asarray(weight, dtype=float):
        scale = np.abs(response).max()
        for value in response.reshape(-1):
            strength = abs(value) / scale if scale else 0.0
            fade = round(255 * (1 - 0.75 * strength))
            colour = (255, fade, fade) if value >= 0 else (
                fade, round(255 * (1 - 0.55 * strength)), 255)
            expected.append((value, colour))
    assert len(cells) == len(expected)
    for (style, text), (value, colour) in zip(cells, expected):
        assert float(text) == pytest.approx(value, rel=10.0 ** (1 - digits), abs=1e-300)
        assert background(style) == colour


# Linear filters (Filter, with a weight) draw their weights; the nonlinear RankFilter and
# CannyFilter draw their footprint and operation (test_display_nonlinear.py).
LINEAR = [info.name for info in list_filters() if isinstance(get_filter(info.name), imgfilt.Filter)]


@pytest.mark.parametrize("name", LINEAR)
def test_every_registered_filter_draws_its_weights(name):
    f = get_filter(name)
    parsed = parse(f._repr_html_())
    text = "".join(parsed.text)
    assert f.name in text and str(tuple(f.weight.shape)) in text
    if max(f.kernel_shape) <= display.MAX_NUMBER_GRID:
        check_grid(parsed.cells, f.weight)
        assert not parsed.images
    else:
        planes = f.kernel_shape[0] if f.ndim == 3 else 1
        assert len(parsed.images) == f.weight.shape[0] * f.weight.shape[1] * planes
        assert all(i["src"].startswith("data:image/png;base64,") for i in parsed.images)
    picture = Image.open(io.BytesIO(f._repr_png_()))
    picture.load()
    assert picture.mode == "RGB" and min(picture.size) > 0


def test_large_kernels_are_pictures_with_their_range():
    f = get_filter("gaussian", sigma=3)
    parsed = parse(f._repr_html_())
    assert len(parsed.images) == 1 and not parsed.cells
    assert f"max {display._number(f.weight.max(), 3)}" in "".join(parsed.text)


def test_kernel_picture_colours():
    weight = np.array([[[[-2.0, 0.0, 1.0]]]])
    picture = np.asarray(display.kernel_image(weight, cell=2, gap=1))
    assert picture.shape == (1 + 2 + 1, 1 + 6 + 1, 3)
    assert tuple(picture[1, 1]) == (64, 115, 255)  # the most negative: full blue
    assert tuple(picture[1, 3]) == (255, 255, 255)  # zero: white
    assert tuple(picture[1, 5]) == (255, 159, 159)  # half the largest magnitude: light red
    # The HTML grid uses the same colours as the picture.
    cells = parse(display.kernel_html(weight)).cells
    assert [background(style) for style, _ in cells] == [
        tuple(int(v) for v in picture[1, q]) for q in (1, 3, 5)]


def test_bank_draws_its_kernels_per_input_channel_and_group():
    edges = FilterBank.load(SAMPLES / "edges.npz")
    parsed = parse(edges._repr_html_())
    check_grid(parsed.cells, edges.weight)
    text = "".join(parsed.text)
    for name in edges.names:
        assert name in text
    rng = np.random.default_rng(0)
    grouped = FilterBank(rng.normal(size=(4, 2, 3, 3)), np.arange(4.0), groups=2)
    parsed = parse(grouped._repr_html_())
    check_grid([c for c in parsed.cells], grouped.weight)
    captions = [t for t in parsed.text if t.startswith("input channel")]
    assert captions == ["input channel 0", "input channel 1"] * 2 + [
        "input channel 2", "input channel 3"] * 2
    assert "bias 3" in "".join(parsed.text)


def test_bank_shows_its_feature_maps():
    edges = FilterBank.load(SAMPLES / "edges.npz")
    camera = np.asarray(Image.open(SAMPLES / "camera.png"))
    maps = edges.apply(camera)
    parsed = parse(edges.show(maps)._repr_html_())
    assert [i["alt"] for i in parsed.images] == list(edges.names)
    first = Image.open(io.BytesIO(__import__("base64").b64decode(
        parsed.images[0]["src"].split(",", 1)[1])))
    assert max(first.size) == display.THUMBNAIL
    # The thumbnail is the map stretched to 0..255 (then resized): its darkest and brightest
    # pixels sit where the map's are.
    small = np.asarray(first.convert("L").resize((32, 32)), dtype=float)
    expected = np.asarray(Image.fromarray(
        np.rint((maps[0] - maps[0].min()) / np.ptp(maps[0]) * 255).astype(np.uint8)).resize(
        (32, 32)), dtype=float)
    assert np.abs(small - expected).mean() < 4
    png = Image.open(io.BytesIO(display.feature_maps(maps, edges.names)._repr_png_()))
    assert png.size == (3 * (display.THUMBNAIL + 4), 2 * (display.THUMBNAIL + 4))


def test_network_shapes_are_its_output_shapes():
    rng = np.random.default_rng(1)
    net = Sequential(FilterBank(rng.normal(size=(6, 1, 5, 5))),
                     FilterBank(rng.normal(size=(16, 6, 5, 5))),
                     FilterBank(rng.normal(size=(4, 16, 1, 1))))
    parsed = parse(net.show((1, 32, 32), padding="valid", stride=1)._repr_html_())
    shapes = [t for t in parsed.text if t.startswith("(")]
    assert shapes == [str(s) for s in net.shapes((1, 32, 32), padding="valid")]
    text = "".join(parsed.text)
    assert f"{net.n_params} parameters" in text
    assert "1 → 6" in text and "6 → 16" in text and "16 → 4" in text
    plain = parse(net._repr_html_())
    assert f"{net.n_params} parameters" in "".join(plain.text)


def test_large_banks_are_cut_short():
    bank = FilterBank(np.ones((40, 20, 3, 3)))
    parsed = parse(bank._repr_html_())
    assert len(parsed.cells) == display.MAX_ROWS * display.MAX_KERNELS_PER_ROW * 9
    text = "".join(parsed.text)
    assert "... and 8 more outputs" in text and "... and 4 more input channels" in text


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\(C, H, W\).*\(2, 3, 4, 5\)"):
        display.feature_maps(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="names has 1 entries for 2 maps"):
        display.feature_maps(np.zeros((2, 3, 4)), ["a"])
    with pytest.raises(ValueError, match=r"\(C_out, C_in, \*K\).*\(3, 3\)"):
        display.kernel_html(np.zeros((3, 3)))


def test_docstring_examples():
    for module in (display, explainer):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failures == 0


def test_display_imports_no_other_imgfilt_module():
    source = open(display.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(from\s+\.|from\s+imgfilt|import\s+imgfilt)", source, re.M)
