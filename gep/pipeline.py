"""Validate every input, then account every county, then write: the run as plain functions.

``prepare`` checks all inputs before anything is computed and reports every problem at once;
``account`` computes the county accounts in memory; ``write`` writes each partition atomically only
after every county has been computed, so bad input or a failure never leaves partial output.
Prefect flows (flows/) and the CLI (gep/cli.py) are thin layers over these functions.
"""
from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from pydantic import ValidationError
from pyproj import CRS
from rasterio.windows import Window

from gep import engine, io, kernels
from gep.accounts import CountyAccounts, CountyJob, ServiceRun
from gep.config import LandCoverScheme, ReferenceData, RunConfig, load_reference_data, sha256_file
from gep.errors import InputProblem, InputValidationError
from gep.services import REGISTRY
from gep.services.base import ServiceContext
from gep.valuation import index_price
from gep.zonal import AuxSpec, zone_polygon

log = logging.getLogger(__name__)

MIN_AUX_COVERAGE = 0.5  # share of a county's area an auxiliary raster must cover with valid data
STATISTICS_RANGES = {"paddy_share": (0.0, 1.0), "hot_day_share": (0.0, 1.0),
                     "water_surface_evaporation_mm": (0.0, 3000.0)}


@dataclass
class PreparedRun:
    """Validated, opened inputs of one run (one year, all or one county)."""

    cfg: RunConfig
    year: int
    price_year: int
    ref: ReferenceData
    scheme: LandCoverScheme
    counties: gpd.GeoDataFrame            # county_code, county_name, geometry in the land-cover CRS
    landcover: rasterio.DatasetReader     # open for its grid and CRS; the engine opens its own handles
    aux: tuple[AuxSpec, ...]
    statistics: dict[str, dict[str, float]]  # county_code -> fields
    services: list[tuple[str, object]]    # (service key, validated options)
    lineage: dict[str, str] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        self._stack.close()

    def jobs(self) -> list[CountyJob]:
        """One job per county, in the boundary file's order."""
        c = self.counties
        return [self._job(code, name, geom) for code, name, geom in zip(c["county_code"], c["county_name"], c.geometry)]

    def _job(self, county_code: str, county_name: str, geometry) -> CountyJob:
        stats = self.statistics.get(county_code, {})
        runs = [ServiceRun(REGISTRY[key], ServiceContext(self.ref, opts, stats, county_code, self.year))
                for key, opts in self.services]
        return CountyJob(county_code, county_name, self.year, geometry, self.landcover.crs,
                         tuple(self.landcover.bounds), self.scheme, self.ref, runs, stats, self.cfg.area_model,
                         self.price_year)


def prepare(cfg: RunConfig, year: int | None = None, county: str | None = None, *, checks: bool = True) -> PreparedRun:
    """Validate all inputs for one year; raise :class:`InputValidationError` listing every problem.

    Land-cover codes are checked during the accounting pass (the raster is decoded once per run):
    codes the scheme does not know are refused there, before anything is written. ``checks=False``
    only loads (a worker rebuilding a run that was validated in the flow): no coverage checks, no
    hashing of inputs.
    """
    cfg_file = str(cfg.source_file or "run configuration")
    year = cfg.resolve_year(year)
    price_year = cfg.price_year_for(year)
    ref = load_reference_data(cfg)
    problems: list[InputProblem] = []

    scheme = ref.schemes.get(cfg.landcover_scheme)
    if scheme is None:
        problems.append(InputProblem(cfg_file, "landcover_scheme", f"unknown scheme {cfg.landcover_scheme!r}",
                                     f"use one of {', '.join(ref.schemes)}"))
    services, found = _check_services(cfg, cfg_file, ref, price_year)
    problems += found
    counties, found = _read_counties(cfg, county)
    problems += found

    with contextlib.ExitStack() as stack:  # closes every opened raster unless the run is returned
        lc_path = cfg.landcover[year]
        landcover, found = io.open_raster(lc_path, f"landcover.{year}")
        problems += found
        if landcover is not None:
            stack.enter_context(landcover)
            if counties is not None:
                counties, found = _align_boundaries(cfg, counties, landcover)
                problems += found
        aux, found = _open_auxiliary(cfg, cfg_file, services, year, counties if checks else None,
                                     landcover.crs if landcover is not None else None, stack)
        problems += found

        statistics: dict[str, dict[str, float]] = {}
        fields = {f for key, _ in services for f in REGISTRY[key].statistics_fields}
        if scheme is not None and scheme.needs_paddy_share:
            fields.add("paddy_share")
        if fields and counties is not None:
            statistics, found = _load_statistics(cfg, cfg_file, sorted(fields), counties, year)
            problems += found

        prepared = PreparedRun(cfg, year, price_year, ref, scheme, counties, landcover, aux, statistics, services)
        if problems:
            # The run fails anyway: check the land-cover codes now so every problem is reported at
            # once (in a valid run they are checked during the accounting pass, one decode per run).
            if checks and landcover is not None and scheme is not None and counties is not None:
                problems += landcover_code_problems(prepared)
            raise InputValidationError(problems)
        lineage = _lineage(cfg, ref, year, lc_path, {a.name: a.path for a in aux}) if checks else {}
        prepared.lineage = lineage
        prepared._stack = stack.pop_all()
        return prepared


def landcover_code_problems(prepared: PreparedRun) -> list[InputProblem]:
    """Land-cover codes inside the counties that the scheme does not know (decodes the raster)."""
    p = engine.plan(prepared, extent_only=True)
    return engine.unknown_code_problems(p, engine.merge(p, engine.tally_local(p)))


_VALIDATED: dict[tuple, PreparedRun] = {}


def _run_key(cfg: RunConfig, year: int | None, county: str | None) -> tuple:
    return (cfg.model_dump_json(), year, county)


def keep_validated(prepared: PreparedRun, year: int | None, county: str | None) -> None:
    """Hand a validated run to the next :func:`prepare_once` of the same run in this process
    (the CLI validates before starting Prefect, so that bad input gets a clean, fast error)."""
    _VALIDATED[_run_key(prepared.cfg, year, county)] = prepared


def prepare_once(cfg: RunConfig, year: int | None = None, county: str | None = None) -> PreparedRun:
    """The run validated earlier in this process (:func:`keep_validated`), else :func:`prepare`:
    one validation per run whoever starts it."""
    found = _VALIDATED.pop(_run_key(cfg, year, county), None)
    return found if found is not None else prepare(cfg, year, county)


def _check_services(cfg: RunConfig, cfg_file: str, ref: ReferenceData, price_year: int):
    """Enabled services with validated options; each must have a price in its quantity's unit."""
    problems, services = [], []
    for key in sorted(set(cfg.services.options) - set(REGISTRY)):
        problems.append(InputProblem(cfg_file, f"services.{key}", "options for an unknown service",
                                     f"known services: {', '.join(sorted(REGISTRY))}"))
    for key in cfg.services.enabled:
        svc = REGISTRY.get(key)
        if svc is None:
            problems.append(InputProblem(cfg_file, "services.enabled", f"unknown service {key!r}",
                                         f"known services: {', '.join(sorted(REGISTRY))}"))
            continue
        try:
            opts = svc.Options.model_validate(cfg.services.options.get(key, {}))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(InputProblem(cfg_file, f"services.{key}.{loc}", err["msg"], "correct the option"))
            continue
        try:
            index_price(ref, svc.price_key(opts), price_year, svc.quantity_unit(opts))
        except InputValidationError as exc:
            problems.extend(exc.problems)
        services.append((key, opts))
    return services, problems


def _read_counties(cfg: RunConfig, county: str | None):
    """The boundary file's counties (all, or the one asked for)."""
    b = cfg.boundaries
    counties, problems = io.read_boundaries(b.path, b.layer, b.code_field, b.name_field)
    if problems or counties is None:
        return None, problems
    if county is None:
        return counties, []
    if county not in set(counties["county_code"]):
        return None, [InputProblem(str(b.path), b.code_field, f"county {county} is not in the boundary file",
                                   f"use one of {', '.join(sorted(counties['county_code']))}")]
    return counties[counties["county_code"] == county].reset_index(drop=True), []


def _open_auxiliary(cfg: RunConfig, cfg_file: str, services, year: int, counties, lc_crs,
                    stack: contextlib.ExitStack):
    """Open the auxiliary rasters the enabled services need; check units and county coverage."""
    problems: list[InputProblem] = []
    aux: list[AuxSpec] = []
    needed = {a.name: (a, key) for key, _ in services for a in REGISTRY[key].aux_inputs}
    for name, (aux_input, svc_key) in needed.items():
        acfg = cfg.auxiliary.get(name)
        if acfg is None:
            problems.append(InputProblem(cfg_file, f"auxiliary.{name}",
                                         f"service {svc_key} needs the auxiliary raster {name!r}",
                                         f"add [auxiliary.{name}] with path, unit = \"{aux_input.unit}\""))
            continue
        if acfg.unit != aux_input.unit:
            problems.append(InputProblem(cfg_file, f"auxiliary.{name}.unit",
                                         f"unit {acfg.unit!r} but {svc_key} expects {aux_input.unit!r}",
                                         f"convert with `scale` and set unit = \"{aux_input.unit}\""))
        path = acfg.path_for(year)
        ds, found = io.open_raster(path, f"auxiliary.{name}")
        problems += found
        if ds is None:
            continue
        stack.enter_context(ds)
        if counties is not None and lc_crs is not None:
            problems += _check_aux_coverage(path, name, ds, counties, lc_crs)
        aux.append(AuxSpec(name, path, acfg.scale, acfg.resampling))
    return tuple(aux), problems


def _align_boundaries(cfg: RunConfig, counties: gpd.GeoDataFrame, landcover) -> tuple[gpd.GeoDataFrame | None, list]:
    if counties.crs == landcover.crs:
        return counties, []
    if not cfg.boundaries.reproject:
        return None, [InputProblem(str(cfg.boundaries.path), "crs",
                                   f"boundary CRS {counties.crs.to_string()} differs from the land-cover CRS "
                                   f"{landcover.crs.to_string()} ({landcover.name})",
                                   "reproject the boundary file to the land-cover CRS, or set "
                                   "[boundaries] reproject = true to transform it on the fly")]
    return counties.to_crs(landcover.crs), []


def _check_aux_coverage(path: Path, name: str, ds, counties: gpd.GeoDataFrame, lc_crs) -> list[InputProblem]:
    """Each county must have valid auxiliary data over most of its area (outside the raster = no data).

    The share is the exact covered area of the county's valid auxiliary cells over the county's
    area, both on the auxiliary raster's own grid (the engine's coverage kernel).
    """
    problems = []
    in_aux_crs = counties.geometry if CRS.from_user_input(lc_crs) == CRS.from_user_input(ds.crs) \
        else counties.geometry.to_crs(ds.crs)
    cell = abs(ds.transform.a * ds.transform.e)
    for code, g in zip(counties["county_code"], in_aux_crs):
        z = zone_polygon(code, g, ds.transform, ds.width, ds.height)
        covered = 0.0
        if z is not None:
            win = Window(z.col0, z.row0, z.col1 - z.col0, z.row1 - z.row0)
            arr = ds.read(1, window=win, masked=True)
            valid = ~np.ma.getmaskarray(arr) & np.isfinite(np.ma.getdata(arr).astype(np.float64))
            cover = kernels.polygon_coverage(z.xs, z.ys, z.ring_starts, z.ring_signs, z.col0, z.row0,
                                             z.row1 - z.row0, z.col1 - z.col0)
            covered = float((cover * valid).sum()) / (g.area / cell)
        if covered < MIN_AUX_COVERAGE:
            problems.append(InputProblem(str(path), f"auxiliary.{name}",
                                         f"does not cover county {code}: valid data over {covered:.0%} of it",
                                         "use a raster whose extent and valid data cover every county"))
    return problems


def _load_statistics(cfg, cfg_file, fields, counties, year):
    if cfg.statistics is None:
        return {}, [InputProblem(cfg_file, "statistics", f"county statistics needed for {', '.join(fields)}",
                                 "add [statistics] path = \"county_statistics.csv\"")]
    path = cfg.statistics.path
    df, problems = io.read_statistics(path)
    if df is None:
        return {}, problems
    missing = [f for f in fields if f not in df.columns]
    if missing:
        return {}, [InputProblem(str(path), ", ".join(missing), "column(s) needed by the enabled services missing",
                                 "add them, one value per county and year")]
    rows = df[df["year"] == year].set_index("county_code")
    out: dict[str, dict[str, float]] = {}
    for code in counties["county_code"]:
        if code not in rows.index:
            problems.append(InputProblem(str(path), "county_code, year", f"no row for county {code} in {year}",
                                         f"add a row county_code={code}, year={year}"))
            continue
        values = {}
        for f in fields:
            v = pd.to_numeric(rows.at[code, f], errors="coerce")
            lo, hi = STATISTICS_RANGES.get(f, (-np.inf, np.inf))
            if not np.isfinite(v) or not lo <= v <= hi:
                problems.append(InputProblem(str(path), f, f"county {code} {year}: {rows.at[code, f]!r} is not a "
                                             f"number in [{lo}, {hi}]", "correct the value"))
            values[f] = float(v)
        out[code] = values
    return out, problems


def _lineage(cfg: RunConfig, ref: ReferenceData, year: int, lc_path: Path, aux_paths: dict[str, Path]) -> dict[str, str]:
    files = {"boundaries": cfg.boundaries.path, f"landcover_{year}": lc_path, **{f"aux_{k}": p for k, p in aux_paths.items()}}
    if cfg.statistics:
        files["statistics"] = cfg.statistics.path
    lineage = {"gep_version": version("gep"), "area_model": cfg.area_model,
               "landcover_scheme": cfg.landcover_scheme, "price_year": str(cfg.price_year_for(year))}
    lineage |= {f"sha256:{k}": sha256_file(Path(p)) for k, p in files.items()}
    lineage |= {f"sha256:configs/{k}": v for k, v in ref.file_hashes.items()}
    return lineage


def account(prepared: PreparedRun, workers: int | None = None, strip_pixels: int | None = None
            ) -> list[CountyAccounts]:
    """Compute the accounts of every county of a prepared run in one pass over the land cover, on
    ``workers`` threads (default: the configuration's, else every core); nothing is written."""
    compute = prepared.cfg.compute
    p = engine.plan(prepared, strip_pixels or compute.strip_pixels)
    results = engine.finish(p, engine.tally_local(p, workers or compute.workers))
    for r in results:
        log.info(describe(r))
    return results


def describe(result: CountyAccounts) -> str:
    """One log line for a county's accounts."""
    g = result.gep.iloc[0]
    return (f"county {g.county_code} {g.county_name} {g.year}: GEP {g.gep_yi_cny:.2f} 亿元 "
            f"({g.gep_per_km2_cny / 1e8:.3f} 亿元/km², {g.classified_area_km2:.1f} km² classified, "
            f"{g.plausibility_flag})")


def write(prepared: PreparedRun, results: list[CountyAccounts], output_dir: Path | None = None) -> list[Path]:
    """Write every county's partitions (extent, services, gep), each atomically."""
    out = Path(output_dir or prepared.cfg.output_dir)
    tables = []
    for acc in results:  # build every table first: a schema error must not leave half a run on disk
        code = acc.gep["county_code"].iloc[0]
        for name, df in (("extent", acc.extent), ("services", acc.services), ("gep", acc.gep)):
            tables.append((name, code, io.to_table(df, name, prepared.lineage)))
    # Each write ends in an fsync: threads overlap the waits (pyarrow and fsync release the GIL).
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="gep-write") as pool:
        return list(pool.map(lambda item: io.write_partition(item[2], out, item[0], prepared.year, item[1]), tables))


def summary(results: list[CountyAccounts]) -> pd.DataFrame:
    """County summary table (one row per county) for loan officers and the console."""
    gep = pd.concat([r.gep for r in results], ignore_index=True)
    return gep[["county_code", "county_name", "year", "gep_yi_cny", "regulating_cny", "area_km2",
                "gep_per_km2_cny", "plausibility_flag"]].assign(
        regulating_yi_cny=lambda d: d.regulating_cny / 1e8,
        gep_per_km2_yi_cny=lambda d: d.gep_per_km2_cny / 1e8,
    )[["county_code", "county_name", "year", "gep_yi_cny", "regulating_yi_cny", "area_km2",
       "gep_per_km2_yi_cny", "plausibility_flag"]]


def run(cfg: RunConfig, year: int | None = None, county: str | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """Validate, compute and write one year (all counties, or one). Returns the summary and files."""
    prepared = prepare(cfg, year, county)
    try:
        results = account(prepared)
        files = write(prepared, results)
    finally:
        prepared.close()
    return summary(results), files
