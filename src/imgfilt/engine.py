"""The compiled core's door: the engine builds this CPU can run, loaded by name.

The engine is one Cython source (``_engine_core.pxi``) built for several instruction sets:
``imgfilt._engine`` (baseline) and, on x86-64, ``imgfilt._engine_avx2`` and
``imgfilt._engine_avx512``. This module imports them by name, so the pure-Python layers above
never import a compiled module directly (and the layers contract in pyproject.toml can see that
nothing but :mod:`imgfilt.convolution` reaches the engine).
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Dict

__all__ = ["load_engines", "load_nonlinear", "ISAS", "WAIT_POLICY_VARIABLES"]

#: The variables by which a user chooses how OpenMP's idle threads wait; imgfilt asks for a
#: passive wait (sleep, no spin) only when none of them is set.
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

# Idle OpenMP threads sleep rather than spin. By default libgomp's workers spin for 300,000
# rounds after each parallel region (LLVM's libomp for 200 ms), on cores that the caller's next
# step (OpenCV, NumPy, torch) or another process needs: measured on 2 cores, cv2.filter2D right
# after an imgfilt call took up to twice as long next to the spinning worker. The price: a
# futex wake per parallel region (0.1-0.3 ms here), paid most by the banded separable passes,
# one region per band (Gaussian sigma=3 at 1080p: 17 ms against 12-13 ms with a spin). The
# comparison, with its commands: docs/performance.md, "Idle threads". The runtime reads the
# variable when it is loaded, i.e. when the first compiled module is imported below; a user's
# own setting of any of these variables is kept.
if not any(name in os.environ for name in WAIT_POLICY_VARIABLES):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
