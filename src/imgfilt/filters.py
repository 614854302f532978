"""Named filters as data: the :class:`Filter` object, its factories and the registry.

A :class:`Filter` is a weight in the engine's layout ``(R, C_in, *K)`` (plus an optional bias),
an optional *combining step* that reduces the ``R`` responses to one (Sobel's magnitude
``sqrt(gx**2 + gy**2)``), and default options for :func:`imgfilt.apply`. The weight's
``C_in`` decides how it meets a multi-channel image:

* ``C_in == 1``: the filter runs on each channel on its own (a blur blurs R, G and B);
* ``C_in > 1``: the filter mixes channels and the image must have exactly ``C_in`` of them
  (``edge(channel="r")`` is ``(1, 3, 3, 3)``).

A Filter is plain data: :func:`imgfilt.apply` runs it on arrays, tensors and images, and
:class:`imgfilt.pillow.PillowFilter` plugs it into Pillow's ``Image.filter``.

Examples
--------
>>> from imgfilt import filters
>>> f = filters.get_filter("gaussian", sigma=2)
>>> f.name, f.weight.shape
('gaussian', (1, 1, 17, 17))
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, TypeVar, Union

import numpy as np

from . import display
from . import kernels as K
from .arrays import as_numpy
from .convolution import magnitude as combine_magnitude

__all__ = [
    "Filter",
    "FilterLike",
    "FilterInfo",
    "COMBINES",
    "register",
    "get_filter",
    "list_filters",
    "identity",
    "box",
    "gaussian",
    "sharpen",
    "unsharp",
    "laplacian",
    "sobel_x",
    "sobel_y",
    "sobel",
    "scharr_x",
    "scharr_y",
    "scharr",
    "prewitt_x",
    "prewitt_y",
    "prewitt",
    "emboss",
    "edge",
    "box3d",
    "gaussian3d",
    "sobel3d",
    "laplacian3d",
    "gradient1d",
    "gaussian1d",
]

Factors = Tuple[Tuple[np.ndarray, ...], ...]

#: Combining steps a Filter may name: each reduces the response axis of an array.
COMBINES: Dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "magnitude": combine_magnitude,
    "sum": lambda responses, axis: np.sum(responses, axis=axis),
}

#: The options of :func:`imgfilt.apply` a Filter may carry as defaults.
OPTION_NAMES = ("padding_mode", "stride", "dilation", "output")


class Filter:
    """A linear filter (or a few, combined) as data.

    Parameters
    ----------
    weight : array_like
        ``(R, C_in, *K)`` with 1-3 spatial axes, or a bare kernel ``K`` (taken as ``(1, 1, *K)``).
    bias : array_like, optional
        ``(R,)``, added to each response before combining.
    name : str
        A short name, shown in ``repr`` and used as the feature-map name in a FilterBank.
    combine : {None, 'magnitude', 'sum'}
        How the ``R`` responses become one. ``None`` keeps them; this needs ``R == 1`` when the
        filter runs per channel (``C_in == 1``).
    factors : sequence, optional
        For rank-1 kernels: one tuple of 1-D vectors per response, whose outer product is that
        response's kernel (checked). Recorded for two-pass evaluation.
    params : dict, optional
        The parameters the filter was made with (for ``repr`` and the registry).
    options : dict, optional
        Default options for :func:`imgfilt.apply`: any of ``padding_mode``, ``stride``,
        ``dilation``, ``output``.

    Notes
    -----
    A Filter is immutable: its arrays are read-only and its methods make copies, so one
    Filter can serve every call (imgfilt.apply caches named filters).

    Examples
    --------
    >>> import numpy as np, imgfilt
    >>> mean = Filter(np.full((3, 3), 1 / 9), name="mean")
    >>> imgfilt.apply(np.full((8, 8), 100, np.uint8), mean)[4, 4]
    np.uint8(100)
    """

    #: The options of :func:`imgfilt.apply` a Filter may carry as defaults.
    OPTION_NAMES = OPTION_NAMES

    def __init__(
        self,
        weight: Any,
        bias: Any = None,
        *,
        name: str = "custom",
        combine: Optional[str] = None,
        factors: Optional[Sequence[Sequence[Any]]] = None,
        params: Optional[Dict[str, Any]] = None,
        options: Optional[Dict[str, Any]] = None,
        description: str = "",
    ) -> None:
        array = _real_array(weight, "weight")
        if array.ndim in (1, 2, 3):
            # A bare kernel. A 3-D array is read as a volume kernel, never as a 1-D weight
            # (R, C_in, K): that ambiguity is settled one way, here, for everybody.
            array = array.reshape((1, 1) + array.shape)
        elif array.ndim not in (4, 5):
            raise ValueError(
                f"weight must be a kernel with 1-3 axes or an (R, C_in, *K) array with 2-3 "
                f"spatial axes, got shape {array.shape}"
            )
        if 0 in array.shape:
            raise ValueError(f"weight has an empty axis: shape {array.shape}")
        self.weight: np.ndarray = array
        self.weight.setflags(write=False)
        responses = array.shape[0]
        if bias is None:
            self.bias: Optional[np.ndarray] = None
        else:
            b = _real_array(bias, "bias").reshape(-1)
            if b.shape != (responses,):
                raise ValueError(f"bias must have shape ({responses},), got {np.shape(bias)}")
            b.setflags(write=False)
            self.bias = b
        if combine is not None and combine not in COMBINES:
            raise ValueError(
                f"combine must be None or one of {sorted(COMBINES)}, got {combine!r}"
            )
        if combine is None and responses > 1 and array.shape[1] == 1:
            raise ValueError(
                f"a per-channel filter (C_in = 1) with {responses} responses needs combine= "
                f"one of {sorted(COMBINES)}; for separate feature maps use a FilterBank"
            )
        self.combine = combine
        self.name = str(name)
        self.params: Dict[str, Any] = dict(params or {})
        self.description = description
        self.options: Dict[str, Any] = {}
        self._set_options(options or {})
        self.factors: Optional[Factors] = self._checked_factors(factors)

    # -- properties ---------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self.weight.ndim - 2

    @property
    def in_channels(self) -> int:
        """``C_in`` of the weight: 1 for per-channel filters."""
        return self.weight.shape[1]

    @property
    def per_channel(self) -> bool:
        """Whether the filter runs on every channel on its own (``C_in == 1``)."""
        return self.in_channels == 1

    @property
    def kernel_shape(self) -> Tuple[int, ...]:
        """The spatial shape ``K`` of the kernels."""
        return self.weight.shape[2:]

    @property
    def kernel(self) -> np.ndarray:
        """The bare kernel, for a filter made of exactly one ``(1, 1, *K)`` kernel."""
        if self.weight.shape[:2] != (1, 1):
            raise ValueError(
                f"filter {self.name!r} has weight shape {self.weight.shape}, not one kernel; "
                "use .weight"
            )
        return self.weight[0, 0]

    @property
    def linear(self) -> bool:
        """True when the filter is a plain weight (no nonlinear combining step)."""
        return self.combine in (None, "sum")

    # -- copies -------------------------------------------------------------------------------

    def with_options(self, **options: Any) -> "Filter":
        """A copy of this filter with other default :func:`imgfilt.apply` options.

        Examples
        --------
        >>> f = sobel_x().with_options(output="rescale")
        >>> f.options
        {'output': 'rescale'}
        """
        merged = dict(self.options)
        merged.update(options)
        return Filter(
            self.weight, self.bias, name=self.name, combine=self.combine,
            factors=self.factors, params=self.params, options=merged,
            description=self.description,
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        shown = f"{self.name}({args})"
        return f"<Filter {shown} weight{self.weight.shape}>"

    def _repr_html_(self) -> str:
        return display.filter_html(self)

    def _repr_png_(self) -> bytes:
        return display.to_png(display.kernel_image(self.weight))

    # -- checks -------------------------------------------------------------------------------

    def _set_options(self, options: Dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise TypeError(
                f"options got {unknown}; a Filter's default options may be {list(OPTION_NAMES)}"
            )
        self.options = dict(options)

    def _checked_factors(self, factors: Optional[Sequence[Sequence[Any]]]) -> Optional[Factors]:
        if factors is None:
            return None
        if self.in_channels != 1:
            raise ValueError("factors are only meaningful for per-channel (C_in = 1) filters")
        if len(factors) != self.weight.shape[0]:
            raise ValueError(
                f"factors must have one entry per response ({self.weight.shape[0]}), "
                f"got {len(factors)}"
            )
        checked = []
        for index, vectors in enumerate(factors):
            vectors = tuple(np.asarray(v, dtype=np.float64).reshape(-1) for v in vectors)
            if len(vectors) != self.ndim or not np.allclose(
                K.outer(vectors), self.weight[index, 0], rtol=1e-12, atol=1e-15
            ):
                raise ValueError(
                    f"factors[{index}] are not the 1-D factors of kernel {index} of {self.name!r}"
                )
            for vector in vectors:
                vector.setflags(write=False)
            checked.append(vectors)
        return tuple(checked)


def _real_array(value: Any, name: str) -> np.ndarray:
    # A float64 copy: the Filter owns its arrays (they are made read-only).
    array = as_numpy(value, name).astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got NaN or infinity in shape {array.shape}")
    return array


# ---------------------------------------------------------------------------------------------
# The registry


class FilterLike(Protocol):
    """What every registered filter is, whatever it computes: a :class:`Filter`, or a nonlinear
    filter (:class:`imgfilt.nonlinear.RankFilter`, :class:`imgfilt.nonlinear.CannyFilter`).

    :func:`get_filter` returns one; ``isinstance(f, Filter)`` tells a linear one (with a
    ``weight``) from the others.
    """

    name: str
    description: str
    params: Dict[str, Any]
    options: Dict[str, Any]

    @property
    def ndim(self) -> int:
        """Number of spatial axes the filter works on."""
        ...

    @property
    def kernel_shape(self) -> Tuple[int, ...]:
        """The filter's reach along each spatial axis."""
        ...

    @property
    def per_channel(self) -> bool:
        """True when every channel of an image is filtered on its own."""
        ...

    @property
    def in_channels(self) -> int:
        """The channels the filter mixes (1 for a per-channel filter)."""
        ...

    def with_options(self, **options: Any) -> FilterLike:
        """A copy with other default :func:`imgfilt.apply` options."""
        ...


#: A factory of registered filters (any callable returning a FilterLike).
FilterFactory = TypeVar("FilterFactory", bound=Callable[..., FilterLike])


@dataclass(frozen=True)
class FilterInfo:
    """One row of :func:`list_filters`: a name, its parameters with defaults, a description."""

    name: str
    parameters: Dict[str, Any]
    description: str


_REGISTRY: Dict[str, Tuple[Callable[..., FilterLike], str]] = {}


def register(name: str, description: str) -> Callable[[FilterFactory], FilterFactory]:
    """Decorator adding a factory to the registry under ``name``.

    Examples
    --------
    >>> @register("my_mean", "3x3 mean, registered in an example")
    ... def my_mean():
    ...     return box(3)
    >>> get_filter("my_mean").weight.shape
    (1, 1, 3, 3)
    >>> _ = _REGISTRY.pop("my_mean")
    """

    def decorate(factory: FilterFactory) -> FilterFactory:
        _REGISTRY[name] = (factory, description)
        return factory

    return decorate


def lookup(name: object) -> Tuple[str, Callable[..., FilterLike]]:
    if not isinstance(name, str):
        raise TypeError(f"filter name must be a string, got {type(name).__name__} {name!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown filter {name!r}{hint} Known filters: {', '.join(sorted(_REGISTRY))}"
        )
    return key, _REGISTRY[key][0]


def get_filter(name: str, **params: Any) -> FilterLike:
    """Make the named filter with the given parameters.

    Parameters
    ----------
    name : str
        A registered name (see :func:`list_filters`); case and ``-``/``_`` do not matter.
    **params
        The factory's parameters, e.g. ``sigma=2`` for ``'gaussian'``.

    Raises
    ------
    ValueError
        Unknown name (the closest names are suggested) or a bad parameter value.
    TypeError
        A parameter the filter does not take.

    Examples
    --------
    >>> get_filter("box", size=5).kernel_shape
    (5, 5)
    """
    key, factory = lookup(name)
    allowed = list(inspect.signature(factory).parameters)
    unknown = [p for p in params if p not in allowed]
    if unknown:
        takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
        raise TypeError(f"filter {key!r} got unknown parameter(s) {', '.join(unknown)}; it {takes}")
    return factory(**params)


def list_filters() -> List[FilterInfo]:
    """All registered filters, sorted by name.

    Examples
    --------
    >>> [i for i in list_filters() if i.name == "gaussian"][0].parameters
    {'sigma': 1.0, 'radius': None}
    """
    rows = []
    for name in sorted(_REGISTRY):
        factory, description = _REGISTRY[name]
        parameters = {
            p.name: p.default for p in inspect.signature(factory).parameters.values()
        }
        rows.append(FilterInfo(name, parameters, description))
    return rows


# ---------------------------------------------------------------------------------------------
# Factories


def _single(
    kernel: np.ndarray, name: str, description: str, factors: Optional[Tuple[np.ndarray, ...]] = None,
    **params: Any,
) -> Filter:
    return Filter(
        kernel, name=name, factors=None if factors is None else [factors], params=params,
        description=description,
    )


def _magnitude(axes_factors: Sequence[Tuple[np.ndarray, ...]], name: str, description: str) -> Filter:
    weight = np.stack([K.outer(f) for f in axes_factors])[:, None]
    return Filter(
        weight, name=name, combine="magnitude", factors=list(axes_factors),
        description=description,
    )


@register("identity", "returns the image unchanged (1x1 kernel)")
def identity() -> Filter:
    """The identity filter (a 1x1 kernel of 1).

    Examples
    --------
    >>> identity().kernel
    array([[1.]])
    """
    return _single(K.identity(2), "identity", "identity")


@register("box", "mean over a size x size square (odd size)")
def box(size: int = 3) -> Filter:
    """Box blur: the mean over an odd ``size`` x ``size`` square; rank 1.

    Examples
    --------
    >>> box(5).factors[0][0].tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2]
    """
    factors = K.box_factors(size, 2)
    return _single(K.outer(factors), "box", "box blur", factors, size=size)


@register("gaussian", "Gaussian blur, radius int(4*sigma+0.5) by default (scipy's)")
def gaussian(sigma: float = 1.0, radius: Optional[int] = None) -> Filter:
    """Gaussian blur with scipy.ndimage's truncation and normalisation; rank 1.

    Parameters
    ----------
    sigma : float or (float, float)
        Standard deviation in pixels (>= 0), one for both axes or ``(sigma_y, sigma_x)``.
    radius : int, optional
        Half-width; default ``int(4 * sigma + 0.5)``.

    Examples
    --------
    >>> gaussian(1.0).kernel_shape
    (9, 9)
    """
    factors = K.gaussian_factors(sigma, radius, 2)
    return _single(K.outer(factors), "gaussian", "Gaussian blur", factors, sigma=sigma, radius=radius)


@register("sharpen", "identity minus the 4-neighbour Laplacian")
def sharpen() -> Filter:
    """Sharpen: ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``, identity minus the Laplacian.

    Examples
    --------
    >>> float(sharpen().kernel[1, 1])
    5.0
    """
    return _single(K.sharpen(), "sharpen", "sharpen")


@register("unsharp", "unsharp mask: image + amount * (image - gaussian(sigma))")
def unsharp(sigma: float = 1.0, amount: float = 1.0) -> Filter:
    """Unsharp masking, ``(1 + amount) * image - amount * gaussian(image, sigma)``, as one kernel.

    Examples
    --------
    >>> round(float(unsharp(2.0, 0.5).kernel.sum()), 12)
    1.0
    """
    return _single(K.unsharp(sigma, amount, 2), "unsharp", "unsharp mask", sigma=sigma, amount=amount)


@register("laplacian", "4-neighbour Laplacian [[0,1,0],[1,-4,1],[0,1,0]]")
def laplacian() -> Filter:
    """The 4-neighbour Laplacian, as ``scipy.ndimage.laplace``.

    Examples
    --------
    >>> laplacian().kernel[1].tolist()
    [1.0, -4.0, 1.0]
    """
    return _single(K.laplacian(2), "laplacian", "Laplacian")


def _derivative(kind: str, axis: int, name: str) -> Filter:
    factors = K.derivative_factors(kind, axis, 2)
    return _single(K.outer(factors), name, f"{kind} derivative", factors)


@register("sobel_x", "Sobel derivative along x (responds to vertical edges)")
def sobel_x() -> Filter:
    """Sobel derivative along x: ``scipy.ndimage.sobel(axis=-1)``, ``cv2.Sobel(dx=1)``.

    Examples
    --------
    >>> sobel_x().kernel[0].tolist()
    [-1.0, 0.0, 1.0]
    """
    return _derivative("sobel", -1, "sobel_x")


@register("sobel_y", "Sobel derivative along y (responds to horizontal edges)")
def sobel_y() -> Filter:
    """Sobel derivative along y (downwards): ``scipy.ndimage.sobel(axis=0)``.

    Examples
    --------
    >>> sobel_y().kernel[:, 0].tolist()
    [-1.0, 0.0, 1.0]
    """
    return _derivative("sobel", 0, "sobel_y")


@register("sobel", "Sobel gradient magnitude sqrt(gx^2 + gy^2)")
def sobel() -> Filter:
    """Sobel gradient magnitude ``sqrt(gx**2 + gy**2)``.

    Examples
    --------
    >>> sobel().weight.shape, sobel().combine
    ((2, 1, 3, 3), 'magnitude')
    """
    return _magnitude(
        [K.derivative_factors("sobel", a, 2) for a in (-1, 0)], "sobel", "Sobel magnitude"
    )


@register("scharr_x", "Scharr derivative along x ([3,10,3] smoothing, OpenCV scale)")
def scharr_x() -> Filter:
    """Scharr derivative along x, ``[[-3,0,3],[-10,0,10],[-3,0,3]]`` (OpenCV's scale).

    Examples
    --------
    >>> scharr_x().kernel[1].tolist()
    [-10.0, 0.0, 10.0]
    """
    return _derivative("scharr", -1, "scharr_x")


@register("scharr_y", "Scharr derivative along y")
def scharr_y() -> Filter:
    """Scharr derivative along y, the transpose of :func:`scharr_x`.

    Examples
    --------
    >>> scharr_y().kernel[:, 1].tolist()
    [-10.0, 0.0, 10.0]
    """
    return _derivative("scharr", 0, "scharr_y")


@register("scharr", "Scharr gradient magnitude")
def scharr() -> Filter:
    """Scharr gradient magnitude.

    Examples
    --------
    >>> scharr().combine
    'magnitude'
    """
    return _magnitude(
        [K.derivative_factors("scharr", a, 2) for a in (-1, 0)], "scharr", "Scharr magnitude"
    )


@register("prewitt_x", "Prewitt derivative along x")
def prewitt_x() -> Filter:
    """Prewitt derivative along x: ``scipy.ndimage.prewitt(axis=-1)``.

    Examples
    --------
    >>> prewitt_x().kernel[2].tolist()
    [-1.0, 0.0, 1.0]
    """
    return _derivative("prewitt", -1, "prewitt_x")


@register("prewitt_y", "Prewitt derivative along y")
def prewitt_y() -> Filter:
    """Prewitt derivative along y: ``scipy.ndimage.prewitt(axis=0)``.

    Examples
    --------
    >>> prewitt_y().kernel[:, 2].tolist()
    [-1.0, 0.0, 1.0]
    """
    return _derivative("prewitt", 0, "prewitt_y")


@register("prewitt", "Prewitt gradient magnitude")
def prewitt() -> Filter:
    """Prewitt gradient magnitude.

    Examples
    --------
    >>> prewitt().weight.shape
    (2, 1, 3, 3)
    """
    return _magnitude(
        [K.derivative_factors("prewitt", a, 2) for a in (-1, 0)], "prewitt", "Prewitt magnitude"
    )


@register("emboss", "emboss [[-2,-1,0],[-1,1,1],[0,1,2]] (sums to 1)")
def emboss() -> Filter:
    """Emboss, lit from the top left; flat areas keep their grey level.

    Examples
    --------
    >>> float(emboss().kernel.sum())
    1.0
    """
    return _single(K.emboss(), "emboss", "emboss")


@register("edge", "edges in one colour channel: a (1, 3, 3, 3) weight")
def edge(channel: Union[str, int] = "r", direction: str = "vertical") -> Filter:
    """Edges seen in one colour channel only (or in the sum of all, ``channel='all'``).

    Parameters
    ----------
    channel : {'r', 'g', 'b', 'all'} or {0, 1, 2}
    direction : {'vertical', 'horizontal', 'diagonal'}

    Examples
    --------
    >>> edge("b").weight.shape
    (1, 3, 3, 3)
    """
    return Filter(
        K.edge(channel, direction), name="edge", params={"channel": channel, "direction": direction},
        description="per-channel edge detector",
    )


@register("box3d", "3-D box (mean) over a size^3 cube")
def box3d(size: int = 3) -> Filter:
    """3-D box blur for volumes ``(D, H, W)``; rank 1.

    Examples
    --------
    >>> box3d().kernel_shape
    (3, 3, 3)
    """
    factors = K.box_factors(size, 3)
    return _single(K.outer(factors), "box3d", "3-D box blur", factors, size=size)


@register("gaussian3d", "3-D Gaussian blur")
def gaussian3d(sigma: float = 1.0, radius: Optional[int] = None) -> Filter:
    """3-D Gaussian blur for volumes; ``sigma`` one number or ``(sz, sy, sx)``; rank 1.

    Examples
    --------
    >>> gaussian3d(0.5).kernel_shape
    (5, 5, 5)
    """
    factors = K.gaussian_factors(sigma, radius, 3)
    return _single(K.outer(factors), "gaussian3d", "3-D Gaussian blur", factors, sigma=sigma, radius=radius)


@register("sobel3d", "3-D Sobel gradient magnitude")
def sobel3d() -> Filter:
    """3-D Sobel gradient magnitude ``sqrt(gz**2 + gy**2 + gx**2)``.

    Examples
    --------
    >>> sobel3d().weight.shape
    (3, 1, 3, 3, 3)
    """
    return _magnitude(
        [K.derivative_factors("sobel", a, 3) for a in (0, 1, 2)], "sobel3d", "3-D Sobel magnitude"
    )


@register("laplacian3d", "3-D 6-neighbour Laplacian")
def laplacian3d() -> Filter:
    """The 6-neighbour 3-D Laplacian, as ``scipy.ndimage.laplace`` on a volume.

    Examples
    --------
    >>> laplacian3d().kernel[1, 1].tolist()
    [1.0, -6.0, 1.0]
    """
    return _single(K.laplacian(3), "laplacian3d", "3-D Laplacian")


@register("gradient1d", "1-D central difference [-0.5, 0, 0.5] (numpy.gradient's interior)")
def gradient1d() -> Filter:
    """Central difference for signals, numpy.gradient's interior rule.

    Examples
    --------
    >>> gradient1d().kernel.tolist()
    [-0.5, 0.0, 0.5]
    """
    return _single(K.gradient1d(), "gradient1d", "1-D gradient", (K.gradient1d(),))


@register("gaussian1d", "1-D Gaussian smoothing of signals")
def gaussian1d(sigma: float = 1.0, radius: Optional[int] = None) -> Filter:
    """1-D Gaussian smoothing, as ``scipy.ndimage.gaussian_filter1d``.

    Examples
    --------
    >>> gaussian1d(2.0).kernel_shape
    (17,)
    """
    taps = K.gaussian1d(sigma, radius)
    return _single(taps, "gaussian1d", "1-D Gaussian", (taps,), sigma=sigma, radius=radius)
