"""The compiled nonlinear filters built for AVX2 (see _nonlinear.pyx); imported only on CPUs that
run it."""
include "_rank_core.pxi"
include "_canny_core.pxi"
