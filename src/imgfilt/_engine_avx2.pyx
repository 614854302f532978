"""The compiled engine built for AVX2 (see _engine_core.pxi); imported only on CPUs that run it."""
include "_engine_core.pxi"
