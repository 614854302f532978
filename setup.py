"""Build the compiled engine.

Environment switches read at build time (docs/development.md, "Building"):

IMGFILT_DEBUG=1
    Turn Cython's boundscheck / wraparound / initializedcheck on and compile with -O0 -g,
    so the test suite can run once against a build that traps every out-of-bounds access.
IMGFILT_SKIP_ISA=avx512 (or avx2,avx512 / all)
    Build without those x86-64 engine variants. Without it, a compiler that cannot build one
    fails the build: a wheel silently missing its AVX-512 engine is slower for no visible reason.
IMGFILT_NO_OPENMP=1
    Build a one-thread engine on purpose. Without it, a compiler without OpenMP (Apple clang
    with no libomp) fails the build instead of quietly losing every thread but one.
IMGFILT_BUILD_JOBS=N
    Compile up to N modules at once (default: every core).

The engine is one Cython source (src/imgfilt/_engine_core.pxi) built up to three times: ``_engine``
for the baseline instruction set of the target (SSE2 on x86-64, NEON on aarch64), and on x86-64
with GCC or Clang also ``_engine_avx2`` (x86-64-v3: AVX2 + FMA) and ``_engine_avx512``
(x86-64-v4). imgfilt.convolution imports the best one the CPU runs; ``-march=native`` is never
used, so a wheel built here runs on any CPU of its architecture.

Each configuration (release or debug, the variants, the flags) builds in a folder of its own under
build/, so a second ``pip install ".[extra]"`` from the same tree reuses the compiled modules
instead of compiling them again, and switching IMGFILT_DEBUG never reuses the other build's files.
"""
import hashlib
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile

import Cython
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("IMGFILT_DEBUG", "") not in ("", "0")
NO_OPENMP = os.environ.get("IMGFILT_NO_OPENMP", "") not in ("", "0")
X86_VARIANTS = {
    # name: (module suffix, compiler flags, strip width = two vectors of floats)
    "avx2": ("_avx2", ["-march=x86-64-v3"], 16),
    "avx512": ("_avx512", ["-march=x86-64-v4", "-mprefer-vector-width=512"], 32),
}

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


class BuildError(SystemExit):
    """A build that cannot make what was asked: stop with one clear message."""

    def __init__(self, message):
        super().__init__(f"imgfilt build: {message}")


def _skipped_isas():
    value = os.environ.get("IMGFILT_SKIP_ISA", "").strip().lower()
    names = {name.strip() for name in value.replace(" ", ",").split(",") if name.strip()}
    if "all" in names:
        return set(X86_VARIANTS)
    unknown = names - set(X86_VARIANTS)
    if unknown:
        raise BuildError(f"IMGFILT_SKIP_ISA={value!r} names {sorted(unknown)}; "
                         f"allowed: {sorted(X86_VARIANTS)} or 'all'")
    return names


def _target_machine():
    """The CPU architecture the modules are built for (not always the one building them)."""
    if sys.platform == "darwin":
        # cibuildwheel and pip cross-compile on macOS through ARCHFLAGS ("-arch arm64").
        arches = shlex.split(os.environ.get("ARCHFLAGS", ""))[1::2]
        if len(set(arches)) == 1:
            return arches[0]
        return platform.machine()
    return sysconfig.get_platform().rsplit("-", 1)[-1]


def _msvc():
    return sys.platform == "win32" and "GCC" not in sys.version


def _compiler_accepts(flags, source=OPENMP_PROBE):
    """Return True when the C compiler builds and links ``source`` with ``flags`` (and the user's
    CFLAGS, CPPFLAGS and LDFLAGS, which the real build adds too)."""
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    user = []
    for name in ("CPPFLAGS", "CFLAGS", "LDFLAGS"):
        user += shlex.split(os.environ.get(name, ""))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as handle:
            handle.write(source)
        command = shlex.split(compiler) + user + flags + [path, "-o", os.path.join(tmp, "probe")]
        try:
            result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return False
        return result.returncode == 0


def _homebrew_libomp():
    """``(compile, link)`` flags for Homebrew's libomp, or None."""
    try:
        prefix = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return ([f"-I{prefix}/include", "-Xpreprocessor", "-fopenmp"],
            [f"-L{prefix}/lib", "-Wl,-rpath," + f"{prefix}/lib", "-lomp"])


def _openmp_flags():
    """``(compile flags, link flags)`` for OpenMP; fails the build when there is none."""
    if NO_OPENMP:
        print("imgfilt build: IMGFILT_NO_OPENMP=1: building a one-thread engine", flush=True)
        return [], []
    if _msvc():
        return ["/openmp"], []
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp of its own; libomp (Homebrew's or the CFLAGS' one).
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
        brew = _homebrew_libomp()
        if brew:
            candidates.append(brew)
    for compile_flags, link_flags in candidates:
        if _compiler_accepts(compile_flags + link_flags):
            return compile_flags, link_flags
    hint = (" On macOS: `brew install libomp` (or set CPPFLAGS/LDFLAGS to a libomp)."
            if sys.platform == "darwin" else "")
    raise BuildError("the C compiler cannot build an OpenMP program, so the engine would run on "
                     f"one thread.{hint} To build a one-thread engine anyway, set "
                     "IMGFILT_NO_OPENMP=1.")


def _variants():
    """``(suffix, isa name, flags, strip width)`` of each engine build for the target.

    On x86-64 (GCC or Clang) the AVX2 and AVX-512 builds are required unless IMGFILT_SKIP_ISA
    names them: a compiler that cannot make one fails the build with the way out in the message.
    MSVC builds the baseline only (the CPU check at import is GCC/Clang's __builtin_cpu_supports).
    Other architectures build their baseline: NEON is part of aarch64's.
    """
    variants = [("", "baseline", [], 8)]
    if _target_machine().lower() not in ("x86_64", "amd64") or _msvc():
        return variants
    skipped = _skipped_isas()
    for isa, (suffix, flags, strip) in X86_VARIANTS.items():
        if isa in skipped:
            print(f"imgfilt build: IMGFILT_SKIP_ISA: not building the {isa} engine", flush=True)
            continue
        if not _compiler_accepts(flags, EMPTY_PROGRAM):
            raise BuildError(
                f"the C compiler does not accept {' '.join(flags)}, needed for the {isa} engine "
                "(GCC >= 11 or Clang >= 12 do). Without it imgfilt runs slower on CPUs that have "
                f"{isa}. To build without it on purpose, set IMGFILT_SKIP_ISA={isa}.")
        variants.append((suffix, isa, flags, strip))
    return variants


def _common_flags():
    compile_flags, link_flags = _openmp_flags()
    if _msvc():
        return compile_flags, link_flags
    if DEBUG:
        compile_flags += ["-O0", "-g", "-UNDEBUG"]
    else:
        # -g0: Python's own CFLAGS carry -g; debug info makes each module 4x larger and its
        # compile 15% slower, and a release wheel never ships it.
        compile_flags += ["-O3", "-g0"]
        # gcc's unroll-and-jam of the tap loop spills the fused kernels' register accumulators
        # to the stack (4-5x slower, measured); the flag is gcc's only, so probe for it.
        if _compiler_accepts(["-fno-loop-unroll-and-jam"], EMPTY_PROGRAM):
            compile_flags += ["-fno-loop-unroll-and-jam"]
    # The engine never reads errno: without it sqrt is one instruction that vectorises (the
    # gradient-magnitude pass), not a call behind a branch.
    if _compiler_accepts(["-fno-math-errno"], EMPTY_PROGRAM):
        compile_flags += ["-fno-math-errno"]
    return compile_flags, link_flags


def _jobs():
    value = os.environ.get("IMGFILT_BUILD_JOBS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise BuildError(f"IMGFILT_BUILD_JOBS={value!r}: a whole number >= 1 is allowed")
        return int(value)
    return os.cpu_count() or 1


class ParallelBuildExt(build_ext):
    """build_ext compiling the modules in parallel (IMGFILT_BUILD_JOBS or every core)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # `-j N` on the command line wins
            self.parallel = _jobs()
        if self.inplace:
            # The modules in src/ may come from another configuration (debug or release); their
            # timestamps say nothing about that, so an in-place build always compiles.
            self.force = True


compile_flags, link_flags = _common_flags()
variants = _variants()

extensions = [
    Extension(
        f"imgfilt._engine{suffix}",
        [f"src/imgfilt/_engine{suffix}.pyx"],
        extra_compile_args=compile_flags + isa_flags,
        extra_link_args=link_flags,
        define_macros=[("IMGFILT_ISA", f'"{isa}"'), ("IMGFILT_STRIP", str(strip))]
        + ([("IMGFILT_DEBUG", "1")] if DEBUG else []),
        depends=["src/imgfilt/_engine_core.pxi", "src/imgfilt/_traversal.pxi"],
    )
    for suffix, isa, isa_flags, strip in variants
]
# The nonlinear filters (_rank_core.pxi, _canny_core.pxi): baseline, AVX2 and AVX-512 (the
# selection networks are vector min/max: 64 bytes a comparison with AVX-512BW, which is what
# OpenCV's medianBlur runs on such a CPU).
extensions += [
    Extension(
        f"imgfilt._nonlinear{suffix}",
        [f"src/imgfilt/_nonlinear{suffix}.pyx"],
        extra_compile_args=compile_flags + isa_flags,
        extra_link_args=link_flags,
        define_macros=[("IMGFILT_ISA", f'"{isa}"')] + ([("IMGFILT_DEBUG", "1")] if DEBUG else []),
        depends=["src/imgfilt/_rank_core.pxi", "src/imgfilt/_canny_core.pxi",
                 "src/imgfilt/_traversal.pxi"],
    )
    for suffix, isa, isa_flags, _ in variants
]

# One build folder per configuration and engine source: what changes the compiled code changes the
# folder's name, so a folder that holds finished modules can be reused as it is.
ENGINE_SOURCES = sorted(os.path.join("src", "imgfilt", name) for name in os.listdir(os.path.join(
    "src", "imgfilt")) if name.startswith(("_engine", "_nonlinear", "_rank", "_canny", "_traversal"))
    and name.endswith((".pyx", ".pxi", ".pxd")))
fingerprint = hashlib.sha256(repr((
    DEBUG, variants, compile_flags, link_flags, Cython.__version__, DIRECTIVES,
    [os.environ.get(name, "") for name in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")],
)).encode())
for path in ENGINE_SOURCES:
    with open(path, "rb") as handle:
        fingerprint.update(path.encode() + b"\0" + handle.read())
build_base = os.path.join("build", f"{'debug' if DEBUG else 'release'}-{fingerprint.hexdigest()[:12]}")
cython_dir = os.path.join(build_base, "cython")
cythonized = os.path.join(cython_dir, "complete")


def _generated_c(extension):
    return [os.path.join(cython_dir, os.path.splitext(source)[0] + ".c")
            for source in extension.sources]


if os.path.exists(cythonized) and all(os.path.exists(c) for ext in extensions
                                      for c in _generated_c(ext)):
    # This configuration was cythonized before: Cython's own check would redo it, since it
    # also compares against its Includes/ in pip's new temporary build environment.
    for extension in extensions:
        extension.sources = _generated_c(extension)
    ext_modules = extensions
else:
    ext_modules = cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        build_dir=cython_dir,
        force=True,
        # In parallel where worker processes fork (spawned ones would re-run this file).
        nthreads=_jobs() if multiprocessing.get_context().get_start_method() == "fork" else 0,
    )
    with open(cythonized, "w") as handle:
        handle.write(Cython.__version__ + "\n")

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": ParallelBuildExt},
    options={"build": {"build_base": build_base}},
)
