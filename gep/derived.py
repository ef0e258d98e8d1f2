"""Derived layers: rasters computed from other rasters once per run and grid, before the pass.

A derived layer needs a neighbourhood (slope across block edges) or several bands (monthly
precipitation), so it cannot be computed per strip of the land cover. Each is computed on its
source's own grid, in row chunks with a one-row halo (memory bounded), written as a GeoTIFF and
cached by content (gep/pipeline.py keys the cache by the sources' SHA-256, the parameters and this
module's source), then sampled like any auxiliary raster.

Algorithms, and why:

- Slope: Horn's 3x3 finite differences (Horn 1981), the method of ``gdaldem slope`` and of
  ArcGIS; on a geographic DEM the cell size in metres is taken per row on the WGS 84 ellipsoid.
  A cell with a nodata neighbour has no slope (as gdaldem without ``-compute_edges``).
- LS: the slope-based L and S of methodology §4.2 (L = (λ/22.13)^m with m by slope class;
  S of McCool for slopes under 10° and of Liu Baoyuan for steeper ones), with a fixed slope length λ
  (coefficients.csv ``slope_length``). Not the unit-contributing-area LS of InVEST SDR (Desmet &
  Govers 1996), which needs flow routing (a D8/MFD flow accumulation) that none of the pinned
  libraries provides; the slope-based form is what the Chinese GEP references print.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

WGS84_A, WGS84_E2 = 6_378_137.0, 0.006694379990141317
CHUNK_ROWS = 256  # rows per chunk: bounded memory (30 m rows of a province are ~15,000 cells)
NODATA = -9999.0


def cell_size_m(transform, crs, row0: int, nrows: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell width and height [m] of rows row0..row0+nrows (per row on the ellipsoid for a
    geographic grid; constant for a projected one)."""
    if crs is not None and crs.is_geographic:
        lat = np.radians(transform.f + (np.arange(row0, row0 + nrows) + 0.5) * transform.e)
        w = 1.0 - WGS84_E2 * np.sin(lat) ** 2
        dx = WGS84_A * np.cos(lat) / np.sqrt(w) * math.radians(abs(transform.a))
        dy = WGS84_A * (1 - WGS84_E2) / w ** 1.5 * math.radians(abs(transform.e))
        return dx, dy
    return np.full(nrows, abs(transform.a)), np.full(nrows, abs(transform.e))


def horn_gradient(z: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Slope as a gradient, tan θ [m/m], of the inner cells of ``z`` (a window with a one-cell
    halo; NaN = nodata).

    Parameters
    ----------
    z : elevations [m], shape (n + 2, m + 2)
    dx, dy : cell width and height [m] of the n inner rows

    Notes
    -----
    dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8 dx); dz/dy = ((g + 2h + i) − (a + 2b + c)) / (8 dy),
    with a..i the 3x3 neighbourhood row by row; tan θ = √(dz/dx² + dz/dy²) (Horn 1981).
    """
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * dx[:, None])
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * dy[:, None])
    return np.hypot(dzdx, dzdy)


TAN_5, TAN_10 = math.tan(math.radians(5.0)), math.tan(math.radians(10.0))


def ls_from_gradient(tan_theta: np.ndarray, slope_length_m: float) -> np.ndarray:
    """RUSLE LS factor [-] from slope gradient tan θ [m/m] and slope length λ [m] (methodology §4.2).

    Notes
    -----
    L = (λ/22.13)^m, m = 0.2 (slope < 1 %), 0.3 (1-3 %), 0.4 (3-5 %), 0.5 (≥ 5 %);
    S = 10.8 sinθ + 0.03 (θ < 5°), 16.8 sinθ − 0.5 (5°-10°), 21.91 sinθ − 0.96 (θ ≥ 10°);
    sinθ = tanθ / √(1 + tan²θ) (no trigonometric call per cell).
    """
    t = np.asarray(tan_theta)
    ratio = slope_length_m / 22.13
    length = np.select([t < 0.01, t < 0.03, t < 0.05], [ratio ** 0.2, ratio ** 0.3, ratio ** 0.4], ratio ** 0.5)
    sin = t / np.sqrt(1.0 + t * t)
    steep = np.select([t < TAN_5, t < TAN_10], [10.8 * sin + 0.03, 16.8 * sin - 0.5], 21.91 * sin - 0.96)
    return length * steep


def _profile(src, **changes) -> dict:
    p = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="float32", crs=src.crs,
             transform=src.transform, nodata=NODATA, compress="deflate", predictor=3, tiled=True,
             blockxsize=512, blockysize=512)
    p.update(changes)
    return p


def ls_factor_from_dem(sources: dict[str, Path], parameters: dict[str, float], out_path: Path) -> None:
    """Write the LS factor of the DEM ``sources["dem"]`` [m] to ``out_path`` (same grid)."""
    slope_length = parameters["slope_length"]
    with rasterio.open(sources["dem"]) as src, rasterio.open(out_path, "w", **_profile(src)) as dst:
        for r0 in range(0, src.height, CHUNK_ROWS):
            n = min(CHUNK_ROWS, src.height - r0)
            top, bottom = max(0, r0 - 1), min(src.height, r0 + n + 1)
            arr = src.read(1, window=Window(0, top, src.width, bottom - top), masked=True)
            z = np.ma.getdata(arr).astype(np.float32)  # elevations to 0.1 mm: float32 is plenty
            z[np.ma.getmaskarray(arr)] = np.nan
            # Edge rows and columns of the raster repeat their neighbours (no halo beyond the grid).
            z = np.pad(z, ((1 if top == r0 else 0, 1 if bottom == r0 + n else 0), (1, 1)), mode="edge")
            dx, dy = cell_size_m(src.transform, src.crs, r0, n)
            ls = ls_from_gradient(horn_gradient(z, dx.astype(np.float32), dy.astype(np.float32)), slope_length)
            dst.write(np.where(np.isfinite(ls), ls, NODATA).astype(np.float32), 1, window=Window(0, r0, src.width, n))


def k_factor_from_soil(sources: dict[str, Path], parameters: dict[str, float], out_path: Path) -> None:
    """Write RUSLE K [t ha h ha⁻¹ MJ⁻¹ mm⁻¹] from soil sand, silt, clay and organic carbon [%]
    rasters on one grid: EPIC (Williams 1990) with Zhang Keli's correction for Chinese soils."""
    from gep.services.soil_retention import k_chinese_si, k_epic_us
    names = ("soil_sand", "soil_silt", "soil_clay", "soil_organic_carbon")
    handles = [rasterio.open(sources[n]) for n in names]
    try:
        first = handles[0]
        for h in handles[1:]:
            if (h.shape, h.transform, h.crs) != (first.shape, first.transform, first.crs):
                raise ValueError(f"the soil rasters must share one grid: {h.name} differs from {first.name}")
        with rasterio.open(out_path, "w", **_profile(first)) as dst:
            for r0 in range(0, first.height, CHUNK_ROWS):
                win = Window(0, r0, first.width, min(CHUNK_ROWS, first.height - r0))
                arrs = [h.read(1, window=win, masked=True) for h in handles]
                values = [np.ma.getdata(a).astype(np.float64) for a in arrs]
                k = k_chinese_si(k_epic_us(*values), parameters["zhang_k_intercept"], parameters["zhang_k_slope"],
                                 parameters["epic_si_factor"])
                k[np.logical_or.reduce([np.ma.getmaskarray(a) for a in arrs]) | ~np.isfinite(k)] = NODATA
                dst.write(k.astype(np.float32), 1, window=win)
    finally:
        for h in handles:
            h.close()


def sum_bands(path: Path, bands: list[int], out_path: Path) -> None:
    """Write the cell-wise sum of ``bands`` of ``path`` (e.g. 12 monthly precipitation bands ->
    annual) to ``out_path``; a cell missing in any band is missing in the sum."""
    with rasterio.open(path) as src, rasterio.open(out_path, "w", **_profile(src)) as dst:
        for r0 in range(0, src.height, CHUNK_ROWS):
            win = Window(0, r0, src.width, min(CHUNK_ROWS, src.height - r0))
            arr = src.read(bands, window=win, masked=True)
            total = np.ma.getdata(arr).astype(np.float64).sum(axis=0)
            total[np.ma.getmaskarray(arr).any(axis=0)] = np.nan
            dst.write(np.where(np.isfinite(total), total, NODATA).astype(np.float32), 1, window=win)


def fill_nearest(path: Path, out_path: Path) -> None:
    """Write a copy of a one-band raster with each cell without data taken from the nearest valid
    cell (Euclidean distance in cells, scipy.ndimage.distance_transform_edt); valid cells unchanged."""
    from scipy import ndimage
    with rasterio.open(path) as src:
        arr = src.read(1, masked=True)
        data = np.ma.getdata(arr).astype(np.float64)
        missing = np.ma.getmaskarray(arr) | ~np.isfinite(data)
        if missing.all():
            data[:] = NODATA
        elif missing.any():
            idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
            data = data[tuple(idx)]
        with rasterio.open(out_path, "w", **_profile(src)) as dst:
            dst.write(data.astype(np.float32), 1)
