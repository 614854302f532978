"""The compiled core: multi-channel cross-correlation of 3-D-shaped data.

Everything arrives normalised by :mod:`imgfilt.conv`: 1-D and 2-D problems come as 3-D ones with
unit axes, data and weights are C-contiguous in the compute dtype, padding comes as three index
maps (padded position -> input index, -1 for a zero). This module knows nothing of padding-mode
names, dtypes other than float/double, PIL or files. Compiler directives are set in setup.py.

Work is split by output rows ``(n, group, z, y)``; each row is computed for all the group's output
channels. A row of the padded input is built once into a per-thread ring of rows (from the index
maps: the inner loops have no border branches), then reused by the next output rows that need it.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int imgfilt_has_openmp(void) { return 1; }
    static int imgfilt_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int imgfilt_has_openmp(void) { return 0; }
    static int imgfilt_omp_max_threads(void) { return 1; }
    #endif
    #ifdef IMGFILT_DEBUG
    static int imgfilt_debug_build(void) { return 1; }
    #else
    static int imgfilt_debug_build(void) { return 0; }
    #endif
    """
    int imgfilt_has_openmp() noexcept nogil
    int imgfilt_omp_max_threads() noexcept nogil
    int imgfilt_debug_build() noexcept nogil


def has_openmp():
    """Return True when the engine was compiled with OpenMP."""
    return bool(imgfilt_has_openmp())


def debug_build():
    """Return True when the engine was built with ``IMGFILT_DEBUG=1`` (bounds checks on)."""
    return bool(imgfilt_debug_build())


def omp_max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return imgfilt_omp_max_threads()


cdef int _fill_row(const floating[:, :, :, :, ::1] x, Py_ssize_t n, Py_ssize_t c,
                   Py_ssize_t src_z, Py_ssize_t src_y, const Py_ssize_t[::1] col_map,
                   Py_ssize_t pad_left, floating[:, :, ::1] ring, Py_ssize_t tid,
                   Py_ssize_t slot) except -1 nogil:
    """Write one padded input row into ``ring[tid, slot]``."""
    cdef Py_ssize_t width = x.shape[4]
    cdef Py_ssize_t padded_width = col_map.shape[0]
    cdef Py_ssize_t j, src
    if src_z < 0 or src_y < 0:
        for j in range(padded_width):
            ring[tid, slot, j] = 0
        return 0
    # Only the pad columns go through the map; the interior is a straight copy.
    for j in range(pad_left):
        src = col_map[j]
        ring[tid, slot, j] = x[n, c, src_z, src_y, src] if src >= 0 else 0
    for j in range(width):
        ring[tid, slot, pad_left + j] = x[n, c, src_z, src_y, j]
    for j in range(pad_left + width, padded_width):
        src = col_map[j]
        ring[tid, slot, j] = x[n, c, src_z, src_y, src] if src >= 0 else 0
    return 0


cdef inline Py_ssize_t _slot(Py_ssize_t i, Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t padded_row,
                             Py_ssize_t kernel_d, Py_ssize_t ring_rows,
                             bint cycle) noexcept nogil:
    """Ring slot of padded row ``padded_row`` seen through tap ``(i, kd, kh)``.

    When the ring holds the kernel's whole row span (``cycle``), slots cycle with the padded row
    index, so an output row finds the rows its predecessor loaded; otherwise (a large dilation)
    each tap row has a slot of its own.
    """
    cdef Py_ssize_t row_slot = padded_row % ring_rows if cycle else kh
    return (i * kernel_d + kd) * ring_rows + row_slot


cdef Py_ssize_t _bad_entries(const Py_ssize_t[::1] index_map, Py_ssize_t length) noexcept nogil:
    """Number of entries that are neither -1 nor an index of an axis of ``length``."""
    cdef Py_ssize_t j, bad = 0
    for j in range(index_map.shape[0]):
        if index_map[j] < -1 or index_map[j] >= length:
            bad += 1
    return bad


cdef int _output_row(const floating[:, :, :, :, ::1] x,
                     const floating[:, :, :, :, ::1] weight,
                     const floating[::1] bias,
                     floating[:, :, :, :, ::1] out,
                     const Py_ssize_t[::1] plane_map,
                     const Py_ssize_t[::1] row_map,
                     const Py_ssize_t[::1] col_map,
                     Py_ssize_t pad_left,
                     Py_ssize_t group_out,
                     Py_ssize_t n, Py_ssize_t g, Py_ssize_t z, Py_ssize_t y,
                     Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                     floating[:, :, ::1] ring, Py_ssize_t[:, ::1] tags, Py_ssize_t tid,
                     Py_ssize_t ring_rows, bint cycle) except -1 nogil:
    """Compute ``out[n, o, z, y, :]`` for every output channel ``o`` of group ``g``."""
    cdef Py_ssize_t in_channels = x.shape[1]
    cdef Py_ssize_t group_in = weight.shape[1]
    cdef Py_ssize_t kernel_d = weight.shape[2], kernel_h = weight.shape[3]
    cdef Py_ssize_t kernel_w = weight.shape[4]
    cdef Py_ssize_t out_w = out.shape[4]
    cdef Py_ssize_t padded_d = plane_map.shape[0], padded_h = row_map.shape[0]
    cdef Py_ssize_t i, c, kd, kh, kw, pz, pr, slot, key, o, xx, off
    cdef floating tap, first

    # Make every padded row this output row reads resident in the ring.
    for i in range(group_in):
        c = g * group_in + i
        for kd in range(kernel_d):
            pz = z * sd + kd * dd
            for kh in range(kernel_h):
                pr = y * sh + kh * dh
                slot = _slot(i, kd, kh, pr, kernel_d, ring_rows, cycle)
                key = ((n * in_channels + c) * padded_d + pz) * padded_h + pr
                if tags[tid, slot] != key:
                    _fill_row(x, n, c, plane_map[pz], row_map[pr], col_map, pad_left,
                              ring, tid, slot)
                    tags[tid, slot] = key

    for o in range(g * group_out, (g + 1) * group_out):
        first = bias[o]
        for xx in range(out_w):
            out[n, o, z, y, xx] = first
        for i in range(group_in):
            for kd in range(kernel_d):
                pz = z * sd + kd * dd
                for kh in range(kernel_h):
                    pr = y * sh + kh * dh
                    slot = _slot(i, kd, kh, pr, kernel_d, ring_rows, cycle)
                    for kw in range(kernel_w):
                        tap = weight[o, i, kd, kh, kw]
                        off = kw * dw
                        if sw == 1:
                            for xx in range(out_w):
                                out[n, o, z, y, xx] += tap * ring[tid, slot, xx + off]
                        else:
                            for xx in range(out_w):
                                out[n, o, z, y, xx] += tap * ring[tid, slot, xx * sw + off]
    return 0


def correlate(const floating[:, :, :, :, ::1] x,
              const floating[:, :, :, :, ::1] weight,
              const floating[::1] bias,
              floating[:, :, :, :, ::1] out,
              const Py_ssize_t[::1] plane_map,
              const Py_ssize_t[::1] row_map,
              const Py_ssize_t[::1] col_map,
              Py_ssize_t pad_left,
              Py_ssize_t groups,
              tuple stride,
              tuple dilation,
              floating[:, :, ::1] ring,
              Py_ssize_t[:, ::1] tags,
              Py_ssize_t ring_rows,
              int num_threads):
    """Cross-correlate ``x (N, C_in, D, H, W)`` with ``weight (C_out, C_in/groups, KD, KH, KW)``.

    ``out (N, C_out, Do, Ho, Wo)`` is written. ``plane_map``/``row_map``/``col_map`` give, for each
    padded position, the input index (-1: zero); ``pad_left`` is the number of padded columns
    before the input's first column. ``ring (threads, C_in/groups * KD * ring_rows, len(col_map))``
    and ``tags (threads, same)`` are per-thread scratch, ``tags`` filled with -1.

    The shapes are checked again here (cheaply, once) so that no call can index out of bounds.
    """
    cdef Py_ssize_t sd = stride[0], sh = stride[1], sw = stride[2]
    cdef Py_ssize_t dd = dilation[0], dh = dilation[1], dw = dilation[2]
    cdef Py_ssize_t batch = x.shape[0], in_channels = x.shape[1]
    cdef Py_ssize_t out_channels = weight.shape[0], group_in = weight.shape[1]
    cdef Py_ssize_t out_d = out.shape[2], out_h = out.shape[3], out_w = out.shape[4]
    cdef Py_ssize_t n_items, item, t, n, g, z, y, tid = 0
    cdef Py_ssize_t axis, group_out
    cdef bint cycle
    cdef Py_ssize_t kernel[3]
    cdef Py_ssize_t padded[3]
    cdef Py_ssize_t outs[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t dilations[3]

    if min(sd, sh, sw, dd, dh, dw, groups, num_threads, ring_rows) < 1:
        raise ValueError("engine: stride, dilation, groups, threads and ring rows must be >= 1")
    if in_channels != groups * group_in or out_channels % groups:
        raise ValueError("engine: channel counts do not match groups")
    if out.shape[0] != batch or out.shape[1] != out_channels or bias.shape[0] != out_channels:
        raise ValueError("engine: output or bias shape does not match")
    kernel[0], kernel[1], kernel[2] = weight.shape[2], weight.shape[3], weight.shape[4]
    padded[0], padded[1], padded[2] = plane_map.shape[0], row_map.shape[0], col_map.shape[0]
    outs[0], outs[1], outs[2] = out_d, out_h, out_w
    strides[0], strides[1], strides[2] = sd, sh, sw
    dilations[0], dilations[1], dilations[2] = dd, dh, dw
    for axis in range(3):
        if outs[axis] < 1 or (outs[axis] - 1) * strides[axis] + dilations[axis] * (kernel[axis] - 1) >= padded[axis]:
            raise ValueError(f"engine: output axis {axis} reads beyond the padded input")
    if pad_left < 0 or pad_left + x.shape[4] > padded[2]:
        raise ValueError("engine: pad_left does not fit the column map")
    if (_bad_entries(plane_map, x.shape[2]) or _bad_entries(row_map, x.shape[3])
            or _bad_entries(col_map, x.shape[4])):
        raise ValueError("engine: an index map points outside the input")
    if ring.shape[0] < num_threads or tags.shape[0] < num_threads:
        raise ValueError("engine: fewer scratch rings than threads")
    if (ring.shape[1] != group_in * kernel[0] * ring_rows or tags.shape[1] != ring.shape[1]
            or ring.shape[2] != padded[2] or ring_rows < kernel[1]):
        raise ValueError("engine: scratch ring has the wrong shape")

    group_out = out_channels // groups
    cycle = ring_rows >= dh * (kernel[1] - 1) + 1
    n_items = batch * groups * out_d * out_h
    with nogil, parallel(num_threads=num_threads):
        tid = threadid()
        for item in prange(n_items, schedule="static"):
            y = item % out_h
            t = item // out_h
            z = t % out_d
            t = t // out_d
            g = t % groups
            n = t // groups
            _output_row(x, weight, bias, out, plane_map, row_map, col_map, pad_left, group_out,
                        n, g, z, y, sd, sh, sw, dd, dh, dw, ring, tags, tid, ring_rows, cycle)
