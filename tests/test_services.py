"""Each service against a hand calculation, the methodology §8.5 worked example and S-Garze figures."""
import numpy as np
import pytest

from gep import pipeline
from gep.config import load_run_config
from gep.services import REGISTRY
from gep.services.carbon_sequestration import co2_nep_route_t, co2_photosynthesis_route_t
from gep.services.climate_regulation import evaporative_cooling_kwh, humidifier_kwh
from gep.services.water_conservation import water_conservation_m3
from gep.valuation import priced

from test_area import SPHERE_ROWS_M2
from tiny_world import ET_MM, HOT, NPP_KGC, PRECIP_MM, WATER_EVAP

R0, R1, R2, R3 = SPHERE_ROWS_M2
HA_100KM2 = 1e8  # 100 km² = 10,000 ha, the §8.5 example forest [m²]


def _ref(world):
    from gep.config import load_reference_data
    return load_reference_data(load_run_config(world.write()))


# ---------------------------------------------------------------- methodology §8.5 worked example
def test_worked_example_water_conservation(world):
    # P 1,400 mm, α 4.65 %, ET 800 mm: R = 65.1 mm; (1,400 − 65.1 − 800) mm × 10⁸ m² = 53.49e6 m³.
    q = water_conservation_m3(np.array([1400.0]), 0.0465, np.array([800.0]), np.array([HA_100KM2]))[0]
    assert q == pytest.approx(53.49e6, rel=1e-4)
    # × 6.1107 CNY/m³ (2005) × CPI 2005→2020 (1.4798; the example rounds to 1.48) ≈ 483.8e6 CNY.
    price = priced(_ref(world), "reservoir_storage", 2020, "m3")
    assert price.index_factor == pytest.approx(1.48, abs=0.001)
    assert price.unit_price == pytest.approx(9.044, abs=0.002)
    assert price.value(q) == pytest.approx(483.8e6, rel=1e-3)


def test_worked_example_carbon_both_routes():
    npp_c = np.array([12 * 0.45 / 10])  # 12 t DM/ha/a = 0.54 kg C/m²/a
    area = np.array([HA_100KM2])
    # Route (a): 1.63 × 120,000 t DM = 195,600 t CO₂.
    assert co2_photosynthesis_route_t(npp_c, 0.45, 1.63, area)[0] == pytest.approx(195_600, rel=1e-9)
    # Route (b): 120,000 × 0.45 × 0.30 × 44/12 = 59,400 t CO₂; at 60 CNY/t = 3.56e6 CNY.
    co2 = co2_nep_route_t(npp_c, 0.30, area)[0]
    assert co2 == pytest.approx(59_400, rel=1e-9)
    assert co2 * 60 == pytest.approx(3.56e6, rel=2e-3)


def test_worked_example_climate_regulation():
    # 0.45 × 800 mm = 360 mm over 10⁸ m² = 3.6e10 kg × 2,450 kJ/kg / 3,600 / 3 = 8.17e9 kWh;
    # × 0.538 CNY/kWh = 4.39e9 CNY (0.44 亿 CNY/km²).
    kwh = evaporative_cooling_kwh(0.45 * 800.0, np.array([HA_100KM2]), 2450.0, 3.0)[0]
    assert kwh == pytest.approx(8.17e9, rel=1e-3)
    assert kwh * 0.538 == pytest.approx(4.39e9, rel=1e-3)


def test_humidifier_term():
    # 900 mm over 1 km² = 9e5 m³ × 120 kWh/m³ = 1.08e8 kWh.
    assert humidifier_kwh(900.0, np.array([1e6]), 120.0)[0] == pytest.approx(1.08e8)


# ---------------------------------------------------------------- S-Garze regression (methodology §14.5)
def test_cpi_reproduces_s_garze_reservoir_price(world):
    # LY/T 1721's 6.1107 CNY/m³ (2005) × CPI 2005→2010 (1.1555) = 7.06 CNY/m³ used by S-Garze for 2010.
    price = priced(_ref(world), "reservoir_storage", 2010, "m3")
    assert price.index_factor == pytest.approx(1.1555, abs=1e-4)
    assert price.unit_price == pytest.approx(7.06, abs=0.005)


@pytest.mark.parametrize("key, unit, quantity, expected", [
    ("reservoir_storage", "m3", 321.49e8, 2269.7e8),  # 321.49 亿 m³ × 7.06 = 2,269.7 亿 (paper 2,269.71)
    ("electricity_s_garze", "kWh", 2799.10e8, 1483.5e8),  # vegetation 2,799.10 亿 kWh × 0.53 = 1,483.5 亿
    ("dredging", "m3", 10.03e8, 156.3e8),          # 10.03 亿 m³ × 15.58 = 156.3 亿
    ("carbon_afforestation", "t CO2", 0.31e8, 117.8e8),  # 0.31 亿 t × 380 = 117.8 亿 (paper 117.35, unrounded)
])
def test_s_garze_2010_values(world, key, unit, quantity, expected):
    price = priced(_ref(world), key, 2010, unit)
    assert price.index_factor == 1.0 or key == "reservoir_storage"  # LY/T's 2005 price x CPI 1.1555
    assert price.value(quantity) == pytest.approx(expected, rel=1e-3)


def test_price_unit_must_match_quantity_unit(world):
    from gep.errors import InputValidationError
    with pytest.raises(InputValidationError, match="does not price a quantity in 'kWh'"):
        priced(_ref(world), "reservoir_storage", 2020, "kWh")


# ---------------------------------------------------------------- services on the tiny world
@pytest.fixture
def tiny_services(world):
    cfg = load_run_config(world.write())
    prep = pipeline.prepare(cfg, 2020)
    try:
        accounts = pipeline.account(prep)
    finally:
        prep.close()
    return {a.gep.county_code.iloc[0]: a.services.set_index(["service", "ecosystem_type"]) for a in accounts}


def test_water_conservation_on_the_tiny_world(tiny_services):
    s = tiny_services["000001"]
    forest_m2, wetland_m2 = 2 * (R0 + R1), R3
    assert s.loc[("water_conservation", "forest"), "quantity"] == pytest.approx(
        (PRECIP_MM * (1 - 0.0465) - ET_MM) * 1e-3 * forest_m2, rel=1e-6)
    assert s.loc[("water_conservation", "wetland"), "quantity"] == pytest.approx(
        (PRECIP_MM - ET_MM) * 1e-3 * wetland_m2, rel=1e-6)
    assert ("water_conservation", "cropland_paddy") not in s.index  # cropland is not credited by default


def test_carbon_on_the_tiny_world(tiny_services):
    s = tiny_services["000001"]
    assert s.loc[("carbon_sequestration", "forest"), "quantity"] == pytest.approx(
        44 / 12 * 0.30 * NPP_KGC * 2 * (R0 + R1) / 1000, rel=1e-6)
    assert s.loc[("carbon_sequestration", "wetland"), "quantity"] == pytest.approx(
        44 / 12 * 0.20 * NPP_KGC * R3 / 1000, rel=1e-6)
    row = s.loc[("carbon_sequestration", "forest")]
    assert row.unit_price == pytest.approx(380 * 1.4798 / 1.1555, rel=1e-3)
    assert row.value_cny == pytest.approx(row.quantity * row.unit_price)


def test_climate_regulation_on_the_tiny_world(tiny_services):
    kwh_per_mm_m2 = 2450 / 3600 / 3.0
    a, b = tiny_services["000001"], tiny_services["000002"]
    # forest transpiration = ET x T/ET 0.67 (Schlesinger & Jasechko 2014, coefficients.csv)
    assert a.loc[("climate_regulation", "forest"), "quantity"] == pytest.approx(
        ET_MM * 0.67 * HOT * 2 * (R0 + R1) * kwh_per_mm_m2, rel=1e-6)
    assert b.loc[("climate_regulation", "water"), "quantity"] == pytest.approx(
        WATER_EVAP * HOT * 2 * R1 * kwh_per_mm_m2, rel=1e-9)
    assert b.loc[("climate_regulation", "water"), "value_cny"] == pytest.approx(
        WATER_EVAP * HOT * 2 * R1 * kwh_per_mm_m2 * 0.538, rel=1e-9)


def test_gep_is_the_sum_of_service_values(world):
    cfg = load_run_config(world.write())
    prep = pipeline.prepare(cfg, 2020)
    try:
        for acc in pipeline.account(prep):
            g = acc.gep.iloc[0]
            assert g.gep_cny == pytest.approx(acc.services.value_cny.sum())
            assert g.regulating_cny == pytest.approx(g.gep_cny) and g.provisioning_cny == 0 == g.cultural_cny
            assert g.gep_per_km2_cny == pytest.approx(g.gep_cny / g.area_km2)
            assert g.n_services == 3
    finally:
        prep.close()


def test_every_row_is_traceable(tiny_services):
    row = tiny_services["000001"].loc[("water_conservation", "forest")]
    assert row.price_key == "reservoir_storage" and row.base_unit_price == 6.1107 and row.base_price_year == 2005
    assert row.unit_price == pytest.approx(row.base_unit_price * row.index_factor)
    assert "runoff_coefficient[forest]=0.0465 [0.0352-0.0465] 1 (V: S-Gong" in row.parameters
    assert row.price_source.startswith("reservoir construction cost per m3 of storage (water conservation; flood "
                                       "regulation); L: LY/T 1721-2008")


def _write_et(world, et: np.ndarray) -> None:
    from rasterio.transform import from_origin

    from tiny_world import write_raster
    w, _, _, n = world.aux_bounds
    write_raster(world.root / "et_2020.tif", et, from_origin(w, n, 0.02, 0.02), nodata=-9999.0)


def test_raster_nodata_falls_back_to_class_defaults_and_is_reported(world):
    # ET 700 mm except one 0.02° cell with no data (as MODIS over water) over county A's 4 forest
    # pixels; nearest-neighbour alignment keeps the gap, so those pixels take et_default[forest] = 800.
    world.et_resampling = "nearest"
    world.write()
    et = np.full((4, 5), 700.0, dtype=np.float32)
    et[1, 1] = -9999.0
    _write_et(world, et)
    prep = pipeline.prepare(load_run_config(world.config()), 2020)
    try:
        a = pipeline.account(prep)[0].services.set_index(["service", "ecosystem_type"])
    finally:
        prep.close()
    forest, wetland = a.loc[("water_conservation", "forest")], a.loc[("water_conservation", "wetland")]
    assert forest.quantity == pytest.approx((PRECIP_MM * (1 - 0.0465) - 800.0) * 1e-3 * 2 * (R0 + R1), rel=1e-6)
    assert forest.default_filled_share == pytest.approx(1.0)
    assert wetland.quantity == pytest.approx((PRECIP_MM - 700.0) * 1e-3 * R3, rel=1e-6)
    assert wetland.default_filled_share == 0.0


def test_auxiliary_raster_with_no_data_over_a_county_is_refused(world):
    world.write()
    _write_et(world, np.full((4, 5), -9999.0, dtype=np.float32))
    from gep.errors import InputValidationError
    with pytest.raises(InputValidationError, match=r"et_2020.tif \[auxiliary.actual_et\]: does not cover county 000001"):
        pipeline.prepare(load_run_config(world.config()), 2020)


def test_services_register_themselves():
    assert set(REGISTRY) >= {"water_conservation", "carbon_sequestration", "climate_regulation"}
    for svc in REGISTRY.values():
        assert svc.category in {"provisioning", "regulating", "cultural"}


def test_current_and_constant_prices_across_2015_and_2020(world):
    import shutil
    config = world.write()
    for name in ("lc", "precip", "et", "npp"):
        shutil.copy(world.root / f"{name}_2020.tif", world.root / f"{name}_2015.tif")
    stats = world.root / "stats.csv"
    stats.write_text(stats.read_text() + stats.read_text().split("\n", 1)[1].replace(",2020,", ",2015,"))
    text = config.read_text().replace('price_basis = "constant"', 'price_basis = "current"')
    config.write_text(text.replace('2020 = "lc_2020.tif"', '2015 = "lc_2015.tif"\n2020 = "lc_2020.tif"'))
    cfg = load_run_config(config)
    rows, geps = {}, {}
    for year in (2015, 2020):
        prep = pipeline.prepare(cfg, year)
        try:
            acc = pipeline.account(prep)[0]
        finally:
            prep.close()
        rows[year] = acc.services.set_index(["service", "ecosystem_type"]).loc[("water_conservation", "forest")]
        geps[year] = acc.gep.iloc[0]
    # 6.1107 CNY/m³ (2005) x the NBS annual CPI changes of 2006-2015 (and on to 2020), methodology §8.3.
    cpi_2005_2015 = 1.015 * 1.048 * 1.059 * 0.993 * 1.033 * 1.054 * 1.026 * 1.026 * 1.020 * 1.014
    cpi_2005_2020 = cpi_2005_2015 * 1.020 * 1.016 * 1.021 * 1.029 * 1.025
    assert cpi_2005_2020 == pytest.approx(1.48, abs=0.001)
    r15, r20 = rows[2015], rows[2020]
    assert r15.price_basis == "current" and r15.price_year == 2015 and r20.price_year == 2020
    assert r15.unit_price == pytest.approx(6.1107 * cpi_2005_2015, rel=1e-9)
    assert r20.unit_price == pytest.approx(6.1107 * cpi_2005_2020, rel=1e-9)
    assert r15.quantity == pytest.approx(r20.quantity)  # same land and climate
    # current prices: each year its own; constant 2020 prices: one price vector, equal values
    assert r15.value_current_cny == pytest.approx(r15.quantity * 6.1107 * cpi_2005_2015, rel=1e-9)
    assert r15.value_constant_cny == pytest.approx(r20.value_constant_cny, rel=1e-12)
    assert r20.value_current_cny == pytest.approx(r20.value_constant_cny, rel=1e-12)
    assert r15.value_cny == r15.value_current_cny  # the run's basis
    # carbon: current prices use 2015's rule (afforestation cost), constant the base year's
    g15, g20 = geps[2015], geps[2020]
    assert g15.gep_constant_cny == pytest.approx(g20.gep_constant_cny, rel=1e-9)
    assert g15.gep_current_cny / g20.gep_current_cny == pytest.approx(cpi_2005_2015 / cpi_2005_2020, rel=1e-9)
    assert g15.gep_cny == g15.gep_current_cny and g15.constant_price_year == 2020


def test_constant_prices_of_another_year(world):
    config = world.write()
    config.write_text(config.read_text().replace("constant_price_year = 2020", "constant_price_year = 2010"))
    cfg = load_run_config(config)
    prep = pipeline.prepare(cfg, 2020)
    try:
        s = pipeline.account(prep)[0].services.set_index(["service", "ecosystem_type"])
    finally:
        prep.close()
    row = s.loc[("water_conservation", "forest")]
    assert row.price_year == 2010 and row.unit_price == pytest.approx(7.06, abs=0.005)  # S-Garze's 2010 price
    assert s.loc[("carbon_sequestration", "forest"), "unit_price"] == 380.0


def test_photosynthesis_route_option(world):
    config = world.write()
    config.write_text(config.read_text() + '\n[services.carbon_sequestration]\nmethod = "photosynthesis"\n')
    prep = pipeline.prepare(load_run_config(config), 2020)
    try:
        s = pipeline.account(prep)[0].services.set_index(["service", "ecosystem_type"])
    finally:
        prep.close()
    row = s.loc[("carbon_sequestration", "forest")]
    assert row.quantity == pytest.approx(1.63 * NPP_KGC / 0.45 * 2 * (R0 + R1) / 1000, rel=1e-6)
    assert row.method == "functional" and row.method_detail.startswith("photosynthesis route")
    assert "co2_per_dry_matter=1.63" in row.parameters
