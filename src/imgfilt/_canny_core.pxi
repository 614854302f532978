# Canny's two nonlinear steps, for 2-D images (a unit depth axis) and 3-D volumes: non-maximum
# suppression along the gradient direction and hysteresis by connectivity. imgfilt.canny does the
# linear steps (Gaussian smoothing, gradients) with the linear engine.
#
# Suppression compares a sample's gradient magnitude with the magnitude interpolated at the two
# points where the line along its gradient leaves the 3 x 3 (x 3) neighbourhood: p +- g / max|g_k|.
# That point lies on a face (an edge, in 2-D) of the neighbourhood's cube; it is interpolated
# linearly on it. In 2-D this is scikit-image's bilinear suppression.
from libc.float cimport FLT_MAX
from libc.math cimport fabs

cdef enum:
    # Marks of canny_suppress / canny_hysteresis.
    NOT_EDGE = 0
    WEAK = 1
    STRONG = 2
    EDGE = 3


cdef inline float _magnitude_at(const float[:, :, ::1] magnitude, Py_ssize_t z, Py_ssize_t y,
                                Py_ssize_t x, float sz, float sy, float sx) noexcept nogil:
    """Magnitude interpolated at ``(z + sz, y + sy, x + sx)``; one of the offsets is +-1 and the
    others lie in [-1, 1], so the point is on a face of the sample's neighbourhood."""
    cdef Py_ssize_t z0 = z, y0 = y, x0 = x, dz = 0, dy = 0, dx = 0
    cdef float fz = 0, fy = 0, fx = 0, value
    # Whole offsets move the corner; fractional ones interpolate towards the next sample.
    if sz >= 1 or sz <= -1:
        z0 = z + (1 if sz > 0 else -1)
    elif sz != 0:
        dz = 1 if sz > 0 else -1
        fz = fabs(sz)
    if sy >= 1 or sy <= -1:
        y0 = y + (1 if sy > 0 else -1)
    elif sy != 0:
        dy = 1 if sy > 0 else -1
        fy = fabs(sy)
    if sx >= 1 or sx <= -1:
        x0 = x + (1 if sx > 0 else -1)
    elif sx != 0:
        dx = 1 if sx > 0 else -1
        fx = fabs(sx)
    # Linear along y then x (and z), in the order scikit-image's 2-D code uses: w * far + (1-w) * near.
    if dz == 0:
        if dy == 0:
            value = magnitude[z0, y0, x0 + dx] * fx + magnitude[z0, y0, x0] * (1 - fx)
        elif dx == 0:
            value = magnitude[z0, y0 + dy, x0] * fy + magnitude[z0, y0, x0] * (1 - fy)
        else:
            value = ((magnitude[z0, y0 + dy, x0 + dx] * fx + magnitude[z0, y0 + dy, x0] * (1 - fx)) * fy
                     + (magnitude[z0, y0, x0 + dx] * fx + magnitude[z0, y0, x0] * (1 - fx)) * (1 - fy))
        return value
    # A 3-D face: bilinear in its two fractional axes (one of fz, fy, fx is zero here).
    if dy == 0 and dx == 0:
        return magnitude[z0 + dz, y0, x0] * fz + magnitude[z0, y0, x0] * (1 - fz)
    if dy == 0:
        return ((magnitude[z0 + dz, y0, x0 + dx] * fx + magnitude[z0 + dz, y0, x0] * (1 - fx)) * fz
                + (magnitude[z0, y0, x0 + dx] * fx + magnitude[z0, y0, x0] * (1 - fx)) * (1 - fz))
    return ((magnitude[z0 + dz, y0 + dy, x0] * fy + magnitude[z0 + dz, y0, x0] * (1 - fy)) * fz
            + (magnitude[z0, y0 + dy, x0] * fy + magnitude[z0, y0, x0] * (1 - fy)) * (1 - fz))


cdef inline bint _is_ridge_2d(const float[:, :, ::1] magnitude, Py_ssize_t y, Py_ssize_t x,
                              float m, float gy, float gx) noexcept nogil:
    """``_magnitude_at`` for a 2-D image both ways along the gradient, unrolled: the larger of
    ``|gy|``, ``|gx|`` moves a whole sample, the other interpolates. The same float operations
    in the same order as the general code (also for a tie, inf and NaN), so the same marks."""
    cdef float ay = fabs(gy), ax = fabs(gx), f, before, after
    cdef Py_ssize_t sy, sx
    if not (ax > ay):
        # Along y a whole row; along x the fraction |gx / gy| towards the neighbour (a whole
        # sample on a tie, which the general code takes as weight 0 on a second sample).
        sy = 1 if gy > 0 else -1
        f = fabs(gx / ay)
        sx = 0 if f == 0 else (1 if gx > 0 else -1)
        if f >= 1:
            after = magnitude[0, y + sy, x + sx] * 0 + magnitude[0, y + sy, x + sx] * 1
            before = magnitude[0, y - sy, x - sx] * 0 + magnitude[0, y - sy, x - sx] * 1
        else:
            after = magnitude[0, y + sy, x + sx] * f + magnitude[0, y + sy, x] * (1 - f)
            before = magnitude[0, y - sy, x - sx] * f + magnitude[0, y - sy, x] * (1 - f)
        return after <= m and before <= m
    sx = 1 if gx > 0 else -1
    f = fabs(gy / ax)
    sy = 0 if f == 0 else (1 if gy > 0 else -1)
    after = magnitude[0, y + sy, x + sx] * f + magnitude[0, y, x + sx] * (1 - f)
    before = magnitude[0, y - sy, x - sx] * f + magnitude[0, y, x - sx] * (1 - f)
    return after <= m and before <= m


def canny_suppress(const float[:, :, ::1] gz, const float[:, :, ::1] gy,
                   const float[:, :, ::1] gx, const float[:, :, ::1] magnitude,
                   double low, double high, unsigned char[:, :, ::1] marks, int num_threads):
    """Mark each sample (D, H, W) that is a local maximum along its gradient.

    ``marks`` gets STRONG (2) where the magnitude is >= ``high``, WEAK (1) where >= ``low``
    (and > 0), NOT_EDGE (0) elsewhere and on the border (the outermost samples of every axis
    longer than one: what lies beyond is unknown). A unit depth axis is a 2-D image (``gz``
    is ignored).
    """
    cdef Py_ssize_t depth = magnitude.shape[0], height = magnitude.shape[1]
    cdef Py_ssize_t width = magnitude.shape[2]
    cdef Py_ssize_t item, z, y, x, n_items = depth * height
    cdef bint flat = depth == 1
    cdef float m, az, ay, ax, top, sz, sy, sx
    cdef bint ridge
    cdef float low_f = <float>low, high_f = <float>high
    cdef Py_ssize_t i
    for i in range(3):
        if (gz.shape[i] != magnitude.shape[i] or gy.shape[i] != magnitude.shape[i]
                or gx.shape[i] != magnitude.shape[i] or marks.shape[i] != magnitude.shape[i]):
            raise ValueError("canny engine: gradients, magnitude and marks differ in shape")
    if num_threads < 1:
        raise ValueError("canny engine: threads must be >= 1")
    if low_f <= 0:
        # A zero magnitude is never an edge.
        low_f = 1e-30
    with nogil:
        for item in prange(n_items, schedule="static", num_threads=num_threads):
            z = item // height
            y = item % height
            for x in range(width):
                marks[z, y, x] = NOT_EDGE
            if y == 0 or y == height - 1 or (not flat and (z == 0 or z == depth - 1)):
                continue
            if flat:
                for x in range(1, width - 1):
                    m = magnitude[0, y, x]
                    if not (m >= low_f):
                        continue
                    ay = fabs(gy[0, y, x])
                    ax = fabs(gx[0, y, x])
                    top = ax if ax > ay else ay
                    if not (top > 0):
                        continue
                    if top <= FLT_MAX:
                        ridge = _is_ridge_2d(magnitude, y, x, m, gy[0, y, x], gx[0, y, x])
                    else:  # an infinite gradient: the general code's NaN rules
                        sy = gy[0, y, x] / top
                        sx = gx[0, y, x] / top
                        ridge = (_magnitude_at(magnitude, 0, y, x, 0, sy, sx) <= m
                                 and _magnitude_at(magnitude, 0, y, x, 0, -sy, -sx) <= m)
                    if ridge:
                        marks[0, y, x] = STRONG if m >= high_f else WEAK
                continue
            for x in range(1, width - 1):
                m = magnitude[z, y, x]
                if not (m >= low_f):
                    continue
                az = 0 if flat else fabs(gz[z, y, x])
                ay = fabs(gy[z, y, x])
                ax = fabs(gx[z, y, x])
                top = az if az > ay else ay
                top = ax if ax > top else top
                if not (top > 0):
                    continue
                sz = 0 if flat else gz[z, y, x] / top
                sy = gy[z, y, x] / top
                sx = gx[z, y, x] / top
                if (_magnitude_at(magnitude, z, y, x, sz, sy, sx) <= m
                        and _magnitude_at(magnitude, z, y, x, -sz, -sy, -sx) <= m):
                    marks[z, y, x] = STRONG if m >= high_f else WEAK


def canny_hysteresis(unsigned char[:, :, ::1] marks, Py_ssize_t[::1] stack):
    """Keep the WEAK and STRONG samples connected to a STRONG one (8-connected in 2-D, 26 in 3-D).

    They become EDGE (3); ``stack`` is scratch of ``marks.size`` entries. Returns the edge count.
    """
    cdef Py_ssize_t depth = marks.shape[0], height = marks.shape[1], width = marks.shape[2]
    cdef Py_ssize_t top = 0, count = 0, index, z, y, x, nz, ny, nx, dz, dy, dx
    cdef Py_ssize_t sz, sy, sx
    cdef Py_ssize_t reach_z = 0 if depth == 1 else 1
    if stack.shape[0] < depth * height * width:
        raise ValueError("canny engine: the stack is smaller than the volume")
    with nogil:
        # The scan walks the samples in order (no division a sample: most are not edges);
        # only the samples taken from the stack are located by division.
        for sz in range(depth):
            for sy in range(height):
                for sx in range(width):
                    if marks[sz, sy, sx] != STRONG:
                        continue
                    marks[sz, sy, sx] = EDGE
                    count += 1
                    stack[0] = (sz * height + sy) * width + sx
                    top = 1
                    while top > 0:
                        top -= 1
                        index = stack[top]
                        z = index // (height * width)
                        y = (index // width) % height
                        x = index % width
                        for dz in range(-reach_z, reach_z + 1):
                            nz = z + dz
                            if nz < 0 or nz >= depth:
                                continue
                            for dy in range(-1, 2):
                                ny = y + dy
                                if ny < 0 or ny >= height:
                                    continue
                                for dx in range(-1, 2):
                                    nx = x + dx
                                    if nx < 0 or nx >= width:
                                        continue
                                    if marks[nz, ny, nx] == WEAK or marks[nz, ny, nx] == STRONG:
                                        marks[nz, ny, nx] = EDGE
                                        count += 1
                                        stack[top] = (nz * height + ny) * width + nx
                                        top += 1
    return count
