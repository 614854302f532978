"""imgfilt: Cython-optimised filtering of images, volumes and signals.

The engine is :func:`conv` (the convolution layer of the textbooks, on NumPy arrays) and
:func:`convolve` (true convolution); :func:`apply` runs named filters, kernels and banks on
arrays, Pillow images, torch tensors, xarray DataArrays and Dask arrays, giving back the same
type. The modules, bottom to top (each imports only those below it; docs/development.md):

``arrays``, ``layout``, ``padding``, ``kernels``, ``display``
    the input/output adapter, the axis rule, padding index maps, kernel factories, pictures
    for Jupyter
``convolution``
    :func:`conv`, :func:`convolve`, :func:`plan`, threads, the engine's methods
``filters``
    :class:`Filter` and the registry (filters as data)
``pipeline``
    one filter over an array whose layout is known
``io``, ``bank``, ``learn``, ``explainer``
    files, :class:`FilterBank`/:class:`Sequential`, fitting filters, :func:`explain`'s page
``api``
    :func:`apply`
``pillow``, ``dask``, ``cli``
    the Pillow plug-in, the Dask adapter, the ``imgfilt`` command
"""
from importlib import metadata as _metadata

from . import api, arrays, display, filters, io, kernels, layout, learn, pipeline
from .api import apply
from .bank import FilterBank, Sequential
from .convolution import (
    Plan,
    compute_dtype,
    conv,
    convolve,
    correlate_channels_last,
    engine_isa,
    get_num_threads,
    plan,
    set_num_threads,
)
from .explainer import explain  # the module is explainer: imgfilt.explain is the function
from .filters import Filter, get_filter, list_filters
from .pillow import PillowFilter

# The version lives in one place, pyproject.toml; an installed imgfilt reads it from its metadata.
# A source tree used without installing (PYTHONPATH=src) has none and says so.
try:
    __version__ = _metadata.version("imgfilt")
except _metadata.PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = [
    "conv", "convolve", "plan", "Plan", "compute_dtype", "engine_isa", "correlate_channels_last",
    "get_num_threads", "set_num_threads",
    "apply", "Filter", "FilterBank", "Sequential", "PillowFilter", "get_filter", "list_filters",
    "filters", "kernels", "io", "learn", "arrays", "layout", "pipeline", "api",
    "explain", "display",
]

# Dask arrays given to imgfilt.apply take the lazy route of imgfilt.dask (imported on first use,
# so importing imgfilt does not import Dask).
api.register_lazy("dask", "imgfilt.dask")
