"""Compiled inner loops of the zonal engine (numba, GIL released, cached to __pycache__).

Each is checked against a maintained library in the tests (tests/test_engine.py):

- :func:`polygon_coverage`: the exact fraction of every cell of a window covered by a polygon, by
  signed-area accumulation (oracles: shapely's exact intersections, exactextract's coverage);
- :func:`zone_tally`: the same coverage, tallied per land-cover code in the same pass, with the
  covered pixels grouped by code (oracle: exactextract's class areas);
- :func:`sample_separable` (same CRS) and :func:`sample_warped` (another CRS): an auxiliary raster
  sampled at the centres of covered land-cover cells the way GDAL's warper does it (oracle:
  rasterio.warp / WarpedVRT).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# ----------------------------------------------------------------------------------- coverage


@njit(nogil=True, cache=True, inline="always")
def _deposit(acc, span, r, c, ncols, d, xm):
    """Add one sub-segment (signed height d, mid x xm in window columns, inside column c) to row r.

    The cells right of the segment gain d; cell c itself gains d x (c + 1 - xm), the part of the
    cell right of the line. Stored as differences along the row: a prefix sum restores the areas.
    ``span[r]`` keeps the first and last column touched: left of it the row is empty, right of it
    constant.
    """
    if c < 0:
        acc[r, 0] += d
        c = 0
    elif c < ncols:
        inside = d * (c + 1.0 - xm)
        acc[r, c] += inside
        acc[r, c + 1] += d - inside
    else:
        return
    if c < span[r, 0]:
        span[r, 0] = c
    if c + 1 > span[r, 1]:
        span[r, 1] = c + 1


@njit(nogil=True, cache=True)
def _accumulate_edge(acc, span, x0, y0, x1, y1, sign, nrows, ncols):
    """Signed exact areas of one polygon edge (window pixel coordinates, y down) into ``acc``."""
    if y0 == y1:
        return
    d_dir = sign
    if y0 > y1:  # walk downwards; the edge's direction becomes the sign
        x0, y0, x1, y1 = x1, y1, x0, y0
        d_dir = -sign
    r_first = max(0, int(math.floor(y0)))
    r_last = min(nrows - 1, int(math.ceil(y1)) - 1)
    dxdy = (x1 - x0) / (y1 - y0)
    for r in range(r_first, r_last + 1):
        ya = max(y0, float(r))
        yb = min(y1, r + 1.0)
        if yb <= ya:
            continue
        xa = x0 + (ya - y0) * dxdy
        xb = x0 + (yb - y0) * dxdy
        lo, hi = (xa, xb) if xa <= xb else (xb, xa)
        d = d_dir * (yb - ya)
        c_lo = int(math.floor(lo))
        if hi <= c_lo + 1.0:  # within one column (or a vertical edge)
            _deposit(acc, span, r, c_lo, ncols, d, 0.5 * (xa + xb))
            continue
        # Split at the integer x crossings; heights are proportional to x-lengths on a line.
        per_x = d / (hi - lo)
        if lo < 0.0:  # the part left of the window covers whole rows
            q = min(hi, 0.0)
            _deposit(acc, span, r, -1, ncols, per_x * (q - lo), 0.5 * (lo + q))
        c_first = max(c_lo, 0)
        c_end = min(int(math.ceil(hi)), ncols)  # the part right of the window adds nothing
        for c in range(c_first, c_end):
            p = max(lo, float(c))
            q = min(hi, c + 1.0)
            if q > p:
                _deposit(acc, span, r, c, ncols, per_x * (q - p), 0.5 * (p + q))


@njit(nogil=True, cache=True)
def _accumulate(xs, ys, ring_starts, ring_signs, col0, row0, nrows, ncols):
    """Per-row area differences of a polygon over a window, and each row's touched column span."""
    acc = np.zeros((nrows, ncols + 2), dtype=np.float64)
    span = np.empty((nrows, 2), dtype=np.int64)
    span[:, 0] = ncols + 1
    span[:, 1] = -1
    n_rings = ring_starts.size - 1
    for k in range(n_rings):
        s, e = ring_starts[k], ring_starts[k + 1]
        # Orientation: a ring whose shoelace area is positive (in x-right, y-down pixels) adds -1
        # inside; exteriors must add +1 and holes -1, whatever the file's winding order.
        area2 = 0.0
        for i in range(s, e - 1):
            area2 += xs[i] * ys[i + 1] - xs[i + 1] * ys[i]
        if area2 == 0.0:
            continue
        sign = -ring_signs[k] if area2 > 0.0 else ring_signs[k]
        for i in range(s, e - 1):
            _accumulate_edge(acc, span, xs[i] - col0, ys[i] - row0, xs[i + 1] - col0, ys[i + 1] - row0,
                             float(sign), nrows, ncols)
    return acc, span


@njit(nogil=True, cache=True)
def _fractions_in_place(acc, span, ncols):
    """Turn each row's area differences into covered fractions (prefix sums, in place); returns,
    per row, the column after its last covered cell (cells outside lo..end are 0)."""
    nrows = acc.shape[0]
    row_end = np.zeros(nrows, dtype=np.int64)
    for r in range(nrows):
        run = 0.0
        end = span[r, 0]
        for c in range(span[r, 0], ncols):
            if c <= span[r, 1]:
                run += acc[r, c]
            # Float round-off leaves |error| ~1e-15 around 0 and 1; coverage is a fraction.
            cov = 0.0 if run < 1e-12 else (1.0 if run > 1.0 else run)
            acc[r, c] = cov
            if cov > 0.0:
                end = c + 1
            elif c > span[r, 1]:
                break  # past the last edge and outside: the rest of the row is 0
        row_end[r] = end
    return row_end


@njit(nogil=True, cache=True)
def _coverage(xs, ys, ring_starts, ring_signs, col0, row0, nrows, ncols):
    acc, span = _accumulate(xs, ys, ring_starts, ring_signs, col0, row0, nrows, ncols)
    _fractions_in_place(acc, span, ncols)
    return acc[:, :ncols].copy()


def polygon_coverage(xs: np.ndarray, ys: np.ndarray, ring_starts: np.ndarray, ring_signs: np.ndarray,
                     col0: int, row0: int, nrows: int, ncols: int) -> np.ndarray:
    """Fraction (0..1) of each cell of a window covered by a (multi)polygon, exact.

    Parameters
    ----------
    xs, ys : ring vertices in pixel coordinates of the whole grid (column, row; y down), each ring
        closed (last vertex = first), rings concatenated
    ring_starts : offsets of each ring in ``xs``/``ys`` plus the end (length n_rings + 1)
    ring_signs : +1 for an exterior ring, -1 for a hole (any winding order)
    col0, row0, nrows, ncols : the window, in grid pixels

    Notes
    -----
    Each edge adds, row by row, the exact signed area of the trapezoid between it and the right edge
    of the window, split at cell boundaries; a prefix sum along each row turns those per-cell
    differences into the area of the polygon inside every cell (the accumulation rasteriser of
    font renderers, here in float64). Parts of the polygon outside the window are handled exactly:
    left of it they cover whole rows, above, below and right of it nothing.
    """
    return _coverage(xs, ys, ring_starts, ring_signs, float(col0), float(row0), nrows, ncols)


@njit(nogil=True, cache=True)
def zone_tally(xs, ys, ring_starts, ring_signs, col0, row0, codes, row_area, n_codes, class_area, class_cover,
               group):
    """Exact coverage of a zone over a window of codes, tallied per code in the same pass.

    Parameters
    ----------
    xs, ys, ring_starts, ring_signs : the zone's rings, as for :func:`polygon_coverage`
    col0, row0 : grid position of the window's first cell (float)
    codes : land-cover codes of the window (rows x cols view, any integer dtype)
    row_area : area of one cell in each row of the window [m^2]
    n_codes : codes 0 .. n_codes-1 are tallied; others go to slot n_codes ("out of range")
    class_area, class_cover : (n_codes + 1) accumulators [m^2] and [pixels], added to in place
    group : also return the covered pixels grouped by code (the services need them)

    Returns
    -------
    rows, cols, area_m2, code_starts : the covered pixels' window rows and columns and areas
        [m^2], grouped by code, in raster order within a code (pixels of code k are
        ``code_starts[k]:code_starts[k + 1]``; empty arrays unless ``group``).
    """
    nrows, ncols = codes.shape
    acc, span = _accumulate(xs, ys, ring_starts, ring_signs, col0, row0, nrows, ncols)
    row_end = _fractions_in_place(acc, span, ncols)
    counts = np.zeros(n_codes + 2, dtype=np.int64)
    for r in range(nrows):
        for c in range(span[r, 0], row_end[r]):
            cov = acc[r, c]
            if cov > 0.0:
                k = codes[r, c]
                slot = k if 0 <= k < n_codes else n_codes
                class_area[slot] += cov * row_area[r]
                class_cover[slot] += cov
                counts[slot + 1] += 1
    starts = np.cumsum(counts)
    n = starts[-1] if group else 0
    rows = np.empty(n, dtype=np.int32)
    cols = np.empty(n, dtype=np.int32)
    area = np.empty(n, dtype=np.float64)
    if not group:
        return rows, cols, area, starts
    fill = starts[:-1].copy()  # a counting sort: each code's pixels in raster order
    for r in range(nrows):
        for c in range(span[r, 0], row_end[r]):
            if acc[r, c] > 0.0:
                k = codes[r, c]
                slot = k if 0 <= k < n_codes else n_codes
                j = fill[slot]
                rows[j], cols[j], area[j] = r, c, acc[r, c] * row_area[r]
                fill[slot] = j + 1
    return rows, cols, area, starts


# -------------------------------------------------------------------------------- resampling

_MIN_WEIGHT = 1e-5  # GDAL: a bilinear sample whose valid neighbours weigh less than this is nodata


@njit(nogil=True, cache=True, inline="always")
def _bilinear_at(src, sx, sy, height, width, row_off, col_off):
    """GDAL's 4-sample bilinear at source pixel coordinate (sx, sy); NaN neighbours dropped.

    ``src`` holds rows row_off.. and columns col_off.. of the source raster (NaN = nodata);
    neighbours outside the full raster (height x width) are dropped and the weights renormalised,
    as GDAL does; a centre outside the raster or on a nodata source pixel is nodata.
    """
    if not (0.0 <= sx < width and 0.0 <= sy < height):
        return np.nan
    i0 = int(sx + 0.5) - 1  # = floor(sx - 0.5), as sx >= 0 (int() truncates: cheaper than floor)
    j0 = int(sy + 0.5) - 1
    fx = sx - 0.5 - i0
    fy = sy - 0.5 - j0
    if 0 <= i0 and i0 + 1 < width and 0 <= j0 and j0 + 1 < height:
        r, c = j0 - row_off, i0 - col_off
        v00, v01, v10, v11 = src[r, c], src[r, c + 1], src[r + 1, c], src[r + 1, c + 1]
        if v00 == v00 and v01 == v01 and v10 == v10 and v11 == v11:  # the common case: all valid
            return ((v00 * (1.0 - fx) + v01 * fx) * (1.0 - fy)) + ((v10 * (1.0 - fx) + v11 * fx) * fy)
    centre = src[int(sy) - row_off, int(sx) - col_off]
    if centre != centre:  # GDAL: a cell whose centre falls on a nodata source pixel is nodata
        return np.nan
    total = 0.0
    weight = 0.0
    for dj in range(2):
        j = j0 + dj
        if j < 0 or j >= height:
            continue
        wy = fy if dj == 1 else 1.0 - fy
        for di in range(2):
            i = i0 + di
            if i < 0 or i >= width:
                continue
            v = src[j - row_off, i - col_off]
            if v != v:
                continue
            w = (fx if di == 1 else 1.0 - fx) * wy
            total += v * w
            weight += w
    if weight == 1.0:
        return total
    if weight < _MIN_WEIGHT:
        return np.nan
    return total / weight


@njit(nogil=True, cache=True, inline="always")
def _nearest_at(src, sx, sy, height, width, row_off, col_off):
    if not (0.0 <= sx < width and 0.0 <= sy < height):
        return np.nan
    return src[int(sy) - row_off, int(sx) - col_off]


@njit(nogil=True, cache=True, inline="always")
def _sample_at(src, sx, sy, height, width, row_off, col_off, nearest, scale):
    """The value at (sx, sy), rounded to float32 (GDAL's output type) and times ``scale`` in float32,
    as a float32 raster times its scale would be."""
    if nearest:
        v = _nearest_at(src, sx, sy, height, width, row_off, col_off)
    else:
        v = _bilinear_at(src, sx, sy, height, width, row_off, col_off)
    return np.float32(v) * scale


@njit(nogil=True, cache=True)
def sample_separable(src, sx_cols, sy_rows, rows, cols, row_shift, col_shift, height, width, row_off, col_off,
                     nearest, scale, out):
    """Sample ``src`` at the centres of some cells of a grid whose columns and rows map to source
    columns and rows separately (same CRS, no rotation).

    Cell i is row ``rows[i] + row_shift``, column ``cols[i] + col_shift`` of the ``sy_rows`` /
    ``sx_cols`` arrays (source pixel coordinate of each row and column centre). Values as
    :func:`_sample_at` gives them.
    """
    for i in range(rows.size):
        out[i] = _sample_at(src, sx_cols[cols[i] + col_shift], sy_rows[rows[i] + row_shift], height, width,
                            row_off, col_off, nearest, scale)


COARSE_SHIFT = 4                  # exact coordinate transforms every 2**4 = 16 cells (another CRS)
COARSE_STEP = 1 << COARSE_SHIFT


@njit(nogil=True, cache=True)
def sample_warped(src, coarse_sx, coarse_sy, rows, cols, row_shift, col_shift, height, width, row_off, col_off,
                  nearest, scale, out):
    """Sample ``src`` at the centres of some cells of a grid in another CRS.

    ``coarse_sx``/``coarse_sy`` hold exact source pixel coordinates (from pyproj) at every
    COARSE_STEP-th row and column of the grid, from the cell (0, 0) of the coarse frame; cell i is
    ``rows[i] + row_shift``, ``cols[i] + col_shift`` away from that origin. Its coordinates are
    interpolated between the four surrounding exact points, first down the two coarse columns,
    then along the row (GDAL's approximate transformer interpolates along scanlines within 0.125
    source pixels; over 16 cells this is far closer). Cells come in raster order (those of one
    code do), so the interpolation down the columns is done once per row. Values as
    :func:`_sample_at` gives them.
    """
    inv = 1.0 / COARSE_STEP
    n_j = coarse_sx.shape[1]
    row_sx = np.empty(n_j)
    row_sy = np.empty(n_j)
    j_lo = (np.min(cols) + col_shift) >> COARSE_SHIFT if rows.size else 0
    j_hi = min(n_j - 1, ((np.max(cols) + col_shift) >> COARSE_SHIFT) + 1) if rows.size else 0
    last_r = -1
    for i in range(rows.size):
        r = rows[i] + row_shift
        if r != last_r:
            k = r >> COARSE_SHIFT
            ty = (r - (k << COARSE_SHIFT)) * inv
            for j in range(j_lo, j_hi + 1):
                row_sx[j] = (1.0 - ty) * coarse_sx[k, j] + ty * coarse_sx[k + 1, j]
                row_sy[j] = (1.0 - ty) * coarse_sy[k, j] + ty * coarse_sy[k + 1, j]
            last_r = r
        c = cols[i] + col_shift
        j = c >> COARSE_SHIFT
        tx = (c - (j << COARSE_SHIFT)) * inv
        sx = (1.0 - tx) * row_sx[j] + tx * row_sx[j + 1]
        sy = (1.0 - tx) * row_sy[j] + tx * row_sy[j + 1]
        out[i] = _sample_at(src, sx, sy, height, width, row_off, col_off, nearest, scale)


@njit(nogil=True, cache=True)
def gather(values, rows, cols, row_shift, col_shift, scale, out):
    """out[i] = values[rows[i] + row_shift, cols[i] + col_shift] * scale (float32 arithmetic)."""
    for i in range(rows.size):
        out[i] = values[rows[i] + row_shift, cols[i] + col_shift] * scale
