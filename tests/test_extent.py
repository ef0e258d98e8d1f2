"""Ecosystem extent account on the tiny world, against hand-computed areas."""
import numpy as np
import pytest
from shapely.geometry import box

from gep import pipeline
from gep.config import load_run_config

from test_area import SPHERE_ROWS_M2
from tiny_world import PADDY

R0, R1, R2, R3 = SPHERE_ROWS_M2
STRIP_M2 = 4249707.631050548  # 0.01° x 0.04° east of the raster: R²·(0.01π/180)·(sin 31° − sin 30.96°)


def _accounts(world):
    cfg = load_run_config(world.write())
    prep = pipeline.prepare(cfg, 2020)
    try:
        return {a.gep.county_code.iloc[0]: a for a in pipeline.account(prep)}
    finally:
        prep.close()


def _area_ha(extent, code, ecosystem_type=None):
    rows = extent[extent.lc_code == code]
    if ecosystem_type:
        rows = rows[rows.ecosystem_type == ecosystem_type]
    return rows.area_ha.sum()


def test_class_areas_match_hand_computed_pixel_areas(world):
    acc = _accounts(world)
    a = acc["000001"].extent
    assert _area_ha(a, 2) == pytest.approx(2 * (R0 + R1) / 1e4, rel=1e-9)           # 4 forest pixels
    assert _area_ha(a, 1) == pytest.approx((2 * R2 + R3) / 1e4, rel=1e-9)           # 3 cropland pixels
    assert _area_ha(a, 9) == pytest.approx(R3 / 1e4, rel=1e-9)                      # 1 wetland pixel
    b = acc["000002"].extent
    assert _area_ha(b, 2) == pytest.approx(2 * R0 / 1e4, rel=1e-9)
    assert _area_ha(b, 5) == pytest.approx(2 * R1 / 1e4, rel=1e-9)
    assert _area_ha(b, 8) == pytest.approx((R2 + R3) / 1e4, rel=1e-9)
    assert set(b.lc_code) == {2, 5, 8}  # nodata (0) is not a class


def test_cropland_is_split_by_paddy_share(world):
    a = _accounts(world)["000001"].extent
    crop = (2 * R2 + R3) / 1e4
    assert _area_ha(a, 1, "cropland_paddy") == pytest.approx(PADDY * crop, rel=1e-9)
    assert _area_ha(a, 1, "cropland_dry") == pytest.approx((1 - PADDY) * crop, rel=1e-9)
    assert sorted(a.loc[a.lc_code == 1, "type_share"]) == pytest.approx([1 - PADDY, PADDY])


def test_area_pieces_add_up_to_the_polygon(world):
    g = _accounts(world)["000002"].gep.iloc[0]
    assert g.classified_area_km2 == pytest.approx((2 * R0 + 2 * R1 + R2 + R3) / 1e6, rel=1e-9)
    assert g.nodata_area_km2 == pytest.approx((R2 + R3) / 1e6, rel=1e-9)
    assert g.outside_raster_area_km2 == pytest.approx(STRIP_M2 / 1e6, rel=1e-6)
    assert g.polygon_area_km2 == pytest.approx(
        g.classified_area_km2 + g.nodata_area_km2 + g.outside_raster_area_km2, rel=1e-7)
    assert g.area_km2 == g.classified_area_km2


def test_partially_covered_pixels_count_by_covered_fraction(world):
    # County A ends half-way through column 1: its column-1 pixels count half.
    world.geometries = [box(120.00, 30.96, 120.015, 31.00), box(120.02, 30.96, 120.04, 31.00)]
    a = _accounts(world)["000001"].extent
    assert _area_ha(a, 2) == pytest.approx(1.5 * (R0 + R1) / 1e4, rel=1e-9)
    assert _area_ha(a, 9) == pytest.approx(0.5 * R3 / 1e4, rel=1e-9)
    assert a.loc[a.lc_code == 2, "pixel_count"].sum() == pytest.approx(3.0)


def test_one_strip_per_row_gives_the_same_result_as_one_strip(world):
    import rasterio
    from gep import engine
    cfg = load_run_config(world.write())
    with rasterio.open(cfg.landcover[2020]) as src:  # the same map stored one row per block
        profile, data = src.profile | {"blockysize": 1}, src.read()
    with rasterio.open(cfg.landcover[2020], "w", **profile) as dst:
        dst.write(data)
    prep = pipeline.prepare(cfg, 2020)
    try:
        assert len(engine.plan(prep, strip_pixels=4).strips) == 4  # the 4 x 4 raster, row by row
        one = pipeline.account(prep)
        rows = pipeline.account(prep, strip_pixels=4)
    finally:
        prep.close()
    for x, y in zip(one, rows):
        np.testing.assert_allclose(x.extent.area_ha, y.extent.area_ha, rtol=1e-12)
        np.testing.assert_allclose(x.services.value_cny, y.services.value_cny, rtol=1e-12)


def test_esa_worldcover_scheme(world):
    # The same map in WorldCover codes: 40 cropland, 10 tree cover, 80 water, 90 wetland, 50 built-up.
    lut = np.zeros(256, dtype=np.uint8)
    lut[[1, 2, 5, 8, 9]] = [40, 10, 80, 50, 90]
    world.landcover = lut[world.landcover]
    world.scheme = "esa_worldcover"
    acc = _accounts(world)
    a = acc["000001"].extent
    assert _area_ha(a, 10) == pytest.approx(2 * (R0 + R1) / 1e4, rel=1e-9)
    assert _area_ha(a, 40, "cropland_paddy") == pytest.approx(PADDY * (2 * R2 + R3) / 1e4, rel=1e-9)
    assert set(a.ecosystem_type) == {"forest", "cropland_paddy", "cropland_dry", "wetland"}
    assert set(acc["000002"].extent.lc_name) == {"Tree cover", "Permanent water bodies", "Built-up"}


def test_projected_landcover_uses_constant_cell_areas(world):
    # UTM 50N, 30 m pixels: every pixel is 900 m²; auxiliary rasters stay geographic and are warped.
    from rasterio.transform import from_origin
    from pyproj import Transformer
    world.crs = "EPSG:32650"
    world.boundary_crs = "EPSG:32650"
    world.lc_transform = from_origin(500_000, 3_430_000, 30, 30)
    world.geometries = [box(500_000, 3_429_880, 500_060, 3_430_000), box(500_060, 3_429_880, 500_150, 3_430_000)]
    lon, lat = Transformer.from_crs(32650, 4326, always_xy=True).transform(500_060, 3_429_940)
    world.aux_bounds = (round(lon, 2) - 0.04, round(lat, 2) - 0.04, round(lon, 2) + 0.04, round(lat, 2) + 0.04)
    acc = _accounts(world)
    a, b = acc["000001"], acc["000002"]
    assert _area_ha(a.extent, 2) == pytest.approx(4 * 900 / 1e4)
    assert _area_ha(a.extent, 1) == pytest.approx(3 * 900 / 1e4)
    g = b.gep.iloc[0]
    assert g.classified_area_km2 == pytest.approx(6 * 900 / 1e6)
    assert g.nodata_area_km2 == pytest.approx(2 * 900 / 1e6)
    assert g.outside_raster_area_km2 == pytest.approx(30 * 120 / 1e6)  # the 30 m strip east of the raster
    wc = a.services.set_index(["service", "ecosystem_type"]).loc[("water_conservation", "forest"), "quantity"]
    assert wc == pytest.approx((1400 * (1 - 0.0465) - 800) * 1e-3 * 4 * 900, rel=1e-5)
