"""The compiled core's door: the engine builds this CPU can run, loaded by name.

The engine is one Cython source (``_engine_core.pxi``) built for several instruction sets:
``imgfilt._engine`` (baseline) and, on x86-64, ``imgfilt._engine_avx2`` and
``imgfilt._engine_avx512``. This module imports them by name, so the pure-Python layers above
never import a compiled module directly (and the layers contract in pyproject.toml can see that
nothing but :mod:`imgfilt.convolution` reaches the engine).
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Dict

__all__ = ["load_engines", "load_nonlinear", "ISAS"]

#: Instruction sets an engine may be built for, worst first.
ISAS = ("baseline", "avx2", "avx512")


def load_engines() -> Dict[str, ModuleType]:
    """Every engine build this CPU runs, by instruction set, best last.

    Examples
    --------
    >>> "baseline" in load_engines()
    True
    """
    baseline = importlib.import_module("imgfilt._engine")
    engines = {"baseline": baseline}
    for isa in ISAS[1:]:
        try:
            if baseline.cpu_supports(isa):
                engines[isa] = importlib.import_module(f"imgfilt._engine_{isa}")
        except ImportError:  # built without that variant (another compiler or architecture)
            pass
    return engines


def load_nonlinear(wanted: str = "") -> ModuleType:
    """The nonlinear kernels (rank filters, Canny's steps) for the best instruction set here.

    They are built for "baseline" (``imgfilt._nonlinear``), "avx2" (``imgfilt._nonlinear_avx2``)
    and "avx512" (``imgfilt._nonlinear_avx512``); the best one this CPU runs is used.
    ``wanted="baseline"`` forces the baseline build (``IMGFILT_SIMD=baseline`` does it for every
    compiled module), ``wanted="avx2"`` at most AVX2.

    Examples
    --------
    >>> load_nonlinear("baseline").instruction_set()
    'baseline'
    """
    best = importlib.import_module("imgfilt._nonlinear")
    if wanted == "baseline":
        return best
    cpu_supports = importlib.import_module("imgfilt._engine").cpu_supports
    for isa in ISAS[1:]:
        if isa == "avx512" and wanted == "avx2":
            break
        try:
            if cpu_supports(isa):
                best = importlib.import_module(f"imgfilt._nonlinear_{isa}")
        except ImportError:  # built without that variant (another compiler or architecture)
            pass
    return best
