"""Pixel and polygon areas on a stated earth model. Never in degrees.

Geographic rasters: every row of pixels has its own area, the exact area of a latitude-longitude
cell on the WGS 84 ellipsoid (``ellipsoid``) or on a sphere of radius 6,378,137 m (``sphere``, the
convention of exactextract and GDAL). Projected rasters: the constant cell area in the CRS's metres.
Polygon areas are computed on the same model, so the pieces of a county add up.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from affine import Affine
from pyproj import CRS, Geod
from shapely import segmentize
from shapely.geometry.base import BaseGeometry

AreaModel = Literal["ellipsoid", "sphere"]

WGS84_A = 6_378_137.0  # semi-major axis [m]
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
SPHERE_RADIUS = WGS84_A  # [m], as exactextract's area_spherical_m2
_DENSIFY_DEG = 0.01  # parallels are not geodesics: densify lon/lat edges before geodesic area


def _zone_integral(lat_deg: np.ndarray, model: AreaModel) -> np.ndarray:
    """Area per radian of longitude between the equator and each latitude [m^2/rad]."""
    s = np.sin(np.radians(lat_deg))
    if model == "sphere":
        return SPHERE_RADIUS**2 * s
    e = math.sqrt(WGS84_E2)
    b2 = WGS84_A**2 * (1 - WGS84_E2)
    return b2 * (s / (2 * (1 - WGS84_E2 * s**2)) + np.log((1 + e * s) / (1 - e * s)) / (4 * e))


def geographic_cell_area_m2(top_lat_deg: np.ndarray | float, bottom_lat_deg: np.ndarray | float,
                            width_deg: float, model: AreaModel = "ellipsoid") -> np.ndarray:
    """Exact area of latitude-longitude cells [m^2].

    Parameters
    ----------
    top_lat_deg, bottom_lat_deg : latitude of the cells' north and south edges [degrees]
    width_deg : cell width in longitude [degrees]
    model : ``ellipsoid`` (WGS 84) or ``sphere`` (R = 6,378,137 m)

    Notes
    -----
    A = Δλ · [F(φ_top) − F(φ_bottom)], with F(φ) = R² sin φ on the sphere and
    F(φ) = b² [sin φ / (2(1 − e² sin² φ)) + ln((1 + e sin φ)/(1 − e sin φ)) / (4e)] on the ellipsoid.
    """
    top = np.asarray(top_lat_deg, dtype=np.float64)
    bottom = np.asarray(bottom_lat_deg, dtype=np.float64)
    return np.abs(math.radians(width_deg) * (_zone_integral(top, model) - _zone_integral(bottom, model)))


def row_areas_m2(transform: Affine, row_off: int, n_rows: int, crs: CRS, model: AreaModel) -> np.ndarray:
    """Area of one pixel in each of ``n_rows`` rows starting at ``row_off`` [m^2]."""
    if transform.b != 0 or transform.d != 0:
        raise ValueError("rotated rasters are not supported")
    if crs.is_geographic:
        rows = np.arange(row_off, row_off + n_rows, dtype=np.float64)
        top = transform.f + rows * transform.e
        return geographic_cell_area_m2(top, top + transform.e, abs(transform.a), model)
    return np.full(n_rows, abs(transform.a * transform.e) * projected_unit_m(crs) ** 2)


def projected_unit_m(crs) -> float:
    """Metres per CRS unit of a projected CRS (rasterio or pyproj CRS)."""
    axes = CRS.from_user_input(crs).axis_info
    return float(axes[0].unit_conversion_factor) if axes else 1.0


def polygon_area_m2(geom: BaseGeometry, crs: CRS, model: AreaModel) -> float:
    """Area of a (multi)polygon [m^2], on the area model for geographic CRS, planar otherwise."""
    if geom.is_empty:
        return 0.0
    if crs.is_geographic:
        geod = Geod(ellps="WGS84") if model == "ellipsoid" else Geod(a=SPHERE_RADIUS, b=SPHERE_RADIUS)
        area, _ = geod.geometry_area_perimeter(segmentize(geom, _DENSIFY_DEG))
        return abs(area)
    return geom.area * projected_unit_m(crs) ** 2
