"""Bad input: a clear error naming the file, the field and the fix; non-zero exit; nothing written."""
from pathlib import Path

import pytest
from shapely.geometry import Polygon, box

from gep.cli import main
from gep.errors import InputValidationError
from gep import pipeline
from gep.config import load_run_config
from tiny_world import data_snapshot


def _run_cli(config: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["run", "--config", str(config), *extra])
    return code, capsys.readouterr().err


_snapshot = data_snapshot


@pytest.fixture
def previous_output(world):
    """An output folder holding a file from an earlier run, which a failed run must leave alone."""
    part = world.out / "gep" / "year=2020" / "county_code=000001" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"earlier run")
    return world.out


def _assert_failed_cleanly(code, err, out_dir, before, *needles):
    assert code == 2
    for needle in needles:
        assert needle in err, f"{needle!r} not in error:\n{err}"
    assert "fix:" in err
    assert _snapshot(out_dir) == before  # nothing written, nothing half-overwritten


def test_crs_mismatch_is_refused_then_reprojected_on_request(world, capsys, previous_output):
    world.boundary_crs = "EPSG:32650"
    config = world.write()
    before = _snapshot(previous_output)
    code, err = _run_cli(config, capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "counties.gpkg [crs]", "EPSG:32650",
                           "differs from the land-cover CRS EPSG:4326", "reproject = true")
    config.write_text(config.read_text().replace('name_field = "name"', 'name_field = "name"\nreproject = true'))
    prep = pipeline.prepare(load_run_config(config), 2020)
    try:
        assert prep.counties.crs == prep.landcover.crs
        areas = {a.gep.county_code.iloc[0]: a.gep.classified_area_km2.iloc[0] for a in pipeline.account(prep)}
    finally:
        prep.close()
    from test_area import SPHERE_ROWS_M2
    assert areas["000001"] == pytest.approx(2 * sum(SPHERE_ROWS_M2) / 1e6, rel=1e-6)


def test_unknown_landcover_codes_are_listed_with_pixel_counts(world, capsys, previous_output):
    world.landcover[0, 0] = 12
    world.landcover[1, 0] = 12
    world.landcover[3, 3] = 200
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "lc_2020.tif [pixel values]",
                           "not in scheme 'clcd' inside county 000001: 12 (2 pixels)",
                           "not in scheme 'clcd' inside county 000002: 200 (1 pixels)", "landcover_schemes.toml")


@pytest.mark.parametrize("codes, needle", [
    (["000001", "000001"], "duplicated county codes: 000001"),
    (["000001", ""], "1 feature(s) with an empty code"),
])
def test_duplicated_or_empty_county_codes(world, capsys, previous_output, codes, needle):
    world.codes = codes
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "counties.gpkg [code]", needle)


def test_invalid_geometry_names_the_county_and_the_repair(world, capsys, previous_output):
    bowtie = Polygon([(120.0, 30.96), (120.02, 31.0), (120.02, 30.96), (120.0, 31.0)])
    world.geometries = [bowtie, box(120.02, 30.96, 120.05, 31.0)]
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "[geometry]", "000001 (Self-intersection",
                           "make_valid")


def test_boundary_file_without_the_code_field(world, capsys, previous_output):
    world.code_field = "adcode"
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "counties.gpkg [boundaries.code_field]",
                           "column 'adcode' not in the file (columns: code, name)")


def test_missing_and_corrupt_files(world, capsys, previous_output):
    config = world.write()
    (world.root / "lc_2020.tif").write_bytes(b"this is not a GeoTIFF")
    (world.root / "npp_2020.tif").unlink()
    before = _snapshot(previous_output)
    code, err = _run_cli(config, capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "lc_2020.tif [landcover.2020]",
                           "not a readable raster", "npp_2020.tif [auxiliary.npp]: file not found")


def test_year_without_landcover(world, capsys, previous_output):
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys, "--year", "2015")
    _assert_failed_cleanly(code, err, previous_output, before, "run.toml [landcover.2015]",
                           "no land-cover raster is configured for year 2015", "2015 = ")


def test_auxiliary_raster_not_covering_a_county(world, capsys, previous_output):
    world.aux_bounds = (119.98, 30.94, 120.02, 31.02)  # ends where county B begins
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "precip_2020.tif [auxiliary.precipitation]",
                           "does not cover county 000002: valid data over 0% of it")
    assert "county 000001" not in err


def test_every_problem_is_reported_at_once(world, capsys, previous_output):
    world.landcover[0, 0] = 42
    world.aux_bounds = (119.98, 30.94, 120.02, 31.02)
    world.statistics_rows = ["000001,2020,1.5,0.45,900,x"]  # impossible share; county 000002 missing
    before = _snapshot(previous_output)
    code, err = _run_cli(world.write(), capsys)
    _assert_failed_cleanly(code, err, previous_output, before, "42 (1 pixels)", "does not cover county 000002",
                           "paddy_share", "1.5", "no row for county 000002 in 2020")
    assert err.count("fix:") >= 5


def test_unknown_configuration_key_is_rejected_by_name(world, capsys):
    world.extra_config = 'pixel_size = 30\n'
    code, err = _run_cli(world.write(), capsys)
    assert code == 2 and "run.toml [pixel_size]: unknown key" in err


@pytest.mark.parametrize("option, needle", [
    ('price_year = 2031', "price year 2031 is outside the CPI table"),
    ('area_model = "flat"', "[area_model]"),
])
def test_impossible_parameters(world, capsys, option, needle):
    config = world.write()
    key = option.split(" =")[0]
    text = "\n".join(line for line in config.read_text().splitlines() if not line.startswith(key + " ="))
    config.write_text(option + "\n" + text)
    code, err = _run_cli(config, capsys)
    assert code == 2 and needle in err, err


def test_unit_mismatch_of_an_auxiliary_raster(world):
    config = world.write()
    config.write_text(config.read_text().replace('unit = "kg C/m2/a"', 'unit = "g C/m2/a"'))
    with pytest.raises(InputValidationError, match=r"\[auxiliary.npp.unit\]: unit 'g C/m2/a' but carbon_sequestration"):
        pipeline.prepare(load_run_config(config), 2020)


def test_county_outside_the_boundary_file(world, capsys):
    code, err = _run_cli(world.write(), capsys, "--county", "999999")
    assert code == 2 and "county 999999 is not in the boundary file" in err


def test_validate_command_reports_ok(world, capsys):
    assert main(["validate", "--config", str(world.write())]) == 0
    assert "inputs for 2020 are valid" in capsys.readouterr().out


def test_options_for_unknown_service_and_bad_option(world, capsys):
    config = world.write()
    config.write_text(config.read_text() + '\n[services.pollination]\nrate = 1\n'
                      '[services.carbon_sequestration]\nmethod = "guess"\n')
    code, err = _run_cli(config, capsys)
    assert code == 2
    assert "[services.pollination]: options for an unknown service" in err
    assert "[services.carbon_sequestration.method]" in err


@pytest.mark.parametrize("damage, needles", [
    (lambda r: (r / "counties.gpkg").unlink(), ["counties.gpkg [boundaries.path]: file not found"]),
    (lambda r: (r / "counties.gpkg").write_bytes(b"\x00garbage"), ["counties.gpkg [(file)]", "cannot read as a vector"]),
    (lambda r: (r / "stats.csv").unlink(), ["stats.csv [statistics.path]: file not found"]),
    (lambda r: (r / "stats.csv").write_text("county_code,year,source\n000001,2020,x\n"),
     ["stats.csv [hot_day_share, paddy_share, water_surface_evaporation_mm]", "missing"]),
])
def test_missing_or_broken_vector_and_table_inputs(world, capsys, previous_output, damage, needles):
    config = world.write()
    damage(world.root)
    before = _snapshot(previous_output)
    code, err = _run_cli(config, capsys)
    _assert_failed_cleanly(code, err, previous_output, before, *needles)
