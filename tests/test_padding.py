"""imgfilt.padding: mode names, index maps for any pad width, and the 'same' rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgfilt.padding import (
    ALIASES,
    MODES,
    NUMPY_NAMES,
    fold,
    index_map,
    normalize_mode,
    same_padding,
)
from strategies import examples


def picture(mode, width=2):
    """Pad 'abcd' by ``width`` on each side through the index map, '0' for zeros."""
    letters = "abcd"
    return "".join("0" if i < 0 else letters[i] for i in index_map(4, width, width, mode))


@pytest.mark.parametrize(
    "mode, expected",
    [
        # The table of design.md section 2.
        ("zeros", "00abcd00"),
        ("reflect", "cbabcdcb"),
        ("replicate", "aaabcddd"),
        ("circular", "cdabcdab"),
        ("symmetric", "baabcddc"),
    ],
)
def test_the_design_tables_pictures(mode, expected):
    assert picture(mode) == expected


@pytest.mark.parametrize(
    "mode, expected",
    [
        # Wider than the input: keep bouncing (reflect's period is 2n-2, symmetric's 2n).
        ("reflect", "abcdcb" "abcd" "cbabcd"),
        ("symmetric", "cddcba" "abcd" "dcbaab"),
        ("circular", "cdabcd" "abcd" "abcdab"),
        ("replicate", "aaaaaaabcddddddd"),
        ("zeros", "000000abcd000000"),
    ],
)
def test_wide_pads_keep_bouncing(mode, expected):
    assert picture(mode, width=6) == expected


@settings(max_examples=examples(400))
@given(
    length=st.integers(1, 12),
    before=st.integers(0, 40),
    after=st.integers(0, 40),
    mode=st.sampled_from(MODES),
)
def test_index_map_agrees_with_numpy_pad(length, before, after, mode):
    if mode == "reflect" and length == 1 and before + after:
        with pytest.raises(ValueError, match="length 1"):
            index_map(length, before, after, mode)
        return
    values = np.arange(10, 10 + length)
    mapped = index_map(length, before, after, mode)
    shown = np.where(mapped >= 0, values[np.maximum(mapped, 0)], 0)
    expected = np.pad(values, (before, after), mode=NUMPY_NAMES[mode])
    np.testing.assert_array_equal(shown, expected)


def test_aliases_and_case():
    for alias, canonical in ALIASES.items():
        assert normalize_mode(alias) == canonical
        assert normalize_mode(alias.upper()) == canonical
    for mode in MODES:
        assert normalize_mode(mode) == mode


def test_scipy_reflect_is_not_an_alias_for_symmetric():
    # Our 'reflect' is numpy's and PyTorch's (cb|abcd), not scipy.ndimage's (ba|abcd).
    assert normalize_mode("reflect") == "reflect"
    assert picture("reflect")[:2] == "cb"


def test_unknown_mode_lists_the_allowed_ones():
    with pytest.raises(ValueError) as caught:
        normalize_mode("grid-wrap")
    message = str(caught.value)
    assert "'grid-wrap'" in message
    for mode in MODES:
        assert repr(mode) in message


@pytest.mark.parametrize(
    "size, kernel, stride, dilation, expected",
    [
        (10, 3, 1, 1, (1, 1)),
        (10, 4, 1, 1, (1, 2)),  # even kernel: the extra pad goes after
        (10, 3, 1, 2, (2, 2)),  # dilation: total d*(k-1)
        (7, 3, 2, 1, (1, 1)),  # TF SAME: ceil(7/2)=4 outputs need (4-1)*2+3-7 = 2
        (8, 3, 2, 1, (0, 1)),  # (4-1)*2+3-8 = 1: the single pad goes after
        (5, 1, 3, 1, (0, 0)),
    ],
)
def test_same_padding(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


@settings(max_examples=examples(200))
@given(st.integers(1, 9), st.integers(0, 30), st.integers(0, 30), st.sampled_from(MODES),
       st.data())
def test_fold_of_any_window_is_that_part_of_the_index_map(length, before, after, mode, data):
    """fold() on a window of positions (what one Dask block reads) agrees with the whole axis."""
    if mode == "reflect" and length == 1:
        before = after = 0
    whole = index_map(length, before, after, mode)
    start = data.draw(st.integers(0, whole.size - 1))
    stop = data.draw(st.integers(start + 1, whole.size))
    window = fold(np.arange(start - before, stop - before), length, mode)
    np.testing.assert_array_equal(window, whole[start:stop])


def test_fold_refuses_reflect_beyond_one_sample():
    assert fold(np.array([0]), 1, "reflect").tolist() == [0]
    with pytest.raises(ValueError, match="length 1"):
        fold(np.array([-1, 0]), 1, "reflect")
