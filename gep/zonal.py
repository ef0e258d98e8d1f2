"""The zonal engine: one pass over the land-cover grid in strips, every zone at once.

Data flow (docs/design.md): the land-cover raster is cut into strips of whole tile rows; each strip
is decoded once, its auxiliary rasters are brought onto its cells once, and then every zone (county,
project polygon; zones may overlap) that reaches into the strip gets

- the exact fraction of each of its cells inside the polygon (:func:`gep.kernels.polygon_coverage`),
  times the cell's area (ellipsoidal row areas for geographic grids, constant for projected ones);
- per-code sums of area and coverage, and its covered pixels grouped by code with their auxiliary
  values: a :class:`PixelBlock`, which the services consume without knowing where it came from.

Strips are independent: any runner (serial, threads, processes, Dask) may take them in any order;
results are merged in strip order, so every runner gives the same bits.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.errors import RasterioIOError
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from gep import kernels
from gep.errors import InputReadError
from gep.kernels import COARSE_STEP
from gep.area import AreaModel, polygon_area_m2, row_areas_m2

DEFAULT_STRIP_PIXELS = 4_000_000  # ~15 MB of codes, ~50 MB of auxiliary values per strip


@dataclass(frozen=True)
class AuxSpec:
    """An auxiliary raster and how to bring it onto the land-cover grid."""

    name: str
    path: Path
    scale: float
    resampling: str  # bilinear | nearest (compiled, as GDAL); average | cubic (GDAL's warper)


@dataclass
class ZonePolygon:
    """A zone's polygon as rings in the land-cover grid's pixel coordinates, and its window."""

    code: str
    xs: np.ndarray
    ys: np.ndarray
    ring_starts: np.ndarray
    ring_signs: np.ndarray
    row0: int
    row1: int  # exclusive
    col0: int
    col1: int  # exclusive


@dataclass(frozen=True)
class Strip:
    index: int
    row0: int
    nrows: int


@dataclass
class PixelBlock:
    """The pixels of one zone inside one strip: per-code sums and the covered pixels by code.

    ``class_area_m2``/``class_pixels`` have one slot per code 0..n_codes-1 plus a last slot for
    codes out of that range (their values are listed in ``out_of_range_codes``). The covered pixels
    are grouped by code: those of code k are ``code_starts[k]:code_starts[k + 1]``.
    """

    class_area_m2: np.ndarray
    class_pixels: np.ndarray
    area_m2: np.ndarray         # area of each covered pixel inside the zone [m^2]
    code_starts: np.ndarray
    aux: "AuxValues"            # auxiliary value per covered pixel, in its configured unit; NaN = no data
    out_of_range_codes: dict[int, int] = field(default_factory=dict)


class AuxValues(Mapping):
    """Auxiliary values of a block's covered pixels, sampled on first use and only for the pixels
    asked for (a service that credits forest never samples its rasters on built-up land).

    ``values[name]`` gives every pixel; ``values.slice(name, start, stop)`` the pixels
    start..stop of the block (those of one code are contiguous).
    """

    def __init__(self, sources, rows: np.ndarray, cols: np.ndarray, win_row: int, win_col: int):
        self._sources = {grid.spec.name: (grid, src) for grid, src in sources}
        self._rows, self._cols, self._win = rows, cols, (win_row, win_col)
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def slice(self, name: str, start: int, stop: int) -> np.ndarray:
        key = (name, start, stop)
        if key not in self._cache:
            grid, src = self._sources[name]
            self._cache[key] = grid.at(src, self._rows[start:stop], self._cols[start:stop], *self._win)
        return self._cache[key]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.slice(name, 0, self._rows.size)

    def __iter__(self):
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


def zone_polygon(code: str, geom: BaseGeometry, transform, width: int, height: int) -> ZonePolygon | None:
    """Rings of a (multi)polygon in grid pixel coordinates; None when it misses the grid."""
    if transform.b != 0 or transform.d != 0:
        raise ValueError("rotated rasters are not supported")
    inv = ~transform
    xs, ys, starts, signs = [], [], [0], []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon":
            raise ValueError(f"zone {code}: {poly.geom_type} is not a polygon")
        for ring, sign in [(poly.exterior, 1)] + [(r, -1) for r in poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            col, row = inv * (xy[:, 0], xy[:, 1])
            xs.append(np.asarray(col, dtype=np.float64))
            ys.append(np.asarray(row, dtype=np.float64))
            starts.append(starts[-1] + len(xy))
            signs.append(sign)
    if not xs:
        return None
    x, y = np.concatenate(xs), np.concatenate(ys)
    col0, col1 = max(0, math.floor(x.min())), min(width, math.ceil(x.max()))
    row0, row1 = max(0, math.floor(y.min())), min(height, math.ceil(y.max()))
    if col1 <= col0 or row1 <= row0:
        return None
    return ZonePolygon(code, x, y, np.asarray(starts, dtype=np.int64), np.asarray(signs, dtype=np.int64),
                       row0, row1, col0, col1)


def plan_strips(height: int, width: int, block_height: int, zones: list[ZonePolygon],
                strip_pixels: int = DEFAULT_STRIP_PIXELS) -> list[Strip]:
    """Strips of whole tile rows, about ``strip_pixels`` each, over the rows any zone reaches.

    A file whose blocks are taller than a strip (a GeoTIFF stored as a few huge strips) is cut
    within its blocks: memory stays bounded, and GDAL's block cache serves the block's rows.
    """
    if not zones:
        return []
    rows_per_strip = max(1, strip_pixels // max(1, width))
    if block_height <= rows_per_strip:
        rows_per_strip = rows_per_strip // block_height * block_height
    # Anchored to the grid, not to the zones: a county gets the same strips in a one-county run
    # as in the all-county run, so both give the same bits.
    first = min(z.row0 for z in zones) // rows_per_strip * rows_per_strip
    last = max(z.row1 for z in zones)
    strips = []
    for r0 in range(first, last, rows_per_strip):
        strips.append(Strip(len(strips), r0, min(rows_per_strip, height - r0)))
    return strips


def outside_raster_area_m2(raster_bounds, crs, geom: BaseGeometry, model: AreaModel) -> float:
    """Area of the part of the zone polygon that the raster does not cover [m^2]."""
    return polygon_area_m2(geom.difference(box(*raster_bounds)), crs, model)


@dataclass
class _StripSource:
    """An auxiliary raster's pixels and coordinates for one strip, ready to sample at any cell."""

    src: np.ndarray | None      # source pixels around the strip (NaN = nodata); None: nothing there
    row_off: int                # source row / column of src[0, 0]
    col_off: int
    sx: np.ndarray | None = None  # same CRS: source column coordinate of each strip column
    sy: np.ndarray | None = None  # and source row coordinate of each strip row
    coarse_sx: np.ndarray | None = None  # another CRS: exact coordinates every COARSE_STEP cells
    coarse_sy: np.ndarray | None = None
    coarse_row0: int = 0        # strip row and column of coarse[0, 0]
    coarse_col0: int = 0
    warped: np.ndarray | None = None  # GDAL's warper (average, cubic): values of every strip cell


class _AuxGrid:
    """One auxiliary raster brought onto land-cover cells: per strip, then at the covered cells."""

    def __init__(self, spec: AuxSpec, lc: rasterio.DatasetReader):
        self.spec = spec
        self.ds = rasterio.open(spec.path)
        self.lc = lc
        self.same_crs = CRS.from_user_input(self.ds.crs) == CRS.from_user_input(lc.crs)
        self.nearest = spec.resampling == "nearest"
        self.compiled = spec.resampling in ("bilinear", "nearest")
        if not self.same_crs:
            self.to_src = Transformer.from_crs(lc.crs, self.ds.crs, always_xy=True)

    def close(self) -> None:
        self.ds.close()

    def for_strip(self, strip: Strip, col0: int, col1: int) -> _StripSource:
        """Read what the strip's cells col0..col1 need of the source, and where they fall on it."""
        if not self.compiled:
            out = np.full((strip.nrows, col1 - col0), np.nan, dtype=np.float32)
            self._gdal_warp(strip, col0, out)
            return _StripSource(None, 0, 0, warped=out)
        lc_t, src_inv = self.lc.transform, ~self.ds.transform
        if self.same_crs:
            x = lc_t.c + (np.arange(col0, col1) + 0.5) * lc_t.a
            y = lc_t.f + (np.arange(strip.row0, strip.row0 + strip.nrows) + 0.5) * lc_t.e
            sx = (x - self.ds.transform.c) * src_inv.a
            sy = (y - self.ds.transform.f) * src_inv.e
            src, r_off, c_off = self._read(sx.min(), sx.max(), sy.min(), sy.max())
            return _StripSource(src, r_off, c_off, sx=sx, sy=sy)
        # Exact transforms on a coarse frame anchored to the whole grid (multiples of COARSE_STEP),
        # so that a cell's value never depends on the window it is read in.
        r_first = strip.row0 // COARSE_STEP * COARSE_STEP
        c_first = col0 // COARSE_STEP * COARSE_STEP
        rows = np.arange(r_first, strip.row0 + strip.nrows + COARSE_STEP, COARSE_STEP)
        cols = np.arange(c_first, col1 + COARSE_STEP, COARSE_STEP)
        X, Y = np.meshgrid(lc_t.c + (cols + 0.5) * lc_t.a, lc_t.f + (rows + 0.5) * lc_t.e)
        sxw, syw = self.to_src.transform(X, Y)
        sx, sy = src_inv * (np.asarray(sxw), np.asarray(syw))
        sx, sy = np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64)
        ok = np.isfinite(sx) & np.isfinite(sy)
        src, r_off, c_off = (self._read(sx[ok].min(), sx[ok].max(), sy[ok].min(), sy[ok].max())
                             if ok.any() else (None, 0, 0))
        return _StripSource(src, r_off, c_off, coarse_sx=sx, coarse_sy=sy,
                            coarse_row0=r_first - strip.row0, coarse_col0=c_first - col0)

    def at(self, strip_src: _StripSource, rows: np.ndarray, cols: np.ndarray, win_row: int, win_col: int
           ) -> np.ndarray:
        """Values (float64, NaN = no data, times the scale) at cells ``rows``, ``cols`` (raster
        order) of a window whose first cell is strip row ``win_row``, strip column ``win_col``."""
        out = np.full(rows.size, np.nan)  # stays NaN where the raster has nothing near the strip
        s = strip_src
        scale = np.float32(self.spec.scale)
        if s.warped is not None:
            kernels.gather(s.warped, rows, cols, win_row, win_col, scale, out)
        elif s.src is not None and s.sx is not None:
            kernels.sample_separable(s.src, s.sx, s.sy, rows, cols, win_row, win_col, self.ds.height,
                                     self.ds.width, s.row_off, s.col_off, self.nearest, scale, out)
        elif s.src is not None:
            kernels.sample_warped(s.src, s.coarse_sx, s.coarse_sy, rows, cols, win_row - s.coarse_row0,
                                  win_col - s.coarse_col0, self.ds.height, self.ds.width, s.row_off, s.col_off,
                                  self.nearest, scale, out)
        return out

    def _read(self, sx_min, sx_max, sy_min, sy_max):
        """The source pixels around a range of source coordinates (NaN for nodata), and offsets."""
        c0 = max(0, math.floor(sx_min - 0.5) - 1)
        c1 = min(self.ds.width, math.floor(sx_max + 0.5) + 2)
        r0 = max(0, math.floor(sy_min - 0.5) - 1)
        r1 = min(self.ds.height, math.floor(sy_max + 0.5) + 2)
        if c1 <= c0 or r1 <= r0:
            return None, 0, 0
        arr = read_window(self.ds, 1, Window(c0, r0, c1 - c0, r1 - r0), f"auxiliary.{self.spec.name}", masked=True)
        data = np.ma.getdata(arr).astype(np.float64)
        data[np.ma.getmaskarray(arr) | ~np.isfinite(data)] = np.nan
        return data, r0, c0

    def _gdal_warp(self, strip: Strip, col0: int, out: np.ndarray) -> None:
        from rasterio.enums import Resampling
        from rasterio.warp import reproject
        transform = self.lc.window_transform(Window(col0, strip.row0, out.shape[1], strip.nrows))
        reproject(source=rasterio.band(self.ds, 1), destination=out, src_nodata=self.ds.nodata,
                  dst_transform=transform, dst_crs=self.lc.crs, dst_nodata=np.nan,
                  resampling=Resampling[self.spec.resampling])


def read_window(ds: rasterio.DatasetReader, band: int, window: Window, key: str, masked: bool = False):
    """One window of a band; a block that cannot be decoded (a corrupt tile in a file whose header
    validated, a read error on a share) is reported with the file, the window and the fix."""
    try:
        return ds.read(band, window=window, masked=masked)
    except RasterioIOError as exc:
        raise InputReadError(
            f"{ds.name} [{key}]: cannot decode rows {window.row_off}-{window.row_off + window.height - 1}, "
            f"columns {window.col_off}-{window.col_off + window.width - 1}: {exc}\n"
            "    fix: the file is damaged (a corrupt tile) or was unreadable; check it with "
            "`gdalinfo -checksum`, re-export or re-download it, and re-run. Nothing was written.") from exc


class GridReader:
    """Open land-cover and auxiliary rasters for one thread (GDAL handles are not thread-safe)."""

    def __init__(self, landcover: Path, aux: tuple[AuxSpec, ...], area_model: AreaModel, group: bool = True,
                 band: int = 1):
        self.lc = rasterio.open(landcover)
        self.band = band
        self.aux = [_AuxGrid(a, self.lc) for a in aux]
        self.area_model = area_model
        self.group = group  # hand out the covered pixels (services need them; the extent does not)

    def close(self) -> None:
        for a in self.aux:
            a.close()
        self.lc.close()

    def __enter__(self) -> "GridReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def blocks(self, strip: Strip, zones: list[ZonePolygon], n_codes: int) -> Iterator[tuple[ZonePolygon, PixelBlock]]:
        """Every zone reaching into the strip, with its pixels there (zones in the order given)."""
        r0, r1 = strip.row0, strip.row0 + strip.nrows
        here = [z for z in zones if z.row0 < r1 and z.row1 > r0]
        if not here:
            return
        col0, col1 = min(z.col0 for z in here), max(z.col1 for z in here)
        codes = read_window(self.lc, self.band, Window(col0, r0, col1 - col0, strip.nrows), "landcover")
        sources = [(a, a.for_strip(strip, col0, col1)) for a in self.aux]
        row_area = row_areas_m2(self.lc.transform, r0, strip.nrows, self.lc.crs, self.area_model)
        for z in here:
            zr0, zr1 = max(z.row0, r0), min(z.row1, r1)
            rows, cols = slice(zr0 - r0, zr1 - r0), slice(z.col0 - col0, z.col1 - col0)
            win_codes = codes[rows, cols]
            class_area = np.zeros(n_codes + 1)
            class_pixels = np.zeros(n_codes + 1)
            rws, cls, area, starts = kernels.zone_tally(z.xs, z.ys, z.ring_starts, z.ring_signs, float(z.col0),
                                                          float(zr0), win_codes, row_area[rows], n_codes,
                                                          class_area, class_pixels, self.group)
            if not class_pixels.any():
                continue
            width = z.col1 - z.col0
            values = AuxValues(sources, rws, cls, zr0 - r0, z.col0 - col0)
            odd = {}
            if class_pixels[n_codes] > 0:
                cov = kernels.polygon_coverage(z.xs, z.ys, z.ring_starts, z.ring_signs, z.col0, zr0, zr1 - zr0, width)
                bad = win_codes[(cov > 0) & ((win_codes < 0) | (win_codes >= n_codes))]
                odd = dict(zip(*(v.tolist() for v in np.unique(bad, return_counts=True))))
            yield z, PixelBlock(class_area, class_pixels, area, starts, values, odd)
