"""County-by-county pixel access: exact coverage fractions, pixel areas and aligned auxiliary values.

A county is read as row blocks of its window on the land-cover grid (bounded memory whatever the
county's size). For every block, exactextract gives the fraction of each cell covered by the county
polygon; times the cell area (area.py) that is each pixel's area inside the county. Auxiliary rasters
on their own grids (1 km precipitation, 500 m ET/NPP, any CRS) are warped onto the block's grid.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import rasterio
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window, from_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from gep.area import AreaModel, polygon_area_m2, row_areas_m2

DEFAULT_MAX_BLOCK_PIXELS = 500_000  # ~380 MB peak on the sample; larger blocks are not faster


@dataclass(frozen=True)
class AuxSource:
    """An open auxiliary raster and how to bring it onto the land-cover grid."""

    dataset: rasterio.DatasetReader
    scale: float
    resampling: str


@dataclass
class PixelBlock:
    """Pixels of one block that lie (partly) inside the county."""

    codes: np.ndarray          # land-cover code of each pixel
    coverage: np.ndarray       # fraction of the pixel inside the county (0..1]
    area_m2: np.ndarray        # pixel area inside the county [m^2] = coverage fraction x cell area
    aux: dict[str, np.ndarray]  # auxiliary value per pixel in its configured unit; NaN = no data


def bounds_window(transform, bounds: tuple[float, float, float, float]) -> Window:
    """Smallest whole-pixel window holding ``bounds`` (may extend beyond the raster)."""
    win = from_bounds(*bounds, transform=transform)
    col0, row0 = math.floor(win.col_off), math.floor(win.row_off)
    col1, row1 = math.ceil(win.col_off + win.width), math.ceil(win.row_off + win.height)
    return Window(col0, row0, max(1, col1 - col0), max(1, row1 - row0))


def county_window(ds: rasterio.DatasetReader, geom: BaseGeometry) -> Window | None:
    """The land-cover window holding the county, clipped to the raster; None when disjoint."""
    part = geom.intersection(box(*ds.bounds))
    if part.is_empty:
        return None
    return bounds_window(ds.transform, part.bounds).intersection(Window(0, 0, ds.width, ds.height))


def outside_raster_area_m2(ds: rasterio.DatasetReader, geom: BaseGeometry, model: AreaModel) -> float:
    """Area of the part of the county polygon that the raster does not cover [m^2]."""
    return polygon_area_m2(geom.difference(box(*ds.bounds)), ds.crs, model)


def _coverage(geom: BaseGeometry, crs_wkt: str, transform, shape: tuple[int, int]) -> np.ndarray:
    """Fraction of each cell of a grid covered by the polygon (0..1), from exactextract."""
    h, w = shape
    xmin, ymax = transform.c, transform.f
    xmax, ymin = xmin + w * transform.a, ymax + h * transform.e
    src = NumPyRasterSource(np.zeros(shape, dtype=np.uint8), xmin, ymin, xmax, ymax, srs_wkt=crs_wkt)
    feats = gpd.GeoDataFrame(geometry=[geom], crs=crs_wkt)
    res = exact_extract(src, feats, ["cell_id", "coverage"], output="pandas")
    cov = np.zeros(h * w, dtype=np.float64)
    if len(res):
        cov[np.asarray(res.iloc[0]["cell_id"], dtype=np.int64)] = res.iloc[0]["coverage"]
    return cov.reshape(shape)


def _warp(aux: AuxSource, dst_transform, dst_crs, shape: tuple[int, int]) -> np.ndarray:
    dst = np.full(shape, np.nan, dtype=np.float32)
    reproject(source=rasterio.band(aux.dataset, 1), destination=dst, src_nodata=aux.dataset.nodata,
              dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
              resampling=Resampling[aux.resampling])
    return dst * np.float32(aux.scale)


def iter_county_blocks(ds: rasterio.DatasetReader, geom: BaseGeometry, model: AreaModel,
                       aux: dict[str, AuxSource] | None = None,
                       max_block_pixels: int = DEFAULT_MAX_BLOCK_PIXELS) -> Iterator[PixelBlock]:
    """Yield the county's pixels block by block (rows of its window), with areas and aux values."""
    win = county_window(ds, geom)
    if win is None:
        return
    aux = aux or {}
    crs_wkt = ds.crs.to_wkt()
    rows_per_block = max(1, max_block_pixels // max(1, int(win.width)))
    for r0 in range(int(win.row_off), int(win.row_off + win.height), rows_per_block):
        n = min(rows_per_block, int(win.row_off + win.height) - r0)
        block = Window(win.col_off, r0, win.width, n)
        transform = ds.window_transform(block)
        shape = (n, int(win.width))
        cov = _coverage(geom, crs_wkt, transform, shape)
        inside = cov > 0
        if not inside.any():
            continue
        codes = ds.read(1, window=block)
        area = cov * row_areas_m2(ds.transform, r0, n, ds.crs, model)[:, None]
        values = {k: _warp(a, transform, ds.crs, shape)[inside].astype(np.float64) for k, a in aux.items()}
        yield PixelBlock(codes=codes[inside], coverage=cov[inside], area_m2=area[inside], aux=values)
