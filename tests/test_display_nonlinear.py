"""Rank filters and Canny drawn for Jupyter: the footprint as a grid (parsed back and compared
with the footprint cell by cell), the operation named; the PNG's dark cells are the footprint."""
import io

import numpy as np
import pytest
from PIL import Image

from imgfilt import display
from imgfilt.filters import get_filter, list_filters
from imgfilt.nonlinear import CannyFilter, RankFilter
from test_display import background, parse

NONLINEAR = [info.name for info in list_filters()
             if isinstance(get_filter(info.name), (RankFilter, CannyFilter))]
WORDS = {"median": "median", "median3d": "median", "minimum": "minimum", "maximum": "maximum",
         "rank": "minimum", "percentile": "median", "erosion": "erosion",
         "dilation": "dilation", "opening": "opening", "closing": "closing",
         "morphological_gradient": "gradient", "white_tophat": "white top-hat",
         "black_tophat": "black top-hat", "canny": "hysteresis"}


def check_footprint(cells, footprint):
    fp = np.asarray(footprint, bool)
    assert len(cells) == fp.size
    centre_index = np.ravel_multi_index(tuple(n // 2 for n in fp.shape), fp.shape)
    for index, ((style, text), inside) in enumerate(zip(cells, fp.reshape(-1))):
        assert background(style) == ((64, 64, 64) if inside else (255, 255, 255))
        assert text == ("●" if index == centre_index else "1" if inside else "0")


@pytest.mark.parametrize("name", NONLINEAR)
def test_every_nonlinear_filter_draws_its_operation_and_footprint(name):
    f = get_filter(name)
    parsed = parse(f._repr_html_())
    text = "".join(parsed.text)
    assert f.name in text and WORDS[name] in text
    if isinstance(f, RankFilter):
        check_footprint(parsed.cells, f.footprint)
        picture = Image.open(io.BytesIO(f._repr_png_()))
        picture.load()
        assert picture.mode == "RGB"
        dark = (np.asarray(picture)[..., 0] == 64).sum()
        cell = max(2, min(32, 96 // max(f.footprint.shape[-2:])))
        assert dark == f.footprint.sum() * cell * cell


def test_footprints_with_holes_large_ones_and_3d():
    ring = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], bool)
    f = RankFilter(ring, "rank", 2, name="ring")
    parsed = parse(f._repr_html_())
    check_footprint(parsed.cells, ring)
    assert "rank 2 of 4" in "".join(parsed.text)
    big = parse(RankFilter(np.ones((15, 15), bool), "opening")._repr_html_())
    assert not big.cells and len(big.images) == 1
    assert big.images[0]["src"].startswith("data:image/png;base64,")
    cube = parse(display.footprint_html(np.ones((3, 3, 3), bool)))
    assert len(cube.cells) == 27 and "".join(cube.text).count("plane") == 3
    assert display.footprint_image(np.ones(5, bool)).size[1] > 0
    with pytest.raises(ValueError, match="footprint"):
        display.footprint_image(np.ones((1, 1, 1, 1), bool))
