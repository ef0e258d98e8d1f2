"""The zonal engine against maintained libraries: coverage against exactextract and shapely,
auxiliary sampling against GDAL (rasterio.warp), and every runner against the others."""
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gep import kernels, pipeline, vocabulary
from gep.config import load_run_config
from gep.qa import exactextract_class_areas
from gep.zonal import AuxSpec, Strip, _AuxGrid, zone_polygon
from tiny_world import write_raster


def _rings(geom):
    z = zone_polygon("z", geom, from_origin(0, 0, 1, -1), 10**6, 10**6)  # identity: x = column, y = row
    return z.xs, z.ys, z.ring_starts, z.ring_signs


def _exact_cover(geom, h, w):
    """Covered fraction of each cell by shapely's exact intersection: the slow, obvious oracle."""
    return np.array([[geom.intersection(box(c, r, c + 1, r + 1)).area for c in range(w)] for r in range(h)])


def _random_polygon(rng, h, w):
    n = rng.integers(3, 25)
    cx, cy = rng.uniform(-4, w + 4), rng.uniform(-4, h + 4)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.5, max(h, w), n)
    return Polygon(np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)])


SHAPES = {
    "hole": Point(6.3, 5.7).buffer(5.1).difference(Point(6.0, 5.5).buffer(2.2)),
    "multipolygon": MultiPolygon([box(0.5, 0.5, 3.25, 2.75), Point(9, 7).buffer(1.7)]),
    "sliver": Polygon([(0.2, 3.0), (11.9, 3.0001), (11.9, 3.0003), (0.2, 3.0002)]),
    "vertices on cell edges": Polygon([(1, 1), (7, 1), (7, 4), (4, 4), (4, 8), (1, 8)]),
    "partly outside": Polygon([(-5, -3), (8.5, 2.5), (16, 11), (3, 14)]),
    "hole touching edges": box(0, 0, 12, 10).difference(box(3, 3, 6, 6)),
}


@pytest.mark.parametrize("name", SHAPES)
def test_coverage_is_the_exact_area_of_each_cell(name):
    geom = SHAPES[name]
    cover = kernels.polygon_coverage(*_rings(geom), 0, 0, 10, 12)
    np.testing.assert_allclose(cover, _exact_cover(geom, 10, 12), atol=1e-12)


def test_coverage_of_random_polygons_matches_shapely_and_exactextract():
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource
    import geopandas as gpd
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 40:
        h, w = (int(v) for v in rng.integers(3, 25, 2))
        geom = _random_polygon(rng, h, w)
        if not geom.is_valid:
            continue
        if checked % 3 == 0:
            geom = geom.difference(Point(rng.uniform(0, w), rng.uniform(0, h)).buffer(rng.uniform(0.3, 3)))
        ours = kernels.polygon_coverage(*_rings(geom), 0, 0, h, w)
        np.testing.assert_allclose(ours, _exact_cover(geom, h, w), atol=1e-12)
        # exactextract on the same grid (its y axis points up: mirror the polygon)
        up = affinity.translate(affinity.scale(geom, 1, -1, origin=(0, 0)), 0, h)
        crs = "EPSG:32650"
        src = NumPyRasterSource(np.zeros((h, w), np.uint8), 0, 0, w, h, srs_wkt=rasterio.crs.CRS.from_string(crs).to_wkt())
        res = exact_extract(src, gpd.GeoDataFrame(geometry=[up], crs=crs), ["cell_id", "coverage"], output="pandas")
        theirs = np.zeros(h * w)
        if len(res):
            theirs[np.asarray(res.iloc[0]["cell_id"], dtype=np.int64)] = res.iloc[0]["coverage"]
        np.testing.assert_allclose(ours, theirs.reshape(h, w), atol=1e-6)
        checked += 1


def test_a_window_of_the_coverage_equals_the_same_cells_of_the_whole():
    geom = SHAPES["hole"]
    whole = kernels.polygon_coverage(*_rings(geom), 0, 0, 12, 14)
    part = kernels.polygon_coverage(*_rings(geom), 5, 3, 6, 7)
    np.testing.assert_allclose(part, whole[3:9, 5:12], atol=1e-15)


def test_tally_groups_covered_pixels_by_code():
    # Three columns; the zone covers column 0 wholly, column 1 half (x < 1.5), column 2 not.
    codes = np.array([[2, 5, 2], [300, 5, 0]], dtype=np.int32)
    half = box(0, 0, 1.5, 2)
    area, pixels = np.zeros(7), np.zeros(7)
    row_area = np.array([100.0, 200.0])
    rows, cols, a, starts = kernels.zone_tally(*_rings(half), 0.0, 0.0, codes, row_area, 6, area, pixels, True)
    assert area[2] == 100.0 and area[5] == 50.0 + 100.0 and area[0] == 0.0
    assert area[6] == 200.0 and pixels[6] == 1.0           # 300 is out of the tallied range
    assert pixels[5] == 1.0 and pixels.sum() == 3.0
    assert list(zip(rows[starts[5]:starts[6]], cols[starts[5]:starts[6]])) == [(0, 1), (1, 1)]
    assert list(a[starts[5]:starts[6]]) == [50.0, 100.0]
    assert starts[-1] == 4
    area2, pixels2 = np.zeros(7), np.zeros(7)
    rows2, *_ = kernels.zone_tally(*_rings(half), 0.0, 0.0, codes, row_area, 6, area2, pixels2, False)
    assert rows2.size == 0 and np.array_equal(area2, area)  # the extent alone: same sums, no pixels


# ----------------------------------------------------------------------- auxiliary rasters
def _landcover(path, transform, shape, crs="EPSG:4326"):
    return write_raster(path, np.ones(shape, np.uint8), transform, crs=crs, nodata=0)


def _sample(grid, strip, col0, col1):
    """Every cell of a strip window through the engine's per-cell sampling."""
    src = grid.for_strip(strip, col0, col1)
    rows, cols = np.divmod(np.arange(strip.nrows * (col1 - col0)), col1 - col0)
    return grid.at(src, rows.astype(np.int32), cols.astype(np.int32), 0, 0).reshape(strip.nrows, col1 - col0)


def _gdal(aux_path, lc, window_transform, shape, resampling, **kw):
    out = np.full(shape, np.nan, np.float32)
    with rasterio.open(aux_path) as ds:
        reproject(rasterio.band(ds, 1), out, src_nodata=ds.nodata, dst_transform=window_transform, dst_crs=lc.crs,
                  dst_nodata=np.nan, resampling=Resampling[resampling], **kw)
    return out


@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_same_crs_auxiliary_equals_gdal_within_float32(tmp_path, resampling):
    rng = np.random.default_rng(3)
    values = rng.uniform(300, 900, (23, 31)).astype(np.float32)
    values[rng.random(values.shape) < 0.15] = -9999.0        # nodata next to valid cells
    aux = write_raster(tmp_path / "aux.tif", values, from_origin(119.97, 31.03, 0.0117, 0.0093), nodata=-9999.0)
    lc_path = _landcover(tmp_path / "lc.tif", from_origin(119.9, 31.1, 0.0027, 0.0027), (120, 160))
    with rasterio.open(lc_path) as lc:
        strip, col0, col1 = Strip(0, 13, 90), 7, 150   # a window reaching past the auxiliary raster
        ours = _sample(_AuxGrid(AuxSpec("x", aux, 1.0, resampling), lc), strip, col0, col1)
        ref = _gdal(aux, lc, lc.window_transform(((13, 103), (7, 150))), ours.shape, resampling)
    assert np.array_equal(np.isnan(ours), np.isnan(ref)) and np.isnan(ref).any() and np.isfinite(ref).any()
    np.testing.assert_allclose(ours, ref, rtol=2e-7)


def test_auxiliary_in_another_crs_equals_gdals_exact_transform(tmp_path):
    from rasterio.vrt import WarpedVRT
    rng = np.random.default_rng(5)
    values = (0.4 + 0.4 * rng.random((46, 56))).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = -9999.0
    aux = write_raster(tmp_path / "npp.tif", values, from_origin(492_000, 3_450_000, 500, 500),
                       crs="EPSG:32650", nodata=-9999.0)
    lc_path = _landcover(tmp_path / "lc.tif", from_origin(117.0, 31.15, 0.0011, 0.0011), (150, 190))
    with rasterio.open(lc_path) as lc, rasterio.open(aux) as ds:
        grid = _AuxGrid(AuxSpec("npp", aux, 0.5, "bilinear"), lc)
        ours = _sample(grid, Strip(0, 0, 150), 0, 190)
        # a cell's value does not depend on the window it is read in
        part = _sample(grid, Strip(0, 37, 60), 21, 120)
        assert np.array_equal(part, ours[37:97, 21:120], equal_nan=True)
        # GDAL with (almost) no approximation of the transform; its default (0.125 source pixel)
        # is coarser than ours (exact points every 16 cells).
        with WarpedVRT(ds, crs=lc.crs, transform=lc.transform, width=190, height=150, src_nodata=-9999.0,
                       nodata=np.nan, dtype="float32", resampling=Resampling.bilinear, tolerance=1e-6) as vrt:
            ref = vrt.read(1) * np.float32(0.5)
    assert np.array_equal(np.isnan(ours), np.isnan(ref)) and np.isfinite(ref).sum() > 20_000
    # Source coordinates interpolated between exact points 16 cells apart are off by ~1e-5 source
    # pixels: on this deliberately rough field (neighbours differ by up to 100 %) values within 1e-4.
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


# --------------------------------------------------------------------------------- runners
@pytest.fixture
def random_world(world):
    """A 150 x 200 geographic world of random codes and four overlapping random counties."""
    rng = np.random.default_rng(11)
    world.landcover = rng.choice(np.array([0, 1, 2, 2, 5, 8, 9], np.uint8), size=(150, 200))
    world.lc_transform = from_origin(120.0, 31.0, 0.001, 0.001)
    shapes = [Point(120.06, 30.93).buffer(0.05).difference(Point(120.065, 30.93).buffer(0.012)),
              Polygon([(119.99, 30.99), (120.1312, 30.9707), (120.21, 30.86), (120.05, 30.84)]),
              MultiPolygon([box(120.1003, 30.9017, 120.1491, 30.9533), box(120.16, 30.96, 120.19, 30.99)]),
              Polygon([(120.0002, 30.8500), (120.1999, 30.8500), (120.1999, 30.8531), (120.0002, 30.8531)])]
    world.geometries = shapes
    world.codes = ["000001", "000002", "000003", "000004"]
    world.names = ["ring", "quad", "two boxes", "sliver"]
    world.extra_config = "[compute]\nstrip_pixels = 10000"  # 50-row strips: 3 strips, zones across them
    world.aux_bounds = (119.9, 30.8, 120.3, 31.1)
    return world


def _accounts(config, **kw):
    prep = pipeline.prepare(load_run_config(config), 2020)
    try:
        return pipeline.account(prep, **kw)
    finally:
        prep.close()


def test_class_areas_of_overlapping_random_zones_equal_exactextracts(random_world):
    import pandas as pd
    config = random_world.write()
    ours = pd.concat([a.extent for a in _accounts(config)]).groupby(["county_code", "lc_code"]).area_ha.sum() / 100
    cfg = load_run_config(config)
    prep = pipeline.prepare(cfg, 2020)
    counties = prep.counties
    prep.close()
    theirs = exactextract_class_areas(cfg.landcover[2020], counties).set_index(["county_code", "lc_code"]).area_km2
    theirs = theirs[theirs.index.get_level_values(1) != 0]
    assert len(theirs) >= 16 and set(theirs.index) == set(ours.index)
    np.testing.assert_allclose(ours.loc[theirs.index], theirs, rtol=1e-6)


def test_serial_and_threaded_runs_give_the_same_bits(random_world):
    config = random_world.write()
    one, two = _accounts(config, workers=1), _accounts(config, workers=2)
    for a, b in zip(one, two):
        for name in ("extent", "services", "gep"):
            assert getattr(a, name).equals(getattr(b, name)), name


def test_a_cell_exactextract_misses_is_covered_as_shapely_says():
    # exactextract 0.3.0 gives this interior cell (row 96, column 177) coverage 0; shapely's exact
    # intersection and the engine give 1. Recorded so that a change on either side shows.
    grid = from_origin(120.0, 31.0, 0.001, 0.001)
    quad = Polygon([(119.99, 30.99), (120.13, 30.97), (120.21, 30.86), (120.05, 30.84)])
    z = zone_polygon("q", quad, grid, 200, 150)
    cover = kernels.polygon_coverage(z.xs, z.ys, z.ring_starts, z.ring_signs, 0, 0, 150, 200)
    cell = box(120.177, 30.903, 120.178, 30.904)
    assert cover[96, 177] == quad.intersection(cell).area / cell.area == 1.0
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource
    import geopandas as gpd
    src = NumPyRasterSource(np.zeros((150, 200), np.uint8), 120.0, 30.85, 120.2, 31.0, srs_wkt="EPSG:4326")
    res = exact_extract(src, gpd.GeoDataFrame(geometry=[quad], crs=4326), ["cell_id", "coverage"], output="pandas")
    theirs = dict(zip(np.asarray(res.iloc[0]["cell_id"]).tolist(), np.asarray(res.iloc[0]["coverage"]).tolist()))
    assert theirs.get(96 * 200 + 177, 0.0) == 0.0 and theirs[95 * 200 + 177] == pytest.approx(cover[95, 177], abs=1e-7)


@pytest.mark.slow
def test_threads_and_a_two_worker_dask_cluster_write_the_same_data(random_world, tmp_path):
    import pyarrow.parquet as pq
    from flows.annual import annual_gep_flow, temporary_api, with_runner
    from tiny_world import data_files
    from gep.config import ComputeConfig
    config = str(random_world.write())
    outputs = {}
    for runner in ("threads", "dask"):
        out = tmp_path / runner
        with temporary_api():
            with_runner(annual_gep_flow, ComputeConfig(runner=runner, workers=2))(config, 2020, str(out))
        outputs[runner] = {rel: pq.read_table(p).replace_schema_metadata() for rel, p in data_files(out).items()}
    assert len(outputs["threads"]) == 4 * len(vocabulary.DATA_DATASETS) and outputs["threads"].keys() == outputs["dask"].keys()
    for path, table in outputs["threads"].items():
        assert table.equals(outputs["dask"][path]), path  # every value, to the last bit


def test_compute_settings_and_command_line_overrides():
    from pydantic import ValidationError
    from gep.config import ComputeConfig
    assert ComputeConfig().runner == "threads" and ComputeConfig().workers is None
    assert ComputeConfig(dask_address="tcp://10.0.0.5:8786").runner == "dask"
    with pytest.raises(ValidationError, match="dask_address is set but runner"):
        ComputeConfig(runner="threads", dask_address="tcp://10.0.0.5:8786")
    with pytest.raises(ValidationError):
        ComputeConfig(workers=0)
    import argparse
    from gep.cli import _compute
    args = argparse.Namespace(workers=3, dask=False, dask_address="tcp://h:8786")
    merged = _compute(ComputeConfig(), args)
    assert (merged.runner, merged.workers, merged.dask_address) == ("dask", 3, "tcp://h:8786")


def test_strips_are_whole_tile_rows_and_bounded_in_size():
    from gep.zonal import ZonePolygon, plan_strips
    zone = ZonePolygon("z", np.zeros(1), np.zeros(1), np.zeros(2, np.int64), np.ones(1, np.int64), 700, 3000, 0, 10)
    tiled = plan_strips(4000, 1000, 512, [zone], strip_pixels=1_100_000)
    assert [(s.row0, s.nrows) for s in tiled] == [(0, 1024), (1024, 1024), (2048, 1024)]  # on the grid
    one_block = plan_strips(4000, 1000, 4000, [zone], strip_pixels=1_100_000)  # a single-strip GeoTIFF
    assert max(s.nrows for s in one_block) == 1100 and one_block[0].row0 <= 700
    assert one_block[-1].row0 + one_block[-1].nrows >= 3000
