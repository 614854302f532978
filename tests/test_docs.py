"""The docs never go stale: every code block marked runnable in docs/**/*.md, and every python
block of README.md, is run here; console blocks must print what the page shows.

Marking a block: put ``<!-- runnable -->`` on the line just above its opening fence.

* ``python``: the page's marked blocks run in order in one namespace (a page reads as one
  session), with the current directory a fresh folder holding a copy of samples/, so
  ``Image.open("samples/coffee.png")`` works as it does from the repository root and nothing is
  written into the repository.
* ``console``: lines starting with ``$ `` are commands, run by bash in that folder with
  ``imgfilt`` and ``python`` on PATH; the lines after a command up to the next ``$ `` are its
  expected output. A line ``...`` stands for any number of lines, and ``...`` inside a line for
  any text (doctest's ELLIPSIS).
* ``bash``: the block runs with ``bash -euo pipefail``; only the exit status is checked.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imgfilt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.DOTALL | re.MULTILINE)


def blocks(path, marked_only=True):
    """``(language, first line number, code)`` of the fenced blocks of a Markdown file."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if marked_only and before != MARKER:
            continue
        line = text.count("\n", 0, match.start()) + 2
        body = match.group("body")
        indent = match.group("indent")
        code = "\n".join(row.removeprefix(indent)
                         for row in body.split("\n"))
        found.append((match.group("lang"), line, code))
    return found


PAGES = sorted(DOCS.rglob("*.md"))
RUNNABLE = [p for p in PAGES if blocks(p)]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder with samples/ in it, imgfilt and python on PATH; cwd during the test."""
    shutil.copytree(ROOT / "samples", tmp_path / "samples",
                    ignore=shutil.ignore_patterns("__pycache__", "samples-out"))
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "imgfilt"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m imgfilt "$@"\n')
    shim.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(Path(imgfilt.__file__).resolve().parent.parent),
           "COLUMNS": "100"}
    monkeypatch.chdir(tmp_path)
    return tmp_path, env


def expected_pattern(expected):
    """A regex for expected console output, with doctest-style ``...``."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(piece) for piece in line.split("...")) + r"[ \t]*\n")
    return re.compile("".join(parts))


def run_console(code, where, cwd, env):
    commands = []
    for row in code.rstrip("\n").split("\n"):
        if row.startswith("$ "):
            commands.append((row[2:], []))
        elif commands:
            commands[-1][1].append(row.rstrip())
        else:
            raise AssertionError(f"{where}: console block must start with '$ '")
    for command, expected in commands:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, f"{where}: `{command}` failed:\n{result.stderr}"
        output = "".join(line.rstrip() + "\n" for line in result.stdout.splitlines())
        assert expected_pattern(expected).fullmatch(output), (
            f"{where}: `{command}` printed\n{output}\nbut the page shows\n" + "\n".join(expected))


def run_blocks(page, found, workdir):
    cwd, env = workdir
    namespace = {"__name__": "__main__"}
    for lang, line, code in found:
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the docs' own code
        elif lang == "console":
            run_console(code, where, cwd, env)
        elif lang in ("bash", "sh"):
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env,
                                    capture_output=True, text=True, timeout=300, check=False)
            assert result.returncode == 0, f"{where}: failed:\n{result.stderr}"
        else:
            raise AssertionError(f"{where}: cannot run a {lang or 'plain'} block")


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(DOCS)) for p in RUNNABLE])
def test_runnable_blocks(page, workdir):
    run_blocks(page, blocks(page), workdir)


def test_readme_python_blocks(workdir):
    readme = ROOT / "README.md"
    found = [b for b in blocks(readme, marked_only=False) if b[0] == "python"]
    assert len(found) >= 2
    run_blocks(readme, found, workdir)


def test_the_harness_sees_the_marked_blocks():
    marked = sum(line.strip() == MARKER for p in PAGES for line in p.read_text().splitlines())
    assert marked == sum(len(blocks(p)) for p in PAGES), "a marker not right above a fence"
    assert marked >= 20
    # Key pages teach with code that runs.
    for name in ("index.md", "quickstart.md", "concepts/shapes.md", "howto/porting.md"):
        assert blocks(DOCS / name), f"docs/{name} has no runnable block"


def test_console_expectations_can_fail(workdir):
    cwd, env = workdir
    run_console("$ echo 'a b'\na ...\n$ printf 'x\\ny\\nz\\n'\nx\n...\nz\n", "self-test", cwd, env)
    with pytest.raises(AssertionError, match="printed"):
        run_console("$ echo hello\nhullo\n", "self-test", cwd, env)


def test_every_page_is_in_the_nav_and_every_nav_page_exists():
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w/.-]+\.md)\s*$",
                     (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    pages = {str(p.relative_to(DOCS)) for p in PAGES}
    assert sorted(nav) == sorted(set(nav)), "a page is twice in the nav"
    assert set(nav) == pages, (f"not in nav: {sorted(pages - set(nav))}; "
                               f"in nav but missing: {sorted(set(nav) - pages)}")


def test_every_figure_shown_is_made_by_gen_figures():
    sys.path.insert(0, str(DOCS))
    try:
        import gen_figures
    finally:
        sys.path.remove(str(DOCS))
    shown = set()
    for page in PAGES:
        shown |= set(re.findall(r"figures/([\w.-]+\.png)", page.read_text()))
    assert shown, "no page shows a figure"
    assert shown <= set(gen_figures.FIGURES), sorted(shown - set(gen_figures.FIGURES))
    # The gallery covers every registered filter.
    groups = gen_figures.gallery_groups()
    assert sorted(name for names in groups.values() for name in names) == sorted(f.name for f in imgfilt.list_filters())
