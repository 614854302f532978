"""``imgfilt.explain`` / ``imgfilt explain --html``: the sliding-window page, opened in a real
browser (headless Chromium through selenium), stepped through, and its numbers compared with
``imgfilt.conv`` and with the printed ``imgfilt explain``.

The browser is required: without Chromium, chromedriver or selenium these tests FAIL (CI must
install them: ``apt-get install chromium chromium-driver``, ``pip install selenium``).
"""
import html.parser
import json
import re
import shutil
import time

import numpy as np
import pytest
from cli_support import run_cli
from hypothesis import given, settings
from reference import NUMPY_MODE, problem_is_valid, reference_conv
from strategies import conv_problems, examples

import imgfilt
from imgfilt.cli import main
from imgfilt.cli.common import number
from imgfilt.padding import index_map

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = ("the browser tests need Debian's chromium and chromium-driver (apt-get install "
           "chromium chromium-driver) and selenium (pip install selenium)")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(f"chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        pytest.fail(f"{error}: {INSTALL}")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1300,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


STATE = """
return {where: document.getElementById('where').dataset.index,
        equation: document.getElementById('equation').textContent,
        running: document.getElementById('running').textContent,
        value: document.getElementById('value').dataset.value,
        shown: document.getElementById('value').textContent,
        conv: document.getElementById('conv').dataset.value};
"""


def _open(browser, tmp_path, page, name="page.html"):
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    browser.get(path.as_uri())
    assert browser.execute_script("return document.getElementById('where').textContent"), \
        "the page's script did not run"
    return path


def _click(browser, button):
    browser.execute_script(f"document.getElementById('{button}').click()")
    return browser.execute_script(STATE)


def _printed(capsys, argv):
    """The sum lines of the printed ``imgfilt explain`` (from the first ``out[`` line on)."""
    assert main(["explain", *argv]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"out\[[\d, ]+\] = [^b]", line))
    return "\n".join(lines[first:])


def _literal(array):
    return json.dumps(np.asarray(array).tolist())


def _walk(browser, expected, per_element=None):
    """Step element by element through every output channel; check each against conv."""
    state = browser.execute_script(STATE)
    flat = expected.reshape(expected.shape[0], -1)
    seen = 0
    for o in range(flat.shape[0]):
        for i in range(flat.shape[1]):
            assert int(state["where"]) == i
            assert float(state["conv"]) == flat[o, i]
            assert float(state["value"]) == pytest.approx(flat[o, i], rel=1e-12, abs=1e-12)
            assert state["shown"] == number(flat[o, i], 8)
            if per_element is not None:
                per_element(o, i, state)
            seen += 1
            state = _click(browser, "next")
    assert int(state["where"]) == 0  # wrapped around
    return seen


# The page's equation is the printed one, element by element (2-D, every padding mode).
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
def test_page_equations_equal_printed_explain(browser, tmp_path, capsys, mode):
    rng = np.random.default_rng(len(mode))
    x = rng.integers(-5, 6, size=(2, 3, 4)).astype(float)
    w = rng.integers(-3, 4, size=(2, 2, 2, 3)).astype(float)
    bias = [0.5, -1]
    options = dict(stride=(2, 1), padding=(1, 2), padding_mode=mode, dilation=(1, 2))
    _open(browser, tmp_path, imgfilt.explain(x, w, bias, **options))
    expected = imgfilt.conv(x, w, np.array(bias), **options)
    args = ["--input", _literal(x), "--kernel", _literal(w), "--bias", "[0.5,-1]",
            "--stride", "2x1", "--padding", "1x2", "--padding-mode", mode, "--dilation", "1x2"]

    def same_as_printed(o, i, state):
        y, x0 = divmod(i, expected.shape[2])
        printed = _printed(capsys, args + ["--at", f"{y},{x0}", "--out-channel", str(o)])
        assert state["equation"] == printed

    assert _walk(browser, expected, same_as_printed) == expected.size
    # Padded cells name the input cell they copy: the engine's index map, per axis.
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('td.pad')).map("
        "td => [td.id, td.querySelector('small').textContent])")
    assert labels
    rows, cols = index_map(3, 1, 1, mode), index_map(4, 2, 2, mode)
    for cell, label in labels:
        _, _, r, q = map(int, cell.split("-")[1:])  # x-CHANNEL-PLANE-ROW-COLUMN
        if rows[r] < 0 or cols[q] < 0:
            assert label == "pad 0" and mode == "zeros"
        else:
            assert label == f"=x[{rows[r]},{cols[q]}]"


def test_demo_and_lesson_two_equal_printed(browser, tmp_path, capsys):
    _open(browser, tmp_path, imgfilt.explain())
    expected = imgfilt.conv(np.arange(9.0).reshape(1, 3, 3), np.array([[[[0.0, 1], [2, 3]]]]))
    _walk(browser, expected, lambda o, i, s: (
        s["equation"] == _printed(capsys, ["--at", f"{i // 2},{i % 2}"]) or
        pytest.fail(s["equation"])))
    x = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
    w = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
    _open(browser, tmp_path, imgfilt.explain(x, w, 1))
    state = browser.execute_script(STATE)
    assert state["equation"] == _printed(
        capsys, ["--input", _literal(x), "--kernel", _literal(w), "--bias", "1"])
    assert state["equation"].endswith("= 57")


def test_one_product_at_a_time(browser, tmp_path):
    x = np.arange(18.0).reshape(2, 3, 3) - 7
    w = np.arange(8.0).reshape(1, 2, 2, 2) / 4 - 1
    _open(browser, tmp_path, imgfilt.explain(x, w))
    browser.execute_script("document.getElementById('taps').click()")
    browser.execute_script("document.getElementById('first').click()")
    for i, (y, x0) in enumerate([(0, 0), (0, 1)]):
        products = [x[c, y + m, x0 + n] * w[0, c, m, n]
                    for c in range(2) for m in range(2) for n in range(2)]
        for k in range(len(products)):
            state = browser.execute_script(STATE)
            assert int(state["where"]) == i
            partial = sum(products[: k + 1])
            assert state["running"].split(" ")[0] == number(partial, 8)
            highlighted = browser.execute_script(
                "return Array.from(document.querySelectorAll('td.tap')).map(td => td.id)")
            c, rest = divmod(k, 4)
            assert highlighted == [f"x-{c}-0-{y + rest // 2}-{x0 + rest % 2}"]
            state = _click(browser, "next")
        assert state["value"] == "" or int(state["where"]) == i + 1


@pytest.mark.parametrize("case", ["1d", "3d", "groups"])
def test_other_layers_step_through_conv(browser, tmp_path, case):
    rng = np.random.default_rng(7)
    if case == "1d":
        x, w = rng.normal(size=(2, 9)), rng.normal(size=(3, 2, 3))
        options = dict(ndim=1, stride=2, padding=2, padding_mode="circular", dilation=2)
    elif case == "3d":
        x, w = rng.normal(size=(1, 3, 4, 4)), rng.normal(size=(2, 1, 2, 2, 2))
        options = dict(ndim=3, padding=1, padding_mode="replicate", stride=(1, 2, 2))
    else:
        x, w = rng.normal(size=(4, 4, 4)), rng.normal(size=(2, 2, 3, 3))
        options = dict(groups=2, padding="same", padding_mode="reflect")
    _open(browser, tmp_path, imgfilt.explain(x, w, [0.25] * w.shape[0], **options))
    conv_options = {k: v for k, v in options.items() if k != "ndim"}
    expected = imgfilt.conv(x, w, np.full(w.shape[0], 0.25), **conv_options)
    assert _walk(browser, expected) == expected.size
    if case == "groups":
        # Output channel 1 reads input channels 2 and 3 only (its group).
        browser.execute_script("var s = document.getElementById('outch'); s.value = '1';"
                               "s.onchange()")
        captions = browser.execute_script(
            "return Array.from(document.querySelectorAll('.cap')).map(c => c.textContent)")
        assert [c for c in captions if c.startswith("xpad")] == [
            "xpad channel 2", "xpad channel 3"]


@settings(max_examples=examples(25))
@given(problem=conv_problems(max_size=6, max_pad=4))
def test_random_layers_page_sums_equal_the_oracle(browser, tmp_path_factory, problem):
    """Every output element as the page's script sums it, for random layers (1-3 axes, groups,
    stride, dilation, any padding and mode), against the NumPy oracle; the page's padded input
    against numpy.pad."""
    rng = np.random.default_rng(problem["seed"])
    x = rng.integers(-9, 10, size=(problem["in_channels"],) + problem["sizes"]).astype(float)
    w = rng.integers(-3, 4, size=(problem["out_channels"], problem["group_in"])
                     + problem["kernel"]).astype(float) / 2
    bias = rng.integers(-5, 6, size=problem["out_channels"]) if problem["bias"] else None
    options = {k: problem[k] for k in ("stride", "padding", "padding_mode", "dilation", "groups")}
    if not problem_is_valid(problem):
        with pytest.raises(ValueError):
            imgfilt.explain(x, w, bias, ndim=problem["ndim"], **options)
        return
    page = imgfilt.explain(x, w, bias, ndim=problem["ndim"], **options)
    expected = reference_conv(x, w, bias, **options)
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                page, re.S).group(1).replace("<\\/", "</"))
    pads = [tuple(p) for p in data["padding"][3 - problem["ndim"]:]]
    padded = np.pad(x, [(0, 0)] + pads, mode=NUMPY_MODE[problem["padding_mode"]])
    assert np.array_equal(np.array(data["x"]), padded.reshape(-1))
    assert np.allclose(data["out"], expected.reshape(-1), rtol=1e-12, atol=1e-9)
    _open(browser, tmp_path_factory.mktemp("page"), page)
    sums = browser.execute_script("return window.explainPage.sums()")
    assert np.allclose(sums, expected.reshape(-1), rtol=1e-12, atol=1e-9)


def test_play_pause_and_hover(browser, tmp_path):
    _open(browser, tmp_path, imgfilt.explain(np.arange(16.0).reshape(4, 4), np.ones((2, 2)),
                                             padding=1, padding_mode="circular"))
    browser.execute_script("document.getElementById('play').click()")
    time.sleep(2.2)  # steps every 0.9 s
    browser.execute_script("document.getElementById('play').click()")  # pause
    reached = int(browser.execute_script(STATE)["where"])
    assert reached >= 1
    time.sleep(1.2)
    assert int(browser.execute_script(STATE)["where"]) == reached
    # Hovering a padded cell outlines the input cell it copies: circular padding's top-left
    # corner shows x[3, 3], at padded position (4, 4).
    outlined = browser.execute_script(
        "document.getElementById('x-0-0-0-0').dispatchEvent(new MouseEvent('mouseover', "
        "{bubbles: true}));"
        "return Array.from(document.querySelectorAll('td.src')).map(td => td.id)")
    assert outlined == ["x-0-0-4-4"]


def test_screenshot(browser, tmp_path):
    """A screenshot of a 3-channel, 2-filter page mid-sum, kept in the test's folder."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 10, size=(3, 5, 5)).astype(float)
    w = rng.integers(-2, 3, size=(2, 3, 3, 3)).astype(float)
    _open(browser, tmp_path, imgfilt.explain(x, w, [1, -1], padding=1,
                                             padding_mode="reflect", stride=2))
    browser.execute_script("document.getElementById('taps').click()")
    for _ in range(13):
        _click(browser, "next")
    target = tmp_path / "explain-page.png"
    assert browser.save_screenshot(str(target))
    assert target.stat().st_size > 10_000
    print(f"screenshot: {target}")


# -- without a browser --------------------------------------------------------------------------


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts = [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in_script = False


def test_page_is_self_contained():
    page = imgfilt.explain(padding=1, padding_mode="symmetric", title="<b>&")
    parser = _Collect()
    parser.feed(page)
    assert not any(attrs.get("src") or attrs.get("href") for _, attrs in parser.tags)
    assert "http://" not in page and "https://" not in page
    assert "<title>&lt;b&gt;&amp;</title>" in page
    data = json.loads(parser.scripts[0])
    assert data["out"] == imgfilt.conv(np.arange(9.0).reshape(1, 3, 3), np.array(
        [[[[0.0, 1], [2, 3]]]]), padding=1, padding_mode="symmetric").reshape(-1).tolist()


@pytest.mark.parametrize("kwargs, words", [
    (dict(x=np.zeros((200, 200))), ["padded input", "40000", "20000"]),
    (dict(x=[[1, np.nan]]), ["NaN"]),
    (dict(x=np.zeros((2, 3, 3, 3))), ["(C_in, H, W)", "(2, 3, 3, 3)"]),
    (dict(weight=np.zeros((2, 3, 3))), ["C_in = 2", "C_in = 1"]),
    (dict(bias=[1, 2]), ["bias", "2"]),
    (dict(ndim=4), ["ndim"]),
    (dict(padding_mode="mirrored"), ["padding_mode"]),
])
def test_bad_examples_are_refused(kwargs, words):
    with pytest.raises(ValueError) as info:
        imgfilt.explain(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_cli_writes_the_page_and_never_an_input(tmp_path):
    done = run_cli("explain", "--html", "lesson.html", "--padding", "1", "--padding-mode",
                   "replicate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lesson.html").read_text(encoding="utf-8") == imgfilt.explain(
        padding=1, padding_mode="replicate")
    np.save(tmp_path / "x.npy", np.arange(8.0).reshape(2, 4))
    before = (tmp_path / "x.npy").read_bytes()
    refused = run_cli("explain", "--html", "x.npy", "--input", "x.npy", "--overwrite",
                      "--kernel", "[1,2]", "--dims", "1", cwd=tmp_path)
    assert refused.returncode != 0 and "input" in refused.stderr
    assert (tmp_path / "x.npy").read_bytes() == before
    again = run_cli("explain", "--html", "lesson.html", cwd=tmp_path)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    volume = run_cli("explain", "--html", "v.html", "--dims", "3", "--input", "x.npy",
                     cwd=tmp_path)
    assert volume.returncode != 0 and "ndim=3" in volume.stderr
    text = run_cli("explain", "--dims", "3", cwd=tmp_path)
    assert text.returncode != 0 and "--html" in text.stderr
