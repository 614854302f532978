"""Per-page read time of imgfilt.dask.filter_file's TIFF reader at 200, 400 and 800 pages.

Each page is read as its own chunk (chunks=(1, H, W)), as filter_file does for a stack; a
reader whose cost grows with the page's depth gives a per-page time that grows with the page
count. Run: ``PYTHONPATH=src python benchmarks/tiff_pages.py`` (uncompressed and zlib files).
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tifffile

from imgfilt import dask as imgfilt_dask


def per_page_ms(path: str, pages: int, repeats: int = 3) -> float:
    reader = imgfilt_dask._source(path)  # noqa: SLF001 - the benchmark measures the reader itself
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for page in range(pages):
            reader[page:page + 1]
        times.append((time.perf_counter() - start) / pages * 1e3)
    return statistics.median(times)


def main() -> None:
    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    page = rng.integers(0, 65535, (64, 64), dtype=np.uint16)
    for compression in (None, "zlib"):
        row = []
        for pages in (200, 400, 800):
            path = os.path.join(folder, f"stack{pages}.tif")
            with tifffile.TiffWriter(path) as writer:
                for _ in range(pages):  # one IFD per page, as scanners and Pillow write them
                    writer.write(page, compression=compression, contiguous=False)
            row.append(f"{pages} pages: {per_page_ms(path, pages):.3f} ms/page")
        print(f"{compression or 'uncompressed'}: " + ", ".join(row))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
