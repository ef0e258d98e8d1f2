"""Two services recomputed by an independent script on uneven inputs, as a slow test.

The script shares no code with gep's engine or services: exactextract gives each county's cells
and coverage fractions, GDAL's warper (rasterio WarpedVRT, bilinear, nodata honoured) brings the
auxiliary rasters onto the land-cover grid, cell areas come from the spherical-cell formula, and
the formulas and coefficients are typed in from configs/coefficients.csv. Inputs: random land
cover with water, ET with no data over and next to water (filled with the class default), NPP in
UTM 50N (a reprojected raster) with random gaps, bilinear precipitation.
"""
import math

import numpy as np
import pytest
import rasterio
from exactextract import exact_extract
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT
from shapely.geometry import Point, Polygon

from gep import pipeline
from gep.config import load_run_config

from tiny_world import write_raster

pytestmark = pytest.mark.slow

R_SPHERE = 6378137.0
RUNOFF = {"forest": 0.0465, "shrub": 0.0426, "grassland": 0.0387, "wetland": 0.0}
ET_DEFAULT = {"forest": 800.0, "shrub": 700.0, "grassland": 650.0, "wetland": 900.0}
NPP_DEFAULT = {"forest": 0.54, "shrub": 0.36, "grassland": 0.27, "wetland": 0.45}
NEP_RATIO = {"forest": 0.30, "shrub": 0.25, "grassland": 0.15, "wetland": 0.20}
CLCD = {2: "forest", 3: "shrub", 4: "grassland", 9: "wetland"}


@pytest.fixture
def uneven(world):
    rng = np.random.default_rng(23)
    lc = rng.choice(np.array([1, 2, 2, 2, 3, 4, 5, 8, 9], np.uint8), size=(150, 200))
    lc[60:75, 40:120] = 5  # a lake: ET has no data over it and next to it
    world.landcover = lc
    world.lc_transform = from_origin(120.0, 31.0, 0.001, 0.001)
    world.geometries = [Point(120.06, 30.93).buffer(0.05),
                        Polygon([(119.99, 30.99), (120.1312, 30.9707), (120.21, 30.86), (120.05, 30.84)])]
    world.aux_bounds = (119.95, 30.80, 120.25, 31.05)
    config = world.write()
    t = from_origin(119.95, 31.05, 0.013, 0.011)
    shape = (round(0.25 / 0.011) + 1, round(0.30 / 0.013) + 1)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    precip = (1250 + 8 * xx + 5 * yy + 30 * rng.random(shape)).astype(np.float32)
    write_raster(world.root / "precip_2020.tif", precip, t, nodata=-9999.0)
    et = (650 + 4 * xx + 3 * yy + 40 * rng.random(shape)).astype(np.float32)
    lake_cells = (yy >= 6) & (yy <= 10) & (xx >= 6) & (xx <= 14)  # over and around the lake
    et[lake_cells] = -9999.0
    write_raster(world.root / "et_2020.tif", et, t, nodata=-9999.0)
    npp = (0.4 + 0.5 * rng.random((70, 75))).astype(np.float32)
    npp[rng.random(npp.shape) < 0.08] = -9999.0
    write_raster(world.root / "npp_2020.tif", npp, from_origin(770_000, 3_445_000, 500, 500), crs="EPSG:32650",
                 nodata=-9999.0)
    return world, config


def _on_grid(path, lc) -> np.ndarray:
    """GDAL's bilinear warp of an auxiliary raster onto the land-cover grid (NaN = no data)."""
    with rasterio.open(path) as ds, WarpedVRT(ds, crs=lc.crs, transform=lc.transform, width=lc.width,
                                               height=lc.height, src_nodata=ds.nodata, nodata=np.nan,
                                               dtype="float32", resampling=Resampling.bilinear,
                                               tolerance=1e-6) as vrt:
        return vrt.read(1).astype(np.float64)


def _independent(world, county_index: int):
    """Water conservation [m3] and CO2 [t] per ecosystem type of one county, recomputed."""
    import geopandas as gpd
    lc_path = world.root / "lc_2020.tif"
    county = gpd.GeoDataFrame({"id": [county_index]}, geometry=[world.geometries[county_index]], crs="EPSG:4326")
    cells = exact_extract(str(lc_path), county, ["cell_id", "coverage", "values"], output="pandas").iloc[0]
    with rasterio.open(lc_path) as lc:
        p, et, npp = (_on_grid(world.root / f"{n}_2020.tif", lc) for n in ("precip", "et", "npp"))
        t = lc.transform
        rows, cols = np.divmod(np.asarray(cells["cell_id"], dtype=np.int64), lc.width)
    lat_top = t.f + rows * t.e
    area = R_SPHERE ** 2 * math.radians(t.a) * (np.sin(np.radians(lat_top)) - np.sin(np.radians(lat_top + t.e)))
    area = area * np.asarray(cells["coverage"])
    codes = np.asarray(cells["values"])
    water, co2 = {}, {}
    for code, name in CLCD.items():
        m = codes == code
        pp, ee, nn = p[rows[m], cols[m]], et[rows[m], cols[m]], npp[rows[m], cols[m]]
        ee = np.where(np.isnan(ee), ET_DEFAULT[name], ee)
        nn = np.where(np.isnan(nn), NPP_DEFAULT[name], nn)
        assert not np.isnan(pp).any()
        water[name] = float((np.maximum(pp * (1 - RUNOFF[name]) - ee, 0) * 1e-3 * area[m]).sum())
        co2[name] = float((44 / 12 * NEP_RATIO[name] * nn * area[m] / 1000).sum())
    return water, co2


def test_two_services_match_an_independent_recomputation(uneven):
    world, config = uneven
    prep = pipeline.prepare(load_run_config(config), 2020)
    try:
        accounts = pipeline.account(prep)
    finally:
        prep.close()
    filled = 0.0
    for i, acc in enumerate(accounts):
        s = acc.services.set_index(["service", "ecosystem_type"])
        water, co2 = _independent(world, i)
        for name in CLCD.values():
            assert s.loc[("water_conservation", name), "quantity"] == pytest.approx(water[name], rel=2e-5), name
            assert s.loc[("carbon_sequestration", name), "quantity"] == pytest.approx(co2[name], rel=2e-5), name
        filled = max(filled, s.default_filled_share.max())
    assert filled > 0.01  # the gaps were really filled with class defaults
