"""The whole GEP: provisioning and cultural services by hand, current and constant prices with the
sector deflator, indicator sets, the equivalent-factor method against Xie 2015's published table,
the county summary (GGI, per capita, growth) and missing statistics."""
import re
import shutil

import pandas as pd
import pytest

from gep import pipeline, runs
from gep.config import load_reference_data, load_run_config
from gep.equivalent_factor import equivalent_factor_rows
from gep.errors import InputValidationError

from test_area import SPHERE_ROWS_M2

R0, R1, R2, R3 = SPHERE_ROWS_M2
# The regulating tiny world takes K from a raster (it has no soil texture): a switch of every set changed.
WORLD_CHANGE = "soil_retention switches {'k_factor': 'raster'} (set: {'k_factor': 'epic'})"
CPI_2010_2020 = 1.054 * 1.026 * 1.026 * 1.020 * 1.014 * 1.020 * 1.016 * 1.021 * 1.029 * 1.025
CPI_2015_2020 = 1.020 * 1.016 * 1.021 * 1.029 * 1.025
APPI_2015_2020 = 1.034 * 0.965 * 0.991 * 1.145 * 1.150  # NBS agricultural producer prices, 2016-2020 changes
# County statistics of the tiny world (A, B); B gives no housing data.
WHOLE = {
    "agriculture_output_1e4_cny": (1000, 0), "forestry_output_1e4_cny": (200, 50),
    "livestock_output_1e4_cny": (100, 0), "fishery_output_1e4_cny": (50, 300),
    "agriculture_net_output_1e4_cny": (600, 0), "forestry_net_output_1e4_cny": (130, 30),
    "livestock_net_output_1e4_cny": (40, 0), "fishery_net_output_1e4_cny": (30, 180),
    "water_use_domestic_1e4_m3": (100, 50), "water_use_industrial_1e4_m3": (200, 0),
    "water_use_agricultural_1e4_m3": (300, 0), "water_local_share": (0.5, 1.0),
    "hydropower_1e4_kwh": (500, 0), "pumped_storage_1e4_kwh": (200, 0),
    "tourist_visits_1e4": (10, 20), "tourism_revenue_1e8_cny": (1.0, 3.0), "tourism_eco_share": (0.5, 0.4),
    "visit_days": (1.5, 1.5), "average_wage_cny": (100_000, 100_000),
    "landscape_floor_area_1e4_m2": (10, None), "landscape_premium_cny_m2": (60, None),
    "gdp_1e8_cny": (50, 100), "population_1e4": (10, 20),
}


def whole_world(world, indicator_set="national_2020", years=(2020,), changes=None, services_block=""):
    """The regulating tiny world with the statistics of every service, run under an indicator set."""
    world.regulating = True
    config = world.write()
    stats = pd.read_csv(world.root / "stats.csv", dtype={"county_code": str})
    for f, (a, b) in WHOLE.items():
        stats[f] = [a, b]
    stats["gdp_1e8_cny_source"] = ["A's bulletin", "B's bulletin"]
    frames = []
    for y in years:
        frames.append(stats.assign(year=y, **(changes or {}).get(y, {})))
        if y != 2020:
            for name in ("lc", "precip", "et", "npp", "erosivity", "ls", "k", "cover"):
                shutil.copy(world.root / f"{name}_2020.tif", world.root / f"{name}_{y}.tif")
    pd.concat(frames).to_csv(world.root / "stats.csv", index=False)
    emissions = pd.read_csv(world.root / "emissions.csv", dtype={"county_code": str})
    pd.concat([emissions.assign(year=y) for y in years]).to_csv(world.root / "emissions.csv", index=False)
    text = re.sub(r"^enabled = .*$", services_block, config.read_text(), flags=re.M)
    lc = "\n".join(f'{y} = "lc_{y}.tif"' for y in years)
    text = text.replace('2020 = "lc_2020.tif"', lc)
    config.write_text(f'indicator_set = "{indicator_set}"\n' + text)
    return config


def account(config, year=2020):
    prep = pipeline.prepare(load_run_config(config), year)
    try:
        return {a.gep.county_code.iloc[0]: a for a in pipeline.account(prep)}
    finally:
        prep.close()


def rows(acc, service):
    s = acc.services
    return s[(s.method == "functional") & (s.service == service)].set_index(["indicator", "ecosystem_type"])


# ---------------------------------------------------------------- provisioning and cultural by hand
def test_provisioning_services_by_hand(world):
    a, b = (account(whole_world(world))[c] for c in ("000001", "000002"))
    agri = rows(a, "agricultural_products")
    # A's 1,000e4 CNY to its cropland, split 0.75 paddy / 0.25 dry by area (no garden in A)
    assert agri.loc[("output_value", "cropland_paddy"), "value_cny"] == pytest.approx(1e7 * 0.75, rel=1e-9)
    assert agri.loc[("output_value", "cropland_dry"), "value_cny"] == pytest.approx(1e7 * 0.25, rel=1e-9)
    assert agri.loc[("output_value", "cropland_paddy"), "price_index"] == "agri_producer"
    assert rows(a, "forestry_products").loc[("output_value", "forest"), "value_cny"] == pytest.approx(2e6)
    livestock = rows(a, "livestock_products")  # no grassland in A: cropland only
    assert livestock.value_cny.sum() == pytest.approx(1e6) and set(livestock.index.get_level_values(1)) == {
        "cropland_paddy", "cropland_dry"}
    assert rows(a, "fishery_products").loc[("output_value", "wetland"), "value_cny"] == pytest.approx(5e5)
    assert rows(b, "fishery_products").loc[("output_value", "water"), "value_cny"] == pytest.approx(3e6)
    # B has no cropland: its agricultural output (0) stays on one row of type "all"
    assert rows(b, "agricultural_products").loc[("output_value", "all"), "value_cny"] == 0
    # water: use x local share x tariff (S-Garze 2010, CPI to 2020), all to A's wetland
    water = rows(a, "water_supply")
    assert water.loc[("domestic_water", "wetland"), "quantity"] == pytest.approx(100e4 * 0.5)
    assert water.loc[("domestic_water", "wetland"), "value_cny"] == pytest.approx(100e4 * 0.5 * 2.6 * CPI_2010_2020,
                                                                                  rel=1e-9)
    assert water.loc[("agricultural_water", "wetland"), "value_cny"] == pytest.approx(
        300e4 * 0.5 * 0.07 * CPI_2010_2020, rel=1e-9)
    # hydropower less pumped storage; A has no water: one row of type "all", with the reason
    energy = rows(a, "eco_energy").loc[("hydropower", "all")]
    assert energy.quantity == pytest.approx(300e4) and energy.value_cny == pytest.approx(300e4 * 0.53 * CPI_2010_2020)
    assert "no ecosystem type of the rule attribution_eco_energy" in energy.notes


def test_cultural_services_by_hand(world):
    acc = account(whole_world(world))
    a, b = acc["000001"], acc["000002"]
    tour = rows(a, "recreation_tourism")
    natural_m2 = 2 * (R0 + R1) + R3  # A's forest and wetland
    assert tour.value_cny.sum() == pytest.approx(1e8 * 0.5, rel=1e-9)  # revenue x eco share
    assert tour.loc[("eco_tourism_revenue", "wetland"), "value_cny"] == pytest.approx(5e7 * R3 / natural_m2, rel=1e-9)
    assert rows(a, "landscape_value").loc[("housing_premium", "forest"), "value_cny"] == pytest.approx(
        10e4 * 60 * 2 * (R0 + R1) / natural_m2, rel=1e-9)
    # B gives no housing data: a "no input" row, no value, and the quality flag says so
    land_b = b.services[b.services.service == "landscape_value"]
    assert list(land_b.status) == ["no_input"] and land_b.value_cny.isna().all()
    assert "landscape_floor_area_1e4_m2" in land_b.status_reason.iloc[0]
    assert "landscape_value" in b.gep.services_not_accounted.iloc[0]


def test_travel_cost_and_net_output_under_the_rcees_set(world):
    a = account(whole_world(world, "rcees_case"))["000001"]
    tour = rows(a, "recreation_tourism")
    # visits 10e4 x share 0.5 x 1.5 d x 100,000 CNY / 250 d x 1/3 = 1e7 CNY, plus the revenue 5e7
    assert tour.xs("eco_tourism_time_cost").value_cny.sum() == pytest.approx(1e7, rel=1e-5)
    assert tour.xs("eco_tourism_revenue").value_cny.sum() == pytest.approx(5e7, rel=1e-9)
    assert rows(a, "agricultural_products").xs("net_output_value").value_cny.sum() == pytest.approx(6e6)
    assert "landscape_value" not in set(a.services.service)  # not in the RCEES list
    assert a.gep.indicator_set.iloc[0] == "rcees_case" and a.gep.indicator_set_changes.iloc[0] == WORLD_CHANGE


def test_pumped_storage_above_generation_is_refused(world):
    config = whole_world(world)
    stats = pd.read_csv(world.root / "stats.csv", dtype={"county_code": str})
    stats.loc[0, "pumped_storage_1e4_kwh"] = 900
    stats.to_csv(world.root / "stats.csv", index=False)
    with pytest.raises(Exception, match=r"county 000001 2020, service eco_energy: pumped_storage_1e4_kwh 900.00 exceeds"):
        account(config)


def test_a_missing_statistics_value_names_the_county_the_field_and_the_fix(world):
    config = whole_world(world)
    stats = pd.read_csv(world.root / "stats.csv", dtype={"county_code": str})
    stats.loc[1, "tourism_eco_share"] = None
    stats.drop(columns=["hydropower_1e4_kwh"]).to_csv(world.root / "stats.csv", index=False)
    with pytest.raises(InputValidationError) as err:
        pipeline.prepare(load_run_config(config), 2020)
    text = str(err.value)
    assert "stats.csv [tourism_eco_share]: county 000002 2020: empty (needed by recreation_tourism)" in text
    assert "fix: give tourism_eco_share (nature-based share of tourism" in text
    assert "stats.csv [hydropower_1e4_kwh]: column missing, needed by eco_energy" in text


# ---------------------------------------------------------------- prices: sector deflator, both bases
def test_output_values_are_deflated_by_the_sector_index_not_the_cpi(world):
    config = whole_world(world, years=(2015, 2020))
    a15 = account(config, 2015)["000001"]
    agri = rows(a15, "agricultural_products").loc[("output_value", "cropland_paddy")]
    tour = rows(a15, "recreation_tourism").loc[("eco_tourism_revenue", "forest")]
    # current prices: as reported; constant 2020 prices: by the agricultural producer price index
    assert agri.value_current_cny == pytest.approx(0.75e7)
    assert agri.value_constant_cny == pytest.approx(0.75e7 * APPI_2015_2020, rel=1e-9)
    assert agri.index_factor == pytest.approx(APPI_2015_2020, rel=1e-9) and agri.base_price_year == 2015
    # tourism revenue is consumer spending: by the CPI
    assert tour.value_constant_cny / tour.value_current_cny == pytest.approx(CPI_2015_2020, rel=1e-9)
    assert APPI_2015_2020 / CPI_2015_2020 > 1.15  # the CPI would understate the 2015 farm output by 15 %
    g = a15.gep.iloc[0]
    assert g.provisioning_constant_cny > g.provisioning_current_cny
    assert g.gep_cny == g.gep_constant_cny and g.price_basis == "constant" and g.price_year == 2020


# ---------------------------------------------------------------- indicator sets
def test_switching_the_indicator_set_changes_gep_by_exactly_its_services(world):
    national = account(whole_world(world, "national_2020"))
    ndrc = account(whole_world(world, "ndrc_2022"))
    zj = account(whole_world(world, "zj_db33_2025"))
    for code in ("000001", "000002"):
        n, d, z = national[code], ndrc[code], zj[code]
        oxygen = n.services[(n.services.service == "oxygen_release") & (n.services.status == "accounted")].value_cny.sum()
        assert oxygen > 0
        # NDRC 2022 drops oxygen release, nothing else
        assert n.gep.gep_cny.iloc[0] - d.gep.gep_cny.iloc[0] == pytest.approx(oxygen, rel=1e-12)
        # Zhejiang drops sand fixation (not applicable) and adds negative air ions (no method): same GEP
        assert z.gep.gep_cny.iloc[0] == pytest.approx(n.gep.gep_cny.iloc[0], rel=1e-12)
        assert set(z.services.service) - set(n.services.service) >= {"negative_air_ions"}
        ions = z.services[z.services.service == "negative_air_ions"]
        assert list(ions.status) == ["no_method"] and ions.value_cny.isna().all()
        for acc, key in ((n, "national_2020"), (d, "ndrc_2022"), (z, "zj_db33_2025")):
            g = acc.gep.iloc[0]
            assert g.indicator_set == key and g.indicator_set_modified and g.indicator_set_changes == WORLD_CHANGE
            assert g.plausibility_flag in ("ok", "below range", "above range")  # all its services: checked
            assert g.plausibility_rule.startswith("methodology §11.2")
            assert g.provisioning_cny > 0 and g.regulating_cny > 0 and g.cultural_cny > 0


def test_modifying_the_set_is_recorded_and_disables_the_plausibility_check(world):
    block = 'enabled = ["agricultural_products", "water_conservation"]\n[services.climate_regulation]\nhumidifier = true'
    acc = account(whole_world(world, "ndrc_2022", services_block=block))
    g = acc["000001"].gep.iloc[0]
    assert g.indicator_set == "ndrc_2022" and g.indicator_set_modified
    assert g.indicator_set_changes.startswith("removed forestry_products, livestock_products")
    assert g.plausibility_flag.startswith("not checked: not a complete indicator set (indicator set ndrc_2022 modified")
    assert set(acc["000001"].services.service) == {"agricultural_products", "water_conservation"}
    # a switch changed on a service of the set is a modification too
    block = "[services.climate_regulation]\nhumidifier = true"
    g = account(whole_world(world, "ndrc_2022", services_block=block))["000001"].gep.iloc[0]
    assert g.indicator_set_changes == WORLD_CHANGE + "; climate_regulation switches {'humidifier': True} (set: {'humidifier': False})"
    assert g.plausibility_flag in ("ok", "below range", "above range")  # every service still there: checked


def test_every_indicator_set_names_known_services_and_valid_switches(world):
    from gep.services import REGISTRY
    ref = load_reference_data(load_run_config(world.write()))
    assert {"rcees_case", "national_2020", "gbt_46869_2025", "ndrc_2022", "zj_db33_2025"} <= set(ref.indicator_sets)
    for s in ref.indicator_sets.values():
        assert set(s.services) | set(s.optional) <= set(REGISTRY), s.key
        categories = {REGISTRY[k].category for k in s.services}
        assert categories == {"provisioning", "regulating", "cultural"}, s.key
        for key, switches in s.switches.items():
            REGISTRY[key].Options.model_validate(switches)
    assert "oxygen_release" not in ref.indicator_sets["ndrc_2022"].services


# ---------------------------------------------------------------- equivalent-factor method
# Xie et al. 2015, CNY/ha/a at the standard equivalent 3,406.50 CNY/ha (2010), methodology §9.3 table
PUBLISHED_CNY_PER_HA = {"mixed": 78_656, "conifer": 59_716, "broadleaf": 78_179, "shrub": 51_847,
                        "shrub_grass": 67_074, "wetland": 177_206, "water": 427_890, "paddy": 13_251,
                        "dryland": 13_660, "bare": 681, "glacier": 34_985, "built_up": 0}


def test_equivalent_factor_on_one_hectare_per_type_reproduces_the_published_table(world):
    ref = load_reference_data(load_run_config(world.write()))
    spec = ref.equivalent_factor
    for scheme in ref.schemes.values():  # every class of every scheme reaches a Xie row
        assert {t for c in scheme.classes.values() for t in c.type_shares(
            {f: 0.5 for f in c.share_fields})} <= set(spec.types), scheme.key
    unit = spec.model_copy(update={"regional_factor": spec.regional_factor.model_copy(update={"value": 1.0})})
    one_ha = {t: 1.0 for t in spec.types}
    rows_ = pd.DataFrame(equivalent_factor_rows({}, ref, unit, one_ha, 2010, 2010, "constant"))
    per_type = rows_.groupby("ecosystem_type").value_cny.sum()
    for t, mapping in spec.types.items():
        assert per_type.get(t, 0.0) == pytest.approx(PUBLISHED_CNY_PER_HA[mapping.xie_type], abs=0.5), t
    paddy_water = rows_.set_index(["ecosystem_type", "service"]).loc[("cropland_paddy", "water_supply")]
    assert paddy_water.value_cny == pytest.approx(-2.63 * 3406.50)  # paddies consume water: a negative value
    # at 2020 prices: x CPI 2010->2020, x the regional factor 1.1 (Zhejiang grain yield / national)
    rows20 = pd.DataFrame(equivalent_factor_rows({}, ref, spec, {"water": 1.0}, 2020, 2020, "current"))
    assert rows20.value_cny.sum() == pytest.approx(427_890 * CPI_2010_2020 * 1.1, rel=1e-4)


def test_equivalent_factor_rows_stand_beside_the_functional_gep(world):
    world.equivalent_factor = True
    with_ef = account(world.write())["000001"]
    world.equivalent_factor = False
    without = account(world.write())["000001"]
    g = with_ef.gep.iloc[0]
    assert g.gep_cny == without.gep.gep_cny.iloc[0]  # never summed with the functional values
    ef = with_ef.services[with_ef.services.method == "equivalent_factor"]
    final = ef[ef.status == "accounted"]
    assert set(ef[ef.status == "supporting"].service) == {"nutrient_cycling", "biodiversity"}
    assert g.gep_equivalent_factor_cny == pytest.approx(final.value_cny.sum())
    # forest (2 (R0 + R1) m²) on the mixed row without its supporting services, at 2020 CNY x 1.1
    forest = final[final.ecosystem_type == "forest"].value_cny.sum()
    assert forest == pytest.approx(2 * (R0 + R1) / 1e4 * (23.09 - 0.22 - 2.60) * 3406.50 * CPI_2010_2020 * 1.1, rel=1e-9)
    assert without.gep.gep_equivalent_factor_cny.isna().all()


# ---------------------------------------------------------------- the county summary
def test_ggi_and_per_capita_arithmetic(world):
    g = account(whole_world(world))["000001"].gep.iloc[0]
    assert g.gdp_cny == 50e8 and g.population == 10e4 and g.gdp_source == "A's bulletin"
    assert g.population_source == "illustrative test value"  # no own column: the row's source
    assert g.ggi == pytest.approx(g.gep_current_cny / 50e8, rel=1e-12)
    assert g.gep_per_capita_cny == pytest.approx(g.gep_current_cny / 10e4, rel=1e-12)
    assert g.conversion_ratio == pytest.approx((g.provisioning_current_cny + g.cultural_current_cny)
                                               / g.gep_current_cny, rel=1e-12)
    assert g.n_services + g.n_services_not_accounted == 18  # the national set's 18 services
    assert g.growth_base_year is None or pd.isna(g.growth_base_year)


def test_growth_between_two_published_years(world):
    config = whole_world(world, years=(2015, 2020), changes={2015: {"gdp_1e8_cny": [40, 80]}})
    cfg = load_run_config(config)
    runs.run(cfg, 2015)
    runs.run(cfg, 2020)
    from gep import io
    gep = io.read_dataset(cfg.output_dir, "gep").set_index(["county_code", "year"])
    g15, g20 = gep.loc[("000001", 2015)], gep.loc[("000001", 2020)]
    assert pd.isna(g15.growth_base_year) and "no earlier year" in g15.growth_note
    assert g20.growth_base_year == 2015
    assert g20.gdp_growth_pct == pytest.approx(25.0)
    assert g20.gep_growth_constant_pct == pytest.approx((g20.gep_constant_cny / g15.gep_constant_cny - 1) * 100)
    assert g20.gep_growth_current_pct == pytest.approx((g20.gep_current_cny / g15.gep_current_cny - 1) * 100)
    assert g20.conversion_ratio_change_pp == pytest.approx((g20.conversion_ratio - g15.conversion_ratio) * 100)
    # same land and climate: the constant-price change is the farm and tourism money alone
    assert g20.gep_growth_constant_pct < 0 < g20.gep_growth_current_pct
    # the 2020 growth depends on 2015's published GEP: a changed 2015 makes 2020 stale
    assert runs.run(cfg, 2020)[1] == []  # up to date: skipped
    stats = pd.read_csv(world.root / "stats.csv", dtype={"county_code": str})
    stats.loc[(stats.year == 2015) & (stats.county_code == "000001"), "gdp_1e8_cny"] = 45
    stats.to_csv(world.root / "stats.csv", index=False)
    runs.run(cfg, 2015)
    assert runs.run(cfg, 2020)[1] != []  # recomputed against the new base
    g20 = io.read_dataset(cfg.output_dir, "gep").set_index(["county_code", "year"]).loc[("000001", 2020)]
    assert g20.gdp_growth_pct == pytest.approx((50 / 45 - 1) * 100)


def indicator_sets_table(ref) -> str:
    """The docs/services.md table of the indicator sets (service x set: x listed, o optional)."""
    from gep.services import REGISTRY
    sets = list(ref.indicator_sets.values())
    lines = ["| service | key | " + " | ".join(f"`{s.key}` [{s.tag}]" for s in sets) + " |",
             "|---|---|" + "---|" * len(sets)]
    order = {"provisioning": 0, "regulating": 1, "cultural": 2}
    for key, svc in sorted(REGISTRY.items(), key=lambda kv: order[kv[1].category]):
        marks = ["x" if key in s.services else "o" if key in s.optional else "" for s in sets]
        if any(marks):
            lines.append(f"| {svc.name_zh} | `{key}` | " + " | ".join(marks) + " |")
    return "\n".join(lines)


def test_the_documented_indicator_sets_are_those_of_the_configuration(world):
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "services.md").read_text(encoding="utf-8")
    table = doc.split("<!-- indicator-sets table: generated from configs/indicator_sets.toml -->\n")[1]
    table = table.split("\n<!-- end of indicator-sets table -->")[0]
    assert table == indicator_sets_table(load_reference_data(load_run_config(world.write())))


def test_the_command_line_runs_another_indicator_set(world, capsys):
    from gep import io
    from gep.cli import main
    config = whole_world(world, "national_2020")
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    national = io.read_dataset(world.out, "gep").set_index("county_code")
    out = world.root / "out_ndrc"
    assert main(["run", "--config", str(config), "--no-prefect", "--indicator-set", "ndrc_2022",
                 "--output", str(out)]) == 0
    assert "ndrc_2022" in capsys.readouterr().out
    ndrc = io.read_dataset(out, "gep").set_index("county_code")
    services = io.read_dataset(world.out, "services")
    oxygen = services[(services.service == "oxygen_release") & (services.status == "accounted")]
    assert (ndrc.indicator_set == "ndrc_2022").all() and "oxygen_release" not in ndrc.services.iloc[0]
    diff = national.gep_cny - ndrc.gep_cny
    assert diff.to_dict() == pytest.approx(oxygen.groupby("county_code").value_cny.sum().to_dict(), rel=1e-12)
    assert main(["run", "--config", str(config), "--no-prefect", "--indicator-set", "zj_2030"]) == 2
    assert "[indicator_set]: unknown indicator set 'zj_2030'" in capsys.readouterr().err
