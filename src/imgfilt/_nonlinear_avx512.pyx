"""The compiled nonlinear filters built for AVX-512 (x86-64-v4: 64-byte vector min/max on 8- and
16-bit data; see _nonlinear.pyx); imported only on CPUs that run it."""
include "_rank_core.pxi"
include "_canny_core.pxi"
