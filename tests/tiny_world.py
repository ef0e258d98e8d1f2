"""A tiny, hand-computable world: a 4x4 geographic land-cover raster, two counties, constant
auxiliary rasters and a statistics table, written to a temporary folder with a run configuration.

Land cover (CLCD codes), 0.01° pixels, north-west corner at 120.00 E, 31.00 N:

    row 0 (31.00-30.99):  2 2 | 2 2
    row 1 (30.99-30.98):  2 2 | 5 5
    row 2 (30.98-30.97):  1 1 | 8 0
    row 3 (30.97-30.96):  1 9 | 8 0
                          A A   B B   (B's polygon extends 0.01° east, beyond the raster)

County A = box(120.00, 30.96, 120.02, 31.00); county B = box(120.02, 30.96, 120.05, 31.00).
A third of B lies outside the land cover, so the world's configuration allows partial coverage
(B is accounted and flagged); ``allow_partial = False`` makes it strict.
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

LANDCOVER = np.array([[2, 2, 2, 2],
                      [2, 2, 5, 5],
                      [1, 1, 8, 0],
                      [1, 9, 8, 0]], dtype=np.uint8)
COUNTY_A = box(120.00, 30.96, 120.02, 31.00)
COUNTY_B = box(120.02, 30.96, 120.05, 31.00)
PRECIP_MM, ET_MM, NPP_KGC = 1400.0, 800.0, 0.54
PADDY, HOT, WATER_EVAP = 0.75, 0.45, 900.0
# The regulating world (TinyWorld.regulating = True): constant soil-erosion inputs, emissions, a lake
# straddling the A/B border (half in each), a reservoir in A.
R_FACTOR, LS, K_SI, COVER = 5000.0, 2.0, 0.03, 0.5
EMISSIONS = {"000001": {"so2": 10.0, "nox": 1.0, "dust": 5.0, "cod": 50.0, "nh3n": 5.0, "tp": 0.5},
             "000002": {"so2": 100.0, "nox": 20.0, "dust": 8.0, "cod": 1.0, "nh3n": 500.0, "tp": 0.01}}
LAKE = box(120.015, 30.975, 120.025, 30.985)
RESERVOIR_XY, RESERVOIR_STORAGE = (120.005, 30.995), 100.0  # 1e4 m3
REGULATING = ["water_conservation", "soil_retention", "flood_regulation", "carbon_sequestration", "oxygen_release",
              "air_purification", "water_purification", "climate_regulation", "pest_control", "coastal_protection",
              "windbreak_sand_fixation"]


def data_files(out: Path) -> dict[str, Path]:
    """The published partition files of an output folder as readers see them (through its dataset
    links), by relative path; run records and unpublished versions left out."""
    from gep.vocabulary import DATA_DATASETS
    return {str(p.relative_to(out)): p for dataset in DATA_DATASETS
            for p in sorted((out / dataset).glob("year=*/county_code=*/*"))}


def data_snapshot(out: Path) -> dict[str, str]:
    """SHA-256 of every published data file: equal snapshots = byte-identical outputs."""
    import hashlib
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in data_files(out).items()}


def fill_the_disk_for_partitions(monkeypatch) -> None:
    """From now on, writing a partition file fails as on a full disk (the small run record still fits)."""
    from gep import store
    real = store.pq.write_table

    def disk_full(table, fh, **kwargs):
        if "versions" in fh.name:
            raise OSError(28, "No space left on device")
        return real(table, fh, **kwargs)
    monkeypatch.setattr(store.pq, "write_table", disk_full)


def write_raster(path: Path, arr: np.ndarray, transform, crs="EPSG:4326", nodata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype.name, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(arr, 1)
    return path


class TinyWorld:
    """Writes the tiny world; every piece can be replaced before ``config()`` to make bad input."""

    def __init__(self, root: Path):
        self.root = root
        self.out = root / "out"
        self.landcover = LANDCOVER.copy()
        self.geometries = [COUNTY_A, COUNTY_B]
        self.crs = "EPSG:4326"  # of the land cover and of `geometries`
        self.lc_transform = from_origin(120.0, 31.0, 0.01, 0.01)
        self.scheme = "clcd"
        self.codes = ["000001", "000002"]
        self.names = ["County A", "County B"]
        self.boundary_crs = "EPSG:4326"
        self.code_field = "code"
        self.extra_config = ""
        self.equivalent_factor = False  # also write the equivalent-factor rows (off: the functional rows alone)
        self.aux_bounds = (119.98, 30.94, 120.08, 31.02)  # covers both counties
        self.statistics_rows: list[str] | None = None
        self.et_resampling = "bilinear"
        self.allow_partial = True
        self.regulating = False  # also write the inputs of every regulating service and enable them
        self.services = ["water_conservation", "carbon_sequestration", "climate_regulation"]
        self.carbon_stock = False

    def write(self) -> Path:
        r = self.root
        gdf = gpd.GeoDataFrame({"code": self.codes, "name": self.names}, geometry=self.geometries, crs=self.crs)
        if self.boundary_crs != self.crs:
            gdf = gdf.to_crs(self.boundary_crs)
        gdf.to_file(r / "counties.gpkg", layer="counties", driver="GPKG")
        write_raster(r / "lc_2020.tif", self.landcover, self.lc_transform, crs=self.crs, nodata=0)
        w, s, e, n = self.aux_bounds
        shape = (round((n - s) / 0.02), round((e - w) / 0.02))
        t = from_origin(w, n, 0.02, 0.02)
        for name, value in (("precip", PRECIP_MM), ("et", ET_MM), ("npp", NPP_KGC)):
            write_raster(r / f"{name}_2020.tif", np.full(shape, value, dtype=np.float32), t, nodata=-9999.0)
        if self.regulating:
            self._write_regulating(shape, t)
        extra = ",0.35,0.5,0" if self.regulating else ""
        rows = self.statistics_rows or [f"{c},2020,{PADDY},{HOT},{WATER_EVAP}{extra},illustrative test value"
                                        for c in self.codes]
        header = "county_code,year,paddy_share,hot_day_share,water_surface_evaporation_mm"
        header += ",natural_forest_share,natural_grassland_share,coastal" if self.regulating else ""
        (r / "stats.csv").write_text(header + ",source\n" + "\n".join(rows) + "\n")
        return self.config()

    def _write_regulating(self, shape, t) -> None:
        from shapely.geometry import Point
        r = self.root
        for name, value in (("erosivity", R_FACTOR), ("ls", LS), ("k", K_SI), ("cover", COVER)):
            write_raster(r / f"{name}_2020.tif", np.full(shape, value, dtype=np.float32), t, nodata=-9999.0)
        lines = [f"{c},2020,{k},{v},illustrative test value" for c, e in EMISSIONS.items() for k, v in e.items()]
        (r / "emissions.csv").write_text("county_code,year,pollutant,emission_t,source\n" + "\n".join(lines) + "\n")
        gpd.GeoDataFrame({"name": ["straddling lake"]}, geometry=[LAKE], crs=self.crs).to_file(
            r / "lakes.gpkg", layer="lakes", driver="GPKG")
        gpd.GeoDataFrame({"name": ["reservoir A"], "storage": [RESERVOIR_STORAGE]}, geometry=[Point(*RESERVOIR_XY)],
                         crs=self.crs).to_file(r / "reservoirs.gpkg", layer="reservoirs", driver="GPKG")

    def _regulating_config(self) -> str:
        return """
[auxiliary.rainfall_erosivity]
path = "erosivity_{year}.tif"
unit = "MJ mm/ha/h/a"
[auxiliary.ls_factor]
path = "ls_{year}.tif"
unit = "1"
[auxiliary.soil_erodibility]
path = "k_{year}.tif"
unit = "t ha h/(ha MJ mm)"
[auxiliary.vegetation_cover]
path = "cover_{year}.tif"
unit = "1"
[tables.emissions]
path = "emissions.csv"
[vectors.lakes]
path = "lakes.gpkg"
layer = "lakes"
name_field = "name"
[vectors.reservoirs]
path = "reservoirs.gpkg"
layer = "reservoirs"
name_field = "name"
value_field = "storage"
unit = "1e4 m3"
[services.soil_retention]
k_factor = "raster"
"""

    def config(self) -> Path:
        path = self.root / "run.toml"
        path.write_text(f"""
output_dir = "out"
landcover_scheme = "{self.scheme}"
constant_price_year = 2020
price_basis = "constant"
equivalent_factor = {str(self.equivalent_factor).lower()}
area_model = "sphere"
{self.extra_config}
[boundaries]
path = "counties.gpkg"
layer = "counties"
code_field = "{self.code_field}"
name_field = "name"

[landcover]
2020 = "lc_2020.tif"

[auxiliary.precipitation]
path = "precip_{{year}}.tif"
unit = "mm/a"
[auxiliary.actual_et]
path = "et_{{year}}.tif"
unit = "mm/a"
resampling = "{self.et_resampling}"
[auxiliary.npp]
path = "npp_{{year}}.tif"
unit = "kg C/m2/a"

[statistics]
path = "stats.csv"
{self._regulating_config() if self.regulating else ""}
{'[carbon_stock]' + chr(10) + 'pools = "pools.csv"' if self.carbon_stock else ""}
[services]
enabled = {self.services if not self.regulating else REGULATING}

[checks]
allow_partial_coverage = {str(self.allow_partial).lower()}
""")
        return path
