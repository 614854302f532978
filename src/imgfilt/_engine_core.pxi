# The compiled core: multi-channel cross-correlation of 3-D-shaped data.
#
# This file is included by three small modules (_engine, _engine_avx2, _engine_avx512) that setup.py
# compiles with different instruction-set flags; imgfilt.conv picks the best one the CPU runs.
#
# Everything arrives normalised by imgfilt.conv: 1-D and 2-D problems come as 3-D ones with unit
# axes, data (float, double or uint8) and weights (float or double, flattened to taps) are
# C-contiguous, padding comes as three index maps (padded position -> input index, -1 for a
# zero). This code knows nothing of padding-mode names, PIL or files. Compiler directives are set
# in setup.py.
#
# Work is split by output rows (n, group, z, y); each row is computed for all the group's output
# channels. A row of the padded input is built once into a per-thread ring of rows (from the index
# maps: the inner loops have no border branches), then reused by the next output rows that need it
# (_traversal.pxi, shared with the rank kernels).
# With stride 1 along the row, an output row is computed in strips for blocks of four output
# channels (STRIP samples each) or for one (4 x STRIP samples): the strip's accumulators stay in
# vector registers while every tap of the kernel is added ("fused taps"), and in a block each
# input vector loaded feeds four outputs. 8-bit output is rounded and clipped as strips are stored.
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.math cimport nearbyint, sqrt
from cython.view cimport array as cvarray

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int imgfilt_has_openmp(void) { return 1; }
    static int imgfilt_omp_max_threads(void) { return omp_get_max_threads(); }
    static int imgfilt_omp_thread_limit(void) { return omp_get_thread_limit(); }
    #if defined(__GNUC__) && !defined(_WIN32)
    /* Weak: an OpenMP runtime without it (older than OpenMP 5.0) still loads the engine. */
    #pragma weak omp_pause_resource_all
    #endif
    static double imgfilt_now(void) { return omp_get_wtime(); }
    static int imgfilt_pause_openmp(void) {
        /* Ends this thread's worker threads; the next parallel region starts new ones. */
        if (!omp_pause_resource_all) return -1;
        return omp_pause_resource_all(omp_pause_hard);
    }
    #else
    static int imgfilt_has_openmp(void) { return 0; }
    static int imgfilt_omp_max_threads(void) { return 1; }
    static int imgfilt_omp_thread_limit(void) { return 1; }
    static double imgfilt_now(void) { return omp_get_wtime(); }
    static int imgfilt_pause_openmp(void) { return 0; }
    static double imgfilt_now(void) { return 0.0; }
    #endif
    #ifdef IMGFILT_DEBUG
    static int imgfilt_debug_build(void) { return 1; }
    #else
    static int imgfilt_debug_build(void) { return 0; }
    #endif
    #ifndef IMGFILT_STRIP
    #define IMGFILT_STRIP 16
    #endif
    #ifndef IMGFILT_ISA
    #define IMGFILT_ISA "baseline"
    #endif
    """
    int imgfilt_has_openmp() noexcept nogil
    int imgfilt_omp_max_threads() noexcept nogil
    int imgfilt_omp_thread_limit() noexcept nogil
    int imgfilt_pause_openmp() noexcept nogil
    double imgfilt_now() noexcept nogil
    int imgfilt_debug_build() noexcept nogil
    const char *IMGFILT_ISA
    # Output samples per strip of the fused kernels (a compile-time constant, so the strip loops
    # unroll into whole vector registers); setup.py sets it per instruction set.
    enum: STRIP "IMGFILT_STRIP"

# Output channels per block of the fused kernel (_fused_block): 4 x STRIP accumulators fill about
# half the vector registers, leaving room for the input vectors and the broadcast weights.
cdef enum:
    BLOCK = 4

# The most threads a call may ask for; imgfilt.set_num_threads enforces a lower, per-machine
# limit (libgomp crashes or hangs when asked for tens of thousands).
cdef enum:
    MAX_THREADS = 1024


# The input's element type: the compute types, or 8-bit pixels converted as rows are read.
ctypedef fused source_t:
    float
    double
    unsigned char

# The ring's element type (the compute type: the kernels below call it ``floating``).
ctypedef fused ring_t:
    float
    double

include "_traversal.pxi"


def has_openmp():
    """Return True when the engine was compiled with OpenMP."""
    return bool(imgfilt_has_openmp())


def debug_build():
    """Return True when the engine was built with ``IMGFILT_DEBUG=1`` (bounds checks on)."""
    return bool(imgfilt_debug_build())


def omp_max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return imgfilt_omp_max_threads()


def omp_thread_limit():
    """The OpenMP runtime's limit on threads (OMP_THREAD_LIMIT; 1 without OpenMP)."""
    return imgfilt_omp_thread_limit()


def pause_openmp():
    """End the calling thread's OpenMP worker threads (``omp_pause_resource_all``).

    Called before ``fork()``: libgomp's pool does not survive a fork (the child would wait
    forever for workers that were not copied), but a paused pool is rebuilt on the next call, in
    the parent and in the child. Returns 0 on success, nonzero when the runtime cannot pause
    (too old, or a parallel region is running in this thread).
    """
    return imgfilt_pause_openmp()


def instruction_set():
    """The instruction set this module was compiled for: "baseline", "avx2" or "avx512"."""
    return IMGFILT_ISA.decode()


def max_threads():
    """The most threads one engine call accepts."""
    return MAX_THREADS


def strip_width():
    """Extra columns each ring row has beyond the padded width (a whole strip may overrun)."""
    return BLOCK * STRIP


cdef inline unsigned char _saturate(floating value) noexcept nogil:
    """Round to the nearest integer (ties to even, as numpy.rint) and clip to 0..255.

    The caller guarantees finite values (8-bit input, finite weights). Adding and subtracting
    1.5 * 2**23 (2**52 for doubles) rounds to the nearest integer, ties to even, in the
    default rounding mode, as nearbyint does, but in registers: nearbyint is a library call
    that keeps the store loops from vectorising."""
    cdef floating magic = 12582912.0 if floating is float else 6755399441055744.0
    if value <= 0:
        return 0
    if value >= 255:
        return 255
    return <unsigned char>((value + magic) - magic)


cdef int _fused_block(const floating[:, ::1] taps, const floating[::1] bias,
                      floating[:, :, :, :, ::1] out, unsigned char[:, :, :, :, ::1] out_u8,
                      bint saturate, Py_ssize_t out_w, const floating[:, ::1] ring,
                      const Py_ssize_t[::1] tap_offsets, Py_ssize_t o, Py_ssize_t n,
                      Py_ssize_t z, Py_ssize_t y, Py_ssize_t tid) except -1 nogil:
    """Output channels ``o .. o+3`` of one output row, stride 1 along the row.

    ``taps[o, t]`` is the weight of tap ``t`` (the kernel flattened in C order) and
    ``tap_offsets[t]`` where tap ``t``'s input starts in this thread's flattened ring. One flat
    loop over the taps lets the compiler keep the 4 x strip accumulators in registers throughout.
    """
    cdef Py_ssize_t n_taps = taps.shape[1]
    cdef Py_ssize_t x0, j, t, base, count
    # Doubles take twice the registers: half the strip (a constant once Cython specialises).
    cdef Py_ssize_t strip = STRIP if floating is float else STRIP // 2
    cdef floating w0, w1, w2, w3, v
    cdef floating acc0[STRIP]
    cdef floating acc1[STRIP]
    cdef floating acc2[STRIP]
    cdef floating acc3[STRIP]
    x0 = 0
    while x0 < out_w:
        for j in range(strip):
            acc0[j] = bias[o]
            acc1[j] = bias[o + 1]
            acc2[j] = bias[o + 2]
            acc3[j] = bias[o + 3]
        for t in range(n_taps):
            base = tap_offsets[t] + x0
            w0 = taps[o, t]
            w1 = taps[o + 1, t]
            w2 = taps[o + 2, t]
            w3 = taps[o + 3, t]
            for j in range(strip):
                v = ring[tid, base + j]
                acc0[j] += w0 * v
                acc1[j] += w1 * v
                acc2[j] += w2 * v
                acc3[j] += w3 * v
        # A constant count for whole strips: a variable one becomes a slow byte-wise memcpy.
        count = strip if x0 + strip <= out_w else out_w - x0
        if saturate:
            for j in range(count):
                out_u8[n, o, z, y, x0 + j] = _saturate(acc0[j])
                out_u8[n, o + 1, z, y, x0 + j] = _saturate(acc1[j])
                out_u8[n, o + 2, z, y, x0 + j] = _saturate(acc2[j])
                out_u8[n, o + 3, z, y, x0 + j] = _saturate(acc3[j])
        elif count == strip:
            for j in range(strip):
                out[n, o, z, y, x0 + j] = acc0[j]
                out[n, o + 1, z, y, x0 + j] = acc1[j]
                out[n, o + 2, z, y, x0 + j] = acc2[j]
                out[n, o + 3, z, y, x0 + j] = acc3[j]
        else:
            for j in range(count):
                out[n, o, z, y, x0 + j] = acc0[j]
                out[n, o + 1, z, y, x0 + j] = acc1[j]
                out[n, o + 2, z, y, x0 + j] = acc2[j]
                out[n, o + 3, z, y, x0 + j] = acc3[j]
        x0 += strip
    return 0


cdef int _fused_single(const floating[:, ::1] taps, const floating[::1] bias,
                       floating[:, :, :, :, ::1] out, unsigned char[:, :, :, :, ::1] out_u8,
                       bint saturate, Py_ssize_t out_w, const floating[:, ::1] ring,
                       const Py_ssize_t[::1] tap_offsets, Py_ssize_t o, Py_ssize_t n,
                       Py_ssize_t z, Py_ssize_t y, Py_ssize_t tid) except -1 nogil:
    """Output channel ``o`` of one output row, stride 1 along the row (see ``_fused_block``).

    The strip is four times as wide as the block's, so that as many independent accumulators
    hide the latency of the multiply-adds.
    """
    cdef Py_ssize_t n_taps = taps.shape[1]
    cdef Py_ssize_t x0, j, t, base, count
    cdef Py_ssize_t strip = BLOCK * (STRIP if floating is float else STRIP // 2)
    cdef floating w0
    cdef floating acc0[BLOCK * STRIP]
    x0 = 0
    while x0 < out_w:
        for j in range(strip):
            acc0[j] = bias[o]
        for t in range(n_taps):
            base = tap_offsets[t] + x0
            w0 = taps[o, t]
            for j in range(strip):
                acc0[j] += w0 * ring[tid, base + j]
        count = strip if x0 + strip <= out_w else out_w - x0
        if saturate:
            for j in range(count):
                out_u8[n, o, z, y, x0 + j] = _saturate(acc0[j])
        elif count == strip:
            for j in range(strip):
                out[n, o, z, y, x0 + j] = acc0[j]
        else:
            for j in range(count):
                out[n, o, z, y, x0 + j] = acc0[j]
        x0 += strip
    return 0


cdef int _fused_magnitude(const floating[:, ::1] taps, const floating[::1] bias,
                          floating[:, :, :, :, ::1] out, unsigned char[:, :, :, :, ::1] out_u8,
                          bint saturate, Py_ssize_t out_w, const floating[:, ::1] ring,
                          const Py_ssize_t[::1] tap_offsets, Py_ssize_t o_out, Py_ssize_t n,
                          Py_ssize_t z, Py_ssize_t y, Py_ssize_t tid) except -1 nogil:
    """``sqrt(sum_r response_r**2)`` of the 2 to 4 responses (rows of ``taps``) of one output
    row, stored in output channel ``o_out``: the gradient magnitude without its responses ever
    leaving the registers (see ``_fused_block``).

    Each response is summed in the order ``_fused_single`` and ``_fused_block`` sum it, and the
    squares in the order ``magnitude`` adds them, so the result has the bits of the responses
    computed first and combined by ``magnitude`` (or ``magnitude_u8``). Two responses (Sobel,
    Scharr, Prewitt) take strips twice as wide as four do: as many accumulators either way.
    """
    cdef Py_ssize_t n_taps = taps.shape[1], n_resp = taps.shape[0]
    cdef Py_ssize_t x0, j, t, base, count, width
    # Constants once Cython specialises (the strip loops unroll into whole registers).
    cdef Py_ssize_t strip = STRIP if floating is float else STRIP // 2
    cdef Py_ssize_t pair = 2 * strip
    cdef floating w0, w1, w2, w3, v, total
    cdef floating acc0[2 * STRIP]
    cdef floating acc1[2 * STRIP]
    cdef floating acc2[STRIP]
    cdef floating acc3[STRIP]
    width = pair if n_resp == 2 else strip
    x0 = 0
    while x0 < out_w:
        if n_resp == 2:
            for j in range(pair):
                acc0[j] = bias[0]
                acc1[j] = bias[1]
            for t in range(n_taps):
                base = tap_offsets[t] + x0
                w0 = taps[0, t]
                w1 = taps[1, t]
                for j in range(pair):
                    v = ring[tid, base + j]
                    acc0[j] += w0 * v
                    acc1[j] += w1 * v
            for j in range(pair):
                total = 0
                total = total + acc0[j] * acc0[j]
                total = total + acc1[j] * acc1[j]
                acc0[j] = total
        else:
            # Three responses run as four with the fourth never added to the squares.
            for j in range(strip):
                acc0[j] = bias[0]
                acc1[j] = bias[1]
                acc2[j] = bias[2]
                acc3[j] = bias[3] if n_resp == 4 else 0
            for t in range(n_taps):
                base = tap_offsets[t] + x0
                w0 = taps[0, t]
                w1 = taps[1, t]
                w2 = taps[2, t]
                w3 = taps[3, t] if n_resp == 4 else 0
                for j in range(strip):
                    v = ring[tid, base + j]
                    acc0[j] += w0 * v
                    acc1[j] += w1 * v
                    acc2[j] += w2 * v
                    acc3[j] += w3 * v
            for j in range(strip):
                total = 0
                total = total + acc0[j] * acc0[j]
                total = total + acc1[j] * acc1[j]
                total = total + acc2[j] * acc2[j]
                if n_resp == 4:
                    total = total + acc3[j] * acc3[j]
                acc0[j] = total
        # The root rounded to the compute type before any 8-bit rounding, as magnitude() and
        # then numpy.rint do.
        count = width if x0 + width <= out_w else out_w - x0
        if saturate:
            for j in range(count):
                out_u8[n, o_out, z, y, x0 + j] = _saturate(<floating>sqrt(acc0[j]))
        else:
            for j in range(count):
                out[n, o_out, z, y, x0 + j] = <floating>sqrt(acc0[j])
        x0 += width
    return 0


cdef int _strided_channel(const floating[:, ::1] taps, const floating[::1] bias,
                          floating[:, :, :, :, ::1] out, const floating[:, ::1] ring,
                          const Py_ssize_t[::1] tap_offsets, Py_ssize_t o, Py_ssize_t n,
                          Py_ssize_t z, Py_ssize_t y, Py_ssize_t sw,
                          Py_ssize_t tid) except -1 nogil:
    """Output channel ``o`` of one output row with any stride along the row (tap by tap)."""
    cdef Py_ssize_t n_taps = taps.shape[1], out_w = out.shape[4]
    cdef Py_ssize_t xx, t, base
    cdef floating tap
    for xx in range(out_w):
        out[n, o, z, y, xx] = bias[o]
    for t in range(n_taps):
        tap = taps[o, t]
        base = tap_offsets[t]
        for xx in range(out_w):
            out[n, o, z, y, xx] += tap * ring[tid, base + xx * sw]
    return 0


cdef int _output_row(const source_t[:, :, :, :, ::1] x,
                     const floating[:, ::1] taps, Py_ssize_t kernel_w,
                     const floating[::1] bias,
                     floating[:, :, :, :, ::1] out,
                     unsigned char[:, :, :, :, ::1] out_u8, bint saturate, Py_ssize_t out_w,
                     const Py_ssize_t[::1] plane_map,
                     const Py_ssize_t[::1] row_map,
                     const Py_ssize_t[::1] col_map,
                     RowRing geometry, Py_ssize_t group_out,
                     Py_ssize_t n, Py_ssize_t g, Py_ssize_t z, Py_ssize_t y,
                     Py_ssize_t sw, Py_ssize_t dw,
                     floating[:, ::1] ring, Py_ssize_t[:, ::1] tags,
                     Py_ssize_t[:, ::1] tap_offsets, Py_ssize_t tid, bint combine) except -1 nogil:
    """Compute ``out[n, o, z, y, :]`` for every output channel ``o`` of group ``g`` (with
    ``combine``: the magnitude of the group's responses, in output channel ``g``).

    ``tap_offsets[tid]`` holds one entry per tap, then one per padded row the taps read.
    """
    cdef Py_ssize_t n_taps = taps.shape[1]
    cdef Py_ssize_t n_rows = geometry.channels * geometry.depth * geometry.height
    cdef Py_ssize_t r, kw, o, base, t = 0
    cdef Py_ssize_t end = (g + 1) * group_out
    cdef floating zero = 0

    # Make every padded row this output row reads resident in the ring, then note where each
    # tap's input starts (in the thread's flattened ring): taps in the kernel's C order.
    resident_rows(x, n, g * geometry.channels, z, y, geometry, plane_map, row_map, col_map, zero,
                  &ring[tid, 0], &tags[tid, 0], &tap_offsets[tid, n_taps])
    for r in range(n_rows):
        base = tap_offsets[tid, n_taps + r]
        for kw in range(kernel_w):
            tap_offsets[tid, t] = base + kw * dw
            t += 1

    o = g * group_out
    if combine:
        _fused_magnitude(taps, bias, out, out_u8, saturate, out_w, ring, tap_offsets[tid], g,
                         n, z, y, tid)
    elif sw == 1:
        while o + BLOCK <= end:
            _fused_block(taps, bias, out, out_u8, saturate, out_w, ring, tap_offsets[tid], o,
                         n, z, y, tid)
            o += BLOCK
        while o < end:
            _fused_single(taps, bias, out, out_u8, saturate, out_w, ring, tap_offsets[tid], o,
                          n, z, y, tid)
            o += 1
    else:
        while o < end:
            _strided_channel(taps, bias, out, ring, tap_offsets[tid], o, n, z, y, sw, tid)
            o += 1
    return 0


def correlate(const source_t[:, :, :, :, ::1] x,
              const floating[:, ::1] taps,
              tuple kernel_shape,
              const floating[::1] bias,
              floating[:, :, :, :, ::1] out,
              unsigned char[:, :, :, :, ::1] out_u8,
              const Py_ssize_t[::1] plane_map,
              const Py_ssize_t[::1] row_map,
              const Py_ssize_t[::1] col_map,
              Py_ssize_t pad_left,
              Py_ssize_t groups,
              tuple stride,
              tuple dilation,
              floating[:, ::1] ring,
              Py_ssize_t[:, ::1] tags,
              Py_ssize_t ring_rows,
              int num_threads,
              double[::1] timing=None,
              bint magnitude=False):
    """Cross-correlate ``x (N, C_in, D, H, W)`` with a kernel ``(C_out, C_in/groups, KD, KH, KW)``.

    The kernel comes flattened, ``taps (C_out, C_in/groups * KD * KH * KW)``, with its
    ``kernel_shape (KD, KH, KW)``. ``x`` is float, double or uint8 (converted as rows are read).
    ``out (N, C_out, Do, Ho, Wo)`` is written; or, when ``out`` is None, ``out_u8`` of that shape
    gets the results rounded (ties to even) and clipped to 0..255 (stride 1 along rows only;
    the caller guarantees finite results).
    ``plane_map``/``row_map``/``col_map`` give, for each padded position, the input index
    (-1: zero); ``pad_left`` is the number of padded columns before the input's first column.
    ``ring (threads, C_in/groups * KD * ring_rows * (len(col_map) + strip_width()))``
    (zero-filled) and ``tags (threads, C_in/groups * KD * ring_rows)`` (filled with -1) are
    per-thread scratch.

    The shapes are checked again here (cheaply, once) so that no call can index out of bounds.
    ``timing`` (optional, 2 doubles) receives the seconds from the start of the call to the
    last thread's arrival in the parallel region, and to the end of the call: a thread that
    arrives late means the machine is busy (imgfilt.conv then runs on one thread for a while).
    ``magnitude=True`` (one group, 2 to 4 output channels, stride 1 along rows): ``out`` (or
    ``out_u8``) has one channel, ``sqrt(sum_o response_o**2)``, the bits of the responses
    computed alone and combined by ``magnitude`` (``magnitude_u8``); no response is stored.
    """
    cdef Py_ssize_t sd = stride[0], sh = stride[1], sw = stride[2]
    cdef Py_ssize_t dd = dilation[0], dh = dilation[1], dw = dilation[2]
    cdef Py_ssize_t batch = x.shape[0], in_channels = x.shape[1]
    cdef Py_ssize_t out_channels = taps.shape[0], group_in
    cdef Py_ssize_t kernel_d = kernel_shape[0], kernel_h = kernel_shape[1]
    cdef Py_ssize_t kernel_w = kernel_shape[2]
    cdef Py_ssize_t out_d, out_h, out_w, out_n, out_c
    cdef Py_ssize_t n_items, item, t, n, g, z, y, tid = 0, min_rows
    cdef double started, latest
    cdef double arrivals[MAX_THREADS]
    cdef bint saturate = out is None
    cdef Py_ssize_t axis, group_out
    cdef RowRing geometry, thread_geometry
    cdef Py_ssize_t kernel[3]
    cdef Py_ssize_t padded[3]
    cdef Py_ssize_t outs[3]
    cdef Py_ssize_t strides[3]
    cdef Py_ssize_t dilations[3]
    cdef Py_ssize_t[:, ::1] tap_offsets

    if min(sd, sh, sw, dd, dh, dw, groups, num_threads, ring_rows, kernel_d, kernel_h,
           kernel_w) < 1:
        raise ValueError("engine: stride, dilation, groups, threads, ring rows and kernel sizes "
                         "must be >= 1")
    if num_threads > MAX_THREADS:
        raise ValueError(f"engine: num_threads={num_threads} is more than {MAX_THREADS}")
    group_in = in_channels // groups
    if in_channels != groups * group_in or out_channels % groups:
        raise ValueError("engine: channel counts do not match groups")
    if taps.shape[1] != group_in * kernel_d * kernel_h * kernel_w:
        raise ValueError("engine: taps do not match the kernel shape")
    if (out is None) == (out_u8 is None):
        raise ValueError("engine: give exactly one of out and out_u8")
    if saturate:
        out_n, out_c, out_d, out_h, out_w = out_u8.shape[:5]
        if sw != 1:
            raise ValueError("engine: 8-bit output needs stride 1 along rows")
    else:
        out_n, out_c, out_d, out_h, out_w = out.shape[:5]
    if magnitude and (groups != 1 or out_channels < 2 or out_channels > BLOCK or sw != 1):
        raise ValueError("engine: magnitude needs one group, 2 to 4 responses and stride 1 "
                         "along rows")
    if (out_n != batch or out_c != (groups if magnitude else out_channels)
            or bias.shape[0] != out_channels):
        raise ValueError("engine: output or bias shape does not match")
    kernel[0], kernel[1], kernel[2] = kernel_d, kernel_h, kernel_w
    padded[0], padded[1], padded[2] = plane_map.shape[0], row_map.shape[0], col_map.shape[0]
    outs[0], outs[1], outs[2] = out_d, out_h, out_w
    strides[0], strides[1], strides[2] = sd, sh, sw
    dilations[0], dilations[1], dilations[2] = dd, dh, dw
    # The bounds arithmetic in Python integers (exact at any size): with strides or dilations
    # near 2**63 a C product would wrap around and let a bad call through.
    for axis in range(3):
        if outs[axis] < 1 or ((<object>outs[axis] - 1) * <object>strides[axis]
                              + <object>dilations[axis] * (<object>kernel[axis] - 1)
                              >= padded[axis]):
            raise ValueError(f"engine: output axis {axis} reads beyond the padded input")
    check_traversal(x.shape, plane_map, row_map, col_map, pad_left, "engine")
    if ring.shape[0] < num_threads or tags.shape[0] < num_threads:
        raise ValueError("engine: fewer scratch rings than threads")
    # A strip may read up to BLOCK * STRIP - 1 columns past the last padded column (into zeros).
    if (<object>group_in * kernel_d * ring_rows * (<object>padded[2] + BLOCK * STRIP)
            != ring.shape[1] or <object>group_in * kernel_d * ring_rows != tags.shape[1]
            or ring_rows < kernel_h):
        raise ValueError("engine: scratch ring has the wrong shape")
    geometry = row_ring(group_in, kernel_d, kernel_h, sd, sh, dd, dh, ring_rows,
                        padded[2] + BLOCK * STRIP, pad_left)
    group_out = out_channels // groups
    n_items = batch * groups * out_d * out_h
    # Rows per scheduling block at least: a new block refills the ring's rows.
    min_rows = max(1, min(8, n_items // (4 * num_threads)))
    # Per thread: each tap's ring offset, then each padded row's (see _output_row).
    tap_offsets = _index_scratch(num_threads, taps.shape[1] + group_in * kernel_d * kernel_h)
    if timing is not None and timing.shape[0] < 2:
        raise ValueError("engine: timing needs 2 entries")
    for t in range(num_threads):
        arrivals[t] = 0
    started = imgfilt_now()
    with nogil, parallel(num_threads=num_threads):
        tid = threadid()
        arrivals[tid] = imgfilt_now()
        thread_geometry = geometry  # private to the thread (see resident_rows)
        # Guided: big blocks of consecutive rows first (the ring reuses rows within a block),
        # smaller ones at the end, so a thread the OS preempts on a busy machine does not keep
        # the others waiting at the end of the loop as a static split does.
        for item in prange(n_items, schedule="guided", chunksize=min_rows):
            y = item % out_h
            t = item // out_h
            z = t % out_d
            t = t // out_d
            g = t % groups
            n = t // groups
            _output_row(x, taps, kernel_w, bias, out, out_u8, saturate, out_w, plane_map,
                        row_map, col_map, thread_geometry, group_out, n, g, z, y, sw, dw, ring, tags,
                        tap_offsets, tid, magnitude)
    if timing is not None:
        latest = started
        for t in range(num_threads):
            if arrivals[t] > latest:
                latest = arrivals[t]
        timing[0] = latest - started
        timing[1] = imgfilt_now() - started


cdef Py_ssize_t[:, ::1] _index_scratch(Py_ssize_t threads, Py_ssize_t rows):
    """Per-thread scratch for the ring offsets of one output row's taps and rows."""
    return cvarray(shape=(threads, max(rows, 1)), itemsize=sizeof(Py_ssize_t),
                   format="q" if sizeof(Py_ssize_t) == 8 else "i")


def magnitude_u8(const floating[:, ::1] responses, unsigned char[::1] out, int num_threads):
    """``out[i] = sqrt(sum_r responses[r, i]**2)`` rounded (ties to even) and clipped to 0..255:
    the gradient magnitude of an 8-bit image stored as 8 bits in the same pass. The caller
    guarantees finite responses."""
    cdef Py_ssize_t count = out.shape[0], n_responses = responses.shape[0]
    cdef Py_ssize_t i, r
    cdef floating total
    if responses.shape[1] != count or num_threads < 1 or num_threads > MAX_THREADS:
        raise ValueError("engine: responses and out differ in length, or no threads")
    with nogil:
        for i in prange(count, schedule="guided", chunksize=4096, num_threads=num_threads):
            total = 0
            for r in range(n_responses):
                total = total + responses[r, i] * responses[r, i]
            out[i] = _saturate(<floating>sqrt(total))


def magnitude(const floating[:, ::1] responses, floating[::1] out, int num_threads):
    """``out[i] = sqrt(sum_r responses[r, i]**2)``: gradient magnitudes in one parallel pass."""
    cdef Py_ssize_t count = out.shape[0], n_responses = responses.shape[0]
    cdef Py_ssize_t i, r
    cdef floating total
    if responses.shape[1] != count or num_threads < 1 or num_threads > MAX_THREADS:
        raise ValueError("engine: responses and out differ in length, or no threads")
    with nogil:
        for i in prange(count, schedule="guided", chunksize=4096, num_threads=num_threads):
            total = 0
            for r in range(n_responses):
                total = total + responses[r, i] * responses[r, i]
            out[i] = sqrt(total)
