"""The package reads as layers (docs/development.md): the import-linter contract in
pyproject.toml holds, no module imports another's private name, no public function shares its
name with a module, and the repository root cannot shadow the installed package."""
import ast
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imgfilt

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(imgfilt.__file__).resolve().parent


def package_sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_layers_contract_holds():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not os.path.exists(lint):
        pytest.fail("import-linter is a test dependency (pip install '.[test]')")
    # Analyse the package under test (installed or in place), with the contract in pyproject.
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_no_module_imports_a_private_name_of_another():
    offences = []
    for path in package_sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or "imgfilt" in (node.module or "")):
                module = node.module or ""
                if any(part.startswith("_") and part != "__init__" for part in module.split(".")):
                    if not module.startswith("_engine"):
                        offences.append(f"{path.name}: from {module} import ...")
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offences.append(f"{path.name}: from {module} import {alias.name}")
    assert not offences, offences


def test_public_functions_are_not_shadowed_by_modules():
    # `imgfilt.conv` is the function, and only that: no submodule may share a public name.
    modules = {info.name for info in pkgutil.iter_modules(imgfilt.__path__)}
    for name in imgfilt.__all__:
        value = getattr(imgfilt, name)
        if callable(value) and not isinstance(value, type):
            assert name not in modules, name
    assert callable(imgfilt.conv) and callable(imgfilt.apply)
    for name in ("plan", "Plan", "engine_isa", "correlate_channels_last"):
        assert getattr(imgfilt, name) is getattr(importlib.import_module("imgfilt.convolution"),
                                                 name)


def test_the_repository_root_holds_no_package_to_shadow_the_install():
    assert not (ROOT / "imgfilt").exists()  # the scikit-image convention: src/imgfilt
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(PACKAGE.parent)  # what is installed, or the in-place build
    done = subprocess.run([sys.executable, "-c", "import imgfilt, numpy as np; "
                           "print(imgfilt.conv(np.ones((1, 4)), np.ones((1, 1, 3))).shape)"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "(1, 2)", done.stderr
