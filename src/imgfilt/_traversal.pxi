# The traversal shared by the linear engine (_engine_core.pxi) and the rank kernels
# (_rank_core.pxi): which padded input rows are resident, kept apart from what a window computes.
#
# * Padding arrives as three index maps (padded position -> input index, -1 for the fill value: 0
#   for the linear engine, cval for the rank filters), made by imgfilt.padding for every mode and
#   any pad width; ``check_traversal`` checks them (and the ring tags' range) once per call.
# * ``resident_rows`` makes the padded rows one output row reads resident in a per-thread ring,
#   each slot tagged by which padded row it holds, so the next output row reuses the rows it
#   shares with this one; it says where each row starts in the thread's ring. The caller's window
#   kernel then reads the ring through those offsets only.
# * ``fill_row`` builds one padded row: the interior is a copy (converted to the ring's type),
#   only the pad columns go through the column map.
#
# The including module defines two fused types before including this file: ``source_t`` (the
# input's element type) and ``ring_t`` (the ring's). The linear engine converts as it reads (8-bit
# data into a float ring); the rank kernels keep the data's own type. Combinations that neither
# uses (an integer ring fed another type) compile to an empty body.
from libc.string cimport memcpy


cdef struct RowRing:
    # The padded rows one output row reads, per input channel: ``depth`` planes ``dilation_d``
    # apart from plane ``z * stride_d``, ``height`` rows ``dilation_h`` apart from row
    # ``y * stride_h``.
    Py_ssize_t channels
    Py_ssize_t depth
    Py_ssize_t height
    Py_ssize_t stride_d
    Py_ssize_t stride_h
    Py_ssize_t dilation_d
    Py_ssize_t dilation_h
    # Slots per (channel, plane) and samples per slot (the padded width plus what a window
    # kernel may read past it).
    Py_ssize_t rows
    Py_ssize_t width
    # True when ``rows`` holds a whole row span (``dilation_h * (height - 1) + 1``): slots then
    # cycle with the padded row index, so an output row finds the rows its predecessor loaded.
    # Otherwise (a large dilation) each tap row has a slot of its own.
    bint cycle
    # Padded columns before the input's first column.
    Py_ssize_t pad_left


cdef RowRing row_ring(Py_ssize_t channels, Py_ssize_t depth, Py_ssize_t height,
                      Py_ssize_t stride_d, Py_ssize_t stride_h, Py_ssize_t dilation_d,
                      Py_ssize_t dilation_h, Py_ssize_t rows, Py_ssize_t width,
                      Py_ssize_t pad_left) noexcept:
    """The ring of one call (see ``RowRing``); the caller has checked the values."""
    cdef RowRing geometry
    geometry.channels = channels
    geometry.depth = depth
    geometry.height = height
    geometry.stride_d = stride_d
    geometry.stride_h = stride_h
    geometry.dilation_d = dilation_d
    geometry.dilation_h = dilation_h
    geometry.rows = rows
    geometry.width = width
    geometry.cycle = rows >= dilation_h * (height - 1) + 1
    geometry.pad_left = pad_left
    return geometry


cdef Py_ssize_t _bad_map_entries(const Py_ssize_t[::1] index_map,
                                 Py_ssize_t length) noexcept nogil:
    """Number of entries that are neither -1 nor an index of an axis of ``length``."""
    cdef Py_ssize_t j, bad = 0
    for j in range(index_map.shape[0]):
        if index_map[j] < -1 or index_map[j] >= length:
            bad += 1
    return bad


cdef int check_traversal(const Py_ssize_t *shape, const Py_ssize_t[::1] plane_map,
                         const Py_ssize_t[::1] row_map, const Py_ssize_t[::1] col_map,
                         Py_ssize_t pad_left, str caller) except -1:
    """Raise ValueError unless the index maps fit an input of ``shape (N, C, D, H, W)`` (a
    memoryview's ``shape``).

    Every entry must be -1 or an index of its axis, the input's columns must fit the column map
    after ``pad_left`` pad columns, and the ring tags ``((n * C + c) * padded_d + pz) * padded_h
    + pr`` must not wrap around.
    """
    if pad_left < 0 or <object>pad_left + shape[4] > col_map.shape[0]:
        raise ValueError(f"{caller}: pad_left does not fit the column map")
    if (_bad_map_entries(plane_map, shape[2]) or _bad_map_entries(row_map, shape[3])
            or _bad_map_entries(col_map, shape[4])):
        raise ValueError(f"{caller}: an index map points outside the input")
    # In Python integers (exact at any size): a C product would wrap and let a bad call through.
    if <object>shape[0] * <object>shape[1] * plane_map.shape[0] * row_map.shape[0] >= 2 ** 62:
        raise ValueError(f"{caller}: too many padded rows to tag")
    return 0


cdef int fill_row(const source_t[:, :, :, :, ::1] x, Py_ssize_t n, Py_ssize_t c,
                  Py_ssize_t src_z, Py_ssize_t src_y, const Py_ssize_t[::1] col_map,
                  Py_ssize_t pad_left, ring_t fill, ring_t *row) except -1 nogil:
    """Write one padded input row (``len(col_map)`` samples) to ``row``.

    ``src_z`` or ``src_y`` -1 (a plane or row of the padding's constant) fills the row with
    ``fill``, as do the column map's -1 entries.
    """
    cdef Py_ssize_t width = x.shape[4]
    cdef Py_ssize_t padded_width = col_map.shape[0]
    cdef Py_ssize_t j, src
    # A combination no caller uses (an integer ring fed another type) keeps an empty body.
    if source_t is ring_t or ring_t is float or ring_t is double:
        if src_z < 0 or src_y < 0:
            for j in range(padded_width):
                row[j] = fill
            return 0
        # Only the pad columns go through the map; the interior is a straight copy.
        for j in range(pad_left):
            src = col_map[j]
            row[j] = <ring_t>x[n, c, src_z, src_y, src] if src >= 0 else fill
        if source_t is ring_t:
            if width > 0:
                memcpy(row + pad_left, &x[n, c, src_z, src_y, 0], width * sizeof(ring_t))
        else:
            for j in range(width):
                row[pad_left + j] = <ring_t>x[n, c, src_z, src_y, j]
        for j in range(pad_left + width, padded_width):
            src = col_map[j]
            row[j] = <ring_t>x[n, c, src_z, src_y, src] if src >= 0 else fill
    return 0


cdef int resident_rows(const source_t[:, :, :, :, ::1] x, Py_ssize_t n, Py_ssize_t first_channel,
                       Py_ssize_t z, Py_ssize_t y, RowRing geometry,
                       const Py_ssize_t[::1] plane_map, const Py_ssize_t[::1] row_map,
                       const Py_ssize_t[::1] col_map, ring_t fill, ring_t *ring,
                       Py_ssize_t *tags, Py_ssize_t *row_offsets) except -1 nogil:
    """Make the padded rows output row ``(n, z, y)`` reads resident in one thread's ring.

    Reads input channels ``first_channel ..`` (``geometry.channels`` of them). Row ``r = (i *
    depth + kd) * height + kh`` (channel ``first_channel + i``, padded plane ``z * stride_d + kd *
    dilation_d``, padded row ``y * stride_h + kh * dilation_h``) starts at ``row_offsets[r]`` in
    ``ring`` (the thread's slots, ``geometry.width`` samples each, one after the other).
    ``tags[slot]`` says which padded row a slot holds (-1: none yet).

    The ring, tags and offsets are the thread's own rows of the caller's scratch, given as
    pointers: memoryviews passed by value here would be copied for every output row. The
    geometry comes by value (each thread's own copy): through a pointer the compiler would
    reload every field for every row, since the tags might alias it.
    """
    cdef Py_ssize_t in_channels = x.shape[1]
    cdef Py_ssize_t padded_d = plane_map.shape[0], padded_h = row_map.shape[0]
    cdef Py_ssize_t channels = geometry.channels, depth = geometry.depth
    cdef Py_ssize_t height = geometry.height, rows = geometry.rows, width = geometry.width
    cdef Py_ssize_t z0 = z * geometry.stride_d, y0 = y * geometry.stride_h
    cdef Py_ssize_t dd = geometry.dilation_d, dh = geometry.dilation_h
    cdef Py_ssize_t pad_left = geometry.pad_left
    cdef bint cycle = geometry.cycle
    cdef Py_ssize_t i, c, kd, kh, pz, pr, slot, key, r = 0
    for i in range(channels):
        c = first_channel + i
        for kd in range(depth):
            pz = z0 + kd * dd
            for kh in range(height):
                pr = y0 + kh * dh
                slot = (i * depth + kd) * rows + (pr % rows if cycle else kh)
                key = ((n * in_channels + c) * padded_d + pz) * padded_h + pr
                if tags[slot] != key:
                    fill_row(x, n, c, plane_map[pz], row_map[pr], col_map, pad_left, fill,
                             ring + slot * width)
                    tags[slot] = key
                row_offsets[r] = slot * width
                r += 1
    return 0
