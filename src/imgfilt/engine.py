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

__all__ = ["load_engines", "ISAS"]

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
