"""Nonlinear filters as data: rank filters, grey morphology and Canny, in the filter registry.

A :class:`RankFilter` is to :mod:`imgfilt.rank` what :class:`~imgfilt.filters.Filter` is to
:func:`imgfilt.conv`: an immutable description (a boolean footprint, an operation, a rank) that
:func:`imgfilt.apply`, the Pillow plug-in and the ``imgfilt`` command run on any layout. Each
channel is filtered on its own; results keep the input's dtype. :class:`CannyFilter` does the
same for :func:`imgfilt.edges.canny` (edges at the dtype's maximum, 255 for 8-bit images).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import display
from .edges import canny
from .filters import register
from .rank import OPERATIONS, Recipe, percentile_rank, recipe, run_recipe

__all__ = ["RankFilter", "CannyFilter", "OPERATIONS", "NONLINEAR_OPTIONS"]

#: The imgfilt.apply options a nonlinear filter takes (stride and dilation it does not).
NONLINEAR_OPTIONS = ("padding_mode", "output")


def _footprint_of(size: Union[int, Sequence[int]], ndim: int) -> np.ndarray:
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer, tuple, list)):
        raise TypeError(f"size must be an int or a tuple of ints, got {size!r}")
    sizes = (int(size),) * ndim if isinstance(size, (int, np.integer)) else tuple(
        int(s) for s in size)
    if len(sizes) not in (1, 2, 3) or any(s < 1 for s in sizes):
        raise ValueError(f"size must be 1 to 3 lengths >= 1, got {size!r}")
    return np.ones(sizes, bool)


class RankFilter:
    """A rank filter or a grey morphology over a flat footprint, as data.

    Parameters
    ----------
    footprint : array_like of bool
        The window, 1-3 spatial axes.
    operation : str
        One of :data:`OPERATIONS`.
    rank : int
        For ``operation="rank"``: 0-based rank in the window (negative: from the top).
    name : str
        Shown in ``repr`` and ``imgfilt list``.
    params : dict, optional
        The parameters the filter was made with.
    options : dict, optional
        Default :func:`imgfilt.apply` options: ``padding_mode``, ``output``.
    cval : number
        The padding value under ``padding_mode="zeros"``/``"constant"`` (scipy's ``cval``; it
        must be a value of the filtered image's dtype). Default 0.

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> spike = np.zeros((5, 5), np.uint8); spike[2, 2] = 255
    >>> median = RankFilter(np.ones((3, 3), bool), "rank", rank=4, name="median")
    >>> int(imgfilt.apply(spike, median).max())
    0
    """

    #: Options of :func:`imgfilt.apply` a RankFilter may carry as defaults.
    OPTION_NAMES = NONLINEAR_OPTIONS
    #: Every channel is filtered on its own.
    per_channel = True
    in_channels = 1
    combine = None

    def __init__(self, footprint: Any, operation: str, rank: int = 0, *, name: str = "rank",
                 params: Optional[Dict[str, Any]] = None,
                 options: Optional[Dict[str, Any]] = None, description: str = "",
                 cval: float = 0) -> None:
        fp = np.array(footprint, dtype=bool)
        if fp.ndim not in (1, 2, 3) or 0 in fp.shape or not fp.any():
            raise ValueError(f"footprint must be a non-empty boolean array with 1-3 axes, got "
                             f"shape {fp.shape}")
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
        count = int(fp.sum())
        k = int(rank)
        if operation == "rank" and not -count <= k < count:
            raise ValueError(f"rank={rank} is outside the footprint's {count} samples")
        fp.setflags(write=False)
        self.footprint = fp
        self.operation = operation
        self.rank = k % count if operation == "rank" else 0
        self.name = str(name)
        self.params: Dict[str, Any] = dict(params or {})
        self.description = description
        unknown = sorted(set(options or {}) - set(NONLINEAR_OPTIONS))
        if unknown:
            raise TypeError(f"options got {unknown}; a RankFilter takes {list(NONLINEAR_OPTIONS)}")
        self.options: Dict[str, Any] = dict(options or {})
        if isinstance(cval, (bool, np.bool_)) or not isinstance(cval, (int, float, np.number)):
            raise TypeError(f"cval must be a real number, got {cval!r}")
        self.cval = cval

    @property
    def recipe(self) -> Recipe:
        """The passes this filter runs (:class:`imgfilt.rank.Recipe`)."""
        return recipe(self.operation, self.footprint, k=self.rank)

    @property
    def ndim(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self.footprint.ndim

    @property
    def kernel_shape(self) -> Tuple[int, ...]:
        """The footprint's shape (the reach of the filter, as a kernel's shape)."""
        return self.footprint.shape

    def with_options(self, **options: Any) -> "RankFilter":
        """A copy with other default :func:`imgfilt.apply` options."""
        merged = {**self.options, **options}
        return RankFilter(self.footprint, self.operation, self.rank, name=self.name,
                          params=self.params, options=merged, description=self.description,
                          cval=self.cval)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<RankFilter {self.name}({args}) footprint{self.footprint.shape}>"

    def _repr_html_(self) -> str:
        return display.nonlinear_html(self)

    def _repr_png_(self) -> bytes:
        return display.to_png(display.footprint_image(self.footprint))

    def run(self, array: np.ndarray, spatial: Tuple[int, ...], padding_mode: str) -> np.ndarray:
        """Filter ``array`` over its ``spatial`` axes (every other axis slice by slice)."""
        return run_recipe(array, self.recipe, spatial, mode=padding_mode, cval=self.cval)


class CannyFilter:
    """Canny edges (:func:`imgfilt.edges.canny`) as a per-channel filter, as data.

    The result has the input's dtype: edges at the dtype's maximum (255 for 8-bit images,
    1.0 for floats), everything else 0, as OpenCV's Canny gives.
    """

    OPTION_NAMES = NONLINEAR_OPTIONS
    per_channel = True
    in_channels = 1
    combine = None

    def __init__(self, ndim: int = 2, *, name: str = "canny",
                 params: Optional[Dict[str, Any]] = None,
                 options: Optional[Dict[str, Any]] = None, description: str = "",
                 **canny_options: Any) -> None:
        if ndim not in (2, 3):
            raise ValueError(f"Canny is 2-D or 3-D, got ndim={ndim}")
        self._ndim = ndim
        self.canny_options = dict(canny_options)
        self.name = name
        self.params = dict(params or {})
        self.description = description
        self.options = dict(options or {})

    @property
    def ndim(self) -> int:
        return self._ndim

    @property
    def kernel_shape(self) -> Tuple[int, ...]:
        radius = int(4 * float(self.canny_options.get("sigma", 1.0)) + 0.5) + 2
        return (2 * radius + 1,) * self._ndim

    def with_options(self, **options: Any) -> "CannyFilter":
        return CannyFilter(self._ndim, name=self.name, params=self.params,
                           options={**self.options, **options}, description=self.description,
                           **self.canny_options)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<CannyFilter {self.name}({args})>"

    def _repr_html_(self) -> str:
        return display.nonlinear_html(self)

    def run(self, array: np.ndarray, spatial: Tuple[int, ...], padding_mode: str) -> np.ndarray:
        edges = canny(array, axes=spatial, **self.canny_options)
        top = 1 if array.dtype.kind in "fb" else np.iinfo(array.dtype).max
        return np.where(edges, np.array(top, array.dtype), np.array(0, array.dtype))


# ---------------------------------------------------------------------------------------------
# Registered names


def _with_cval(params: Dict[str, Any], cval: float) -> Dict[str, Any]:
    return {**params, "cval": cval} if cval != 0 else params


def _rank_factory(name: str, operation: str, description: str):
    def make(size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
        fp = _footprint_of(size, 2)
        return RankFilter(fp, operation, name=name, params=_with_cval({"size": size}, cval),
                          description=description, cval=cval)
    make.__name__ = name
    register(name, description)(make)
    return make


@register("median", "median of each size x size window (per channel; scipy's median_filter)")
def median(size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
    fp = _footprint_of(size, 2)
    return RankFilter(fp, "rank", int(fp.sum()) // 2, name="median",
                      params=_with_cval({"size": size}, cval), cval=cval)


@register("median3d", "median of each size^3 window of a volume")
def median3d(size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
    fp = _footprint_of(size, 3)
    return RankFilter(fp, "rank", int(fp.sum()) // 2, name="median3d",
                      params=_with_cval({"size": size}, cval), cval=cval)


@register("minimum", "minimum of each size x size window (grey erosion)")
def minimum(size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
    return RankFilter(_footprint_of(size, 2), "rank", 0, name="minimum",
                      params=_with_cval({"size": size}, cval), cval=cval)


@register("maximum", "maximum of each size x size window")
def maximum(size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
    return RankFilter(_footprint_of(size, 2), "rank", -1, name="maximum",
                      params=_with_cval({"size": size}, cval), cval=cval)


@register("rank", "the rank-th smallest (0-based) of each size x size window")
def rank(rank: int = 0, size: Union[int, Sequence[int]] = 3, cval: float = 0) -> RankFilter:
    return RankFilter(_footprint_of(size, 2), "rank", rank, name="rank",
                      params=_with_cval({"rank": rank, "size": size}, cval), cval=cval)


@register("percentile", "the percentile (0-100, scipy's rank rule) of each size x size window")
def percentile(percentile: float = 50.0, size: Union[int, Sequence[int]] = 3,
               cval: float = 0) -> RankFilter:
    fp = _footprint_of(size, 2)
    k = percentile_rank(percentile, int(fp.sum()))
    return RankFilter(fp, "rank", k, name="percentile",
                      params=_with_cval({"percentile": percentile, "size": size}, cval),
                      cval=cval)


for _name, _description in (
        ("erosion", "grey erosion by a flat size x size square"),
        ("dilation", "grey dilation by a flat size x size square"),
        ("opening", "grey opening (erosion, then dilation)"),
        ("closing", "grey closing (dilation, then erosion)"),
        ("white_tophat", "the image minus its grey opening (bright details)"),
        ("black_tophat", "the grey closing minus the image (dark details)")):
    _rank_factory(_name, _name, _description)
_rank_factory("morphological_gradient", "gradient", "grey dilation minus grey erosion")


@register("canny", "Canny edges (per channel): 255 on edges of 8-bit images, else 0")
def canny_filter(sigma: float = 1.0, low_threshold: Optional[float] = None,
                 high_threshold: Optional[float] = None,
                 use_quantiles: bool = False) -> CannyFilter:
    params = {"sigma": sigma, "low_threshold": low_threshold, "high_threshold": high_threshold,
              "use_quantiles": use_quantiles}
    return CannyFilter(2, name="canny", params=params,
                       description="Canny edges: the dtype's maximum on edges, else 0",
                       sigma=sigma, low_threshold=low_threshold,
                       high_threshold=high_threshold, use_quantiles=use_quantiles)


def is_nonlinear(filt: Any) -> bool:
    """Whether ``filt`` is one of this module's filters (run by :meth:`run`, not the engine)."""
    return isinstance(filt, (RankFilter, CannyFilter))


__all__ += ["is_nonlinear"]
