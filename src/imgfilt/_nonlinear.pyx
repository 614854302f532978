"""The compiled nonlinear filters (rank filters, Canny's suppression and hysteresis), built for the
baseline instruction set. The kernels are in _rank_core.pxi and _canny_core.pxi."""
include "_rank_core.pxi"
include "_canny_core.pxi"
