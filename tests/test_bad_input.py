"""Bad input: a clear error naming the file, the field and the fix; non-zero exit; nothing written."""
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import LineString, Polygon, box

from gep.cli import main
from gep.errors import InputValidationError
from gep import pipeline, runs, vocabulary
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
    ('constant_price_year = 2031', "constant price year 2031 is outside the CPI table"),
    ('price_year = 2020', "[price_year]: replaced: every run now writes current and constant prices"),
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
     ["stats.csv [hot_day_share]: column missing, needed by climate_regulation",
      "stats.csv [paddy_share]: column missing, needed by landcover_scheme clcd",
      "fix: add the column water_surface_evaporation_mm (open-water evaporation [mm/a])"]),
])
def test_missing_or_broken_vector_and_table_inputs(world, capsys, previous_output, damage, needles):
    config = world.write()
    damage(world.root)
    before = _snapshot(previous_output)
    code, err = _run_cli(config, capsys)
    _assert_failed_cleanly(code, err, previous_output, before, *needles)


# ---------------------------------------------------------------- inputs that gave wrong numbers
def _cli_fails(world, capsys, previous_output, *needles, config=None, status=2):
    config = config or world.write()
    before = _snapshot(previous_output)
    code, err = _run_cli(config, capsys, "--no-prefect")
    assert code == status, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in error:\n{err}"
    assert "fix:" in err and "Traceback" not in err
    assert _snapshot(previous_output) == before
    return err


def test_county_partly_outside_the_land_cover_is_refused_unless_partial_coverage_is_allowed(world, capsys,
                                                                                            previous_output):
    world.allow_partial = False
    _cli_fails(world, capsys, previous_output, "lc_2020.tif [landcover (county 000002)]",
               "covers 66.7% of county 000002's polygon (required: 99.5%)", "allow_partial_coverage = true")


def test_boundaries_entirely_outside_the_land_cover_name_the_land_cover(world, capsys, previous_output):
    world.geometries = [box(100.0, 20.0, 100.1, 20.1), box(100.1, 20.0, 100.2, 20.1)]
    err = _cli_fails(world, capsys, previous_output, "lc_2020.tif [landcover]",
                     "counties 000001, 000002 lie entirely outside the land-cover raster")
    assert "auxiliary" not in err  # not blamed on the auxiliary rasters


def test_lines_instead_of_polygons_are_refused(world, capsys, previous_output):
    world.geometries = [LineString(g.exterior.coords) for g in world.geometries]  # outlines, not areas
    _cli_fails(world, capsys, previous_output, "[geometry]", "counties must be polygons; found 000001 (LineString)")


@pytest.mark.parametrize("name, value, needle", [
    ("npp", 540.0, "lie outside [-0.5, 3.5] kg C/m2/a after scale = 1 (from 540 to 540)"),   # g instead of kg
    ("et", 8000.0, "lie outside [0, 3000] mm/a"),                                             # MODIS scale forgotten
    ("precip", -9000.0, "lie outside [0, 13000] mm/a"),                                       # undeclared fill value
])
def test_auxiliary_values_impossible_in_their_unit_are_refused(world, capsys, previous_output, name, value, needle):
    from tiny_world import write_raster
    config = world.write()
    with rasterio.open(world.root / f"{name}_2020.tif") as ds:
        arr, t = np.full((ds.height, ds.width), value, np.float32), ds.transform
    write_raster(world.root / f"{name}_2020.tif", arr, t, nodata=-9999.0)
    _cli_fails(world, capsys, previous_output, needle, "scale", "nodata", config=config)


def test_a_precipitation_raster_covering_half_a_county_is_refused_then_flagged(world, capsys, previous_output):
    from rasterio.transform import from_origin
    from tiny_world import PRECIP_MM, write_raster
    config = world.write()
    arr = np.full((16, 20), PRECIP_MM, np.float32)  # 0.005° cells from 119.98 E, 31.02 N
    arr[:, :6] = -9999.0                            # no data west of 120.01 E: the west half of county A
    write_raster(world.root / "precip_2020.tif", arr, from_origin(119.98, 31.02, 0.005, 0.005), nodata=-9999.0)
    world.allow_partial = False
    world.config()
    config.write_text(config.read_text() + "min_aux_coverage = 0.3\nmin_landcover_coverage = 0.5\n")
    _cli_fails(world, capsys, previous_output, "precip_2020.tif", "county 000001: the rasters have no data over",
               "water_conservation", config=config)
    config.write_text(config.read_text().replace("allow_partial_coverage = false", "allow_partial_coverage = true"))
    summary, _ = runs.run(load_run_config(config))
    flags = dict(zip(summary.county_code, summary.quality_flag))
    # A's water-conserving pixels: forest (0,0) (0,1) (1,0) (1,1) and code 9 at (3,1); those of column 0 lack P
    assert "water_conservation: 40.0% of its area took filled inputs" in flags["000001"]


def test_gbk_names_without_a_declared_encoding_are_refused_not_garbled(world, capsys, previous_output):
    config = world.write()
    world.names = ["南湖区", "秀洲区"]
    gdf = gpd.GeoDataFrame({"code": world.codes, "name": world.names}, geometry=world.geometries, crs=world.crs)
    gdf.to_file(world.root / "counties.shp", encoding="gbk")
    (world.root / "counties.cpg").unlink()
    text = config.read_text().replace('path = "counties.gpkg"\nlayer = "counties"', 'path = "counties.shp"')
    config.write_text(text)
    _cli_fails(world, capsys, previous_output, "counties.shp [name]", "reads as '南湖区' in GBK",
               'encoding = "gbk"', config=config)
    config.write_text(text.replace('name_field = "name"', 'name_field = "name"\nencoding = "gbk"'))
    summary, _ = runs.run(load_run_config(config))
    assert summary.county_name.tolist() == ["南湖区", "秀洲区"]


def test_float_land_cover_is_refused(world, capsys, previous_output):
    world.landcover = world.landcover.astype(np.float32)
    _cli_fails(world, capsys, previous_output, "lc_2020.tif [band 1 data type]", "float32", "gdal_translate -ot Byte")


def test_multiband_land_cover_needs_its_band_configured(world, capsys, previous_output):
    config = world.write()
    path = world.root / "lc_2020.tif"
    with rasterio.open(path) as ds:
        profile, arr = ds.profile, ds.read(1)
    profile.update(count=2)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([np.full_like(arr, 7), arr]))  # codes in band 2
    _cli_fails(world, capsys, previous_output, "lc_2020.tif [bands]", "2 bands", "landcover_band", config=config)
    config.write_text("landcover_band = 2\n" + config.read_text())
    summary, _ = runs.run(load_run_config(config))
    assert summary.area_km2.iloc[0] == pytest.approx(8.499, abs=1e-3)  # county A read from band 2


def test_land_cover_nodata_must_match_the_scheme(world, capsys, previous_output):
    from tiny_world import write_raster
    config = world.write()
    write_raster(world.root / "lc_2020.tif", world.landcover, world.lc_transform, nodata=255)
    _cli_fails(world, capsys, previous_output, "[band 1 nodata]", "nodata value 255 is not scheme 'clcd'",
               "gdal_edit.py -a_nodata 0", config=config)


def test_a_county_without_classified_pixels_is_flagged_not_a_crash(world):
    world.codes, world.names = ["000001", "000002", "000003"], ["A", "B", "Sea"]
    world.geometries = [*world.geometries, box(120.03, 30.96, 120.04, 30.98)]  # only nodata pixels (code 0)
    summary, files = runs.run(load_run_config(world.write()))
    sea = summary.set_index("county_code").loc["000003"]
    assert sea.gep_yi_cny == 0 and pd.isna(sea.gep_per_km2_yi_cny)
    assert "no classified land-cover pixels" in sea.quality_flag and "not accounted" in sea.quality_flag
    assert len(files) == 3 * len(vocabulary.DATA_DATASETS)


def test_a_corrupt_tile_inside_a_valid_geotiff_is_a_clean_error(world, capsys, previous_output):
    config = world.write()
    path = world.root / "lc_2020.tif"
    with rasterio.open(path) as ds:
        profile, arr = ds.profile, ds.read(1)
    profile.update(tiled=True, blockxsize=16, blockysize=16, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        size = int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)
    _cli_fails(world, capsys, previous_output, "lc_2020.tif [landcover]: cannot decode rows 0-3",
               "gdalinfo -checksum", config=config)


def test_an_empty_boundary_layer_is_refused(world, capsys, previous_output):
    config = world.write()
    gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs=world.crs).to_file(
        world.root / "counties.gpkg", layer="counties", driver="GPKG")
    _cli_fails(world, capsys, previous_output, "counties.gpkg [layer 'counties']", "no features", config=config)


def test_a_wrong_layer_name_lists_the_layers(world, capsys, previous_output):
    config = world.write()
    config.write_text(config.read_text().replace('layer = "counties"', 'layer = "county"'))
    _cli_fails(world, capsys, previous_output, "[boundaries.layer]: no layer 'county' (layers: counties)",
               config=config)


def test_float_county_codes_are_refused_with_the_real_fix(world, capsys, previous_output):
    config = world.write()
    gpd.GeoDataFrame({"code": [330402.0, 330411.0], "name": world.names}, geometry=world.geometries,
                     crs=world.crs).to_file(world.root / "counties.gpkg", layer="counties", driver="GPKG")
    err = _cli_fails(world, capsys, previous_output, "counties.gpkg [code]", "decimal numbers (e.g. 330402.0)",
                     "store code as text", config=config)
    assert "add a row" not in err


def test_a_folder_given_for_a_raster_says_so(world, capsys, previous_output):
    config = world.write()
    (world.root / "tiles").mkdir()
    config.write_text(config.read_text().replace('2020 = "lc_2020.tif"', '2020 = "tiles"'))
    _cli_fails(world, capsys, previous_output, "tiles [landcover.2020]: is a directory, not a raster file",
               config=config)


@pytest.mark.parametrize("table, damage, needle", [
    ("cpi.csv", lambda t: t.replace("2020,", "twenty-twenty,", 1), "[row 17: year]: 'twenty-twenty' is not a calendar year"),
    ("landcover_schemes.toml", lambda t: t.replace("[clcd]", "[clcd", 1), "[(file)]: not valid TOML"),
    ("prices.csv", lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("reservoir_storage,")),
     "[reservoir_storage]: price missing"),
])
def test_broken_reference_tables_are_named_by_the_path_the_user_gave(world, capsys, previous_output, table,
                                                                     damage, needle):
    from gep.config import REPO_CONFIGS
    copy = world.root / "my_tables" / table
    copy.parent.mkdir()
    copy.write_text(damage((REPO_CONFIGS / table).read_text(encoding="utf-8")), encoding="utf-8")
    key = {"cpi.csv": "cpi_file", "landcover_schemes.toml": "schemes_file", "prices.csv": "prices_file"}[table]
    config = world.write()
    config.write_text(f'{key} = "my_tables/{table}"\n' + config.read_text())
    _cli_fails(world, capsys, previous_output, f"{copy} {needle}", config=config)


def test_a_price_year_before_the_cpi_table_is_reported_once_on_the_configuration(world, capsys, previous_output):
    config = world.write()
    config.write_text(config.read_text().replace("constant_price_year = 2020", "constant_price_year = 1999"))
    err = _cli_fails(world, capsys, previous_output, "run.toml [constant_price_year]: constant price year 1999 is outside the CPI table",
                     config=config)
    assert err.count("1999") == 2 and "1 input problem" in err


def test_an_unwritable_output_folder_is_refused_before_computing(world, capsys):
    config = world.write()
    (world.root / "afile").write_text("not a folder")
    code = main(["run", "--config", str(config), "--no-prefect", "--output", str(world.root / "afile" / "out")])
    err = capsys.readouterr().err
    assert code == 3 and "cannot write to the output directory" in err and "Nothing was computed" in err


def test_a_full_disk_is_a_clean_error_and_the_previous_outputs_stay(world, capsys, monkeypatch):
    from tiny_world import fill_the_disk_for_partitions
    config = world.write()
    assert main(["run", "--config", str(config), "--no-prefect"]) == 0
    before = _snapshot(world.out)
    fill_the_disk_for_partitions(monkeypatch)
    capsys.readouterr()
    code = main(["run", "--config", str(config), "--no-prefect", "--force"])
    err = capsys.readouterr().err
    assert code == 3 and "No space left on device" in err and "previous outputs are unchanged" in err
    assert _snapshot(world.out) == before and "Traceback" not in err


def test_a_second_run_on_the_same_output_folder_fails_clearly(world, capsys):
    from gep.store import OutputStore, holder_info
    config = world.write()
    with OutputStore(world.out).lock(holder_info("20261128T000000Z-abcdef")):
        code = main(["run", "--config", str(config), "--no-prefect"])
    err = capsys.readouterr().err
    assert code == 4 and "another gep run is writing this output directory" in err
    assert "20261128T000000Z-abcdef" in err and "--output DIR" in err
    assert not (world.out / "gep").exists()


def test_failed_runs_are_recorded_with_the_counties_and_reasons(world, capsys):
    world.statistics_rows = ["000001,2020,1.5,0.45,900,x"]
    config = world.write()
    assert main(["run", "--config", str(config), "--no-prefect"]) == 2
    from gep.store import OutputStore
    rec = OutputStore(world.out).records().iloc[-1]
    assert rec.outcome == "failed" and "InputValidationError" in rec.error
    failed = json.loads(rec.failed_counties)
    assert set(failed) == {"000001", "000002"} and "no row for county 000002" in failed["000002"][0]


# ---------------------------------------------------------------- inputs of the regulating services
def _regulating(world):
    world.regulating = True
    return world.write()


def test_missing_emission_names_county_pollutant_and_fix(world, capsys, previous_output):
    config = _regulating(world)
    emissions = world.root / "emissions.csv"
    emissions.write_text("\n".join(l for l in emissions.read_text().splitlines() if not l.startswith("000002,2020,nox")) + "\n")
    _cli_fails(world, capsys, previous_output, "emissions.csv [pollutant=nox]", "county 000002 2020: no row for nox",
               "needed by air_purification", "add a row county_code=000002, year=2020, pollutant=nox", config=config)


def test_emissions_table_not_configured(world, capsys, previous_output):
    config = _regulating(world)
    config.write_text(config.read_text().replace('[tables.emissions]\npath = "emissions.csv"\n', ""))
    _cli_fails(world, capsys, previous_output, "[tables.emissions]",
               "services air_purification, water_purification need the table 'emissions'", config=config)


def test_lakes_given_as_points_are_refused(world, capsys, previous_output):
    from shapely.geometry import Point
    config = _regulating(world)
    gpd.GeoDataFrame({"name": ["a point"]}, geometry=[Point(120.01, 30.99)], crs="EPSG:4326").to_file(
        world.root / "lakes.gpkg", layer="lakes", driver="GPKG")
    _cli_fails(world, capsys, previous_output, "lakes.gpkg [geometry]", "1 feature(s) are not polygons (Point)",
               config=config)


def test_a_layer_in_another_crs_is_refused(world, capsys, previous_output):
    config = _regulating(world)
    lakes = gpd.read_file(world.root / "lakes.gpkg", layer="lakes").to_crs("EPSG:32651")
    lakes.to_file(world.root / "lakes.gpkg", layer="lakes", driver="GPKG")
    _cli_fails(world, capsys, previous_output, "lakes.gpkg [crs]", "layer CRS EPSG:32651 differs", "ogr2ogr -t_srs",
               config=config)


def test_negative_reservoir_storage_is_refused(world, capsys, previous_output):
    from shapely.geometry import Point
    config = _regulating(world)
    gpd.GeoDataFrame({"name": ["dam"], "storage": [-5.0]}, geometry=[Point(120.005, 30.995)], crs="EPSG:4326").to_file(
        world.root / "reservoirs.gpkg", layer="reservoirs", driver="GPKG")
    _cli_fails(world, capsys, previous_output, "reservoirs.gpkg [storage]", "not a non-negative number for dam",
               config=config)


def test_split_shares_above_one_are_refused(world, capsys, previous_output):
    world.write()
    (world.root / "scheme.toml").write_text(
        'title = "t"\nnodata = 0\nsource = "test"\n[classes]\n'
        '1 = { name = "Crop", split = { cropland_paddy = "paddy_share", garden = "garden_share", cropland_dry = "rest" } }\n'
        + "".join(f'{c} = {{ name = "c{c}", ecosystem_type = "{t}" }}\n' for c, t in
                  ((2, "forest"), (3, "shrub"), (4, "grassland"), (5, "water"), (6, "snow_ice"), (7, "bare"),
                   (8, "built_up"), (9, "wetland"))))
    (world.root / "stats.csv").write_text(
        "county_code,year,paddy_share,garden_share,hot_day_share,water_surface_evaporation_mm,source\n"
        "000001,2020,0.75,0.5,0.45,900,t\n000002,2020,0.75,0.1,0.45,900,t\n")
    config = world.config()
    config.write_text(config.read_text().replace('landcover_scheme = "clcd"', 'landcover_scheme = "scheme.toml"'))
    _cli_fails(world, capsys, previous_output, "stats.csv [paddy_share, garden_share]",
               "county 000001 2020: class 'Crop': the split shares", "add up to more than 1", config=config)


def test_an_unknown_method_switch_is_refused(world, capsys, previous_output):
    config = _regulating(world)
    config.write_text(config.read_text() + '\n[services.climate_regulation]\nwater_term = "sgarze"\n')
    _cli_fails(world, capsys, previous_output, "[services.climate_regulation.water_term]",
               "Input should be 'eer_hot_season' or 's_garze'", config=config)
