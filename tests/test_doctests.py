"""Every example in imgfilt's docstrings runs, against the imgfilt under test (the installed
package in CI), the way ``python -m doctest`` would run it (``...`` matches anything, runs of
whitespace compare equal).

One test per module, so a failure names the module and prints doctest's report.
"""
import doctest
import importlib
import pkgutil

import pytest

import imgfilt

MODULES = sorted(m.name for m in pkgutil.walk_packages(imgfilt.__path__, "imgfilt.")
                 if not m.name.endswith("__main__"))  # __main__ runs the command line
OPTIONAL = {"imgfilt.dask": "dask.array"}  # modules of an extra: `pip install "imgfilt[dask]"`


def test_every_module_is_found():
    assert {"imgfilt.convolution", "imgfilt.filters", "imgfilt.kernels", "imgfilt.cli"} <= set(
        MODULES), MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)


def test_examples_are_counted():
    """The examples above are really there (a finder that finds nothing would pass them all)."""
    count = 0
    for name in MODULES:
        if name in OPTIONAL:
            continue
        module = importlib.import_module(name)
        count += sum(len(t.examples) for t in doctest.DocTestFinder().find(module, name))
    assert count >= 140, count
