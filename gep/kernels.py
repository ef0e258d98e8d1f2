"""Compiled inner loops of the zonal engine (numba, GIL released, cached to __pycache__).

Three kernels, each checked against a maintained library in the tests (tests/test_engine.py):

- :func:`polygon_coverage`: the exact fraction of every cell of a window covered by a polygon, by
  signed-area accumulation (oracle: exactextract's coverage fractions);
- :func:`tally_window`: per-code sums of covered area and coverage in one zone window, and the
  covered pixels grouped by code (oracle: numpy bincount over exactextract's cells);
- :func:`bilinear_separable` (same CRS) and :func:`bilinear_warped` (another CRS): an auxiliary raster
  sampled at the land-cover cell centres the way GDAL's warper does it (oracle: rasterio.warp).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# ----------------------------------------------------------------------------------- coverage


@njit(nogil=True, cache=True, inline="always")
def _deposit(acc, r, c, ncols, d, xm):
    """Add one sub-segment (signed height d, mid x xm in window columns, inside column c) to row r.

    The cells right of the segment gain d; cell c itself gains d x (c + 1 - xm), the part of the
    cell right of the line. Stored as differences along the row: a prefix sum restores the areas.
    """
    if c < 0:
        acc[r, 0] += d
    elif c < ncols:
        inside = d * (c + 1.0 - xm)
        acc[r, c] += inside
        acc[r, c + 1] += d - inside


@njit(nogil=True, cache=True)
def _accumulate_edge(acc, x0, y0, x1, y1, sign, nrows, ncols):
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
            _deposit(acc, r, c_lo, ncols, d, 0.5 * (xa + xb))
            continue
        # Split at the integer x crossings; heights are proportional to x-lengths on a line.
        per_x = d / (hi - lo)
        if lo < 0.0:  # the part left of the window covers whole rows
            q = min(hi, 0.0)
            _deposit(acc, r, -1, ncols, per_x * (q - lo), 0.5 * (lo + q))
        c_first = max(c_lo, 0)
        c_end = min(int(math.ceil(hi)), ncols)  # the part right of the window adds nothing
        for c in range(c_first, c_end):
            p = max(lo, float(c))
            q = min(hi, c + 1.0)
            if q > p:
                _deposit(acc, r, c, ncols, per_x * (q - p), 0.5 * (p + q))


@njit(nogil=True, cache=True)
def _coverage_acc(xs, ys, ring_starts, ring_signs, col0, row0, nrows, ncols):
    acc = np.zeros((nrows, ncols + 2), dtype=np.float64)
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
            _accumulate_edge(acc, xs[i] - col0, ys[i] - row0, xs[i + 1] - col0, ys[i + 1] - row0,
                             float(sign), nrows, ncols)
    out = np.empty((nrows, ncols), dtype=np.float64)
    for r in range(nrows):
        run = 0.0
        for c in range(ncols):
            run += acc[r, c]
            # Float round-off leaves |error| ~1e-15 around 0 and 1; coverage is a fraction.
            out[r, c] = 0.0 if run < 1e-12 else (1.0 if run > 1.0 else run)
    return out


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
    return _coverage_acc(xs, ys, ring_starts, ring_signs, float(col0), float(row0), nrows, ncols)


# -------------------------------------------------------------------------------- tallying


@njit(nogil=True, cache=True)
def tally_window(codes, coverage, row_area, n_codes, class_area, class_cover):
    """Per-code area and coverage sums of one zone window; covered pixels grouped by code.

    Parameters
    ----------
    codes : land-cover codes of the window (rows x cols, any integer dtype)
    coverage : covered fraction of each cell (rows x cols)
    row_area : area of one cell in each row [m^2]
    n_codes : codes 0 .. n_codes-1 are tallied; others go to slot n_codes ("out of range")
    class_area, class_cover : (n_codes + 1) accumulators [m^2] and [pixels], added to in place

    Returns
    -------
    flat_index, area_m2, cover, code_starts : the covered pixels' flat window indices, areas [m^2]
        and coverage, grouped by code; pixels of code k are ``code_starts[k]:code_starts[k + 1]``.
    """
    nrows, ncols = codes.shape
    counts = np.zeros(n_codes + 2, dtype=np.int64)
    for r in range(nrows):
        for c in range(ncols):
            if coverage[r, c] > 0.0:
                k = codes[r, c]
                slot = k if 0 <= k < n_codes else n_codes
                counts[slot + 1] += 1
    starts = np.cumsum(counts)
    n = starts[-1]
    flat_index = np.empty(n, dtype=np.int64)
    area = np.empty(n, dtype=np.float64)
    cover = np.empty(n, dtype=np.float64)
    fill = starts[:-1].copy()
    for r in range(nrows):
        ra = row_area[r]
        for c in range(ncols):
            cov = coverage[r, c]
            if cov > 0.0:
                k = codes[r, c]
                slot = k if 0 <= k < n_codes else n_codes
                a = cov * ra
                class_area[slot] += a
                class_cover[slot] += cov
                j = fill[slot]
                flat_index[j] = r * ncols + c
                area[j] = a
                cover[j] = cov
                fill[slot] = j + 1
    return flat_index, area, cover, starts


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
    centre = src[int(math.floor(sy)) - row_off, int(math.floor(sx)) - col_off]
    if centre != centre:  # GDAL: a cell whose centre falls on a nodata source pixel is nodata
        return np.nan
    i0 = int(math.floor(sx - 0.5))
    j0 = int(math.floor(sy - 0.5))
    fx = sx - 0.5 - i0
    fy = sy - 0.5 - j0
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
    return src[int(math.floor(sy)) - row_off, int(math.floor(sx)) - col_off]


@njit(nogil=True, cache=True)
def bilinear_separable(src, sx, sy, height, width, row_off, col_off, nearest, out):
    """Sample ``src`` at every (sy[r], sx[c]) of a grid whose rows and columns map separately
    (same CRS, no rotation); writes float32 into ``out`` (len(sy) x len(sx))."""
    for r in range(sy.size):
        for c in range(sx.size):
            if nearest:
                out[r, c] = _nearest_at(src, sx[c], sy[r], height, width, row_off, col_off)
            else:
                out[r, c] = _bilinear_at(src, sx[c], sy[r], height, width, row_off, col_off)


@njit(nogil=True, cache=True)
def gather(values, flat_index, out):
    """out[i] = values.flat[flat_index[i]] (float32 in, float64 out)."""
    flat = values.ravel()
    for i in range(flat_index.size):
        out[i] = flat[flat_index[i]]


@njit(nogil=True, cache=True)
def bilinear_warped(src, coarse_sx, coarse_sy, row_pos, col_pos, height, width, row_off, col_off,
                    nearest, out):
    """Sample ``src`` at source coordinates known on a coarse grid of the destination cells.

    ``coarse_sx``/``coarse_sy`` hold exact source pixel coordinates (from pyproj) at destination
    rows ``row_pos`` and columns ``col_pos`` (increasing, evenly spaced, enclosing 0..n-1);
    between them the coordinates are interpolated bilinearly (GDAL's approximate transformer does
    the same along scanlines, within 0.125 source pixels; over 16 cells this is far closer).
    """
    nrows, ncols = out.shape
    k = 0
    for r in range(nrows):
        while k < row_pos.size - 2 and r > row_pos[k + 1]:
            k += 1
        ty = (r - row_pos[k]) / (row_pos[k + 1] - row_pos[k]) if row_pos.size > 1 else 0.0
        k1 = min(k + 1, row_pos.size - 1)
        j = 0
        for c in range(ncols):
            while j < col_pos.size - 2 and c > col_pos[j + 1]:
                j += 1
            tx = (c - col_pos[j]) / (col_pos[j + 1] - col_pos[j]) if col_pos.size > 1 else 0.0
            j1 = min(j + 1, col_pos.size - 1)
            sx = ((1 - ty) * ((1 - tx) * coarse_sx[k, j] + tx * coarse_sx[k, j1])
                  + ty * ((1 - tx) * coarse_sx[k1, j] + tx * coarse_sx[k1, j1]))
            sy = ((1 - ty) * ((1 - tx) * coarse_sy[k, j] + tx * coarse_sy[k, j1])
                  + ty * ((1 - tx) * coarse_sy[k1, j] + tx * coarse_sy[k1, j1]))
            if nearest:
                out[r, c] = _nearest_at(src, sx, sy, height, width, row_off, col_off)
            else:
                out[r, c] = _bilinear_at(src, sx, sy, height, width, row_off, col_off)
