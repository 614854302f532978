"""The classroom notebooks (docs/notebooks): each runs top to bottom on the samples in under a
minute, shows what its lesson says, and is exactly what docs/notebooks/make_notebooks.py
writes. Executed with nbclient and an IPython kernel (the test extras install both)."""
import importlib.util
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parent.parent / "docs" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))

#: Text each notebook's outputs must show (its lesson's numbers).
EXPECTED = {
    "01-sum-of-products": ["[37., 43.]", "out[0, 0] = 0×0 + 1×1 + 3×2 + 4×3 = 19",
                           "out[1, 1] = 4×0 + 5×1 + 7×2 + 8×3 = 43"],
    "02-channels-and-bias": ["[[[ 57.,  73.],", "edge(channel=&#x27;r&#x27;"],
    "03-padding-and-stride": ["reflect    [4. 3. 2. 1. 2. 3. 4. 5. 4. 3. 2.]", "(2, 2)"],
    "04-shapes-through-a-network": ["total parameters 2572", "(16, 24, 24)",
                                    "((10, 32, 32), 760)"],
    "05-edges-on-a-photo": ["sobel_x()", "5 feature map(s) of 400x600"],
    "06-bank-of-filters": ["(6, 512, 512)", "6 feature map(s) of 512x512"],
    "07-a-layer-learns": ["r2=0.9999"],
    "08-multichannel-multifilter": ["4 feature map(s)", "groups=3"],
    "09-padding-stride-shapes": ["(32, 64, 64)", "(32, 58, 58)", "(32, 8, 8)"],
    "10-one-by-one": ["True"],
    "11-volumes": ["8 feature map(s) of 64x64"],
    "12-fitting-a-filter": ["r2=1.0)"],
}


def _outputs(notebook):
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                pytest.fail(f"{output['ename']}: {output['evalue']}")
            texts.append(output.get("text", ""))
            data = output.get("data", {})
            texts.extend(data.get(kind, "") for kind in ("text/plain", "text/html"))
    return "\n".join(texts)


def test_every_lesson_has_its_notebook():
    assert [path.stem for path in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_under_a_minute(path):
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "committed unexecuted"
    start = time.perf_counter()
    NotebookClient(notebook, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(FOLDER)}}).execute()
    seconds = time.perf_counter() - start
    assert seconds < 60, f"{path.name} took {seconds:.1f} s"
    shown = _outputs(notebook)
    for text in EXPECTED[path.stem]:
        assert text in shown, f"{path.name} does not show {text!r}"
    if path.stem == "09-padding-stride-shapes":
        pairs = re.findall(r": (\d+) (\d+)\n", shown)
        assert len(pairs) == 4 and all(a == b for a, b in pairs)
    print(f"{path.name}: {seconds:.1f} s")


def test_committed_notebooks_are_what_the_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_notebooks", FOLDER / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for written in module.write_all(tmp_path):
        committed = FOLDER / written.name
        assert committed.read_text(encoding="utf-8") == written.read_text(encoding="utf-8"), (
            f"{committed} differs from what make_notebooks.py writes: run it and commit")
