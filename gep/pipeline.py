"""Validate every input, then account every county, then build the checked tables: plain functions.

``prepare`` checks all inputs before anything is computed and reports every problem at once;
``account`` computes the county accounts in memory; ``tables`` turns them into checked Arrow
tables. Publishing them and recording the run is gep/runs.py (over gep/store.py); Prefect flows
(flows/) and the CLI (gep/cli.py) are thin layers over both.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import rasterio
from pydantic import ValidationError
from pyproj import CRS
from rasterio.windows import Window

from gep import engine, io, kernels, vocabulary
from gep.accounts import CountyAccounts, CountyJob, ServiceRun, default_filled_shares, inside_share
from gep.config import LandCoverScheme, ReferenceData, RunConfig, load_reference_data, sha256_file
from gep.errors import InputProblem, InputValidationError
from gep.services import REGISTRY
from gep.services.base import ServiceContext
from gep.valuation import index_price
from gep.area import polygon_area_m2
from gep.zonal import AuxSpec, outside_raster_area_m2, zone_polygon

log = logging.getLogger(__name__)

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
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)  # county -> input -> covered share
    # county -> (polygon area, part outside the land cover) [m^2], measured once in validation
    polygon_areas_m2: dict[str, tuple[float, float]] = field(default_factory=dict)
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
        # A run loaded without checks (a Dask worker) tallies strips but never builds account tables.
        polygon_m2, outside_m2 = self.polygon_areas_m2.get(county_code, (float("nan"), float("nan")))
        return CountyJob(county_code, county_name, self.year, geometry, polygon_m2, outside_m2, self.scheme,
                         self.ref, runs, stats, self.cfg.area_model, self.price_year,
                         self.coverage.get(county_code, {}), self.cfg.checks)


def prepare(cfg: RunConfig, year: int | None = None, county: str | None = None, *, checks: bool = True) -> PreparedRun:
    """Validate all inputs for one year; raise :class:`InputValidationError` listing every problem.

    Land-cover codes are checked during the accounting pass (the raster is decoded once per run):
    codes the scheme does not know are refused there, before anything is written. ``checks=False``
    only loads (a worker rebuilding a run that was validated in the flow): no coverage or range
    checks, no hashing of inputs.
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
    if price_year not in ref.cpi_index:  # checked once here, not once per service price
        problems.append(InputProblem(cfg_file, "price_year", f"price year {price_year} is outside the CPI table "
                                     f"{ref.path('cpi.csv')} ({min(ref.cpi_index)}-{max(ref.cpi_index)})",
                                     f"choose a price_year in {min(ref.cpi_index)}-{max(ref.cpi_index)}, or add "
                                     f"the NBS CPI change of {price_year} to the CPI table"))
    services, found = _check_services(cfg, cfg_file, ref, price_year if price_year in ref.cpi_index else None)
    problems += found
    counties, found = _read_counties(cfg, county)
    problems += found

    with contextlib.ExitStack() as stack:  # closes every opened raster unless the run is returned
        lc_path = cfg.landcover[year]
        landcover, found = io.open_raster(lc_path, f"landcover.{year}")
        problems += found
        coverage: dict[str, dict[str, float]] = {}
        areas: dict[str, tuple[float, float]] = {}
        if landcover is not None:
            stack.enter_context(landcover)
            problems += _check_landcover(cfg, cfg_file, lc_path, landcover, scheme)
            if counties is not None:
                counties, found = _align_boundaries(cfg, counties, landcover)
                problems += found
            if counties is not None and checks:
                areas, found = _landcover_coverage(cfg, lc_path, landcover, counties)
                problems += found
                coverage = {code: {"landcover": inside_share(*a)} for code, a in areas.items()}
        # Counties off the land cover are reported once, there, not again by every auxiliary raster.
        on_landcover = None if counties is None or not checks else \
            counties[[coverage.get(c, {}).get("landcover", 0.0) > 0 for c in counties["county_code"]]]
        aux, found = _open_auxiliary(cfg, cfg_file, services, year, on_landcover,
                                     landcover.crs if landcover is not None else None, stack, coverage)
        problems += found

        statistics: dict[str, dict[str, float]] = {}
        fields = {f for key, _ in services for f in REGISTRY[key].statistics_fields}
        if scheme is not None and scheme.needs_paddy_share:
            fields.add("paddy_share")
        if fields and counties is not None:
            statistics, found = _load_statistics(cfg, cfg_file, sorted(fields), counties, year)
            problems += found

        prepared = PreparedRun(cfg, year, price_year, ref, scheme, counties, landcover, aux, statistics, services,
                               coverage, areas)
        if problems:
            # The run fails anyway: check the land-cover codes now so every problem is reported at
            # once (in a valid run they are checked during the accounting pass, one decode per run).
            if checks and landcover is not None and scheme is not None and counties is not None \
                    and not any(p.file == str(lc_path) for p in problems):
                problems += landcover_code_problems(prepared)
            raise InputValidationError(problems)
        lineage = _lineage(cfg, ref, year, lc_path, {a.name: a.path for a in aux}) if checks else {}
        prepared.lineage = lineage
        prepared._stack = stack.pop_all()
        return prepared


def _check_landcover(cfg: RunConfig, cfg_file: str, path: Path, ds, scheme: LandCoverScheme | None
                     ) -> list[InputProblem]:
    """Land-cover codes must be integers, in the configured band, with the scheme's nodata."""
    band = cfg.landcover_band
    if band > ds.count:
        return [InputProblem(cfg_file, "landcover_band", f"band {band} asked for, but {path} has {ds.count} band(s)",
                             f"set landcover_band to 1..{ds.count}")]
    problems = []
    if ds.count > 1 and "landcover_band" not in cfg.model_fields_set:
        problems.append(InputProblem(str(path), "bands", f"the raster has {ds.count} bands; which holds the "
                                     "land-cover codes is not configured",
                                     "set landcover_band = N in the run configuration (or extract the band: "
                                     "gdal_translate -b N in.tif out.tif)"))
    dtype = np.dtype(ds.dtypes[band - 1])
    if dtype.kind not in "iu":
        problems.append(InputProblem(str(path), f"band {band} data type", f"{dtype.name}: land-cover class codes "
                                     "must be integers (a float raster is not a class map, e.g. a resampled or "
                                     "continuous product)", "use the integer class map; if its values are codes "
                                     "stored as floats, convert it: gdal_translate -ot Byte in.tif out.tif"))
    nodata = ds.nodatavals[band - 1]
    if scheme is not None and nodata is not None and not np.isnan(nodata):
        allowed = {scheme.nodata, *scheme.excluded}
        if float(nodata) not in {float(c) for c in allowed}:
            problems.append(InputProblem(str(path), f"band {band} nodata", f"the raster's nodata value {nodata:g} "
                                         f"is not scheme {scheme.key!r}'s nodata {scheme.nodata} or an excluded code "
                                         f"({sorted(scheme.excluded)})", f"set the raster's nodata to {scheme.nodata} "
                                         f"(gdal_edit.py -a_nodata {scheme.nodata}), or check landcover_scheme"))
    return problems


def _landcover_coverage(cfg: RunConfig, path: Path, ds, counties: gpd.GeoDataFrame
                        ) -> tuple[dict[str, tuple[float, float]], list[InputProblem]]:
    """Each county's polygon area and the part of it outside the land-cover raster [m^2] (the gep
    table's polygon and outside-raster areas); too small a share inside is an error (or, when
    partial coverage is allowed, a flag on the county); none at all is always an error."""
    checks, model = cfg.checks, cfg.area_model
    areas, problems, outside = {}, [], []
    for code, geom in zip(counties["county_code"], counties.geometry):
        areas[code] = (polygon_area_m2(geom, ds.crs, model),
                       outside_raster_area_m2(tuple(ds.bounds), ds.crs, geom, model))
        share = inside_share(*areas[code])
        if share <= 0:
            outside.append(code)
        elif share < checks.min_landcover_coverage and not checks.allow_partial_coverage:
            problems.append(InputProblem(str(path), f"landcover (county {code})",
                                         f"covers {share:.1%} of county {code}'s polygon (required: "
                                         f"{checks.min_landcover_coverage:.1%})",
                                         "use a land-cover mosaic covering every county, or set [checks] "
                                         "allow_partial_coverage = true to account it with a quality flag", county=code))
    if outside:
        b = ds.bounds
        problems.append(InputProblem(str(path), "landcover", f"counties {', '.join(outside)} lie entirely outside "
                                     f"the land-cover raster (bounds {b.left:g}, {b.bottom:g}, {b.right:g}, {b.top:g}"
                                     f" in {ds.crs.to_string()})", "use the land cover of these counties' region, or "
                                     "check the boundary file's CRS and coordinates"))
    return areas, problems


def landcover_code_problems(prepared: PreparedRun) -> list[InputProblem]:
    """Land-cover codes inside the counties that the scheme does not know (decodes the raster)."""
    p = engine.plan(prepared, extent_only=True)
    return engine.unknown_code_problems(p, engine.merge(p, engine.tally_local(p)))


def _check_services(cfg: RunConfig, cfg_file: str, ref: ReferenceData, price_year: int | None):
    """Enabled services with validated options; each must have a price in its quantity's unit
    (indexed to ``price_year``; ``None``: the price year is already reported as unusable)."""
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
            if price_year is not None:
                index_price(ref, svc.price_key(opts), price_year, svc.quantity_unit(opts))
        except InputValidationError as exc:
            problems.extend(exc.problems)
        services.append((key, opts))
    return services, problems


def _read_counties(cfg: RunConfig, county: str | None):
    """The boundary file's counties (all, or the one asked for)."""
    b = cfg.boundaries
    counties, problems = io.read_boundaries(b.path, b.layer, b.code_field, b.name_field, b.encoding)
    if problems or counties is None:
        return None, problems
    if county is None:
        return counties, []
    if county not in set(counties["county_code"]):
        return None, [InputProblem(str(b.path), b.code_field, f"county {county} is not in the boundary file",
                                   f"use one of {', '.join(sorted(counties['county_code']))}")]
    return counties[counties["county_code"] == county].reset_index(drop=True), []


def _open_auxiliary(cfg: RunConfig, cfg_file: str, services, year: int, counties, lc_crs,
                    stack: contextlib.ExitStack, coverage: dict[str, dict[str, float]]):
    """Open the auxiliary rasters the enabled services need; check units, values and county
    coverage (``counties``: those to check, None: no checks). Coverage shares go into ``coverage``."""
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
            problems += _check_aux_values(cfg, path, aux_input, acfg.scale, ds, counties, lc_crs, coverage)
        aux.append(AuxSpec(name, path, acfg.scale, acfg.resampling))
    return tuple(aux), problems


def _check_aux_values(cfg: RunConfig, path: Path, aux_input, scale: float, ds, counties: gpd.GeoDataFrame,
                      lc_crs, coverage: dict[str, dict[str, float]]) -> list[InputProblem]:
    """Each county must have valid auxiliary data over most of its area (outside the raster = no
    data), and every valid value inside the counties must be physically possible in the unit.

    The covered share is the exact covered area of the county's valid auxiliary cells over the
    county's area, both on the auxiliary raster's own grid (the engine's coverage kernel).
    """
    problems, name, checks = [], aux_input.name, cfg.checks
    in_aux_crs = counties.geometry if CRS.from_user_input(lc_crs) == CRS.from_user_input(ds.crs) \
        else counties.geometry.to_crs(ds.crs)
    cell = abs(ds.transform.a * ds.transform.e)
    lo, hi = aux_input.plausible
    n_valid, n_bad, bad_min, bad_max = 0, 0, np.inf, -np.inf
    for code, g in zip(counties["county_code"], in_aux_crs):
        z = zone_polygon(code, g, ds.transform, ds.width, ds.height)
        covered = 0.0
        if z is not None:
            win = Window(z.col0, z.row0, z.col1 - z.col0, z.row1 - z.row0)
            arr = ds.read(1, window=win, masked=True)
            data = np.ma.getdata(arr).astype(np.float64) * scale
            valid = ~np.ma.getmaskarray(arr) & np.isfinite(data)
            cover = kernels.polygon_coverage(z.xs, z.ys, z.ring_starts, z.ring_signs, z.col0, z.row0,
                                             z.row1 - z.row0, z.col1 - z.col0)
            covered = float((cover * valid).sum()) / (g.area / cell)
            inside = data[valid & (cover > 0)]
            bad = inside[(inside < lo) | (inside > hi)]
            n_valid, n_bad = n_valid + inside.size, n_bad + bad.size
            if bad.size:
                bad_min, bad_max = min(bad_min, bad.min()), max(bad_max, bad.max())
        coverage.setdefault(code, {})[name] = min(covered, 1.0)
        if covered < checks.min_aux_coverage and not (checks.allow_partial_coverage and covered > 0):
            problems.append(InputProblem(str(path), f"auxiliary.{name}",
                                         f"does not cover county {code}: valid data over {covered:.0%} of it "
                                         f"(required: {checks.min_aux_coverage:.0%})",
                                         "use a raster whose extent and valid data cover every county, or set "
                                         "[checks] allow_partial_coverage = true to account it with a quality flag",
                                         county=code))
    if n_bad:
        problems.append(InputProblem(str(path), f"auxiliary.{name} (values)",
                                     f"{n_bad:,} of {n_valid:,} valid cells inside the counties lie outside "
                                     f"[{lo:g}, {hi:g}] {aux_input.unit} after scale = {scale:g} (from {bad_min:.4g} "
                                     f"to {bad_max:.4g}); {aux_input.plausible_reason}",
                                     f"check the raster's unit and [auxiliary.{name}] scale (e.g. g to kg: "
                                     "scale = 0.001; MODIS: the product's scale factor), and declare its fill "
                                     "value as nodata (gdal_edit.py -a_nodata VALUE)"))
    return problems


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
                                         f"add a row county_code={code}, year={year}", county=code))
            continue
        values = {}
        for f in fields:
            v = pd.to_numeric(rows.at[code, f], errors="coerce")
            lo, hi = STATISTICS_RANGES.get(f, (-np.inf, np.inf))
            if not np.isfinite(v) or not lo <= v <= hi:
                problems.append(InputProblem(str(path), f, f"county {code} {year}: {rows.at[code, f]!r} is not a "
                                             f"number in [{lo}, {hi}]", "correct the value", county=code))
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
    workers = workers or prepared.cfg.compute.workers
    return account_with(prepared, lambda plan: engine.tally_local(plan, workers), strip_pixels)


def account_with(prepared: PreparedRun, tally, strip_pixels: int | None = None) -> list[CountyAccounts]:
    """The accounts, with ``tally(plan) -> {strip: tallies}`` running the strips (threads here,
    Prefect tasks in a flow)."""
    p = engine.plan(prepared, strip_pixels or prepared.cfg.compute.strip_pixels)
    results = engine.finish(p, tally(p))
    problems = default_fill_problems(prepared, results)
    if problems:
        raise InputValidationError(problems)
    for r in results:
        log.info(describe(r))
    return results


def default_fill_problems(prepared: PreparedRun, results: list[CountyAccounts]) -> list[InputProblem]:
    """Counties where a service took per-class defaults over more of its land than the checks allow
    (its auxiliary rasters have no data there); with partial coverage allowed they are flagged instead."""
    checks = prepared.cfg.checks
    if checks.allow_partial_coverage:
        return []
    paths = {a.name: str(a.path) for a in prepared.aux}
    problems = []
    for acc in results:
        code = acc.gep.county_code.iloc[0]
        for key, share in sorted(default_filled_shares(acc.services).items()):
            if share > checks.max_default_filled_share:
                inputs = [paths[a.name] for a in REGISTRY[key].aux_inputs if a.name in paths]
                problems.append(InputProblem(
                    ", ".join(inputs), f"auxiliary ({key})", f"county {code}: the rasters have no data over "
                    f"{share:.1%} of the land {key} credits (limit {checks.max_default_filled_share:.0%}); it would "
                    "be filled with per-class defaults", "use rasters with valid data over the county's land, or set "
                    "[checks] allow_partial_coverage = true to account it with a quality flag", county=code))
    return problems


def describe(result: CountyAccounts) -> str:
    """One log line for a county's accounts."""
    g = result.gep.iloc[0]
    per_km2 = "n/a" if pd.isna(g.gep_per_km2_cny) else f"{g.gep_per_km2_cny / 1e8:.3f}"
    return (f"county {g.county_code} {g.county_name} {g.year}: GEP {g.gep_yi_cny:.2f} 亿元 "
            f"({per_km2} 亿元/km², {g.classified_area_km2:.1f} km² classified; plausibility: "
            f"{g.plausibility_flag}; quality: {g.quality_flag})")


def tables(prepared: PreparedRun, results: list[CountyAccounts], metadata: dict[str, str]
           ) -> dict[tuple[str, int, str], pa.Table]:
    """Every county's partitions as Arrow tables, each dataset checked against its schema as a
    whole (types, bounds, finite numbers, unique keys) before anything is written."""
    meta = {"lineage": json.dumps(prepared.lineage, sort_keys=True), **metadata}
    out: dict[tuple[str, int, str], pa.Table] = {}
    for dataset in vocabulary.DATA_DATASETS:
        for acc in results:
            out[(dataset, prepared.year, acc.gep["county_code"].iloc[0])] = io.to_table(
                getattr(acc, dataset), dataset, meta)
        vocabulary.check(pa.concat_tables([t for (d, _, _), t in out.items() if d == dataset]), dataset)
    return out


def gep_table(results: list[CountyAccounts]) -> pd.DataFrame:
    return pd.concat([r.gep for r in results], ignore_index=True)


def summary(gep: pd.DataFrame) -> pd.DataFrame:
    """County summary table (one row per county) for loan officers and the console."""
    return gep.assign(regulating_yi_cny=gep.regulating_cny / 1e8, gep_per_km2_yi_cny=gep.gep_per_km2_cny / 1e8)[
        ["county_code", "county_name", "year", "gep_yi_cny", "regulating_yi_cny", "area_km2", "gep_per_km2_yi_cny",
         "plausibility_flag", "quality_flag"]]
