"""Hypothesis strategies shared by the test files."""
import os

from hypothesis import strategies as st

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")

#: Every input dtype the engine accepts, and the dtype it computes in.
DTYPES = ("float64", "float32", "float16", "uint8", "uint16", "int16", "int32", "int64", "bool")


def examples(count: int) -> int:
    """``count`` under the CI profile; ten times as many under ``HYPOTHESIS_PROFILE=long``."""
    return count * 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else count


@st.composite
def conv_problems(draw, max_size=9, max_pad=12):
    """A random ``conv`` problem: shapes, options and a seed to fill the arrays from.

    Shapes go down to one sample per axis, pads up to ``max_pad`` (wider than the input), even
    kernel sizes, every mode, stride, dilation, groups, batch and dtype.
    """
    ndim = draw(st.integers(1, 3))
    size_cap = max_size if ndim < 3 else max(2, max_size * 2 // 3)
    groups = draw(st.integers(1, 3))
    group_in = draw(st.integers(1, 3))
    # Up to 6 outputs per group: the engine computes blocks of 4 output channels, then singles.
    group_out = draw(st.integers(1, 6))
    sizes = tuple(draw(st.lists(st.integers(1, size_cap), min_size=ndim, max_size=ndim)))
    if ndim < 3 and draw(st.integers(0, 4)) == 0:
        # A long last axis: whole strips of the fused kernels (up to 128 samples) and a tail.
        sizes = sizes[:-1] + (draw(st.integers(100, 260)),)
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    pad_width = st.integers(0, max_pad)
    padding = draw(
        st.one_of(
            st.just("same"),
            st.just("valid"),
            pad_width,
            st.tuples(*[pad_width] * ndim),
            st.tuples(*[st.tuples(pad_width, pad_width)] * ndim),
        )
    )
    return {
        "ndim": ndim,
        "batch": draw(st.one_of(st.none(), st.integers(1, 3))),
        "in_channels": groups * group_in,
        "out_channels": groups * group_out,
        "groups": groups,
        "group_in": group_in,
        "sizes": sizes,
        "kernel": kernel,
        "stride": stride if draw(st.booleans()) else stride[0],
        "dilation": dilation if draw(st.booleans()) else dilation[0],
        "padding": padding,
        "padding_mode": draw(st.sampled_from(MODES)),
        "dtype": draw(st.sampled_from(DTYPES)),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
