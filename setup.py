"""Build the compiled engine.

Environment switches read at build time:

IMGFILT_DEBUG=1
    Turn Cython's boundscheck / wraparound / initializedcheck on and compile with -O0 -g,
    so the test suite can run once against a build that traps every out-of-bounds access.

The engine is one Cython source (src/imgfilt/_engine_core.pxi) built up to three times: ``_engine``
for the baseline instruction set, and on x86-64 with GCC or Clang also ``_engine_avx2``
(x86-64-v3: AVX2 + FMA) and ``_engine_avx512`` (x86-64-v4). imgfilt.conv imports the best one the
CPU runs; ``-march=native`` is never used, so a wheel built here runs on any x86-64 CPU.
"""
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("IMGFILT_DEBUG", "") not in ("", "0")

# The directives are set here once, for every module, rather than in each .pyx.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}


OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
EMPTY_PROGRAM = "int main(void) { return 0; }\n"


def _compiler_accepts(flags, source=OPENMP_PROBE):
    """Return True when the C compiler builds and links ``source`` with ``flags``."""
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as handle:
            handle.write(source)
        command = compiler.split() + flags + [path, "-o", os.path.join(tmp, "probe")]
        try:
            result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return result.returncode == 0


def _openmp_flags():
    candidates = [["-fopenmp"]]
    if sys.platform == "darwin":
        candidates.append(["-Xpreprocessor", "-fopenmp", "-lomp"])
    if sys.platform == "win32":
        return ["/openmp"], []
    for flags in candidates:
        if _compiler_accepts(flags):
            return flags, flags
    warnings.warn(
        "imgfilt: the C compiler has no OpenMP support; building a single-threaded engine.",
        stacklevel=1,
    )
    return [], []


def _variants():
    """``(suffix, isa name, flags, strip width)`` of each engine build this compiler can make.

    The strip width (output samples kept in registers per channel) is two vectors of floats.
    """
    variants = [("", "baseline", [], 8)]
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if x86 and sys.platform != "win32":
        for suffix, isa, flags, strip in (
            ("_avx2", "avx2", ["-march=x86-64-v3"], 16),
            ("_avx512", "avx512", ["-march=x86-64-v4", "-mprefer-vector-width=512"], 32),
        ):
            if _compiler_accepts(flags, EMPTY_PROGRAM):
                variants.append((suffix, isa, flags, strip))
    return variants


compile_flags, link_flags = _openmp_flags()
if sys.platform != "win32":
    compile_flags += ["-O0", "-g"] if DEBUG else ["-O3"]
    # gcc's unroll-and-jam of the tap loop spills the fused kernels' register accumulators to
    # the stack (4-5x slower, measured); the flag is gcc's only, so probe for it.
    if not DEBUG and _compiler_accepts(["-fno-loop-unroll-and-jam"], EMPTY_PROGRAM):
        compile_flags += ["-fno-loop-unroll-and-jam"]
    if DEBUG:
        compile_flags += ["-UNDEBUG"]

extensions = [
    Extension(
        f"imgfilt._engine{suffix}",
        [f"src/imgfilt/_engine{suffix}.pyx"],
        extra_compile_args=compile_flags + isa_flags,
        extra_link_args=link_flags,
        define_macros=[("IMGFILT_ISA", f'"{isa}"'), ("IMGFILT_STRIP", str(strip))]
        + ([("IMGFILT_DEBUG", "1")] if DEBUG else []),
        depends=["src/imgfilt/_engine_core.pxi"],
    )
    for suffix, isa, isa_flags, strip in _variants()
]
# The nonlinear filters (_rank_core.pxi, _canny_core.pxi): baseline and AVX2 (comparisons of
# 8- to 64-bit values, which AVX-512 would not speed up enough to be worth a third build).
extensions += [
    Extension(
        f"imgfilt._nonlinear{suffix}",
        [f"src/imgfilt/_nonlinear{suffix}.pyx"],
        extra_compile_args=compile_flags + isa_flags,
        extra_link_args=link_flags,
        define_macros=[("IMGFILT_ISA", f'"{isa}"')] + ([("IMGFILT_DEBUG", "1")] if DEBUG else []),
        depends=["src/imgfilt/_rank_core.pxi", "src/imgfilt/_canny_core.pxi"],
    )
    for suffix, isa, isa_flags, _ in _variants()
    if isa in ("baseline", "avx2")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        # Regenerate the C file every build: a stale one may carry the other build's directives.
        force=True,
    ),
)
