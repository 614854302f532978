"""Per-page read time of imgfilt.dask.filter_file's TIFF reader at 200, 400 and 800 pages.

Each page is read as its own chunk, as filter_file does for a stack; a reader whose cost grows
with the page's depth gives a per-page time that grows with the page count. The reader before
issue 14 (Pillow: open, seek to the page, decode) is timed in the same process, interleaved,
for the ratio. Run: ``PYTHONPATH=src python benchmarks/tiff_pages.py``.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import tifffile
from PIL import Image

from imgfilt.tiff import TiffPageReader


def pillow_page(path: str, page: int) -> np.ndarray:
    """The former reader: Pillow seeks from the first IFD to the page on every chunk."""
    with Image.open(path) as stack:
        stack.seek(page)
        return np.asarray(stack)


def per_page_ms(read, pages: int) -> float:
    start = time.perf_counter()
    for page in range(pages):
        read(page)
    return (time.perf_counter() - start) / pages * 1e3


def main(repeats: int = 3) -> None:
    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    page = rng.integers(0, 65535, (64, 64), dtype=np.uint16)
    print(f"load: {os.getloadavg()[0]:.1f} (1-minute average)")
    for compression in (None, "zlib"):
        for pages in (200, 400, 800):
            path = os.path.join(folder, f"stack{pages}.tif")
            with tifffile.TiffWriter(path) as writer:
                for _ in range(pages):  # one IFD per page, as scanners and Pillow write them
                    writer.write(page, compression=compression, contiguous=False)
            reader = TiffPageReader(path)
            ours, before = [], []
            for _ in range(repeats):  # interleaved, medians
                ours.append(per_page_ms(lambda p: reader[p:p + 1], pages))
                before.append(per_page_ms(lambda p: pillow_page(path, p), pages))
            print(f"{compression or 'uncompressed':>12} {pages:4d} pages: "
                  f"TiffPageReader {statistics.median(ours):6.3f} ms/page, "
                  f"Pillow (before) {statistics.median(before):6.3f} ms/page, "
                  f"{statistics.median(before) / statistics.median(ours):5.1f}x")


if __name__ == "__main__":
    main()
