"""Independent checks of the pipeline's numbers.

``compare_extent_with_exactextract``: per-county class areas of the extent account against
exactextract's own zonal statistics on the land-cover file (``unique`` + ``frac`` and ``count``
weighted by ``area_spherical_m2``, i.e. exactextract's spherical cell areas, R = 6,378,137 m). The
pipeline is run with ``area_model = "sphere"`` so that both sides use the same earth model; what is
compared is the engine's own coverage (gep/kernels.py), strips, class tallying and nodata handling.

``compare_extent_with_pixel_centres``: the same class areas by a cruder zonal method, rasterio's
pixel-centre masks (a pixel belongs to a county when its centre does) times the area model's row
areas: agreement within the error of counting whole pixels.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from exactextract import exact_extract
from rasterio.features import geometry_mask
from rasterio.windows import Window

from gep import pipeline
from gep.area import row_areas_m2
from gep.config import RunConfig
from gep.zonal import zone_polygon


def exactextract_class_areas(landcover_path, counties: gpd.GeoDataFrame) -> pd.DataFrame:
    """County x class areas [km²] by exactextract, spherical cell areas; nodata cells excluded."""
    res = exact_extract(str(landcover_path), counties[["county_code", "geometry"]],
                        ["unique", "frac(coverage_weight=area_spherical_m2)",
                         "total=count(coverage_weight=area_spherical_m2)"],
                        include_cols=["county_code"], output="pandas")
    rows = []
    for _, r in res.iterrows():
        for code, frac in zip(np.asarray(r["unique"]), np.asarray(r["frac"])):
            rows.append({"county_code": r["county_code"], "lc_code": int(code), "area_km2": frac * r["total"] / 1e6})
    return pd.DataFrame(rows)


def _pipeline_extent(cfg: RunConfig, year: int) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """The pipeline's extent rows of every county, and the counties (in the land-cover CRS)."""
    prepared = pipeline.prepare(cfg, year)
    try:
        return pd.concat([a.extent for a in pipeline.account(prepared)], ignore_index=True), prepared.counties
    finally:
        prepared.close()


def compare_extent_with_exactextract(cfg: RunConfig, year: int) -> pd.DataFrame:
    """Class areas of the pipeline (sphere model) and of exactextract, with relative differences."""
    cfg = cfg.model_copy(update={"area_model": "sphere"})
    ours, counties = _pipeline_extent(cfg, year)
    return _merge(ours, exactextract_class_areas(cfg.landcover[year], counties))


def pixel_centre_class_areas(landcover_path, counties: gpd.GeoDataFrame, model) -> pd.DataFrame:
    """County x class areas [km²] counting whole pixels whose centre lies in the county."""
    rows = []
    with rasterio.open(landcover_path) as ds:
        for code, geom in zip(counties["county_code"], counties.geometry):
            z = zone_polygon(code, geom, ds.transform, ds.width, ds.height)
            if z is None:
                continue
            win = Window(z.col0, z.row0, z.col1 - z.col0, z.row1 - z.row0)
            arr = ds.read(1, window=win)
            inside = ~geometry_mask([geom], out_shape=arr.shape, transform=ds.window_transform(win))
            area = np.broadcast_to(row_areas_m2(ds.transform, int(win.row_off), arr.shape[0], ds.crs, model)[:, None],
                                   arr.shape)
            keep = inside & (arr != ds.nodata)
            for lc, a in zip(*_sum_by(arr[keep], area[keep])):
                rows.append({"county_code": code, "lc_code": int(lc), "area_km2": a / 1e6})
    return pd.DataFrame(rows)


def _sum_by(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inv, weights=weights)


def compare_extent_with_pixel_centres(cfg: RunConfig, year: int) -> pd.DataFrame:
    """Class areas of the pipeline (its configured area model) and of pixel-centre masks."""
    ours, counties = _pipeline_extent(cfg, year)
    return _merge(ours, pixel_centre_class_areas(cfg.landcover[year], counties, cfg.area_model))


def _merge(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """Columns county_code, lc_code, gep_km2 (pipeline), reference_km2 (other method), rel_diff."""
    ours = ours.groupby(["county_code", "lc_code"], as_index=False)["area_ha"].sum()
    ours["gep_km2"] = ours.pop("area_ha") / 100
    both = ours.merge(theirs.rename(columns={"area_km2": "reference_km2"}), on=["county_code", "lc_code"],
                      how="outer").fillna(0.0)
    both["rel_diff"] = (both.gep_km2 - both.reference_km2) / both.reference_km2.where(both.reference_km2 > 0)
    return both.sort_values(["county_code", "lc_code"]).reset_index(drop=True)


def county_totals(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per-county totals of a comparison table."""
    tot = comparison.groupby("county_code", as_index=False)[["gep_km2", "reference_km2"]].sum()
    tot["rel_diff"] = (tot.gep_km2 - tot.reference_km2) / tot.reference_km2
    return tot
