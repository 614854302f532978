"""imgfilt: Cython-optimised filtering of images, volumes and signals.

The engine is :func:`conv` (the convolution layer of the textbooks, on NumPy arrays) and
:func:`convolve` (true convolution).
"""
from importlib import metadata as _metadata

from .convolution import (
    Plan, conv, convolve, correlate_channels_last, engine_isa, get_num_threads, plan,
    set_num_threads,
)

__all__ = ["conv", "convolve", "plan", "Plan", "engine_isa", "correlate_channels_last",
           "get_num_threads", "set_num_threads"]
# The version lives in one place, pyproject.toml; an installed imgfilt reads it from its metadata.
# A source tree used without installing (PYTHONPATH=src) has none and says so.
try:
    __version__ = _metadata.version("imgfilt")
except _metadata.PackageNotFoundError:
    __version__ = "0+unknown"

# Filters as data, images and feature maps (issue 3).
from . import filters, io, kernels
from .bank import FilterBank, Sequential
from .filters import Filter, get_filter, list_filters
from .image import apply

__all__ += ["apply", "Filter", "FilterBank", "Sequential", "get_filter", "list_filters",
            "filters", "kernels", "io"]

# Learned filters (issue 7).
from . import learn

__all__ += ["learn"]
