"""Build the compiled engine.

Environment switches read at build time:

IMGFILT_DEBUG=1
    Turn Cython's boundscheck / wraparound / initializedcheck on and compile with -O0 -g,
    so the test suite can run once against a build that traps every out-of-bounds access.
"""
import os
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


def _compiler_accepts(flags):
    """Return True when the C compiler builds and links a tiny OpenMP program with ``flags``."""
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
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


compile_flags, link_flags = _openmp_flags()
if sys.platform != "win32":
    compile_flags += ["-O0", "-g"] if DEBUG else ["-O3"]
    if DEBUG:
        compile_flags += ["-UNDEBUG"]

extensions = [
    Extension(
        "imgfilt._engine",
        ["imgfilt/_engine.pyx"],
        extra_compile_args=compile_flags,
        extra_link_args=link_flags,
        define_macros=[("IMGFILT_DEBUG", "1")] if DEBUG else [],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        # Regenerate the C file every build: a stale one may carry the other build's directives.
        force=True,
    ),
)
