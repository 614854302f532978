"""A user's script, type-checked against the installed imgfilt (its py.typed): CI runs
``mypy --strict tests/typing/client.py`` and checks the revealed types (.ci/run).

Not collected by pytest (no test_ prefix); it also runs as a script.
"""
from typing import assert_type, reveal_type

import numpy as np

import imgfilt

x = np.random.rand(3, 32, 32).astype(np.float32)
w = np.random.rand(4, 3, 3, 3).astype(np.float32)

y = imgfilt.conv(x, w, padding="same", padding_mode="reflect")
reveal_type(y)  # CI expects numpy.ndarray
assert_type(y, np.ndarray)
assert_type(imgfilt.convolve(x, w), np.ndarray)

p = imgfilt.plan(x.shape, x.dtype, w.shape, padding=1)
assert_type(p, imgfilt.Plan)
shape: tuple[int, ...] = p.result_shape
isa: str = imgfilt.engine_isa()
threads: int = imgfilt.get_num_threads()

blur = imgfilt.filters.gaussian(sigma=2.0)
assert_type(blur, imgfilt.Filter)
bank = imgfilt.FilterBank([imgfilt.filters.sobel_x(), imgfilt.filters.sobel_y()])
names: list[str] = [info.name for info in imgfilt.list_filters()]

if __name__ == "__main__":
    print(y.shape, shape, isa, threads, blur.name, bank.out_channels, len(names))
