"""The regulating catalogue against hand calculations on the tiny world (tests/tiny_world.py).

Every expectation is worked out here from the tiny world's constants and the published
coefficients (configs/coefficients.csv, configs/prices.csv), not read back from the code.
"""
import math

import numpy as np
import pandas as pd
import pytest

from gep import pipeline
from gep.config import load_run_config
from gep.derived import horn_gradient, ls_from_gradient
from gep.services.flood_regulation import lake_capacity_m3
from gep.services.purification import purified_t
from gep.services.soil_retention import c_from_cover, k_chinese_si, k_epic_us, soil_retention_t

from test_area import SPHERE_ROWS_M2
from tiny_world import (COVER, EMISSIONS, ET_MM, HOT, K_SI, LAKE, LS, NPP_KGC, PADDY, R_FACTOR, RESERVOIR_STORAGE,
                        WATER_EVAP)

R0, R1, R2, R3 = SPHERE_ROWS_M2
FOREST_A, CROP_A, WETLAND_A = 2 * (R0 + R1), 2 * R2 + R3, R3   # m², county A
FOREST_B, WATER_B = 2 * R0, 2 * R1                              # m², county B
CPI_PCT = {2006: 1.5, 2007: 4.8, 2008: 5.9, 2009: -0.7, 2010: 3.3, 2011: 5.4, 2012: 2.6, 2013: 2.6, 2014: 2.0,
           2015: 1.4, 2016: 2.0, 2017: 1.6, 2018: 2.1, 2019: 2.9, 2020: 2.5, 2021: 0.9, 2022: 2.0, 2023: 0.2}


def cpi(frm: int, to: int) -> float:
    """CPI(to) / CPI(frm) from the NBS annual changes (methodology §8.3), by hand."""
    f = math.prod(1 + CPI_PCT[y] / 100 for y in range(min(frm, to) + 1, max(frm, to) + 1))
    return f if to >= frm else 1 / f


def run(world, extra: str = "", year: int = 2020):
    """Accounts of the regulating tiny world, with extra configuration appended."""
    world.regulating = True
    config = world.write()
    if extra:
        config.write_text(config.read_text() + extra)
    return {a.gep.county_code.iloc[0]: a for a in account(config, year)[1]}


def account(config, year: int = 2020):
    """(the prepared run, closed; every county's accounts) of a run configuration."""
    prep = pipeline.prepare(load_run_config(config), year)
    try:
        return prep, pipeline.account(prep)
    finally:
        prep.close()


def rows(acc, service):
    s = acc.services
    return s[s.service == service].set_index(["indicator", "ecosystem_type"])


# ----------------------------------------------------------------------------- soil retention
def test_rusle_of_the_worked_example():
    # Methodology §8.5: R 5,500, K 0.03, LS 3, C 0.006, P 1 -> 492 t/ha/a; 10,000 ha -> 4.92e6 t.
    q = soil_retention_t(5500.0, 0.03, 3.0, 0.006, 1.0, 1e8)
    assert q == pytest.approx(4.92e6, rel=1e-3)
    # sediment value: 0.24 x 4.92e6 t / 1.25 t/m3 x 15.58 CNY/m3 (2010) x (1.48/1.1555) = 18.9e6 CNY
    assert 0.24 * q / 1.25 * 15.58 * cpi(2010, 2020) == pytest.approx(18.9e6, rel=5e-3)
    # N and P (TN 0.15 %, TP 0.07 %): 8.3e6 and 12.4e6 CNY
    assert q * 0.0015 * 875 * cpi(2010, 2020) == pytest.approx(8.3e6, rel=5e-3)
    assert q * 0.0007 * 2800 * cpi(2010, 2020) == pytest.approx(12.4e6, rel=5e-3)


def test_soil_factors_by_hand():
    # Cai 2000: f_c 50 % -> C = 0.6508 - 0.3436 log10(50) = 0.06703; 0 % -> 1; 80 % (> 78.3) -> 0
    np.testing.assert_allclose(c_from_cover(np.array([0.5, 0.0, 0.8]), 0.6508, 0.3436, 78.3),
                               [0.6508 - 0.3436 * math.log10(50), 1.0, 0.0])
    # EPIC for sand 30, silt 40, clay 30, OC 1.5 %, each factor by hand
    sn1 = 0.7
    k = ((0.2 + 0.3 * math.exp(-0.0256 * 30 * (1 - 0.4))) * (40 / 70) ** 0.3
         * (1 - 0.25 * 1.5 / (1.5 + math.exp(3.72 - 2.95 * 1.5)))
         * (1 - 0.7 * sn1 / (sn1 + math.exp(-5.51 + 22.9 * sn1))))
    assert k_epic_us(30.0, 40.0, 30.0, 1.5) == pytest.approx(k, rel=1e-12)
    assert k == pytest.approx(0.3892 * 0.8455 * 0.8119, abs=2e-4)  # 0.2672: the four factors worked out by hand
    # Zhang's correction and SI units: (-0.01383 + 0.51575 K) x 0.1317 = 0.0163, inside 0.01-0.04
    assert k_chinese_si(k, -0.01383, 0.51575, 0.1317) == pytest.approx((-0.01383 + 0.51575 * k) * 0.1317)


def test_slope_and_ls_from_a_plane():
    # A plane rising 10 m per 100 m cell eastward: tan = 0.1, slope 5.711 deg everywhere (Horn).
    z = np.tile(np.arange(6, dtype=float) * 10.0, (5, 1))
    slope = np.degrees(np.arctan(horn_gradient(z, np.full(3, 100.0), np.full(3, 100.0))))
    np.testing.assert_allclose(slope, math.degrees(math.atan(0.1)), rtol=1e-12)
    theta = math.atan(0.1)
    # 10 % >= 5 % -> m = 0.5; 5-10 deg -> S = 16.8 sin - 0.5; lambda 40 m
    assert ls_from_gradient(np.tan(np.array([theta])), 40.0)[0] == pytest.approx(
        (40 / 22.13) ** 0.5 * (16.8 * math.sin(theta) - 0.5))
    # flat (0.5 %): m 0.2, S = 0.03 + 10.8 sin
    t2 = math.atan(0.005)
    assert ls_from_gradient(np.tan(np.array([t2])), 40.0)[0] == pytest.approx(
        (40 / 22.13) ** 0.2 * (10.8 * math.sin(t2) + 0.03))


def test_ls_is_derived_from_a_dem_once_and_cached(world, tmp_path):
    from gep.derived import NODATA
    import rasterio
    from rasterio.transform import from_origin
    from tiny_world import write_raster
    world.regulating = True
    config = world.write()
    # A projected DEM would need another CRS; this geographic one rises 50 m per 0.01 deg northward.
    dem = (np.arange(8, dtype=np.float32)[::-1, None] * 50.0 * np.ones((8, 10), dtype=np.float32))
    write_raster(world.root / "dem.tif", dem, from_origin(119.98, 31.02, 0.01, 0.01), nodata=-9999.0)
    text = config.read_text().replace('[auxiliary.ls_factor]\npath = "ls_{year}.tif"\nunit = "1"\n',
                                      '[auxiliary.dem]\npath = "dem.tif"\nunit = "m"\n')
    config.write_text(text)
    cfg = load_run_config(config)
    prep = pipeline.prepare(cfg, 2020)
    try:
        ls = next(a for a in prep.aux if a.name == "ls_factor")
        assert ls.path.parent == cfg.output_dir / ".gep" / "cache"
        with rasterio.open(ls.path) as ds:
            arr = ds.read(1)
        # dz/dy = 50 m per cell height; cell height of 0.01 deg of latitude at ~31 N on WGS 84
        lat = math.radians(31.02 - 0.035)
        e2 = 0.006694379990141317
        dy = 6378137 * (1 - e2) / (1 - e2 * math.sin(lat) ** 2) ** 1.5 * math.radians(0.01)
        theta = math.atan(50.0 / dy)
        assert 0.03 < 50.0 / dy < 0.05 and math.degrees(theta) < 5  # 4.5 %: m = 0.4; S = 10.8 sin + 0.03
        expected = (40 / 22.13) ** 0.4 * (10.8 * math.sin(theta) + 0.03)
        assert arr[3, 4] == pytest.approx(expected, rel=1e-5) and (arr != NODATA).all()
        first = ls.path.stat().st_mtime_ns
    finally:
        prep.close()
    prep = pipeline.prepare(cfg, 2020)  # same DEM: the cached layer is reused
    try:
        assert next(a for a in prep.aux if a.name == "ls_factor").path.stat().st_mtime_ns == first
    finally:
        prep.close()


def test_soil_retention_on_the_tiny_world(world):
    a = rows(run(world)["000001"], "soil_retention")
    c = 0.6508 - 0.3436 * math.log10(COVER * 100)
    per_ha = {"forest": R_FACTOR * K_SI * LS * (1 - c * 1.0), "cropland_paddy": R_FACTOR * K_SI * LS * (1 - c * 0.15),
              "cropland_dry": R_FACTOR * K_SI * LS * (1 - c * 0.40)}
    area = {"forest": FOREST_A, "cropland_paddy": PADDY * CROP_A, "cropland_dry": (1 - PADDY) * CROP_A}
    for t, v in per_ha.items():
        q = v * area[t] / 1e4
        assert a.loc[("soil_retained", t), "quantity"] == pytest.approx(q, rel=1e-6)  # float32 rasters
        assert a.loc[("soil_retained", t), "status"] == "memo" and pd.isna(a.loc[("soil_retained", t), "value_cny"])
        assert a.loc[("sediment", t), "quantity"] == pytest.approx(0.24 * q / 1.25, rel=1e-6)
        assert a.loc[("sediment", t), "value_cny"] == pytest.approx(0.24 * q / 1.25 * 15.58 * cpi(2010, 2020), rel=1e-6)
        assert a.loc[("nitrogen", t), "value_cny"] == pytest.approx(q * 0.0015 * 875 * cpi(2010, 2020), rel=1e-6)
        assert a.loc[("phosphorus", t), "value_cny"] == pytest.approx(q * 0.0007 * 2800 * cpi(2010, 2020), rel=1e-6)
    forest = a.loc[("sediment", "forest")]
    q = per_ha["forest"] * FOREST_A / 1e4
    # range: density 1.20-1.35 t/m3; dredging 12.6 @2005 (18.65 in 2020 CNY) and 19.76 @2023 (19.16) both
    # lie below the central 15.58 @2010 (19.95): the price span is 18.65-19.95
    assert 12.6 * cpi(2005, 2020) < 19.76 * cpi(2023, 2020) < 15.58 * cpi(2010, 2020)
    assert forest.quantity_low == pytest.approx(0.24 * q / 1.35, rel=1e-6)
    assert forest.quantity_high == pytest.approx(0.24 * q / 1.20, rel=1e-6)
    assert forest.value_cny_low == pytest.approx(0.24 * q / 1.35 * 12.6 * cpi(2005, 2020), rel=1e-6)
    assert forest.value_cny_high == pytest.approx(0.24 * q / 1.20 * 15.58 * cpi(2010, 2020), rel=1e-6)
    assert ("soil_retained", "wetland") not in a.index  # no C factor for wetland: not credited


def _soil_rasters(world, shift: float = 0.0):
    from rasterio.transform import from_origin
    from tiny_world import write_raster
    w, _, _, n = world.aux_bounds
    for name, value in (("sand", 30.0), ("silt", 40.0), ("clay", 30.0), ("soc", 1.5)):
        write_raster(world.root / f"{name}.tif", np.full((4, 5), value, dtype=np.float32),
                     from_origin(w + (shift if name == "soc" else 0.0), n, 0.02, 0.02), nodata=-9999.0)
    return "".join(f'[auxiliary.soil_{k}]\npath = "{f}.tif"\nunit = "%"\n' for k, f in
                   (("sand", "sand"), ("silt", "silt"), ("clay", "clay"), ("organic_carbon", "soc")))


def test_k_is_derived_from_soil_texture_by_epic(world):
    world.regulating = True
    config = world.write()
    soils = _soil_rasters(world)
    config.write_text(config.read_text().replace('[services.soil_retention]\nk_factor = "raster"\n', soils))
    _, accounts = account(config)
    a = rows(accounts[0], "soil_retention")
    k = (-0.01383 + 0.51575 * k_epic_us(30.0, 40.0, 30.0, 1.5)) * 0.1317
    c = 0.6508 - 0.3436 * math.log10(COVER * 100)
    assert a.loc[("soil_retained", "forest"), "quantity"] == pytest.approx(
        R_FACTOR * k * LS * (1 - c) * FOREST_A / 1e4, rel=1e-6)
    assert "K by EPIC + Zhang correction" in a.loc[("sediment", "forest"), "method_detail"]


def test_soil_rasters_on_different_grids_are_refused(world):
    from gep.errors import InputValidationError
    world.regulating = True
    config = world.write()
    soils = _soil_rasters(world, shift=0.005)
    config.write_text(config.read_text().replace('[services.soil_retention]\nk_factor = "raster"\n', soils))
    with pytest.raises(InputValidationError, match=r"soc.tif \[auxiliary.soil_organic_carbon\]: not on the grid of"):
        pipeline.prepare(load_run_config(config), 2020)


# ----------------------------------------------------------------------------- flood regulation
def test_lake_model_is_applied_to_whole_lakes():
    whole = lake_capacity_m3(10.0, 4.924, 1.128)
    assert whole == pytest.approx(math.exp(4.924) * 10 ** 1.128 * 1e4)
    # half of a lake on each side of a border: each county gets half the whole lake's capacity,
    # 2^0.128 = 1.093 times what the model would give the clipped half
    assert 0.5 * whole / lake_capacity_m3(5.0, 4.924, 1.128) == pytest.approx(2 ** 0.128)


def test_flood_regulation_on_the_tiny_world(world):
    acc = run(world)
    a, b = rows(acc["000001"], "flood_regulation"), rows(acc["000002"], "flood_regulation")
    r = 6378137.0  # the tiny world's sphere
    w, s, e, n = LAKE.bounds
    lake_km2 = r * r * math.radians(e - w) * (math.sin(math.radians(n)) - math.sin(math.radians(s))) / 1e6
    half = 0.5 * math.exp(4.924) * lake_km2 ** 1.128 * 1e4
    price = 6.1107 * cpi(2005, 2020)
    assert a.loc[("lakes", "water"), "quantity"] == pytest.approx(half, rel=1e-6)
    assert b.loc[("lakes", "water"), "quantity"] == pytest.approx(half, rel=1e-6)
    assert "whole lake" in a.loc[("lakes", "water"), "notes"]
    assert a.loc[("reservoirs", "water"), "quantity"] == pytest.approx(0.35 * RESERVOIR_STORAGE * 1e4)
    assert ("reservoirs", "water") not in b.index  # the point lies in A
    marsh = a.loc[("marshes", "wetland")]
    assert marsh.quantity == pytest.approx(0.3 * WETLAND_A) and marsh.quantity_high == pytest.approx(0.5 * WETLAND_A)
    assert marsh.value_cny == pytest.approx(0.3 * WETLAND_A * price, rel=1e-9)


def test_a_missing_layer_is_a_row_that_says_so_not_a_zero(world):
    world.regulating = True
    config = world.write()
    text = config.read_text()
    start = text.index("[vectors.reservoirs]")
    config.write_text(text[:start] + text[text.index("[services.soil_retention]"):])
    _, accounts = account(config)
    a = rows(accounts[0], "flood_regulation")
    row = a.loc[("reservoirs", "all")]
    assert row.status == "no_input" and "[vectors.reservoirs]" in row.status_reason
    assert pd.isna(row.quantity) and pd.isna(row.value_cny)


# ----------------------------------------------------------------------------- purification: min rule
def test_min_rule_both_ways():
    np.testing.assert_allclose(purified_t(10.0, np.array([37.7, 30.0, 40.0])), [10.0, 10.0, 10.0])
    np.testing.assert_allclose(purified_t(100.0, np.array([18.8, 15.0, 32.3])), [18.8, 15.0, 32.3])


def test_air_purification_emission_binds_in_a_and_capacity_in_b(world):
    acc = run(world)
    a, b = rows(acc["000001"], "air_purification"), rows(acc["000002"], "air_purification")
    so2_a = a.loc[("so2", "forest")]
    assert 88.65e-3 * FOREST_A / 1e4 > EMISSIONS["000001"]["so2"]  # capacity 37.7 t > 10 t emitted
    assert so2_a.quantity == pytest.approx(EMISSIONS["000001"]["so2"])
    assert "emission binds" in so2_a.notes
    assert so2_a.value_cny == pytest.approx(10 * 1200 * cpi(2010, 2020))
    assert so2_a.value_cny_low == pytest.approx(10 * 830 * cpi(2014, 2020))   # S-Miao 2014
    # the 2018 tax-based 1,263 is 1,332 in 2020 CNY, below S-Garze's 1,200 @2010 (1,537): high = central
    assert 1263 * cpi(2018, 2020) < 1200 * cpi(2010, 2020)
    assert so2_a.value_cny_high == pytest.approx(10 * 1200 * cpi(2010, 2020))
    so2_b = b.loc[("so2", "forest")]
    assert so2_b.quantity == pytest.approx(88.65e-3 * FOREST_B / 1e4)  # 18.8 t < 100 t emitted
    assert so2_b.quantity_high == pytest.approx(152.13e-3 * FOREST_B / 1e4)
    assert "capacity binds" in so2_b.notes
    assert b.loc[("nox", "forest"), "quantity"] == pytest.approx(6e-3 * FOREST_B / 1e4)
    assert a.loc[("nox", "forest"), "quantity"] == pytest.approx(EMISSIONS["000001"]["nox"])


def test_water_purification_min_rule(world):
    acc = run(world)
    a, b = rows(acc["000001"], "water_purification"), rows(acc["000002"], "water_purification")
    assert a.loc[("cod", "wetland"), "quantity"] == pytest.approx(50.0)              # 106 t capacity > 50
    assert b.loc[("cod", "water"), "quantity"] == pytest.approx(1.0)                 # emission binds
    assert b.loc[("nh3n", "water"), "quantity"] == pytest.approx(10 * WATER_B / 1e6)  # 21 t < 500 t
    assert b.loc[("nh3n", "water"), "quantity_low"] == pytest.approx(5 * WATER_B / 1e6)
    assert b.loc[("tp", "water"), "value_cny"] == pytest.approx(0.01 * 2800 * cpi(2010, 2020))


# ----------------------------------------------------------------------------- carbon, oxygen, climate switches
def test_oxygen_pairings(world):
    acc = run(world)
    forest = rows(acc["000001"], "oxygen_release").loc[("o2", "forest")]
    co2 = 44 / 12 * 0.30 * NPP_KGC * FOREST_A / 1000
    assert forest.quantity == pytest.approx(32 / 44 * co2, rel=1e-6)  # consistent: the same carbon (float32 NPP)
    assert forest.value_cny == pytest.approx(32 / 44 * co2 * 1000 * cpi(2005, 2020), rel=1e-6)
    world2 = type(world)(world.root / "sgarze")
    world2.root.mkdir()
    sg = rows(run(world2, '\n[services.oxygen_release]\npairing = "s_garze"\n')["000001"], "oxygen_release")
    assert sg.loc[("o2", "forest"), "quantity"] == pytest.approx(1.19 * NPP_KGC / 0.45 * FOREST_A / 1000, rel=1e-6)
    # the documented factor: 1.19 / 0.45 / (32/12 x 0.30) = 3.306 times the consistent pairing
    assert sg.loc[("o2", "forest"), "quantity"] / forest.quantity == pytest.approx(1.19 / 0.45 / (32 / 12 * 0.30))


@pytest.mark.parametrize("extra, factor", [
    ('vegetation_term = "et"', {"forest": 1 / 0.67, "wetland": 1 / 0.50, "water": 1.0}),
    ('water_term = "s_garze"', {"forest": 1.0, "water": 3.0 / HOT}),
    ('water_term = "s_garze"\nhumidifier = true',
     {"water": (2450 / 3600 + 120e-3) / (HOT * 2450 / 3600 / 3)}),  # 7.84: §0.5 item 5's 6.7-7.8x
])
def test_climate_switches_change_the_value_by_the_documented_factor(world, tmp_path, extra, factor):
    base = run(world)
    other = type(world)(tmp_path / "switched")
    other.root.mkdir()
    switched = run(other, f"\n[services.climate_regulation]\n{extra}\n")
    compared = 0
    for code in ("000001", "000002"):
        b0, b1 = rows(base[code], "climate_regulation"), rows(switched[code], "climate_regulation")
        for t, f in factor.items():
            key = ("electricity_saved", t)
            if key in b0.index:
                assert b1.loc[key, "quantity"] / b0.loc[key, "quantity"] == pytest.approx(f, rel=1e-9)
                compared += 1
    assert compared >= len(factor)  # every switched type was there to compare


def test_climate_water_term_by_hand_and_paddy_as_wetland(world, tmp_path):
    b = rows(run(world)["000002"], "climate_regulation")
    kwh = WATER_EVAP * HOT * WATER_B * 2450 / 3600 / 3.0
    assert b.loc[("electricity_saved", "water"), "quantity"] == pytest.approx(kwh, rel=1e-9)
    assert b.loc[("electricity_saved", "water"), "value_cny"] == pytest.approx(kwh * 0.538, rel=1e-9)
    assert b.loc[("electricity_saved", "water"), "value_cny_high"] == pytest.approx(kwh * 0.717, rel=1e-9)
    other = type(world)(tmp_path / "paddy")
    other.root.mkdir()
    a = rows(run(other, '\n[services.climate_regulation]\npaddy = "as_wetland"\n')["000001"], "climate_regulation")
    paddy = a.loc[("electricity_saved", "cropland_paddy")]
    assert paddy.quantity == pytest.approx(ET_MM * 0.50 * HOT * PADDY * CROP_A * 2450 / 3600 / 3, rel=1e-6)
    assert "paddy credited as wetland" in paddy.method_detail


def test_carbon_price_rule_by_year(world):
    from gep.config import load_reference_data
    from gep.services.carbon_sequestration import carbon_price_key
    from gep.valuation import priced
    assert carbon_price_key("ets_from_2021", "carbon_afforestation", 2020) == "carbon_afforestation"
    assert carbon_price_key("ets_from_2021", "carbon_afforestation", 2022) == "carbon_ets_2022"
    assert carbon_price_key("fixed", "carbon_afforestation", 2022) == "carbon_afforestation"
    ref = load_reference_data(load_run_config(world.write()))
    # current prices: the market price of the year itself, not deflated
    assert priced(ref, "carbon_ets_2022", 2022, "t CO2").unit_price == 57.5
    # constant 2020 prices: CPI converts it
    assert priced(ref, "carbon_ets_2022", 2020, "t CO2").unit_price == pytest.approx(57.5 * cpi(2022, 2020))
    with pytest.raises(Exception, match="carbon_ets_2030"):
        ref.price("carbon_ets_2030")


def test_pest_control_counts_natural_forest_only(world):
    a = rows(run(world)["000001"], "pest_control")
    row = a.loc[("natural_forest_area", "forest")]
    assert row.quantity == pytest.approx(FOREST_A / 1e4 * 0.35)
    assert row.value_cny == pytest.approx(FOREST_A / 1e4 * 0.35 * 375 * cpi(2010, 2020))


# ----------------------------------------------------------------------------- not accounted is not zero
def test_services_not_accounted_are_rows_with_a_reason(world):
    acc = run(world)
    for code, a in acc.items():
        s = a.services.set_index("service")
        assert s.loc["coastal_protection", "status"] == "not_applicable"  # statistics: coastal = 0
        assert "inland" in s.loc["coastal_protection", "status_reason"]
        assert s.loc["windbreak_sand_fixation", "status"] == "not_applicable"
        assert pd.isna(s.loc["coastal_protection", "value_cny"]) and pd.isna(s.loc["coastal_protection", "quantity"])
        g = a.gep.iloc[0]
        assert "coastal_protection" in g.services_not_accounted and "coastal_protection" not in g.services
        valued = a.services[a.services.status == "accounted"]
        assert g.gep_cny == pytest.approx(valued.value_cny.sum())
        assert g.gep_cny_low <= g.gep_cny <= g.gep_cny_high
    assert acc["000001"].gep.iloc[0].plausibility_flag == "not checked: not a complete indicator set (custom service list)"


def test_coastal_county_without_a_method_says_so(world):
    world.regulating = True
    world.statistics_rows = [f"{c},2020,{PADDY},{HOT},{WATER_EVAP},0.35,0.5,{flag},test" for c, flag in
                             zip(world.codes, (0, 1))]
    b = account(world.write())[1][1].services.set_index("service").loc["coastal_protection"]
    assert b.status == "no_method" and "seawall" in b.status_reason and pd.isna(b.value_cny)


# ----------------------------------------------------------------------------- no silent loss
def _precip_on_pixels(world, precip: np.ndarray) -> None:
    from rasterio.transform import from_origin
    from tiny_world import write_raster
    write_raster(world.root / "precip_2020.tif", precip, from_origin(119.98, 31.02, 0.01, 0.01), nodata=-9999.0)


def test_water_conservation_is_clipped_per_pixel(world):
    # ET 1,500 mm on one of A's four forest pixels (P(1-alpha) - ET < 0 there), 700 elsewhere, per
    # pixel (nearest): the dry pixel adds 0, it does not cancel the wet ones.
    from rasterio.transform import from_origin
    from tiny_world import PRECIP_MM, write_raster
    world.et_resampling = "nearest"
    config = world.write()
    et = np.full((8, 10), 700.0, dtype=np.float32)
    et[2, 2] = 1500.0  # land-cover pixel (0, 0): forest of A, row 0
    write_raster(world.root / "et_2020.tif", et, from_origin(119.98, 31.02, 0.01, 0.01), nodata=-9999.0)
    _, accounts = account(config)
    a = accounts[0].services.set_index(["service", "ecosystem_type"])
    wet = PRECIP_MM * (1 - 0.0465) - 700.0
    assert PRECIP_MM * (1 - 0.0465) - 1500.0 < 0
    assert a.loc[("water_conservation", "forest"), "quantity"] == pytest.approx(wet * 1e-3 * (R0 + 2 * R1), rel=1e-9)


def test_precipitation_gap_is_filled_with_the_county_mean_and_reported(world):
    # Precipitation missing over A's southern pixels (cropland, wetland): they take the mean of the
    # county's valid cells (1,400 mm, from the validation pass), never NaN, and the share is reported.
    world.allow_partial = True
    config = world.write()
    precip = np.full((8, 10), 1400.0, dtype=np.float32)
    precip[4:6, 2:4] = -9999.0
    _precip_on_pixels(world, precip)
    text = config.read_text().replace('path = "precip_{year}.tif"\nunit = "mm/a"',
                                      'path = "precip_{year}.tif"\nunit = "mm/a"\nresampling = "nearest"')
    config.write_text(text)
    prep, accounts = account(config)
    assert prep.aux_county_mean["000001"]["precipitation"] == pytest.approx(1400.0)
    a = accounts[0]
    s = a.services.set_index(["service", "ecosystem_type"])
    wetland = s.loc[("water_conservation", "wetland")]
    assert wetland.quantity == pytest.approx((1400.0 - ET_MM) * 1e-3 * WETLAND_A, rel=1e-9)
    assert wetland.default_filled_share == 1.0
    assert "took filled inputs" in a.gep.iloc[0].quality_flag
    assert np.isfinite(a.services.loc[a.services.status == "accounted", "value_cny"]).all()


def test_nearest_valid_fill_rule(world):
    # fill = "nearest": the wetland pixel of A (land-cover row 3, column 1) has no precipitation; its
    # four neighbouring cells hold 1,100 mm (all others 1,400): it takes 1,100, and is reported filled.
    config = world.write()
    precip = np.full((8, 10), 1400.0, dtype=np.float32)
    precip[5, 3] = -9999.0
    for r, c in ((4, 3), (6, 3), (5, 2), (5, 4)):
        precip[r, c] = 1100.0
    _precip_on_pixels(world, precip)
    config.write_text(config.read_text().replace('path = "precip_{year}.tif"\nunit = "mm/a"',
                                                 'path = "precip_{year}.tif"\nunit = "mm/a"\nresampling = "nearest"\n'
                                                 'fill = "nearest"'))
    _, accounts = account(config)
    s = accounts[0].services.set_index(["service", "ecosystem_type"])
    wetland = s.loc[("water_conservation", "wetland")]
    assert wetland.quantity == pytest.approx((1100.0 - ET_MM) * 1e-3 * WETLAND_A, rel=1e-9)
    assert wetland.default_filled_share == 1.0


def test_a_fill_rule_without_a_default_is_refused(world):
    from gep.errors import InputValidationError
    config = world.write()
    config.write_text(config.read_text().replace('path = "precip_{year}.tif"\nunit = "mm/a"',
                                                 'path = "precip_{year}.tif"\nunit = "mm/a"\nfill = "class_default"'))
    with pytest.raises(InputValidationError, match=r"\[auxiliary.precipitation.fill\]: precipitation has no per-class"):
        pipeline.prepare(load_run_config(config), 2020)


# ----------------------------------------------------------------------------- schemes, bands, carbon stock
def test_a_users_own_scheme_as_csv(world):
    # The user maps CLCD cropland (code 1) to garden: water conservation credits it at 9.57 % runoff.
    world.write()
    (world.root / "my_scheme.csv").write_text(
        "code,name,ecosystem_type\n0,No data,nodata\n1,Orchards,garden\n2,Forest,forest\n3,Shrub,shrub\n"
        "4,Grass,grassland\n5,Water,water\n6,Snow,snow_ice\n7,Bare,bare\n8,Built,built_up\n9,Wetland,wetland\n")
    config = world.config()
    config.write_text(config.read_text().replace('landcover_scheme = "clcd"', 'landcover_scheme = "my_scheme.csv"'))
    _, accounts = account(config)
    a = accounts[0]
    s = a.services.set_index(["service", "ecosystem_type"])
    from tiny_world import PRECIP_MM
    assert s.loc[("water_conservation", "garden"), "quantity"] == pytest.approx(
        (PRECIP_MM * (1 - 0.0957) - ET_MM) * 1e-3 * CROP_A, rel=1e-6)
    assert set(a.extent.lc_scheme) == {"my_scheme"}  # the file's stem


def test_a_scheme_csv_without_nodata_is_refused(world):
    from gep.errors import InputValidationError
    world.write()
    (world.root / "s.csv").write_text("code,name,ecosystem_type\n1,Crop,cropland_dry\n")
    config = world.config()
    config.write_text(config.read_text().replace('landcover_scheme = "clcd"', 'landcover_scheme = "s.csv"'))
    with pytest.raises(InputValidationError, match=r"s.csv \[ecosystem_type\]: no row gives the nodata code"):
        pipeline.prepare(load_run_config(config), 2020)


def test_monthly_bands_are_summed_into_annual_precipitation(world):
    import rasterio
    from rasterio.transform import from_origin
    config = world.write()
    months = np.stack([np.full((4, 5), 100.0 + m, dtype=np.float32) for m in range(12)])  # 1,266 mm/a
    w, _, _, n = world.aux_bounds
    with rasterio.open(world.root / "monthly.tif", "w", driver="GTiff", width=5, height=4, count=12, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(w, n, 0.02, 0.02), nodata=-9999.0) as dst:
        dst.write(months)
    text = config.read_text().replace('path = "precip_{year}.tif"\nunit = "mm/a"',
                                      'path = "monthly.tif"\nunit = "mm/a"\nbands = [1,2,3,4,5,6,7,8,9,10,11,12]')
    config.write_text(text)
    prep, accounts = account(config)
    assert prep.aux_county_mean["000001"]["precipitation"] == pytest.approx(1266.0)
    s = accounts[0].services.set_index(["service", "ecosystem_type"])
    assert s.loc[("water_conservation", "wetland"), "quantity"] == pytest.approx((1266.0 - ET_MM) * 1e-3 * WETLAND_A)
    with pytest.raises(Exception, match=r"bands \[13\] asked for, but the raster has 12 band"):
        config.write_text(text.replace("bands = [1,2,3,4,5,6,7,8,9,10,11,12]", "bands = [13]"))
        pipeline.prepare(load_run_config(config), 2020)


def _pools(world) -> None:
    (world.root / "pools.csv").write_text(
        "lucode,c_above,c_below,c_soil,c_dead\n1,3,1,45,0\n2,45,11,90,5\n3,12,5,60,2\n4,2,4,55,1\n5,0,0,0,0\n"
        "6,0,0,0,0\n7,0,0,10,0\n8,0,0,15,0\n9,5,3,120,2\n")


def test_carbon_stock_is_pools_times_area(world):
    world.carbon_stock = True
    config = world.write()
    _pools(world)
    _, accounts = account(config)
    acc = accounts
    a = acc[0].carbon_stock.set_index("lc_code")
    assert a.loc[2, "stock_t_c"] == pytest.approx((45 + 11 + 90 + 5) * FOREST_A / 1e4, rel=1e-9)
    assert a.loc[1, "stock_t_c"] == pytest.approx(49 * CROP_A / 1e4, rel=1e-9)
    assert a.loc[9, "stock_t_c"] == pytest.approx(130 * WETLAND_A / 1e4, rel=1e-9)
    assert a.baseline_year.isna().all() and a.stock_change_t_c.isna().all()


def test_carbon_stock_change_against_the_baseline_year(world):
    # 2015: the same land cover but A's forest pixel (0, 0) was cropland: the change is +1 pixel
    # of forest and -1 of cropland, (151 - 49) t C/ha x R0 / 1e4 ha.
    from tiny_world import LANDCOVER, write_raster
    world.carbon_stock = True
    config = world.write()
    _pools(world)
    lc15 = LANDCOVER.copy()
    lc15[0, 0] = 1
    write_raster(world.root / "lc_2015.tif", lc15, world.lc_transform, nodata=0)
    text = config.read_text().replace('2020 = "lc_2020.tif"', '2015 = "lc_2015.tif"\n2020 = "lc_2020.tif"')
    config.write_text(text.replace('pools = "pools.csv"', 'pools = "pools.csv"\nbaseline_year = 2015'))
    _, accounts = account(config)
    a = accounts[0].carbon_stock.set_index("lc_code")
    assert a.loc[2, "stock_change_t_c"] == pytest.approx(151 * R0 / 1e4, rel=1e-9)
    assert a.loc[1, "stock_change_t_c"] == pytest.approx(-49 * R0 / 1e4, rel=1e-9)
    assert (a.baseline_year == 2015).all()
    assert a.stock_change_t_c.sum() == pytest.approx((151 - 49) * R0 / 1e4, rel=1e-9)


def test_carbon_stock_reproduces_invest_carbon(world):
    """InVEST Carbon on the same inputs, as its code computes it (natcap/invest
    src/natcap/invest/carbon/carbon.py: `_generate_carbon_map` reclassifies the land cover into one
    float32 raster per pool [Mg C/ha], `sum_op` adds the four, `_generate_summary_results_table`
    sums the cells and multiplies by |pixel width x height| / 10,000; the change is alt - bas per
    cell). natcap.invest itself has no wheel for this platform (it builds against GDAL's C
    library), so its three steps are replayed here with numpy. A projected 30 m grid, as InVEST
    expects; two counties that split it along a pixel edge, so the grid's total is theirs."""
    from rasterio.transform import from_origin
    from shapely.geometry import box
    from tiny_world import LANDCOVER, write_raster
    world.crs = world.boundary_crs = "EPSG:32650"
    world.lc_transform = from_origin(500_000, 3_400_120, 30, 30)
    world.geometries = [box(500_000, 3_400_000, 500_060, 3_400_120), box(500_060, 3_400_000, 500_120, 3_400_120)]
    world.services, world.carbon_stock = ["species_conservation"], True
    config = world.write()
    (world.root / "pools.csv").write_text(
        "lucode,c_above,c_below,c_soil,c_dead\n1,3.3,1.1,45.7,0.1\n2,45.25,11.5,90.05,5.3\n3,12,5,60,2\n"
        "4,2,4,55,1\n5,0,0,0,0\n6,0,0,0,0\n7,0,0,10,0\n8,0,0,15.5,0\n9,5.5,3.3,120.1,2.2\n")
    alt = LANDCOVER.copy()
    bas = LANDCOVER.copy()
    bas[0, 0], bas[2, 1] = 1, 9  # the baseline: one forest cell was cropland, one cropland cell wetland
    write_raster(world.root / "lc_2015.tif", bas, world.lc_transform, crs=world.crs, nodata=0)
    text = config.read_text().replace('2020 = "lc_2020.tif"', '2015 = "lc_2015.tif"\n2020 = "lc_2020.tif"')
    config.write_text(text.replace('pools = "pools.csv"', 'pools = "pools.csv"\nbaseline_year = 2015'))
    _, accounts = account(config)
    ours = pd.concat([a.carbon_stock for a in accounts])
    pools = pd.read_csv(world.root / "pools.csv").set_index("lucode")

    def invest_storage(lulc):  # _generate_carbon_map per pool (float32), then sum_op
        maps = [np.vectorize(lambda c, p=p: pools.loc[c, p] if c != 0 else np.nan)(lulc).astype(np.float32)
                for p in ("c_above", "c_below", "c_soil", "c_dead")]
        return np.sum(maps, axis=0)

    pixel_area = abs(30.0 * -30.0)
    total = {y: float(np.nansum(invest_storage(l).astype(np.float64))) * pixel_area / 10000
             for y, l in ((2015, bas), (2020, alt))}
    change = float(np.nansum((invest_storage(alt) - invest_storage(bas)).astype(np.float64))) * pixel_area / 10000
    assert ours.stock_t_c.sum() == pytest.approx(total[2020], rel=1e-6)
    assert ours.baseline_stock_t_c.sum() == pytest.approx(total[2015], rel=1e-6)
    assert ours.stock_change_t_c.sum() == pytest.approx(change, rel=1e-6)
    assert change != 0


def test_carbon_pools_must_cover_every_code(world):
    from gep.errors import InputValidationError
    world.carbon_stock = True
    world.write()
    (world.root / "pools.csv").write_text("lucode,c_above,c_below,c_soil,c_dead\n1,3,1,45,0\n2,45,11,90,5\n")
    with pytest.raises(InputValidationError, match=r"pools.csv \[lucode\]: no pools for land-cover codes \[3, 4, 5"):
        pipeline.prepare(load_run_config(world.config()), 2020)


# ----------------------------------------------------------------------------- audit trail, records
def test_every_row_carries_what_an_auditor_needs(world):
    a = run(world)["000001"]
    accounted = a.services[a.services.status == "accounted"]
    assert len(accounted) > 20
    for r in accounted.itertuples():
        assert r.price_key and r.base_price_year and r.price_source and r.method_detail
        assert r.unit_price == pytest.approx(r.base_unit_price * r.index_factor)
        assert r.value_cny == pytest.approx(r.quantity * r.unit_price)
        assert r.quantity_low <= r.quantity <= r.quantity_high and r.value_cny_low <= r.value_cny <= r.value_cny_high
    sediment = a.services.set_index(["service", "indicator", "ecosystem_type"]).loc[("soil_retention", "sediment", "forest")]
    for needle in ("sediment_deposition_ratio=0.24 1 (V: S-Garze", "soil_bulk_density=1.25 [1.2-1.35] t/m3 (E:",
                   "p_factor[forest]=1"):
        assert needle in sediment.parameters


def test_method_choices_are_in_every_file(world):
    import json
    import pyarrow.parquet as pq
    from gep import runs
    from tiny_world import data_files
    world.regulating = True
    config = world.write()
    config.write_text(config.read_text() + '\n[services.climate_regulation]\nwater_term = "s_garze"\n')
    runs.run(load_run_config(config))
    files = data_files(world.out)
    assert files
    for path in files.values():
        meta = pq.read_schema(path).metadata
        choices = json.loads(meta[b"gep:method_choices"])
        assert choices["services"]["climate_regulation"]["water_term"] == "s_garze"
        assert choices["services"]["oxygen_release"]["pairing"] == "consistent"
        assert choices["services"]["carbon_sequestration"]["price_rule"] == "ets_from_2021"


def test_a_net_carbon_source_is_refused_not_clipped(world):
    # NPP of -0.3 kg C/m2/a everywhere: carbon sequestration would be negative; the run stops
    # naming county, service and type instead of writing 0 or a negative GEP share.
    from rasterio.transform import from_origin
    from gep.errors import GepError
    from tiny_world import write_raster
    config = world.write()
    w, _, _, n = world.aux_bounds
    write_raster(world.root / "npp_2020.tif", np.full((4, 5), -0.3, dtype=np.float32), from_origin(w, n, 0.02, 0.02),
                 nodata=-9999.0)
    prep = pipeline.prepare(load_run_config(config), 2020)
    try:
        with pytest.raises(GepError, match=r"county 000001, service carbon_sequestration, indicator co2, forest: the "
                                           r"quantity is negative"):
            pipeline.account(prep)
    finally:
        prep.close()
