"""Speed and memory of the zonal engine against exactextract and the decode floor, at scale.

One command (from the repository root):

    uv run python benchmarks/bench_engine.py [--work DIR] [--national-res 500] [--skip-national]

Inputs, generated deterministically on first use into --work (default /tmp/gep-bench; ~1.5 GB):
1. Zhejiang: the 90 real county units of ../shared/data/counties_zhejiang.gpkg (not in the
   repository) on a SYNTHETIC 30 m CLCD-coded land cover in an Albers equal-area projection
   (14,932 x 15,043 = 225 M cells, deflate, 512 x 512 tiles), with SYNTHETIC auxiliary rasters on the
   sample's grids and CRSs (precipitation 1 km and ET 500 m in EPSG:4326, NPP 500 m in UTM 50N):
   every one of them is warped onto the Albers grid. Counted at 25 %, 50 % and 100 % of the area
   (the northernmost counties up to that share).
2. China: the 2,875 county units of ../shared/data/counties_china.parquet on a SYNTHETIC land
   cover at --national-res metres (extent only), and an estimate for 30 m on N Dask workers.

Each measurement runs in a fresh subprocess (its own peak RSS), one after the other, and prints wall
time, CPU time (user + system), Mpx/s over the cells inside the zones and peak RSS; the ratios to
exactextract (unique + frac + count, the same zones and raster, in the same run) and to the decode
floor (every tile of the zones' rows decoded once) are printed beside them. The land cover is
meaningless; only the figures are.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
SHARES = (0.25, 0.5, 1.0)


# ----------------------------------------------------------------------------------- inputs
def _upsample(coarse: np.ndarray, rows: slice, cols: int, cell: int) -> np.ndarray:
    """Rows ``rows`` of a smooth field: the coarse random grid bilinearly upsampled by ``cell``."""
    from scipy import ndimage
    rr, cc = np.meshgrid(np.arange(rows.start, rows.stop) / cell, np.arange(cols) / cell, indexing="ij")
    return ndimage.map_coordinates(coarse, [rr, cc], order=1, mode="nearest").astype(np.float32)


def write_landcover(path: Path, bounds, res: float, crs: str, seed: int) -> None:
    """SYNTHETIC CLCD codes (1-9) in smooth patches over ``bounds``; written strip by strip."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    w, s, e, n = bounds
    cols, rows = int(np.ceil((e - w) / res)), int(np.ceil((n - s) / res))
    rng = np.random.default_rng(seed)
    big = rng.random((rows // 400 + 3, cols // 400 + 3)).astype(np.float32)
    small = rng.random((rows // 25 + 3, cols // 25 + 3)).astype(np.float32)
    profile = dict(driver="GTiff", width=cols, height=rows, count=1, dtype="uint8", crs=crs,
                   transform=from_origin(w, n, res, res), nodata=0, compress="deflate", predictor=2,
                   tiled=True, blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, rows, 2048):
            sl = slice(r0, min(rows, r0 + 2048))
            hill = 0.7 * _upsample(big, sl, cols, 400) + 0.3 * _upsample(small, sl, cols, 25)
            lc = np.full(hill.shape, 1, np.uint8)                     # cropland
            lc[hill > 0.52] = 2                                       # forest
            lc[(hill > 0.47) & (hill <= 0.52)] = 3                    # shrub
            lc[(hill > 0.45) & (hill <= 0.47)] = 4                    # grassland
            lc[hill < 0.22] = 8                                       # built-up
            lc[(hill >= 0.22) & (hill < 0.26)] = 5                    # water
            lc[(hill >= 0.26) & (hill < 0.265)] = 9                   # wetland
            dst.write(lc, 1, window=Window(0, r0, cols, lc.shape[0]))
        dst.update_tags(SYNTHETIC="yes", LABEL="SYNTHETIC benchmark land cover; not observations")
    tmp.replace(path)


def write_auxiliary(folder: Path, bounds_lonlat, seed: int) -> None:
    """SYNTHETIC precipitation (1 km) and ET (500 m, NaN patches) in EPSG:4326, NPP (500 m) in UTM 50N."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage
    w, s, e, n = bounds_lonlat
    rng = np.random.default_rng(seed)

    def field(res, lo, hi, holes=0.0):
        shape = (int(np.ceil((n - s) / res)), int(np.ceil((e - w) / res)))
        f = ndimage.zoom(rng.random((shape[0] // 20 + 2, shape[1] // 20 + 2)), 20, order=1)[: shape[0], : shape[1]]
        v = (lo + (hi - lo) * f).astype(np.float32)
        if holes:
            v[rng.random(shape) < holes] = -9999.0
        return v, from_origin(w, n, res, res)

    for name, (res, lo, hi, holes) in {"precip": (0.01, 1200, 1900, 0), "et": (0.005, 600, 900, 0.03)}.items():
        v, t = field(res, lo, hi, holes)
        with rasterio.open(folder / f"{name}_2020.tif", "w", driver="GTiff", width=v.shape[1], height=v.shape[0],
                           count=1, dtype="float32", crs="EPSG:4326", transform=t, nodata=-9999.0) as dst:
            dst.write(v, 1)
    from pyproj import Transformer
    x0, y0 = Transformer.from_crs(4326, 32650, always_xy=True).transform([w, e, w, e], [s, s, n, n])
    xmin, xmax, ymin, ymax = min(x0) - 2000, max(x0) + 2000, min(y0) - 2000, max(y0) + 2000
    shape = (int((ymax - ymin) / 500), int((xmax - xmin) / 500))
    npp = (0.3 + 0.6 * ndimage.zoom(rng.random((shape[0] // 20 + 2, shape[1] // 20 + 2)), 20, order=1)
           [: shape[0], : shape[1]]).astype(np.float32)
    with rasterio.open(folder / "npp_2020.tif", "w", driver="GTiff", width=shape[1], height=shape[0], count=1,
                       dtype="float32", crs="EPSG:32650", transform=from_origin(xmin, ymax, 500, 500),
                       nodata=-9999.0) as dst:
        dst.write(npp, 1)


RUN_CONFIG = """output_dir = "out"
landcover_scheme = "clcd"
constant_price_year = 2020
[boundaries]
path = "{boundaries}"
layer = "counties"
code_field = "adcode"
name_field = "district"
[landcover]
2020 = "{landcover}"
[auxiliary.precipitation]
path = "precip_{{year}}.tif"
unit = "mm/a"
[auxiliary.actual_et]
path = "et_{{year}}.tif"
unit = "mm/a"
[auxiliary.npp]
path = "npp_{{year}}.tif"
unit = "kg C/m2/a"
[statistics]
path = "stats.csv"
[services]
enabled = ["water_conservation", "carbon_sequestration", "climate_regulation"]
"""


NATIONAL_CONFIG = """output_dir = "out"
landcover_scheme = "clcd"
constant_price_year = 2020
[boundaries]
path = "counties.gpkg"
layer = "counties"
code_field = "adcode"
name_field = "district"
[landcover]
2020 = "lc_2020.tif"
[auxiliary.actual_et]
path = "et_{year}.tif"
unit = "mm/a"
[statistics]
path = "stats.csv"
[services]
enabled = ["climate_regulation"]
"""


def write_coarse_et(path: Path, bounds_lonlat) -> None:
    """A constant SYNTHETIC 0.05-degree ET raster over China (the national run measures the extent)."""
    import rasterio
    from rasterio.transform import from_origin
    w, s, e, n = bounds_lonlat
    shape = (int(np.ceil((n - s) / 0.05)) + 2, int(np.ceil((e - w) / 0.05)) + 2)
    with rasterio.open(path, "w", driver="GTiff", width=shape[1], height=shape[0], count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(w - 0.05, n + 0.05, 0.05, 0.05), nodata=-9999.0) as dst:
        dst.write(np.full(shape, 700.0, np.float32), 1)


def prepare_inputs(work: Path, national_res: float, national: bool) -> None:
    import geopandas as gpd
    work.mkdir(parents=True, exist_ok=True)
    zj = work / "zhejiang"
    zj.mkdir(exist_ok=True)
    if not (zj / "run_100.toml").exists():
        t = time.perf_counter()
        counties = gpd.read_file(SHARED / "counties_zhejiang.gpkg", layer="counties").to_crs(ALBERS)
        w, s, e, n = counties.total_bounds
        write_landcover(zj / "lc_2020.tif", (w - 300, s - 300, e + 300, n + 300), 30.0, ALBERS, 1)
        write_auxiliary(zj, tuple(gpd.read_file(SHARED / "counties_zhejiang.gpkg", layer="counties").total_bounds
                                  + np.array([-0.1, -0.1, 0.1, 0.1])), 2)
        (zj / "stats.csv").write_text("county_code,year,paddy_share,hot_day_share,water_surface_evaporation_mm,source\n"
                                      + "".join(f"{c},2020,0.6,0.45,900,benchmark\n" for c in counties.adcode))
        # The northernmost counties up to 25 %, 50 % and 100 % of the province's area.
        order = counties.assign(y=counties.geometry.centroid.y, a=counties.area).sort_values("y", ascending=False)
        cum = order.a.cumsum() / order.a.sum()
        for share in SHARES:
            subset = order[cum.shift(fill_value=0) < share - 1e-9][["adcode", "district", "geometry"]]
            subset.to_file(zj / f"counties_{int(share * 100)}.gpkg", layer="counties", driver="GPKG")
            (zj / f"run_{int(share * 100)}.toml").write_text(
                RUN_CONFIG.format(boundaries=f"counties_{int(share * 100)}.gpkg", landcover="lc_2020.tif"))
        print(f"generated Zhejiang inputs in {time.perf_counter() - t:.0f} s")
    cn = work / f"china_{int(national_res)}m"
    if national and not (cn / "run.toml").exists():
        t = time.perf_counter()
        cn.mkdir(exist_ok=True)
        counties = gpd.read_parquet(SHARED / "counties_china.parquet").to_crs(ALBERS)
        counties = counties[["adcode", "district", "geometry"]]
        counties.to_file(cn / "counties.gpkg", layer="counties", driver="GPKG")
        w, s, e, n = counties.total_bounds
        write_landcover(cn / "lc_2020.tif", (w - 1000, s - 1000, e + 1000, n + 1000), national_res, ALBERS, 3)
        write_coarse_et(cn / "et_2020.tif", gpd.read_parquet(SHARED / "counties_china.parquet").total_bounds)
        (cn / "stats.csv").write_text("county_code,year,paddy_share,hot_day_share,water_surface_evaporation_mm,source\n"
                                      + "".join(f"{c},2020,0.5,0.4,900,benchmark\n" for c in counties.adcode))
        (cn / "run.toml").write_text(NATIONAL_CONFIG)
        print(f"generated national inputs in {time.perf_counter() - t:.0f} s")


# ----------------------------------------------------------------------------- measurements
def measure(kind: str, config: Path, workers: int) -> dict:
    """One measurement in this process; returns figures (the parent adds CPU time and peak RSS)."""
    import logging
    logging.basicConfig(level=logging.ERROR)
    from gep import engine, pipeline, runs
    from gep.config import load_run_config
    cfg = load_run_config(config)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out: dict = {"cpu0": usage.ru_utime + usage.ru_stime}  # imports not counted
    if kind == "exactextract":
        import geopandas as gpd
        from exactextract import exact_extract
        counties = gpd.read_file(cfg.boundaries.path, layer="counties")
        res = exact_extract(str(cfg.landcover[2020]), counties, ["unique", "frac", "count"], output="pandas")
        out["cells"] = float(res["count"].sum())
        out["class_areas"] = {f"{code}/{int(c)}": float(f * n) for code, cs, fs, n in
                              zip(counties["adcode"], res["unique"], res["frac"], res["count"]) for c, f in zip(cs, fs)}
    elif kind == "cli":  # the same run through the CLI and Prefect (ephemeral server, tasks, artifact)
        import contextlib
        import io as _io
        from gep.cli import main as gep_main
        os.environ.setdefault("PREFECT_HOME", str(config.parent / "prefect-home"))  # warm after the first run
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        with contextlib.redirect_stdout(_io.StringIO()):
            code = gep_main(["run", "--config", str(config), "--output", str(config.parent / "out-cli"), "--force"]
                            + (["--workers", str(workers)] if workers else []))
        if code != 0:
            raise RuntimeError(f"gep run exited {code}")
        out["cells"] = 0.0
    elif kind == "decode":
        import rasterio
        from rasterio.windows import Window
        prep = pipeline.prepare(cfg, 2020, checks=False)
        p = engine.plan(prep)
        prep.close()
        with rasterio.open(cfg.landcover[2020]) as ds:
            for strip in p.strips:
                ds.read(1, window=Window(0, strip.row0, ds.width, strip.nrows))
    elif kind == "pipeline":  # what `gep run --no-prefect` does: lock, validate, account, publish, record
        with runs.RecordedRun(cfg.model_copy(update={"output_dir": config.parent / "out"}), 2020, None,
                              force=True) as r:
            r.validate()
            out["validate_s"] = time.perf_counter() - t0
            results = r.account(lambda plan: engine.tally_local(plan, workers))
            r.publish(results)
        merged = None
    else:
        prep = pipeline.prepare(cfg, 2020)
        out["validate_s"] = time.perf_counter() - t0
        if kind == "extent":
            p = engine.plan(prep, extent_only=True)
            merged = engine.merge(p, engine.tally_local(p, workers))
            out["class_areas"] = {f"{code}/{c}": float(t.class_pixels[c]) for code, t in merged.items()
                                  for c in np.flatnonzero(t.class_pixels[:-1] > 0)}
        else:
            results = pipeline.account(prep, workers=workers)
            merged = None
        prep.close()
    if kind in ("extent", "services", "pipeline"):
        if merged is not None:
            out["cells"] = float(sum(t.class_pixels.sum() for t in merged.values()))
        else:
            out["cells"] = float(sum(r.extent.pixel_count.sum() for r in results))
    out["wall_s"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime - out.pop("cpu0")
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, config: Path, workers: int) -> dict:
    """Measure in a fresh process: its own peak RSS; wall and CPU time exclude Python's start-up."""
    cmd = [sys.executable, __file__, "--child", kind, str(config), str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(label: str, figures: dict[str, dict], cells: float) -> None:
    ee = figures["exactextract"]["wall_s"]
    print(f"\n{label}: {cells / 1e6:.0f} M cells inside the zones")
    print(f"  {'step':<34}{'wall s':>9}{'CPU s':>9}{'Mpx/s':>9}{'RSS MB':>9}{'x exactextract':>16}")
    for name, f in figures.items():
        print(f"  {name:<34}{f['wall_s']:>9.1f}{f['cpu_s']:>9.1f}{cells / 1e6 / f['wall_s']:>9.1f}"
              f"{f['peak_rss_mb']:>9.0f}{f['wall_s'] / ee:>16.2f}")


def compare_areas(figs: dict[str, dict]) -> None:
    """Per county and class, gep's covered cells (coverage-weighted) against exactextract's
    frac x count; a projected grid, so areas are these times one cell's area."""
    ours, theirs = figs["gep extent account"]["class_areas"], figs["exactextract"]["class_areas"]
    keys = sorted(set(ours) | set(theirs))
    a = np.array([ours.get(k, 0.0) for k in keys])
    b = np.array([theirs.get(k, 0.0) for k in keys])
    big = b >= 1000  # pairs of at least 1,000 cells (0.9 km² at 30 m)
    rel = np.abs(a - b) / np.maximum(b, 1e-300)
    print(f"  areas, {len(keys)} county-class pairs: max |relative difference| {rel[big].max():.1e} over the "
          f"{big.sum()} of >= 1,000 cells, max |difference| {np.abs(a - b).max():.2e} cells over all")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/gep-bench"))
    ap.add_argument("--workers", type=int, default=0, help="threads for gep (default: every core)")
    ap.add_argument("--national-res", type=float, default=500.0)
    ap.add_argument("--skip-national", action="store_true")
    ap.add_argument("--shares", default="25,50,100")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, config, workers = args.child
        print(json.dumps(measure(kind, Path(config), int(workers) or None)))
        return
    prepare_inputs(args.work, args.national_res, not args.skip_national)
    print(f"machine: {os.cpu_count()} cores; gep workers: {args.workers or 'every core'}")
    marginal = extent_marginal = None
    previous = None
    for share in (int(s) for s in args.shares.split(",") if s):
        config = args.work / "zhejiang" / f"run_{share}.toml"
        figs = {}
        figs["exactextract"] = run_child("exactextract", config, args.workers)
        figs["decode floor"] = run_child("decode", config, args.workers)
        figs["gep extent account"] = run_child("extent", config, args.workers)
        figs["gep extent + 3 services"] = run_child("account", config, args.workers)
        figs["gep pipeline (validate..write)"] = run_child("pipeline", config, args.workers)
        if share == 100:
            shutil.rmtree(config.parent / "prefect-home", ignore_errors=True)
            figs["gep run (CLI, Prefect), first"] = run_child("cli", config, args.workers)
            figs["gep run (CLI, Prefect)"] = run_child("cli", config, args.workers)
        cells = figs["gep extent account"]["cells"]
        report(f"Zhejiang 30 m, {share} % of the area", figs, cells)
        compare_areas(figs)
        if previous is not None:  # marginal CPU per cell between two sizes: the fixed costs cancel
            prev_cells, prev = previous
            extent_marginal = (figs["gep extent account"]["cpu_s"] - prev["gep extent account"]["cpu_s"]) / (cells - prev_cells)
            marginal = (figs["gep extent + 3 services"]["cpu_s"] - prev["gep extent + 3 services"]["cpu_s"]) / (cells - prev_cells)
            print(f"  marginal CPU per cell from the previous size: {extent_marginal * 1e9:.0f} ns (extent), "
                  f"{marginal * 1e9:.0f} ns (extent + 3 services)")
        previous = (cells, figs)
        if "gep run (CLI, Prefect)" in figs:
            extra = figs["gep run (CLI, Prefect)"]["wall_s"] - figs["gep pipeline (validate..write)"]["wall_s"]
            first = figs["gep run (CLI, Prefect), first"]["wall_s"] - figs["gep pipeline (validate..write)"]["wall_s"]
            print(f"  Prefect's cost (CLI run minus plain pipeline; ephemeral server start included): {extra:.1f} s, "
                  f"{first:.1f} s on the first run with a new PREFECT_HOME (database created)")
    if not args.skip_national:
        config = args.work / f"china_{int(args.national_res)}m" / "run.toml"
        figs = {"exactextract": run_child("exactextract", config, args.workers),
                "decode floor": run_child("decode", config, args.workers),
                "gep extent account": run_child("extent", config, args.workers)}
        cells = figs["gep extent account"]["cells"]
        report(f"China {args.national_res:.0f} m, 2,875 counties", figs, cells)
        compare_areas(figs)
        scale = args.national_res / 30.0
        cn_cells_30m = cells * scale ** 2
        if marginal is None:
            print("\nNational 30 m estimate: needs the Zhejiang runs (--shares 50,100) for the per-cell cost")
            return
        # Per cell: the Zhejiang marginal cost of extent + 3 services. Per polygon edge: what the
        # national run spends beyond its cells' share, which grows with the rows each edge crosses.
        edges_cpu = max(0.0, figs["gep extent account"]["cpu_s"] - cells * extent_marginal)
        cpu = cn_cells_30m * marginal + edges_cpu * scale
        print(f"\nNational 30 m estimate: {cn_cells_30m / 1e9:.1f} G cells inside counties x {marginal * 1e9:.0f} ns "
              f"(Zhejiang marginal, extent + 3 services) + polygon edges {edges_cpu:.1f} CPU s x {scale:.1f} "
              f"= {cpu / 3600:.2f} CPU hours, plus decoding real 30 m tiles; on N Dask workers about "
              + ", ".join(f"{cpu / n / 60:.0f} min on {n}" for n in (2, 16, 64))
              + " (plus each worker's start, about 10 s)")


if __name__ == "__main__":
    main()
