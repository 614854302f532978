"""The version comes from one place (pyproject.toml, through the installed package's metadata):
``imgfilt.__version__``, ``imgfilt --version`` and CHANGELOG.md agree with it."""
import re
from importlib import metadata
from pathlib import Path

import imgfilt
from cli_support import run_cli

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_version():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version = "([^"]+)"', project, re.MULTILINE).group(1)


def _installed_version():
    try:
        return metadata.version("imgfilt")
    except metadata.PackageNotFoundError:  # a source tree used through PYTHONPATH=src
        return None


def test_version_is_the_metadata_one():
    installed = _installed_version()
    assert imgfilt.__version__ == (installed or "0+unknown")
    if installed is not None:
        assert installed == _pyproject_version()


def test_command_line_version(tmp_path):
    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"imgfilt {imgfilt.__version__}\n"


def test_changelog_has_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(_pyproject_version())}\b", changelog, re.MULTILINE)
