"""The compiled rank filters, built for the baseline instruction set (see _rank_core.pxi)."""
include "_rank_core.pxi"
