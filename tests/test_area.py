"""Pixel and polygon areas against hand calculations and an independent geodesic library."""
import math

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS, Geod
from shapely import segmentize
from shapely.geometry import box

from gep.area import geographic_cell_area_m2, polygon_area_m2, row_areas_m2

WGS84 = CRS.from_epsg(4326)
# Sphere R = 6,378,137 m, 0.01° cells whose north edges are 31.00, 30.99, 30.98, 30.97 °N:
# A = R² · (0.01·π/180) · (sin φ_top − sin φ_bottom). A midpoint check of row 0:
# (R·0.01·π/180 = 1,113.195 m) × (1,113.195 m · cos 30.995° = 954.25 m) ≈ 1,062,266 m².
SPHERE_ROWS_M2 = [1062259.8986915548, 1062371.2596471088, 1062482.5882410053, 1062593.884470879]


def test_spherical_rows_of_a_4x4_geographic_raster():
    areas = row_areas_m2(Affine(0.01, 0, 120.0, 0, -0.01, 31.0), 0, 4, WGS84, "sphere")
    np.testing.assert_allclose(areas, SPHERE_ROWS_M2, rtol=1e-12)
    assert areas[0] == pytest.approx(1_062_266, rel=1e-5)  # midpoint approximation
    # Cells grow toward the equator: never equal areas in degrees.
    assert np.all(np.diff(areas) > 0)


def test_row_offset_selects_the_right_rows():
    t = Affine(0.01, 0, 120.0, 0, -0.01, 31.0)
    np.testing.assert_allclose(row_areas_m2(t, 2, 2, WGS84, "sphere"), SPHERE_ROWS_M2[2:], rtol=1e-12)


def test_ellipsoid_cell_area_matches_pyproj_geodesic_area():
    # Independent implementation: pyproj's geodesic polygon area with edges densified along the
    # parallels (a parallel is not a geodesic), for a 0.4° x 0.4° cell at 30.6-31.0 °N.
    expected = abs(Geod(ellps="WGS84").geometry_area_perimeter(segmentize(box(120, 30.6, 120.4, 31.0), 0.0005))[0])
    assert geographic_cell_area_m2(31.0, 30.6, 0.4, "ellipsoid") == pytest.approx(expected, rel=1e-8)


def test_ellipsoid_and_sphere_differ_by_the_expected_amount_at_31N():
    # Local area scale of WGS 84 vs a sphere of radius a at φ: (1−e²)/(1−e² sin²φ)² ≈ 0.9968 at 31°.
    e2 = 0.0066943799901413165
    phi = math.radians(30.995)
    ratio = (1 - e2) / (1 - e2 * math.sin(phi) ** 2) ** 2
    ell = geographic_cell_area_m2(31.0, 30.99, 0.01, "ellipsoid")
    sph = geographic_cell_area_m2(31.0, 30.99, 0.01, "sphere")
    assert ell / sph == pytest.approx(ratio, rel=1e-6)


def test_projected_raster_has_constant_cell_area():
    utm = CRS.from_epsg(32650)
    areas = row_areas_m2(Affine(30, 0, 500000, 0, -30, 3400000), 0, 3, utm, "ellipsoid")
    np.testing.assert_array_equal(areas, [900.0, 900.0, 900.0])


def test_polygon_area_on_the_sphere_equals_the_cells_it_is_made_of():
    # The 4x4 raster's footprint is exactly its 16 cells.
    assert polygon_area_m2(box(120.0, 30.96, 120.04, 31.0), WGS84, "sphere") == pytest.approx(
        4 * sum(SPHERE_ROWS_M2), rel=1e-9)
