"""The bundled SYNTHETIC sample: independent checks of the extent account, shares, determinism."""
import hashlib

import numpy as np
import pandas as pd
import pytest
import rasterio

from gep import io, pipeline, sample_data
from gep.config import load_run_config
from gep.qa import compare_extent_with_exactextract, compare_extent_with_pixel_centres, county_totals

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cfg(sample_config):
    return load_run_config(sample_config)


@pytest.mark.parametrize("compare", [compare_extent_with_exactextract, compare_extent_with_pixel_centres])
def test_extent_agrees_with_an_independent_zonal_tool(cfg, compare):
    table = compare(cfg, 2020)
    big = table[table.reference_km2 >= 10.0]  # classes covering at least 10 km² of a county
    assert len(big) >= 40
    assert big.rel_diff.abs().max() < 0.005
    totals = county_totals(table)
    assert len(totals) == 12 and totals.rel_diff.abs().max() < 0.001


@pytest.fixture(scope="module")
def extents(cfg):
    out = {}
    for year in (2015, 2020):
        prep = pipeline.prepare(cfg, year)
        try:
            out[year] = pipeline.account(prep)
        finally:
            prep.close()
    return out


def _by_city(accounts, lc_code):
    e = pd.concat([a.extent for a in accounts])
    e = e.assign(city=e.county_code.str[:4])
    return e[e.lc_code == lc_code].groupby("city").area_ha.sum() / 100, e.groupby("city").area_ha.sum() / 100


def test_sample_shares_are_near_published_figures(extents):
    forest, total = _by_city(extents[2020], 2)
    shrub, _ = _by_city(extents[2020], 3)
    huzhou_cover = (forest["3305"] + shrub["3305"]) / total["3305"]
    assert 0.46 <= huzhou_cover <= 0.50          # Huzhou forest cover about 48 %
    assert 520 <= forest["3304"] <= 570           # Jiaxing forest land about 545 km²
    assert 4150 <= total["3304"] <= 4300          # Jiaxing land ~4,223 km²; the bay is nodata


def test_sample_land_cover_changes_between_years(extents):
    for a15, a20 in zip(extents[2015], extents[2020]):
        e15, e20 = a15.extent.groupby("lc_code").area_ha.sum(), a20.extent.groupby("lc_code").area_ha.sum()
        assert e20[8] > e15[8] * 1.05, a15.gep.county_code.iloc[0]   # more built-up
        assert e20[2] > e15[2], a15.gep.county_code.iloc[0]          # afforestation
        assert e20[1] < e15[1]                                        # less cropland


def test_sea_in_hangzhou_bay_is_reported_as_nodata(extents):
    g = pd.concat([a.gep for a in extents[2020]]).set_index("county_code")
    assert 300 < g.loc["330424", "nodata_area_km2"] < 360   # Haiyan
    assert 20 < g.loc["330482", "nodata_area_km2"] < 50     # Pinghu
    assert g.drop(["330424", "330482"]).nodata_area_km2.max() < 0.01


def test_sample_rasters_are_labelled_synthetic(cfg):
    for path in [cfg.landcover[2020], cfg.auxiliary["npp"].path_for(2020)]:
        with rasterio.open(path) as ds:
            assert ds.tags()["SYNTHETIC"] == "yes" and "SYNTHETIC" in ds.tags()["LABEL"]


def test_generator_is_deterministic(cfg, tmp_path):
    b = cfg.boundaries
    counties, _ = io.read_boundaries(b.path, b.layer, b.code_field, b.name_field)
    digests = []
    for run in range(2):
        lc15, lc20, transform, _ = sample_data.make_landcover(counties, res=0.004)
        path = tmp_path / f"lc{run}.tif"
        sample_data._write(path, lc20, transform, "EPSG:4326", 0, "determinism test")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        assert np.any(lc15 != lc20)
    assert digests[0] == digests[1]
