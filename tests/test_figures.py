"""The committed pictures of the docs (docs/figures/*.png, shown by the Markdown pages on GitHub
and on the site) are what docs/gen_figures.py makes today, and every picture a page or the
README shows is one of them."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COMMITTED = DOCS / "figures"


@pytest.fixture(scope="module")
def gen_figures():
    sys.path.insert(0, str(DOCS))
    try:
        import gen_figures
    finally:
        sys.path.remove(str(DOCS))
    return gen_figures


def test_committed_figures_are_what_gen_figures_makes(gen_figures, tmp_path):
    made = {path.name: path for path in gen_figures.main([str(tmp_path)])}
    committed = {path.name: path for path in COMMITTED.glob("*.png")}
    assert sorted(committed) == sorted(made), "run python docs/gen_figures.py and commit"
    total = sum(path.stat().st_size for path in committed.values())
    assert total < 4_000_000, f"the committed figures weigh {total} bytes"
    for name, path in made.items():
        new = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        old = np.asarray(Image.open(committed[name]).convert("RGB"), dtype=np.int16)
        assert new.shape == old.shape, f"{name}: {old.shape} committed, {new.shape} made"
        # Another CPU (rounding of the last bit) or FreeType may move a few pixels by a level or
        # a glyph's edge; a stale figure differs by far more than that.
        difference = np.abs(new - old)
        assert difference.mean() < 0.5 and (difference > 8).mean() < 0.002, (
            f"{name} is stale: run python docs/gen_figures.py and commit docs/figures")


def test_every_picture_shown_is_committed():
    pages = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
    shown = 0
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", page.read_text()):
            assert (page.parent / target).resolve().is_file(), f"{page.name} shows {target}"
            shown += 1
    assert shown > 10
    readme = (ROOT / "README.md").read_text()
    assert "](docs/figures/feature-maps.png)" in readme
