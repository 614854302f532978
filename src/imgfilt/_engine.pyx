"""The compiled engine, built for the baseline instruction set (SSE2 on x86-64).

The kernels are in ``_engine_core.pxi``; ``_engine_avx2`` and ``_engine_avx512`` are the same
code compiled for newer CPUs. This module also says which of those the CPU can run.
"""
include "_engine_core.pxi"

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    static int imgfilt_cpu_has(int which) {
        __builtin_cpu_init();
        switch (which) {
            case 0: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
            case 1: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
        }
        return 0;
    }
    #else
    static int imgfilt_cpu_has(int which) { (void)which; return 0; }
    #endif
    """
    int imgfilt_cpu_has(int which) noexcept nogil


def cpu_supports(name):
    """Return True when the CPU runs the engine built for ``name`` ("avx2" or "avx512")."""
    return bool(imgfilt_cpu_has({"avx2": 0, "avx512": 1}[name]))
