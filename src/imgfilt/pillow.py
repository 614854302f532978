"""The Pillow plug-in: imgfilt's filters in ``Image.filter``, as Pillow's own filters are.

:class:`PillowFilter` wraps a filter name, a :class:`~imgfilt.filters.Filter` or a kernel in
Pillow's filter protocol (a ``MultibandFilter``, so Pillow hands over all bands at once and alpha
is handled as :func:`imgfilt.apply` handles it). It is the only place that protocol lives: a
Filter itself is plain data.

Examples
--------
>>> from PIL import Image
>>> from imgfilt.pillow import PillowFilter
>>> img = Image.new("RGB", (8, 8), (10, 200, 30))
>>> img.filter(PillowFilter("gaussian", sigma=2)).getpixel((4, 4))
(10, 200, 30)
"""
from __future__ import annotations

from typing import Any

from PIL import Image, ImageFilter

from .api import as_filter
from .filters import Filter, FilterLike
from .pipeline import filter_pil

__all__ = ["PillowFilter"]


class PillowFilter(ImageFilter.MultibandFilter):
    """An imgfilt filter for Pillow's ``Image.filter``.

    Parameters
    ----------
    filter : str, Filter or array_like
        A registered name, a :class:`~imgfilt.filters.Filter` or a bare 2-D kernel.
    **params
        Parameters of a named filter (``sigma=2``) and the filter's options
        (``padding_mode``, ``stride``, ``dilation``, ``output``).

    Notes
    -----
    A PillowFilter deliberately has no ``__call__``: Pillow calls callables with no arguments,
    taking them for filter classes.
    """

    name = "imgfilt"

    def __init__(self, filter: Any, **params: Any) -> None:
        options = {k: params.pop(k) for k in list(params) if k in Filter.OPTION_NAMES}
        filt = as_filter(filter, params)
        self.filt: FilterLike = filt.with_options(**options) if options else filt

    def filter(self, image: Any) -> Any:
        """Pillow's entry point: an ImagingCore in, a new one out (use ``img.filter(f)``)."""
        if image.mode == "P":
            # Pillow hands filters the bare core: its palette is there, its info['transparency']
            # is not, so P becomes RGB here (imgfilt.apply, which sees the Image, gives RGBA).
            image = image.convert("RGB")
        return filter_pil(Image.Image()._new(image), self.filt, **self.filt.options).im

    def __repr__(self) -> str:
        return f"<PillowFilter {self.filt!r}>"
