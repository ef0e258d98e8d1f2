"""Province-scale figures: all 90 county units of Zhejiang on a 30 m land-cover raster.

Reads the real boundaries from ../shared/data/counties_zhejiang.gpkg (not in the repository) and
writes a throw-away SYNTHETIC raster (blocky random CLCD classes at 30 m over the province's bounding
box, ~300 M pixels) plus constant auxiliary rasters and statistics into a temporary folder, then runs
validate -> account -> write with the plain pipeline functions and prints time and peak memory.
The land cover is meaningless; only the speed and memory figures are.

Usage: uv run python benchmarks/bench_province.py [--boundaries PATH] [--keep DIR]
"""
from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from gep import pipeline
from gep.config import load_run_config
from gep.sample_data import CLCD_RES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "counties_zhejiang.gpkg"


def write_inputs(folder: Path, boundaries: Path) -> Path:
    counties = gpd.read_file(boundaries, layer="counties")
    w, s, e, n = counties.total_bounds
    w, s, e, n = w - 0.01, s - 0.01, e + 0.01, n + 0.01
    cols, rows = int(np.ceil((e - w) / CLCD_RES)), int(np.ceil((n - s) / CLCD_RES))
    rng = np.random.default_rng(1)
    profile = dict(driver="GTiff", width=cols, height=rows, count=1, dtype="uint8", crs="EPSG:4326",
                   transform=from_origin(w, n, CLCD_RES, CLCD_RES), nodata=0, compress="deflate",
                   tiled=True, blockxsize=512, blockysize=512)
    strip = 2000
    with rasterio.open(folder / "lc_2020.tif", "w", **profile) as dst:
        for r0 in range(0, rows, strip):
            h = min(strip, rows - r0)
            coarse = rng.choice([1, 2, 2, 2, 3, 4, 5, 8, 9], size=(h // 10 + 1, cols // 10 + 1)).astype(np.uint8)
            dst.write(np.repeat(np.repeat(coarse, 10, 0), 10, 1)[:h, :cols], 1, window=Window(0, r0, cols, h))
    t = from_origin(w, n, 0.01, 0.01)
    shape = (int(np.ceil((n - s) / 0.01)), int(np.ceil((e - w) / 0.01)))
    for name, value in (("precip", 1500.0), ("et", 800.0), ("npp", 0.6)):
        with rasterio.open(folder / f"{name}_2020.tif", "w", driver="GTiff", width=shape[1], height=shape[0], count=1,
                           dtype="float32", crs="EPSG:4326", transform=t, nodata=-9999.0) as dst:
            dst.write(np.full(shape, value, dtype=np.float32), 1)
    (folder / "stats.csv").write_text("county_code,year,paddy_share,hot_day_share,water_surface_evaporation_mm,source\n"
                                      + "".join(f"{c},2020,0.6,0.45,900,benchmark\n" for c in counties.adcode))
    shutil.copy(boundaries, folder / "counties.gpkg")
    config = folder / "run.toml"
    config.write_text("""output_dir = "out"
landcover_scheme = "clcd"
price_year = 2020
[boundaries]
path = "counties.gpkg"
layer = "counties"
code_field = "adcode"
name_field = "district"
[landcover]
2020 = "lc_2020.tif"
[auxiliary.precipitation]
path = "precip_{year}.tif"
unit = "mm/a"
[auxiliary.actual_et]
path = "et_{year}.tif"
unit = "mm/a"
[auxiliary.npp]
path = "npp_{year}.tif"
unit = "kg C/m2/a"
[statistics]
path = "stats.csv"
[services]
enabled = ["water_conservation", "carbon_sequestration", "climate_regulation"]
""")
    return config


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--boundaries", type=Path, default=SHARED)
    ap.add_argument("--keep", type=Path, help="keep the generated inputs in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gep-province-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config = folder / "run.toml" if (folder / "run.toml").exists() else write_inputs(folder, args.boundaries)
    t1 = time.perf_counter()
    with rasterio.open(folder / "lc_2020.tif") as ds:
        print(f"inputs: {ds.width} x {ds.height} = {ds.width * ds.height / 1e6:.0f} M pixels "
              f"({(folder / 'lc_2020.tif').stat().st_size / 1e6:.0f} MB), written in {t1 - t0:.0f} s")
    cfg = load_run_config(config)
    prep = pipeline.prepare(cfg, 2020)
    t2 = time.perf_counter()
    results = pipeline.account(prep)
    t3 = time.perf_counter()
    files = pipeline.write(prep, results)
    t4 = time.perf_counter()
    prep.close()
    pixels = sum(r.extent.pixel_count.sum() for r in results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(results)} counties, {pixels / 1e6:.0f} M land-cover pixels inside counties")
    print(f"validate {t2 - t1:.1f} s | account {t3 - t2:.1f} s ({pixels / (t3 - t2) / 1e6:.2f} M pixels/s, one core) | "
          f"write {len(files)} files {t4 - t3:.1f} s | peak RSS {peak:.0f} MB")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
