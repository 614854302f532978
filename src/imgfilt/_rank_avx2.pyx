"""The compiled rank filters built for AVX2 (see _rank_core.pxi); imported only on CPUs that run it."""
include "_rank_core.pxi"
