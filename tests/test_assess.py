"""Green-loan assessment of counties: the loan policy's tiers by hand, ΔGEP at constant prices
between two published years, the extent change, and bad input."""
import shutil

import pandas as pd
import pytest

from gep import runs
from gep.assess import assess
from gep.config import load_run_config
from gep.errors import InputValidationError
from gep.policy import DEFAULT_POLICY, LoanPolicy, discount, load_policy

from test_area import SPHERE_ROWS_M2
from tiny_world import LANDCOVER, write_raster

R2 = SPHERE_ROWS_M2[2]

EXAMPLE = DEFAULT_POLICY


def _policy(**change) -> LoanPolicy:
    return load_policy(EXAMPLE).model_copy(update=change)


# ---------------------------------------------------------------- the policy, by hand
@pytest.mark.parametrize("pct, pp, tier", [
    (-3.0, 0.0, "none"), (0.3, 0.0, "none"), (0.5, 0.25, "[0.5, 2)%"), (1.99, 0.25, "[0.5, 2)%"),
    (2.0, 0.5, "[2, 5)%"), (7.0, 1.0, "[5, 10)%"), (9.99, 1.0, "[5, 10)%"),
    (10.0, 1.95, "[10, inf)%"),   # 1.5 + the ratchet's 0.45 at the 10 % target: Deqing's 1.95 pp, under the cap
])
def test_example_tiers_and_ratchet_by_hand(pct, pp, tier):
    d = discount(load_policy(EXAMPLE), delta_cny=pct * 1e6, delta_pct=pct, default_filled_share=0.0, quality_ok=True)
    assert d.discount_pp == pytest.approx(pp) and d.tier == tier


def test_cap_flat_rate_and_eligibility():
    capped = discount(_policy(cap_pp=1.6), 2e7, 20.0, 0.0, True)
    assert capped.discount_pp == 1.6 and "capped at 1.6 pp" in capped.reasons
    flat = LoanPolicy.model_validate({"title": "flat", "cap_pp": 1.0, "flat_pp": 0.3})
    assert discount(flat, 1.0, 0.001, 0.0, True).discount_pp == 0.3
    assert discount(flat, 0.0, 0.0, 0.0, True).discount_pp == 0.0
    withheld = discount(load_policy(EXAMPLE), -5e6, -1.0, 0.25, False)
    assert withheld.discount_pp == 0.0 and withheld.tier == "none"
    for reason in ("negative impact", "inputs filled over 25.0%", "quality flag not ok"):
        assert reason in withheld.reasons


@pytest.mark.parametrize("tiers, needle", [
    ([(0, 2, 0.25), (1, 5, 0.5), (5, float("inf"), 1)], "tiers 1 and 2 overlap"),
    ([(0, 2, 0.25), (3, float("inf"), 0.5)], "tiers 1 and 2 leave a gap"),
    ([(0, 2, 0.25), (2, 5, 0.5)], "the last tier must end at inf"),
    ([(0, float("inf"), 3.0)], "exceeds cap_pp"),
])
def test_a_policy_whose_tiers_overlap_or_leave_gaps_is_refused(tmp_path, tiers, needle):
    text = 'title = "t"\ncap_pp = 2.0\n' + "".join(
        f"[[tiers]]\nfrom = {lo}\nto = {'inf' if hi == float('inf') else hi}\ndiscount_pp = {pp}\n" for lo, hi, pp in tiers)
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(InputValidationError) as err:
        load_policy(tmp_path / "p.toml")
    assert "p.toml [tiers]" in str(err.value) and needle in str(err.value)
    (tmp_path / "q.toml").write_text("discount_by_rainfall = 1\n" + text)
    with pytest.raises(InputValidationError, match=r"q.toml \[discount_by_rainfall\]: Extra inputs"):
        load_policy(tmp_path / "q.toml")


# ---------------------------------------------------------------- two published years
def _two_years(world, afforest: bool):
    """The tiny world in 2015 and 2020; with ``afforest`` A's two cropland cells of row 2 are forest in 2020."""
    world.equivalent_factor = True
    config = world.write()
    lc2020 = LANDCOVER.copy()
    if afforest:
        lc2020[2, 0:2] = 2
    write_raster(world.root / "lc_2020.tif", lc2020, world.lc_transform, nodata=0)
    write_raster(world.root / "lc_2015.tif", LANDCOVER, world.lc_transform, nodata=0)
    for name in ("precip", "et", "npp"):
        shutil.copy(world.root / f"{name}_2020.tif", world.root / f"{name}_2015.tif")
    stats = world.root / "stats.csv"
    stats.write_text(stats.read_text() + stats.read_text().split("\n", 1)[1].replace(",2020,", ",2015,"))
    config.write_text(config.read_text().replace('2020 = "lc_2020.tif"', '2015 = "lc_2015.tif"\n2020 = "lc_2020.tif"'))
    cfg = load_run_config(config)
    runs.run(cfg, 2015)
    runs.run(cfg, 2020)
    return cfg


def test_cropland_turned_forest_gives_a_positive_change_and_its_discount(world):
    cfg = _two_years(world, afforest=True)
    summary, files = assess(cfg, 2015, 2020, load_policy(EXAMPLE), str(EXAMPLE))
    a = summary.set_index("unit_id").loc["000001"]
    changes = pd.read_parquet(cfg.output_dir / "assessments" / "2015-2020" / "gep_change.parquet")
    mine = changes[changes.county_code == "000001"]
    assert a.delta_gep_cny == pytest.approx(mine.delta_constant_cny.sum(), rel=1e-9) and a.delta_gep_cny > 0
    assert a.delta_gep_pct == pytest.approx(a.delta_gep_cny / a.gep_baseline_cny * 100)
    assert a.impact_flag == "positive" and a.constant_price_year == 2020
    # all of it from the land-cover change: the inputs are the same in both years
    assert a.delta_gep_extent_cny == pytest.approx(a.delta_gep_cny, rel=1e-9) and a.extent_share == pytest.approx(1)
    assert (mine.delta_extent_constant_cny + mine.delta_other_constant_cny - mine.delta_constant_cny).abs().max() < 1e-6
    expected = discount(load_policy(EXAMPLE), a.delta_gep_cny, a.delta_gep_pct, 0.0, True, a.delta_gep_extent_cny)
    assert a.discount_pp == expected.discount_pp > 0 and a.discount_tier == expected.tier
    assert a.delta_gep_low_cny <= a.delta_gep_cny <= a.delta_gep_high_cny
    # forest gained what cropland lost, in the extent change, which balances
    ext = pd.read_parquet(cfg.output_dir / "assessments" / "2015-2020" / "extent_change.parquet")
    ext = ext[ext.county_code == "000001"].set_index("ecosystem_type")
    crop = ext.loc[["cropland_paddy", "cropland_dry"], "net_change_ha"].sum()
    assert ext.loc["forest", "net_change_ha"] == pytest.approx(-crop) and ext.loc["forest", "net_change_ha"] > 0
    assert (ext.opening_ha + ext.additions_ha - ext.reductions_ha - ext.closing_ha).abs().max() < 1e-9
    matrix = pd.read_parquet(cfg.output_dir / "assessments" / "2015-2020" / "extent_matrix.parquet")
    moved = matrix[(matrix.county_code == "000001") & (matrix.from_type != matrix.to_type)]
    # two cropland cells (paddy 0.75 / dry 0.25 of each) became forest, nothing else moved
    assert set(zip(moved.from_type, moved.to_type)) == {("cropland_paddy", "forest"), ("cropland_dry", "forest")}
    paddy = moved.set_index("from_type").loc["cropland_paddy", "area_ha"]
    assert paddy == pytest.approx(0.75 * 2 * R2 / 1e4, rel=1e-9)
    # B did not change: ΔGEP 0, neutral, no discount
    b = summary.set_index("unit_id").loc["000002"]
    assert b.delta_gep_cny == 0 and b.impact_flag == "neutral" and b.discount_pp == 0
    # the CSV reads back with the same numbers
    csv = pd.read_csv(cfg.output_dir / "assessments" / "2015-2020" / "loan_summary.csv", dtype={"unit_id": str},
                      encoding="utf-8-sig").set_index("unit_id")
    assert csv.loc["000001", "delta_gep_cny"] == pytest.approx(a.delta_gep_cny, rel=1e-15)
    assert csv.loc["000001", "discount_reasons"] == a.discount_reasons
    assert {p.name for p in files} == {f"{d}.{x}" for d in ("loan_summary", "gep_change", "extent_change", "extent_matrix")
                                       for x in ("parquet", "csv")} | {"assessment.xlsx", "units.parquet", "report.html"}
    # the Excel workbook reads back with the same numbers, the units in the header
    folder = cfg.output_dir / "assessments" / "2015-2020"
    xl = pd.read_excel(folder / "assessment.xlsx", sheet_name=None, dtype={"unit_id": str})
    assert set(xl) == {"loan_summary", "gep_change", "extent_change", "extent_matrix"}
    sheet = xl["loan_summary"].set_index("unit_id")
    assert sheet.loc["000001", "delta_gep_cny [CNY]"] == pytest.approx(a.delta_gep_cny, rel=1e-15)
    assert sheet.loc["000001", "discount_pp [percentage points]"] == a.discount_pp
    assert len(xl["gep_change"]) == len(changes)
    # GeoParquet 1.1 with a bbox covering: the counties with their GEP and ΔGEP, no join needed
    import json
    import geopandas as gpd
    import pyarrow.parquet as pq
    geo = json.loads(pq.read_schema(folder / "units.parquet").metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]
    units = gpd.read_parquet(folder / "units.parquet").set_index("unit_id")
    assert units.crs.to_epsg() == 4326 and units.loc["000001", "delta_gep_cny"] == pytest.approx(a.delta_gep_cny)
    assert units.loc["000001"].geometry.equals_exact(world.geometries[0], 1e-9)
    # the report: titles, the summary, and figures that are not blank
    page = (folder / "report.html").read_text(encoding="utf-8")
    for needle in ("GEP assessment 2015 → 2020", "Maps", "ΔGEP by service", "Loan summary",
                   "Ecosystem extent change matrix", "Inputs and method choices", a.discount_tier):
        assert needle in page
    import base64
    import io as _io
    import re as _re
    import numpy as np
    from PIL import Image
    images = _re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 3
    for data in images:
        pixels = np.asarray(Image.open(_io.BytesIO(base64.b64decode(data))).convert("L"), dtype=float)
        assert pixels.std() > 10  # drawn, not a blank canvas


def test_no_change_and_constant_inputs_give_zero_and_no_discount(world):
    cfg = _two_years(world, afforest=False)
    summary, _ = assess(cfg, 2015, 2020, load_policy(EXAMPLE), str(EXAMPLE))
    assert (summary.delta_gep_cny == 0).all() and (summary.discount_pp == 0).all()
    assert set(summary.impact_flag) == {"neutral"}


def test_a_change_driven_by_other_inputs_earns_no_discount(world):
    cfg = _two_years(world, afforest=False)
    # more precipitation in 2020: the water conserved grows, the land cover does not change
    from tiny_world import PRECIP_MM
    import numpy as np
    import rasterio
    with rasterio.open(world.root / "precip_2020.tif", "r+") as ds:
        ds.write(np.full(ds.shape, PRECIP_MM * 1.5, dtype=np.float32), 1)
    runs.run(cfg, 2020)
    summary, _ = assess(cfg, 2015, 2020, load_policy(EXAMPLE), str(EXAMPLE))
    a = summary.set_index("unit_id").loc["000001"]
    assert a.delta_gep_cny > 0 and a.delta_gep_extent_cny == pytest.approx(0, abs=1e-6)
    assert a.delta_gep_other_cny == pytest.approx(a.delta_gep_cny)
    assert a.discount_pp == 0 and "driven by other inputs than land-cover change" in a.discount_reasons
    # a published year that no longer matches the inputs is refused
    with rasterio.open(world.root / "precip_2020.tif", "r+") as ds:
        ds.write(np.full(ds.shape, PRECIP_MM, dtype=np.float32), 1)
    with pytest.raises(InputValidationError, match=r"the published 2020 does not come from the configuration's"):
        assess(cfg, 2015, 2020, load_policy(EXAMPLE), str(EXAMPLE))


def test_bad_years_are_refused_naming_the_fix(world):
    cfg = _two_years(world, afforest=False)
    with pytest.raises(InputValidationError, match=r"\[--baseline\]: baseline year 2020 is not before"):
        assess(cfg, 2020, 2015, load_policy(EXAMPLE), str(EXAMPLE))
    with pytest.raises(InputValidationError, match=r"(?s)\[gep/year=2018\]: year 2018 is not accounted .* run `gep run "
                                                   r"--config FILE --year 2018` first"):
        assess(cfg, 2018, 2020, load_policy(EXAMPLE), str(EXAMPLE))


@pytest.mark.slow
def test_the_assessment_flow_leaves_the_summary_and_the_files_as_artifacts(world):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.assessment import assessment_artifact_key, assessment_flow
    cfg = _two_years(world, afforest=True)
    records = assessment_flow(str(cfg.source_file), 2015, 2020)
    assert {r["unit_id"] for r in records} == {"000001", "000002"}
    key = assessment_artifact_key(2015, 2020)
    with get_client(sync_client=True) as client:
        found = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key, f"{key}-files"])))}
    assert found[key].type == "table" and "loan_summary.parquet" in found[f"{key}-files"].data


def test_the_command_line_assesses_and_refuses_a_bad_policy(world, capsys, tmp_path):
    from gep.cli import main
    cfg = _two_years(world, afforest=True)
    assert main(["assess", "--config", str(cfg.source_file), "--baseline", "2015", "--year", "2020"]) == 0
    out = capsys.readouterr().out
    assert "11 files under" in out and "report.html" in out and "000001" in out
    (tmp_path / "bad.toml").write_text('title = "x"\ncap_pp = 2.0\n')
    assert main(["assess", "--config", str(cfg.source_file), "--baseline", "2015", "--year", "2020",
                 "--policy", str(tmp_path / "bad.toml")]) == 2
    assert "give either [[tiers]] or flat_pp" in capsys.readouterr().err
