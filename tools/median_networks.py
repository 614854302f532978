"""Generate the comparator network behind the sorted-columns 5 x 5 median (method="columns").

Usage::

    python tools/median_networks.py          # prints the Python tuple and the C macro body

The window's five columns are sorted first (each column once, shared by the five windows that
hold it); wire ``5 * c + i`` then holds the ``i``-th smallest sample of column ``c``. The network
is Batcher's odd-even merge sort on 25 wires with every comparator removed whose outcome the
sorted columns already decide, then pruned backwards to the comparators wire 12 (the median)
depends on. Both steps are decided exactly on all 6**5 zero-one inputs with sorted columns:
by the 0-1 principle, a comparator that never swaps one of them never swaps any input, and a
network that selects correctly on them selects correctly on every input.

The output goes into ``MEDIAN_5X5_COLUMNS_NETWORK`` (src/imgfilt/rank.py) and the
``IMGFILT_MEDIAN5X5`` macro (src/imgfilt/_rank_core.pxi); tests/test_rank.py checks that both
hold this network and that it selects the median.
"""
from __future__ import annotations

import itertools

import numpy as np

ROWS = COLUMNS = 5
WIRES = ROWS * COLUMNS
MEDIAN = WIRES // 2
#: An optimal sorting network for 5 wires (9 comparators), for the columns.
SORT5 = ((0, 1), (3, 4), (2, 4), (2, 3), (1, 4), (0, 3), (0, 2), (1, 3), (1, 2))


def batcher_pairs(n: int) -> list:
    """Batcher's odd-even merge sort for ``n`` wires (as imgfilt.rank's, comparators (low, high))."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def sorted_column_inputs() -> np.ndarray:
    """Every zero-one input whose columns are sorted: ``(WIRES, 6**COLUMNS)``."""
    zeros = np.array(list(itertools.product(range(ROWS + 1), repeat=COLUMNS)))
    rank_in_column = np.tile(np.arange(ROWS), COLUMNS)
    column = np.repeat(np.arange(COLUMNS), ROWS)
    return (rank_in_column[:, None] >= zeros[:, column].T).astype(np.uint8)


def apply(network, wires: np.ndarray) -> np.ndarray:
    wires = wires.copy()
    for a, b in network:
        wires[a], wires[b] = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
    return wires


def median_network() -> tuple:
    inputs = sorted_column_inputs()
    wires = inputs.copy()
    kept = []
    for a, b in batcher_pairs(WIRES):
        if (wires[a] <= wires[b]).all():
            continue  # the sorted columns decide it: never swaps
        wires[a], wires[b] = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
        kept.append((a, b))
    needed = {MEDIAN}
    network = []
    for a, b in reversed(kept):
        if a in needed or b in needed:
            network.append((a, b))
            needed.update((a, b))
    network.reverse()
    assert (apply(network, inputs)[MEDIAN] == np.sort(inputs, axis=0)[MEDIAN]).all()
    return tuple(network)


def c_lines(network) -> list:
    """The comparators as lines of the C macro (wire w is the variable ``v<w>``, T the type)."""
    return [f"IMGFILT_CMP(T, v{a}, v{b});" for a, b in network]


if __name__ == "__main__":
    network = median_network()
    print(f"MEDIAN_5X5_COLUMNS_NETWORK = {network!r}  # {len(network)} comparators")
    for line in c_lines(network):
        print(line)


def c_macro(network) -> str:
    """The body lines of IMGFILT_MEDIAN5X5_NETWORK as they stand in _rank_core.pxi."""
    lines = c_lines(network)
    rows = [" ".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    return "\n".join(f"            {row:<89}\\\\" for row in rows)
