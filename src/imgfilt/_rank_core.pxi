# The compiled rank filters: k-th smallest (median, percentile, minimum, maximum) over a flat
# footprint, for 3-D-shaped data (N, C, D, H, W); 1-D and 2-D problems come with unit axes.
#
# Included by _nonlinear.pyx and _nonlinear_avx2.pyx (setup.py compiles them with different
# instruction-set flags; imgfilt.rank picks the best one the CPU runs).
#
# The traversal is the linear engine's (_traversal.pxi, included below), kept apart from what a
# window computes:
#
# * padding arrives as three index maps (padded position -> input index, -1 for the constant), made
#   by imgfilt.padding for every mode and any pad width;
# * work is split by output rows (n, c, z, y) over threads (static schedule: each thread takes a
#   contiguous run of rows);
# * ``resident_rows`` makes the padded rows an output row reads resident in a per-thread ring,
#   tagged by which padded row they hold, so the next output row reuses the rows it shares;
# * a *window kernel* then computes the output row from ring offsets only: ``_row_taps_extreme``
#   (min/max over any footprint), ``_row_box_extreme`` (a box: rows combined, then van Herk /
#   Gil-Werman along the row), ``_row_network`` (a selection network, vectorised across LANES
#   outputs), ``_row_histogram`` (Huang's sliding histogram with coarse bins, 8- and 16-bit).
#
# Rows are kept in the data's own type (the linear ring converts to float as it reads), so a
# comparison is one vector instruction on 8-bit data. Floats with NaN and signed integers come
# as order-preserving unsigned keys (imgfilt.rank converts them).
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int imgfilt_rank_has_openmp(void) { return 1; }
    #else
    static int imgfilt_rank_has_openmp(void) { return 0; }
    #endif
    #ifndef IMGFILT_ISA
    #define IMGFILT_ISA "baseline"
    #endif
    /* Outputs computed together by a selection network: every comparator is a loop of LANES
       independent min/max pairs, which the compiler turns into whole vector instructions. */
    #define IMGFILT_LANES 64
    #define IMGFILT_CMPX(NAME, T)                                                   \\
        static inline void NAME(T *restrict a, T *restrict b) {                     \\
            for (int j = 0; j < IMGFILT_LANES; j++) {                               \\
                /* Both stored unconditionally: a store of "the old value" in one branch  \\
                   becomes a masked store that is 10x slower for floats. */             \\
                T x = a[j], y = b[j];                                               \\
                T low = x < y ? x : y, high = x < y ? y : x;                        \\
                a[j] = low;                                                         \\
                b[j] = high;                                                        \\
            }                                                                       \\
        }
    /* The median of a 3 x 3 box by sorted columns (see _row_median_3x3); restrict pointers,
       so that the compiler vectorises without alias checks. */
    #define IMGFILT_LOW(a, b) ((a) < (b) ? (a) : (b))
    #define IMGFILT_HIGH(a, b) ((a) < (b) ? (b) : (a))
    #define IMGFILT_MEDIAN3X3(NAME, T)                                                           \\
        static void NAME(const T *restrict r0, const T *restrict r1, const T *restrict r2,       \\
                         T *restrict lo, T *restrict mid, T *restrict hi, T *restrict out,       \\
                         Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) {               \\
            for (Py_ssize_t j = 0; j < padded_w; j++) {                                          \\
                T a = r0[j], b = r1[j], c = r2[j];                                               \\
                T s = IMGFILT_LOW(a, b), t = IMGFILT_HIGH(a, b);                                 \\
                lo[j] = IMGFILT_LOW(s, c);                                                       \\
                hi[j] = IMGFILT_HIGH(t, c);                                                      \\
                mid[j] = IMGFILT_HIGH(s, IMGFILT_LOW(t, c));                                     \\
            }                                                                                    \\
            for (Py_ssize_t j = 0; j < out_w; j++) {                                             \\
                T a = IMGFILT_HIGH(IMGFILT_HIGH(lo[j], lo[j + step]), lo[j + 2 * step]);         \\
                T c = IMGFILT_LOW(IMGFILT_LOW(hi[j], hi[j + step]), hi[j + 2 * step]);           \\
                T s = IMGFILT_LOW(mid[j], mid[j + step]);                                        \\
                T t = IMGFILT_HIGH(mid[j], mid[j + step]);                                       \\
                T b = IMGFILT_HIGH(s, IMGFILT_LOW(t, mid[j + 2 * step]));                        \\
                s = IMGFILT_LOW(a, b);                                                           \\
                t = IMGFILT_HIGH(a, b);                                                          \\
                out[j] = IMGFILT_HIGH(s, IMGFILT_LOW(t, c));                                     \\
            }                                                                                    \\
        }
    /* The median of a 5 x 5 box by sorted columns (see _row_median_5x5): each column of five
       sorted once (9 comparators), then the 85 comparators of tools/median_networks.py on the
       window's 25 sorted-column samples, straight-line code the compiler keeps in registers
       and vectorises across outputs. Wire 5 * c + i is the i-th smallest of column c. */
    #define IMGFILT_CMP(T, a, b) { T lo_ = IMGFILT_LOW(a, b); b = IMGFILT_HIGH(a, b); a = lo_; }
    #define IMGFILT_MEDIAN5X5(NAME, T)                                                               \\
        static void NAME(const T *restrict r0, const T *restrict r1, const T *restrict r2,           \\
                         const T *restrict r3, const T *restrict r4, T *restrict work,               \\
                         T *restrict out, Py_ssize_t padded_w, Py_ssize_t out_w,                     \\
                         Py_ssize_t step) {                                                          \\
            T *restrict s0 = work, *restrict s1 = work + padded_w;                                   \\
            T *restrict s2 = work + 2 * padded_w, *restrict s3 = work + 3 * padded_w;                \\
            T *restrict s4 = work + 4 * padded_w;                                                    \\
            for (Py_ssize_t j = 0; j < padded_w; j++) {                                              \\
                T v0 = r0[j], v1 = r1[j], v2 = r2[j], v3 = r3[j], v4 = r4[j];                        \\
                IMGFILT_CMP(T, v0, v1); IMGFILT_CMP(T, v3, v4); IMGFILT_CMP(T, v2, v4);              \\
                IMGFILT_CMP(T, v2, v3); IMGFILT_CMP(T, v1, v4); IMGFILT_CMP(T, v0, v3);              \\
                IMGFILT_CMP(T, v0, v2); IMGFILT_CMP(T, v1, v3); IMGFILT_CMP(T, v1, v2);              \\
                s0[j] = v0; s1[j] = v1; s2[j] = v2; s3[j] = v3; s4[j] = v4;                          \\
            }                                                                                        \\
            for (Py_ssize_t j = 0; j < out_w; j++) {                                                 \\
                T v0 = s0[j], v1 = s1[j], v2 = s2[j], v3 = s3[j], v4 = s4[j];                        \\
                Py_ssize_t a = j + step, b = j + 2 * step, c = j + 3 * step, d = j + 4 * step;       \\
                T v5 = s0[a], v6 = s1[a], v7 = s2[a], v8 = s3[a], v9 = s4[a];                        \\
                T v10 = s0[b], v11 = s1[b], v12 = s2[b], v13 = s3[b], v14 = s4[b];                   \\
                T v15 = s0[c], v16 = s1[c], v17 = s2[c], v18 = s3[c], v19 = s4[c];                   \\
                T v20 = s0[d], v21 = s1[d], v22 = s2[d], v23 = s3[d], v24 = s4[d];                   \\
                IMGFILT_CMP(T, v4, v5); IMGFILT_CMP(T, v14, v15); IMGFILT_CMP(T, v5, v7);            \\
                IMGFILT_CMP(T, v8, v10); IMGFILT_CMP(T, v9, v11); IMGFILT_CMP(T, v12, v14);          \\
                IMGFILT_CMP(T, v5, v6); IMGFILT_CMP(T, v9, v10); IMGFILT_CMP(T, v13, v14);           \\
                IMGFILT_CMP(T, v0, v4); IMGFILT_CMP(T, v1, v5); IMGFILT_CMP(T, v2, v6);              \\
                IMGFILT_CMP(T, v8, v12); IMGFILT_CMP(T, v10, v14); IMGFILT_CMP(T, v11, v15);         \\
                IMGFILT_CMP(T, v16, v20); IMGFILT_CMP(T, v17, v21); IMGFILT_CMP(T, v18, v22);        \\
                IMGFILT_CMP(T, v19, v23); IMGFILT_CMP(T, v2, v4); IMGFILT_CMP(T, v3, v5);            \\
                IMGFILT_CMP(T, v10, v12); IMGFILT_CMP(T, v11, v13); IMGFILT_CMP(T, v18, v20);        \\
                IMGFILT_CMP(T, v19, v21); IMGFILT_CMP(T, v1, v2); IMGFILT_CMP(T, v3, v4);            \\
                IMGFILT_CMP(T, v5, v6); IMGFILT_CMP(T, v9, v10); IMGFILT_CMP(T, v11, v12);           \\
                IMGFILT_CMP(T, v13, v14); IMGFILT_CMP(T, v17, v18); IMGFILT_CMP(T, v19, v20);        \\
                IMGFILT_CMP(T, v21, v22); IMGFILT_CMP(T, v0, v8); IMGFILT_CMP(T, v1, v9);            \\
                IMGFILT_CMP(T, v2, v10); IMGFILT_CMP(T, v3, v11); IMGFILT_CMP(T, v4, v12);           \\
                IMGFILT_CMP(T, v5, v13); IMGFILT_CMP(T, v6, v14); IMGFILT_CMP(T, v7, v15);           \\
                IMGFILT_CMP(T, v4, v8); IMGFILT_CMP(T, v5, v9); IMGFILT_CMP(T, v6, v10);             \\
                IMGFILT_CMP(T, v7, v11); IMGFILT_CMP(T, v20, v24); IMGFILT_CMP(T, v2, v4);           \\
                IMGFILT_CMP(T, v3, v5); IMGFILT_CMP(T, v6, v8); IMGFILT_CMP(T, v7, v9);              \\
                IMGFILT_CMP(T, v10, v12); IMGFILT_CMP(T, v11, v13); IMGFILT_CMP(T, v22, v24);        \\
                IMGFILT_CMP(T, v1, v2); IMGFILT_CMP(T, v3, v4); IMGFILT_CMP(T, v5, v6);              \\
                IMGFILT_CMP(T, v7, v8); IMGFILT_CMP(T, v9, v10); IMGFILT_CMP(T, v11, v12);           \\
                IMGFILT_CMP(T, v13, v14); IMGFILT_CMP(T, v21, v22); IMGFILT_CMP(T, v23, v24);        \\
                IMGFILT_CMP(T, v0, v16); IMGFILT_CMP(T, v1, v17); IMGFILT_CMP(T, v2, v18);           \\
                IMGFILT_CMP(T, v3, v19); IMGFILT_CMP(T, v4, v20); IMGFILT_CMP(T, v5, v21);           \\
                IMGFILT_CMP(T, v6, v22); IMGFILT_CMP(T, v7, v23); IMGFILT_CMP(T, v8, v24);           \\
                IMGFILT_CMP(T, v8, v16); IMGFILT_CMP(T, v9, v17); IMGFILT_CMP(T, v10, v18);          \\
                IMGFILT_CMP(T, v11, v19); IMGFILT_CMP(T, v12, v20); IMGFILT_CMP(T, v13, v21);        \\
                IMGFILT_CMP(T, v6, v10); IMGFILT_CMP(T, v7, v11); IMGFILT_CMP(T, v12, v16);          \\
                IMGFILT_CMP(T, v13, v17); IMGFILT_CMP(T, v10, v12); IMGFILT_CMP(T, v11, v13);        \\
                IMGFILT_CMP(T, v11, v12);                                                            \\
                out[j] = v12;                                                                        \\
            }                                                                                        \\
        }
    /* Elementwise extremes for the box kernels, restrict so that they become vector min/max. */
    #define IMGFILT_EXTREMES(S, T)                                                               \\
        static void imgfilt_acc_low_##S(T *restrict acc, const T *restrict src, Py_ssize_t n) { \\
            for (Py_ssize_t j = 0; j < n; j++) { T x = acc[j], y = src[j]; acc[j] = IMGFILT_LOW(x, y); } } \\
        static void imgfilt_acc_high_##S(T *restrict acc, const T *restrict src, Py_ssize_t n) {\\
            for (Py_ssize_t j = 0; j < n; j++) { T x = acc[j], y = src[j]; acc[j] = IMGFILT_HIGH(x, y); } } \\
        static void imgfilt_shift_low_##S(T *restrict dst, const T *restrict src, Py_ssize_t n, \\
                                          Py_ssize_t d) {                                        \\
            for (Py_ssize_t j = 0; j < n; j++) dst[j] = IMGFILT_LOW(src[j], src[j + d]); }       \\
        static void imgfilt_shift_high_##S(T *restrict dst, const T *restrict src, Py_ssize_t n,\\
                                           Py_ssize_t d) {                                       \\
            for (Py_ssize_t j = 0; j < n; j++) dst[j] = IMGFILT_HIGH(src[j], src[j + d]); }
    IMGFILT_EXTREMES(u8, unsigned char)
    IMGFILT_EXTREMES(u16, unsigned short)
    IMGFILT_EXTREMES(u32, unsigned int)
    IMGFILT_EXTREMES(u64, unsigned long long)
    IMGFILT_EXTREMES(f32, float)
    IMGFILT_EXTREMES(f64, double)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_u8, unsigned char)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_u16, unsigned short)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_u32, unsigned int)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_u64, unsigned long long)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_f32, float)
    IMGFILT_MEDIAN3X3(imgfilt_median3x3_f64, double)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_u8, unsigned char)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_u16, unsigned short)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_u32, unsigned int)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_u64, unsigned long long)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_f32, float)
    IMGFILT_MEDIAN5X5(imgfilt_median5x5_f64, double)
    IMGFILT_CMPX(imgfilt_cmpx_u8, unsigned char)
    IMGFILT_CMPX(imgfilt_cmpx_u16, unsigned short)
    IMGFILT_CMPX(imgfilt_cmpx_u32, unsigned int)
    IMGFILT_CMPX(imgfilt_cmpx_u64, unsigned long long)
    IMGFILT_CMPX(imgfilt_cmpx_f32, float)
    IMGFILT_CMPX(imgfilt_cmpx_f64, double)
    """
    int imgfilt_rank_has_openmp() noexcept nogil
    const char *IMGFILT_ISA
    enum: LANES "IMGFILT_LANES"
    void imgfilt_cmpx_u8(unsigned char *a, unsigned char *b) noexcept nogil
    void imgfilt_cmpx_u16(unsigned short *a, unsigned short *b) noexcept nogil
    void imgfilt_cmpx_u32(unsigned int *a, unsigned int *b) noexcept nogil
    void imgfilt_cmpx_u64(unsigned long long *a, unsigned long long *b) noexcept nogil
    void imgfilt_cmpx_f32(float *a, float *b) noexcept nogil
    void imgfilt_cmpx_f64(double *a, double *b) noexcept nogil
    void imgfilt_acc_low_u8(unsigned char *acc, const unsigned char *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_u8(unsigned char *acc, const unsigned char *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_u8(unsigned char *dst, const unsigned char *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_u8(unsigned char *dst, const unsigned char *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_acc_low_u16(unsigned short *acc, const unsigned short *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_u16(unsigned short *acc, const unsigned short *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_u16(unsigned short *dst, const unsigned short *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_u16(unsigned short *dst, const unsigned short *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_acc_low_u32(unsigned int *acc, const unsigned int *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_u32(unsigned int *acc, const unsigned int *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_u32(unsigned int *dst, const unsigned int *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_u32(unsigned int *dst, const unsigned int *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_acc_low_u64(unsigned long long *acc, const unsigned long long *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_u64(unsigned long long *acc, const unsigned long long *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_u64(unsigned long long *dst, const unsigned long long *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_u64(unsigned long long *dst, const unsigned long long *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_acc_low_f32(float *acc, const float *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_f32(float *acc, const float *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_f32(float *dst, const float *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_f32(float *dst, const float *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_acc_low_f64(double *acc, const double *src, Py_ssize_t n) noexcept nogil
    void imgfilt_acc_high_f64(double *acc, const double *src, Py_ssize_t n) noexcept nogil
    void imgfilt_shift_low_f64(double *dst, const double *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_shift_high_f64(double *dst, const double *src, Py_ssize_t n, Py_ssize_t d) noexcept nogil
    void imgfilt_median5x5_u8(const unsigned char *r0, const unsigned char *r1, const unsigned char *r2,
                              const unsigned char *r3, const unsigned char *r4, unsigned char *work, unsigned char *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median5x5_u16(const unsigned short *r0, const unsigned short *r1, const unsigned short *r2,
                              const unsigned short *r3, const unsigned short *r4, unsigned short *work, unsigned short *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median5x5_u32(const unsigned int *r0, const unsigned int *r1, const unsigned int *r2,
                              const unsigned int *r3, const unsigned int *r4, unsigned int *work, unsigned int *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median5x5_u64(const unsigned long long *r0, const unsigned long long *r1, const unsigned long long *r2,
                              const unsigned long long *r3, const unsigned long long *r4, unsigned long long *work, unsigned long long *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median5x5_f32(const float *r0, const float *r1, const float *r2,
                              const float *r3, const float *r4, float *work, float *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median5x5_f64(const double *r0, const double *r1, const double *r2,
                              const double *r3, const double *r4, double *work, double *out,
                              Py_ssize_t padded_w, Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_u8(const unsigned char *r0, const unsigned char *r1,
                              const unsigned char *r2, unsigned char *lo, unsigned char *mid,
                              unsigned char *hi, unsigned char *out, Py_ssize_t padded_w,
                              Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_u16(const unsigned short *r0, const unsigned short *r1,
                               const unsigned short *r2, unsigned short *lo, unsigned short *mid,
                               unsigned short *hi, unsigned short *out, Py_ssize_t padded_w,
                               Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_u32(const unsigned int *r0, const unsigned int *r1,
                               const unsigned int *r2, unsigned int *lo, unsigned int *mid,
                               unsigned int *hi, unsigned int *out, Py_ssize_t padded_w,
                               Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_u64(const unsigned long long *r0, const unsigned long long *r1,
                               const unsigned long long *r2, unsigned long long *lo,
                               unsigned long long *mid, unsigned long long *hi,
                               unsigned long long *out, Py_ssize_t padded_w,
                               Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_f32(const float *r0, const float *r1, const float *r2, float *lo,
                               float *mid, float *hi, float *out, Py_ssize_t padded_w,
                               Py_ssize_t out_w, Py_ssize_t step) noexcept nogil
    void imgfilt_median3x3_f64(const double *r0, const double *r1, const double *r2, double *lo,
                               double *mid, double *hi, double *out, Py_ssize_t padded_w,
                               Py_ssize_t out_w, Py_ssize_t step) noexcept nogil


ctypedef unsigned char u8_t
ctypedef unsigned short u16_t
ctypedef unsigned int u32_t
ctypedef unsigned long long u64_t

ctypedef fused rank_t:
    u8_t
    u16_t
    u32_t
    u64_t
    float
    double

# The shared traversal's input and ring types (_traversal.pxi): both are ``rank_t`` here (rows
# are kept in the data's own type); the other combinations compile to empty bodies.
ctypedef fused source_t:
    u8_t
    u16_t
    u32_t
    u64_t
    float
    double

ctypedef fused ring_t:
    u8_t
    u16_t
    u32_t
    u64_t
    float
    double

include "_traversal.pxi"


# Window kernels (the ``method`` argument of rank_rows).
cdef enum:
    TAPS_MIN = 0
    TAPS_MAX = 1
    BOX_MIN = 2
    BOX_MAX = 3
    NETWORK = 4
    HISTOGRAM = 5
    COLUMNS_3X3 = 6
    VAN_HERK_MIN = 7
    VAN_HERK_MAX = 8
    COLUMNS_5X5 = 9
    BOX_ROWS_MIN = 10
    BOX_ROWS_MAX = 11
    # A box at most this wide is reduced along the row directly; wider ones by van Herk.


def has_openmp():
    """Return True when the rank kernels were compiled with OpenMP."""
    return bool(imgfilt_rank_has_openmp())


def instruction_set():
    """The instruction set this module was compiled for: "baseline", "avx2" or "avx512"."""
    return IMGFILT_ISA.decode()


def lanes():
    """Outputs a selection network computes at once (and extra columns each ring row needs)."""
    return LANES


cdef inline void _cmpx(rank_t *a, rank_t *b) noexcept nogil:
    """One comparator over LANES outputs: ``a`` gets the smaller, ``b`` the larger of each pair."""
    if rank_t is u8_t:
        imgfilt_cmpx_u8(a, b)
    elif rank_t is u16_t:
        imgfilt_cmpx_u16(a, b)
    elif rank_t is u32_t:
        imgfilt_cmpx_u32(a, b)
    elif rank_t is u64_t:
        imgfilt_cmpx_u64(a, b)
    elif rank_t is float:
        imgfilt_cmpx_f32(a, b)
    else:
        imgfilt_cmpx_f64(a, b)


cdef void _row_taps_extreme(const rank_t *ring, const Py_ssize_t *tap_off, Py_ssize_t n_taps,
                            bint maximum, rank_t *out, Py_ssize_t out_w) noexcept nogil:
    """Minimum (or maximum) over any footprint: LANES accumulators, one pass per tap."""
    cdef Py_ssize_t x0 = 0, j, t, base, count
    cdef rank_t acc[LANES]
    cdef rank_t v
    while x0 < out_w:
        base = tap_off[0] + x0
        for j in range(LANES):
            acc[j] = ring[base + j]
        for t in range(1, n_taps):
            base = tap_off[t] + x0
            if maximum:
                for j in range(LANES):
                    v = ring[base + j]
                    acc[j] = v if acc[j] < v else acc[j]
            else:
                for j in range(LANES):
                    v = ring[base + j]
                    acc[j] = v if v < acc[j] else acc[j]
        count = LANES if x0 + LANES <= out_w else out_w - x0
        memcpy(out + x0, acc, count * sizeof(rank_t))
        x0 += LANES


cdef inline void _accumulate(rank_t *acc, const rank_t *src, Py_ssize_t n,
                             bint maximum) noexcept nogil:
    """``acc = max(acc, src)`` (or min), elementwise."""
    if rank_t is u8_t:
        if maximum:
            imgfilt_acc_high_u8(acc, src, n)
        else:
            imgfilt_acc_low_u8(acc, src, n)
    elif rank_t is u16_t:
        if maximum:
            imgfilt_acc_high_u16(acc, src, n)
        else:
            imgfilt_acc_low_u16(acc, src, n)
    elif rank_t is u32_t:
        if maximum:
            imgfilt_acc_high_u32(acc, src, n)
        else:
            imgfilt_acc_low_u32(acc, src, n)
    elif rank_t is u64_t:
        if maximum:
            imgfilt_acc_high_u64(acc, src, n)
        else:
            imgfilt_acc_low_u64(acc, src, n)
    elif rank_t is float:
        if maximum:
            imgfilt_acc_high_f32(acc, src, n)
        else:
            imgfilt_acc_low_f32(acc, src, n)
    else:
        if maximum:
            imgfilt_acc_high_f64(acc, src, n)
        else:
            imgfilt_acc_low_f64(acc, src, n)


cdef inline void _shifted(rank_t *dst, const rank_t *src, Py_ssize_t n, Py_ssize_t d,
                          bint maximum) noexcept nogil:
    """``dst[j] = max(src[j], src[j + d])`` (or min) for ``j < n``."""
    if rank_t is u8_t:
        if maximum:
            imgfilt_shift_high_u8(dst, src, n, d)
        else:
            imgfilt_shift_low_u8(dst, src, n, d)
    elif rank_t is u16_t:
        if maximum:
            imgfilt_shift_high_u16(dst, src, n, d)
        else:
            imgfilt_shift_low_u16(dst, src, n, d)
    elif rank_t is u32_t:
        if maximum:
            imgfilt_shift_high_u32(dst, src, n, d)
        else:
            imgfilt_shift_low_u32(dst, src, n, d)
    elif rank_t is u64_t:
        if maximum:
            imgfilt_shift_high_u64(dst, src, n, d)
        else:
            imgfilt_shift_low_u64(dst, src, n, d)
    elif rank_t is float:
        if maximum:
            imgfilt_shift_high_f32(dst, src, n, d)
        else:
            imgfilt_shift_low_f32(dst, src, n, d)
    else:
        if maximum:
            imgfilt_shift_high_f64(dst, src, n, d)
        else:
            imgfilt_shift_low_f64(dst, src, n, d)


cdef void _row_box_doubling(const rank_t *ring, const Py_ssize_t *row_off, Py_ssize_t n_rows,
                            Py_ssize_t columns, Py_ssize_t step, bint maximum, rank_t *work,
                            rank_t *out, Py_ssize_t out_w) noexcept nogil:
    """Minimum (or maximum) over a box of ``columns`` columns (``step`` samples apart).

    Its rows are combined elementwise; along the row, windows of ``w`` columns are combined
    with a copy ``w`` columns on into windows of ``2 w`` until the next doubling would pass the
    box, and a last combination of two overlapping windows gives the box: ``ceil(log2(columns))``
    elementwise passes, each a vector min/max over the row.
    """
    cdef Py_ssize_t span = out_w + (columns - 1) * step
    cdef Py_ssize_t r, width = 1, length = span
    cdef rank_t *current = work
    cdef rank_t *other = work + span
    cdef rank_t *swap
    memcpy(current, ring + row_off[0], span * sizeof(rank_t))
    for r in range(1, n_rows):
        _accumulate(current, ring + row_off[r], span, maximum)
    while 2 * width <= columns:
        length -= width * step
        _shifted(other, current, length, width * step, maximum)
        swap = current
        current = other
        other = swap
        width *= 2
    if width == columns:
        memcpy(out, current, out_w * sizeof(rank_t))
    else:
        _shifted(out, current, out_w, (columns - width) * step, maximum)


cdef void _box_level(const rank_t *ring, const Py_ssize_t *row_off, Py_ssize_t plane,
                     Py_ssize_t kernel_h, Py_ssize_t y, Py_ssize_t r, Py_ssize_t level,
                     Py_ssize_t plane_key, Py_ssize_t columns, Py_ssize_t step, bint maximum,
                     rank_t *levels, Py_ssize_t *level_tags, Py_ssize_t n_slots,
                     rank_t *scratch, Py_ssize_t out_w) noexcept nogil:
    """Make ``L[level][r]`` ready: the extreme of padded rows ``r .. r + 2**level - 1`` (of
    plane ``plane`` of the window), each reduced along the row over the box's columns.

    Level 0 is one resident row reduced along the row (``_row_box_doubling``); level ``l`` is
    the elementwise extreme of two rows of level ``l - 1``. Rows of a level cycle through
    ``kernel_h`` slots per plane, tagged with the padded row they hold (``plane_key + r``), so
    the next output row finds those it shares with this one and computes one new row a level.
    """
    cdef Py_ssize_t slot = level * n_slots + plane * kernel_h + r % kernel_h
    cdef Py_ssize_t half, low, high
    cdef rank_t *dest = levels + slot * out_w
    if level_tags[slot] == plane_key + r:
        return
    if level == 0:
        _row_box_doubling(ring, row_off + plane * kernel_h + (r - y), 1, columns, step, maximum,
                          scratch, dest, out_w)
    else:
        half = 1 << (level - 1)
        _box_level(ring, row_off, plane, kernel_h, y, r, level - 1, plane_key, columns, step,
                   maximum, levels, level_tags, n_slots, scratch, out_w)
        _box_level(ring, row_off, plane, kernel_h, y, r + half, level - 1, plane_key, columns,
                   step, maximum, levels, level_tags, n_slots, scratch, out_w)
        low = ((level - 1) * n_slots + plane * kernel_h + r % kernel_h) * out_w
        high = ((level - 1) * n_slots + plane * kernel_h + (r + half) % kernel_h) * out_w
        _shifted(dest, levels + low, out_w, high - low, maximum)
    level_tags[slot] = plane_key + r


cdef void _row_box_rows(const rank_t *ring, const Py_ssize_t *row_off, Py_ssize_t kernel_d,
                        Py_ssize_t kernel_h, Py_ssize_t y, Py_ssize_t first_plane_key,
                        Py_ssize_t plane_stride, Py_ssize_t columns, Py_ssize_t step,
                        bint maximum, rank_t *work, Py_ssize_t padded_w,
                        Py_ssize_t *level_tags, rank_t *out, Py_ssize_t out_w) noexcept nogil:
    """Minimum (or maximum) over a box, the rows shared between output rows.

    Each padded row is reduced along the row once (``log2`` of the columns vector passes) and
    kept; down the columns, rows are combined by doubling (level ``l`` holds the extreme of
    ``2**l`` consecutive rows), so an output row costs one new row per level and a last
    combination of two overlapping level-``T`` rows (``2**T <= kernel_h``): about
    ``log2(kernel_h) + log2(columns) + 2`` passes over the row instead of ``kernel_h + log2``.
    ``work`` holds ``2 * padded_w`` of scratch then the levels; ``level_tags`` (-1 on a thread's
    first row) what each level slot holds.
    """
    cdef Py_ssize_t top = 0, plane, a, b, n_slots = kernel_d * kernel_h, key
    cdef rank_t *levels = work + 2 * padded_w
    while (2 << top) <= kernel_h:
        top += 1
    for plane in range(kernel_d):
        key = first_plane_key + plane * plane_stride
        _box_level(ring, row_off, plane, kernel_h, y, y, top, key, columns, step, maximum,
                   levels, level_tags, n_slots, work, out_w)
        _box_level(ring, row_off, plane, kernel_h, y, y + kernel_h - (1 << top), top, key,
                   columns, step, maximum, levels, level_tags, n_slots, work, out_w)
        a = (top * n_slots + plane * kernel_h + y % kernel_h) * out_w
        b = (top * n_slots + plane * kernel_h + (y + kernel_h - (1 << top)) % kernel_h) * out_w
        if plane == 0:
            _shifted(out, levels + a, out_w, b - a, maximum)
        else:
            _accumulate(out, levels + a, out_w, maximum)
            _accumulate(out, levels + b, out_w, maximum)


cdef void _row_box_extreme(const rank_t *ring, const Py_ssize_t *row_off, Py_ssize_t n_rows,
                           Py_ssize_t kernel_w, bint maximum, rank_t *work, rank_t *out,
                           Py_ssize_t out_w) noexcept nogil:
    """Minimum (or maximum) over a box: combine its rows elementwise, then reduce along the row
    by van Herk / Gil-Werman (columns adjacent, ``step`` 1): prefix
    extremes ``g`` and suffix extremes ``h`` within blocks of ``kernel_w`` samples give every
    window as ``h[x]`` op ``g[x + kernel_w - 1]`` (three comparisons a sample, whatever the width).
    """
    cdef Py_ssize_t span = out_w + kernel_w - 1
    cdef rank_t *rows = work
    cdef rank_t *g = work + span
    cdef rank_t *h = work + 2 * span
    cdef Py_ssize_t r, j, k, start, stop
    cdef const rank_t *src
    cdef rank_t v, a
    memcpy(rows, ring + row_off[0], span * sizeof(rank_t))
    for r in range(1, n_rows):
        _accumulate(rows, ring + row_off[r], span, maximum)
    start = 0
    while start < span:
        stop = start + kernel_w if start + kernel_w < span else span
        g[start] = rows[start]
        h[stop - 1] = rows[stop - 1]
        if maximum:
            for j in range(start + 1, stop):
                v = rows[j]
                g[j] = v if g[j - 1] < v else g[j - 1]
            for j in range(stop - 2, start - 1, -1):
                v = rows[j]
                h[j] = v if h[j + 1] < v else h[j + 1]
        else:
            for j in range(start + 1, stop):
                v = rows[j]
                g[j] = v if v < g[j - 1] else g[j - 1]
            for j in range(stop - 2, start - 1, -1):
                v = rows[j]
                h[j] = v if v < h[j + 1] else h[j + 1]
        start = stop
    for j in range(out_w):
        v = g[j + kernel_w - 1]
        a = h[j]
        if maximum:
            out[j] = v if a < v else a
        else:
            out[j] = v if v < a else a


cdef void _row_median_3x3(const rank_t *r0, const rank_t *r1, const rank_t *r2, rank_t *work,
                          Py_ssize_t padded_w, rank_t *out, Py_ssize_t out_w,
                          Py_ssize_t step) noexcept nogil:
    """Median of a 3 x 3 box by sorted columns: each column of three is sorted once (and shared
    by the three windows that hold it); a window's median is then the median of the largest of
    its column minima, the median of its column medians and the smallest of its column maxima.
    The window's columns are ``step`` samples apart (the channel count of interleaved rows).
    """
    cdef rank_t *lo = work
    cdef rank_t *mid = work + padded_w
    cdef rank_t *hi = work + 2 * padded_w
    if rank_t is u8_t:
        imgfilt_median3x3_u8(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)
    elif rank_t is u16_t:
        imgfilt_median3x3_u16(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)
    elif rank_t is u32_t:
        imgfilt_median3x3_u32(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)
    elif rank_t is u64_t:
        imgfilt_median3x3_u64(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)
    elif rank_t is float:
        imgfilt_median3x3_f32(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)
    else:
        imgfilt_median3x3_f64(r0, r1, r2, lo, mid, hi, out, padded_w, out_w, step)


cdef void _row_median_5x5(const rank_t *ring, const Py_ssize_t *row_off, rank_t *work,
                          Py_ssize_t padded_w, rank_t *out, Py_ssize_t out_w,
                          Py_ssize_t step) noexcept nogil:
    """Median of a 5 x 5 box by sorted columns: each column of five is sorted once (shared by
    the five windows that hold it), then a network of 85 comparators that knows the columns
    are sorted (tools/median_networks.py) selects each window's median, straight-line code
    vectorised across outputs. ``work`` holds the five sorted rows (``5 * padded_w``).
    """
    if rank_t is u8_t:
        imgfilt_median5x5_u8(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                             ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                             step)
    elif rank_t is u16_t:
        imgfilt_median5x5_u16(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                              ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                              step)
    elif rank_t is u32_t:
        imgfilt_median5x5_u32(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                              ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                              step)
    elif rank_t is u64_t:
        imgfilt_median5x5_u64(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                              ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                              step)
    elif rank_t is float:
        imgfilt_median5x5_f32(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                              ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                              step)
    else:
        imgfilt_median5x5_f64(ring + row_off[0], ring + row_off[1], ring + row_off[2],
                              ring + row_off[3], ring + row_off[4], work, out, padded_w, out_w,
                              step)


cdef void _row_network(const rank_t *ring, const Py_ssize_t *tap_off, Py_ssize_t n_taps,
                       const Py_ssize_t[:, ::1] network, Py_ssize_t rank, rank_t *buf,
                       rank_t *out, Py_ssize_t out_w) noexcept nogil:
    """The ``rank``-th smallest of each window by a selection network, LANES outputs at a time.

    ``buf`` holds one vector of LANES samples per tap; each comparator ``(a, b)`` puts the
    smaller of each pair in vector ``a``; afterwards vector ``rank`` holds the results.
    """
    cdef Py_ssize_t n_comparators = network.shape[0]
    cdef Py_ssize_t x0 = 0, t, i, count
    while x0 < out_w:
        for t in range(n_taps):
            memcpy(buf + t * LANES, ring + tap_off[t] + x0, LANES * sizeof(rank_t))
        for i in range(n_comparators):
            _cmpx(buf + network[i, 0] * LANES, buf + network[i, 1] * LANES)
        count = LANES if x0 + LANES <= out_w else out_w - x0
        memcpy(out + x0, buf + rank * LANES, count * sizeof(rank_t))
        x0 += LANES


cdef void _row_histogram(const rank_t *ring, const Py_ssize_t *tap_off, Py_ssize_t n_taps,
                         const Py_ssize_t *add_off, Py_ssize_t n_add,
                         const Py_ssize_t *rem_off, Py_ssize_t n_rem, Py_ssize_t rank,
                         int *hist, int *coarse, int shift, rank_t *out,
                         Py_ssize_t out_w) noexcept nogil:
    """The ``rank``-th smallest of each window by Huang's sliding histogram (8- and 16-bit).

    Moving one column along, only the samples leaving (``rem_off``) and entering (``add_off``)
    the footprint update the histogram. The answer is tracked on two levels: the coarse bin
    ``cm`` (``1 << shift`` values) holding it, with ``below_c`` samples under that bin, moves
    from the previous one; inside it, the fine bin ``m`` (``below`` samples under it) moves from
    the previous answer when the coarse bin stayed, else is found from the nearer end of the
    coarse bin. ``hist`` and ``coarse`` are zero on entry and on return.
    """
    cdef Py_ssize_t x, t, block = 1 << shift
    cdef Py_ssize_t cm = 0, below_c = 0, m = 0, below = 0, previous
    cdef Py_ssize_t v
    if not (rank_t is u8_t or rank_t is u16_t):
        return
    for t in range(n_taps):
        v = ring[tap_off[t]]
        hist[v] += 1
        coarse[v >> shift] += 1
    for x in range(out_w):
        if x > 0:
            for t in range(n_rem):
                v = ring[rem_off[t] + x]
                hist[v] -= 1
                coarse[v >> shift] -= 1
                below_c -= (v >> shift) < cm
                below -= v < m
            for t in range(n_add):
                v = ring[add_off[t] + x]
                hist[v] += 1
                coarse[v >> shift] += 1
                below_c += (v >> shift) < cm
                below += v < m
        previous = cm
        while below_c > rank:
            cm -= 1
            below_c -= coarse[cm]
        while below_c + coarse[cm] <= rank:
            below_c += coarse[cm]
            cm += 1
        if cm != previous or x == 0:
            if rank - below_c < below_c + coarse[cm] - rank:
                m = cm << shift
                below = below_c
            else:
                m = (cm + 1) << shift
                below = below_c + coarse[cm]
        while below > rank:
            m -= 1
            below -= hist[m]
        while below + hist[m] <= rank:
            below += hist[m]
            m += 1
        out[x] = <rank_t>m
    # Leave the histogram empty for the next row: remove the last window's samples.
    for t in range(n_taps):
        v = ring[tap_off[t] + out_w - 1]
        hist[v] -= 1
        coarse[v >> shift] -= 1


cdef Py_ssize_t _out_of_range(const Py_ssize_t[::1] values, Py_ssize_t low,
                              Py_ssize_t high) noexcept nogil:
    """Number of entries outside ``low .. high - 1``."""
    cdef Py_ssize_t j, bad = 0
    for j in range(values.shape[0]):
        if values[j] < low or values[j] >= high:
            bad += 1
    return bad


cdef Py_ssize_t _bad_comparators(const Py_ssize_t[:, ::1] network, Py_ssize_t wires) noexcept nogil:
    """Number of comparators naming a wire outside ``0 .. wires - 1``."""
    cdef Py_ssize_t i, j, bad = 0
    for i in range(network.shape[0]):
        for j in range(network.shape[1]):
            if network[i, j] < 0 or network[i, j] >= wires:
                bad += 1
    return bad


def rank_rows(const rank_t[:, :, :, :, ::1] x, rank_t[:, :, :, :, ::1] out,
              const rank_t[::1] cval, tuple kernel_shape,
              const Py_ssize_t[::1] tap_row, const Py_ssize_t[::1] tap_col,
              int method, Py_ssize_t rank, const Py_ssize_t[:, ::1] network,
              const Py_ssize_t[::1] add_row, const Py_ssize_t[::1] add_col,
              const Py_ssize_t[::1] rem_row, const Py_ssize_t[::1] rem_col,
              const Py_ssize_t[::1] plane_map, const Py_ssize_t[::1] row_map,
              const Py_ssize_t[::1] col_map, Py_ssize_t pad_left,
              rank_t[:, ::1] ring, Py_ssize_t[:, ::1] tags, rank_t[:, ::1] work,
              int[:, ::1] hist, Py_ssize_t[:, ::1] offsets, int num_threads,
              Py_ssize_t step=1):
    """Rank-filter ``x (N, C, D, H, W)`` into ``out (N, C, Do, Ho, Wo)``, stride 1.

    The footprint lies in a ``kernel_shape (KD, KH, KW)`` box; tap ``t`` reads padded row
    ``tap_row[t] = kd * KH + kh`` at column offset ``tap_col[t]`` (``kw``; ``kw * C`` for rows
    of ``C`` interleaved channels, with ``KW`` the span ``(kw_max) * C + 1``; COLUMNS_3X3 then
    reads columns ``(KW - 1) / 2`` apart). ``method`` is the window
    kernel (TAPS_MIN 0, TAPS_MAX 1, BOX_MIN 2, BOX_MAX 3 (by doubling), NETWORK 4,
    HISTOGRAM 5, COLUMNS_3X3 6 (the median of a 3 x 3 box), VAN_HERK_MIN 7, VAN_HERK_MAX 8,
    COLUMNS_5X5 9 (the median of a 5 x 5 box; ``work`` >= 5 * len(col_map)), BOX_ROWS_MIN 10,
    BOX_ROWS_MAX 11).
    ``step`` is the distance between a window's neighbouring columns (the channel count of
    interleaved rows; 1 otherwise). NETWORK applies
    the comparators ``network (M, 2)`` and takes sample ``rank``; HISTOGRAM takes the ``rank``-th
    smallest and slides with the entering taps (``add_row``, ``add_col``: column offsets at the new
    position) and leaving ones (``rem_row``, ``rem_col``: offsets minus one at the new position).
    ``plane_map``/``row_map``/``col_map`` give each padded position's input index (-1:
    ``cval[0]``). Scratch, per thread: ``ring (T, KD*KH*(len(col_map) + lanes()))`` (zeroed),
    ``tags (T, KD*KH)`` (-1), ``work (T, >= max(3 * len(col_map), n_taps * lanes()))``,
    ``hist (T, bins + bins >> shift)`` (zeroed; HISTOGRAM only, bins 256 or 65536),
    ``offsets (T, KD*KH + n_taps + n_add + n_rem)``. BOX_ROWS_MIN 10 and BOX_ROWS_MAX 11 are
    BOX_MIN/BOX_MAX keeping rows reduced along
    the row and down the columns between output rows: ``work`` then needs
    ``2 * len(col_map) + L * KD * KH * Wo`` and ``offsets`` ``L * KD * KH`` more entries, -1
    (``L = floor(log2(KH)) + 1`` levels).

    The shapes are checked here (cheaply, once) so that no call can index out of bounds.
    """
    cdef Py_ssize_t kernel_d = kernel_shape[0], kernel_h = kernel_shape[1]
    cdef Py_ssize_t kernel_w = kernel_shape[2]
    cdef Py_ssize_t n_taps = tap_row.shape[0], n_add = add_row.shape[0], n_rem = rem_row.shape[0]
    cdef Py_ssize_t n_rows = kernel_d * kernel_h
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t out_d = out.shape[2], out_h = out.shape[3], out_w = out.shape[4]
    cdef Py_ssize_t padded_w = col_map.shape[0], ring_width = padded_w + LANES
    cdef Py_ssize_t n_items, item, t, n, c, z, y, tid, shift = 0, bins = 0, i
    cdef rank_t fill = cval[0]
    cdef RowRing geometry, thread_geometry
    cdef rank_t *ring_row
    cdef rank_t *work_row
    cdef rank_t *out_row
    cdef Py_ssize_t *off
    cdef Py_ssize_t *row_off
    cdef Py_ssize_t *tap_off
    cdef Py_ssize_t *add_off
    cdef Py_ssize_t *rem_off
    cdef Py_ssize_t *level_tags
    cdef Py_ssize_t padded_d = plane_map.shape[0], padded_h = row_map.shape[0], levels = 1

    if min(kernel_d, kernel_h, kernel_w, num_threads, n_taps) < 1:
        raise ValueError("rank engine: kernel sizes, taps and threads must be >= 1")
    if method < TAPS_MIN or method > BOX_ROWS_MAX:
        raise ValueError("rank engine: unknown method")
    if (out.shape[0] != batch or out.shape[1] != channels
            or out_d != plane_map.shape[0] - kernel_d + 1 or out_h != row_map.shape[0] - kernel_h + 1
            or out_w != padded_w - kernel_w + 1 or min(out_d, out_h, out_w) < 1):
        raise ValueError("rank engine: output shape does not match the padded input and kernel")
    check_traversal(x.shape, plane_map, row_map, col_map, pad_left, "rank engine")
    if (tap_col.shape[0] != n_taps or add_col.shape[0] != n_add or rem_col.shape[0] != n_rem
            or _out_of_range(tap_row, 0, n_rows) or _out_of_range(add_row, 0, n_rows)
            or _out_of_range(rem_row, 0, n_rows) or _out_of_range(tap_col, 0, kernel_w)
            or _out_of_range(add_col, 0, kernel_w) or _out_of_range(rem_col, -1, kernel_w - 1)):
        raise ValueError("rank engine: a tap lies outside the kernel box")
    if rank < 0 or rank >= n_taps:
        raise ValueError("rank engine: rank outside the footprint")
    if cval.shape[0] < 1:
        raise ValueError("rank engine: cval must hold one value")
    if (ring.shape[0] < num_threads or tags.shape[0] < num_threads or work.shape[0] < num_threads
            or offsets.shape[0] < num_threads):
        raise ValueError("rank engine: fewer scratch rows than threads")
    if (ring.shape[1] != n_rows * ring_width or tags.shape[1] != n_rows
            or offsets.shape[1] < n_rows + n_taps + n_add + n_rem):
        raise ValueError("rank engine: scratch ring has the wrong shape")
    if method == NETWORK:
        if work.shape[1] < n_taps * LANES:
            raise ValueError("rank engine: network scratch too small")
        if network.shape[1] != 2 or _bad_comparators(network, n_taps):
            raise ValueError("rank engine: a comparator names a wire outside the footprint")
    if method == COLUMNS_3X3 and (kernel_d != 1 or kernel_h != 3 or kernel_w % 2 != 1
                                  or kernel_w < 3 or n_taps != 9 or rank != 4
                                  or work.shape[1] < 3 * padded_w):
        raise ValueError("rank engine: the sorted-columns kernel is the median of a 3 x 3 box")
    if method == COLUMNS_5X5 and (kernel_d != 1 or kernel_h != 5 or kernel_w % 4 != 1
                                  or kernel_w < 5 or n_taps != 25 or rank != 12
                                  or work.shape[1] < 5 * padded_w):
        raise ValueError("rank engine: the sorted-columns kernel is the median of a 5 x 5 box")
    if (method == COLUMNS_5X5 and (kernel_w - 1) // 4 != step) or (
            method == COLUMNS_3X3 and (kernel_w - 1) // 2 != step):
        raise ValueError("rank engine: the sorted-columns kernel's columns must lie step apart")
    if step < 1 or (kernel_w - 1) % step:
        raise ValueError("rank engine: step must be >= 1 and divide the kernel span")
    while (2 << (levels - 1)) <= kernel_h:
        levels += 1
    if (method == BOX_ROWS_MIN or method == BOX_ROWS_MAX) and (
            work.shape[1] < 2 * padded_w + levels * n_rows * out_w
            or offsets.shape[1] < n_rows + n_taps + n_add + n_rem + levels * n_rows):
        raise ValueError("rank engine: box scratch too small for the row levels")
    if (method == BOX_MIN or method == BOX_MAX or method == VAN_HERK_MIN or method == VAN_HERK_MAX
            or method == BOX_ROWS_MIN or method == BOX_ROWS_MAX):
        if (work.shape[1] < 3 * padded_w or n_taps != n_rows * ((kernel_w - 1) // step + 1)
                or ((method == VAN_HERK_MIN or method == VAN_HERK_MAX) and step != 1)):
            raise ValueError("rank engine: box scratch too small, the footprint is not a box, "
                             "or van Herk's columns are not adjacent")
    if method == HISTOGRAM:
        if rank_t is u8_t:
            bins, shift = 256, 4
        elif rank_t is u16_t:
            bins, shift = 65536, 8
        else:
            raise ValueError("rank engine: histograms need 8- or 16-bit data")
        if hist.shape[0] < num_threads or hist.shape[1] != bins + (bins >> shift):
            raise ValueError("rank engine: histogram scratch has the wrong shape")

    # One channel per output row, stride and dilation 1: the ring cycles over kernel_h rows.
    geometry = row_ring(1, kernel_d, kernel_h, 1, 1, 1, 1, kernel_h, ring_width, pad_left)
    n_items = batch * channels * out_d * out_h
    with nogil, parallel(num_threads=num_threads):
        tid = threadid()
        thread_geometry = geometry  # private to the thread (see resident_rows)
        ring_row = &ring[tid, 0]
        work_row = &work[tid, 0]
        off = &offsets[tid, 0]
        row_off = off
        tap_off = off + n_rows
        add_off = tap_off + n_taps
        rem_off = add_off + n_add
        level_tags = rem_off + n_rem
        for item in prange(n_items, schedule="static"):
            y = item % out_h
            t = item // out_h
            z = t % out_d
            t = t // out_d
            c = t % channels
            n = t // channels
            resident_rows(x, n, c, z, y, thread_geometry, plane_map, row_map, col_map, fill,
                          ring_row, &tags[tid, 0], row_off)
            for i in range(n_taps):
                tap_off[i] = row_off[tap_row[i]] + tap_col[i]
            out_row = &out[n, c, z, y, 0]
            if method == TAPS_MIN or method == TAPS_MAX:
                _row_taps_extreme(ring_row, tap_off, n_taps, method == TAPS_MAX, out_row, out_w)
            elif method == BOX_MIN or method == BOX_MAX:
                _row_box_doubling(ring_row, row_off, n_rows, (kernel_w - 1) // step + 1, step,
                                  method == BOX_MAX, work_row, out_row, out_w)
            elif method == BOX_ROWS_MIN or method == BOX_ROWS_MAX:
                _row_box_rows(ring_row, row_off, kernel_d, kernel_h, y,
                              ((n * channels + c) * padded_d + z) * padded_h, padded_h,
                              (kernel_w - 1) // step + 1, step, method == BOX_ROWS_MAX, work_row,
                              padded_w, level_tags, out_row, out_w)
            elif method == VAN_HERK_MIN or method == VAN_HERK_MAX:
                _row_box_extreme(ring_row, row_off, n_rows, kernel_w, method == VAN_HERK_MAX,
                                 work_row, out_row, out_w)
            elif method == COLUMNS_3X3:
                _row_median_3x3(ring_row + row_off[0], ring_row + row_off[1],
                                ring_row + row_off[2], work_row, padded_w, out_row, out_w,
                                (kernel_w - 1) // 2)
            elif method == COLUMNS_5X5:
                _row_median_5x5(ring_row, row_off, work_row, padded_w, out_row, out_w, step)
            elif method == NETWORK:
                _row_network(ring_row, tap_off, n_taps, network, rank, work_row, out_row, out_w)
            else:
                for i in range(n_add):
                    add_off[i] = row_off[add_row[i]] + add_col[i]
                for i in range(n_rem):
                    rem_off[i] = row_off[rem_row[i]] + rem_col[i]
                _row_histogram(ring_row, tap_off, n_taps, add_off, n_add, rem_off, n_rem, rank,
                               &hist[tid, 0], &hist[tid, bins], shift, out_row, out_w)
