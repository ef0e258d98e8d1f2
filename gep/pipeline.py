"""Validate every input, then account every county, then build the checked tables: plain functions.

``prepare`` checks all inputs before anything is computed and reports every problem at once;
``account`` computes the county accounts in memory; ``tables`` turns them into checked Arrow
tables. Publishing them and recording the run is gep/runs.py (over gep/store.py); Prefect flows
(flows/) and the CLI (gep/cli.py) are thin layers over both.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import json
import logging
from dataclasses import dataclass, field, replace
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

from gep import derived, engine, io, kernels, vocabulary
from gep.accounts import CarbonPools, CountyAccounts, CountyJob, ServiceRun, default_filled_shares, inside_share
from gep.area import polygon_area_m2
from gep.config import LandCoverScheme, ReferenceData, RunConfig, load_reference_data, sha256_file
from gep.errors import InputProblem, InputValidationError
from gep.services import REGISTRY
from gep.services.base import NEAREST, AuxInput, ServiceContext
from gep.services.inputs import AUXILIARY, STATISTICS_FIELDS, SUMMARY_STATISTICS
from gep.valuation import deflated, priced
from gep.zonal import AuxSpec, outside_raster_area_m2, zone_polygon

log = logging.getLogger(__name__)

CACHE = ".gep/cache"  # derived layers, under the output directory, keyed by input content
CHECK_ROWS = 512       # rows of an auxiliary raster read at a time when checking a county


@dataclass
class PreparedRun:
    """Validated, opened inputs of one run (one year, all or one county)."""

    cfg: RunConfig
    year: int
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
    aux_county_mean: dict[str, dict[str, float]] = field(default_factory=dict)  # county -> input -> mean
    tables: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # county -> table -> key -> value
    vectors: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # county -> layer -> features
    carbon_pools: CarbonPools | None = None
    selection: ServiceSelection = field(default_factory=lambda: ServiceSelection("custom"))
    statistics_sources: dict[str, dict[str, str]] = field(default_factory=dict)  # county -> field -> source
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
        options = {key: opts for key, opts in self.services}
        vectors = {name: self.vectors.get(county_code, {}).get(name, []) for name in self.cfg.vectors}
        runs = [ServiceRun(REGISTRY[key], ServiceContext(self.ref, opts, stats, county_code, self.year, options,
                                                         self.tables.get(county_code, {}), vectors,
                                                         self.aux_county_mean.get(county_code, {}), fill_rules(self.cfg)))
                for key, opts in self.services]
        # A run loaded without checks (a Dask worker) tallies strips but never builds account tables.
        polygon_m2, outside_m2 = self.polygon_areas_m2.get(county_code, (float("nan"), float("nan")))
        cfg, sel = self.cfg, self.selection
        return CountyJob(county_code, county_name, self.year, geometry, polygon_m2, outside_m2, self.scheme,
                         self.ref, runs, stats, cfg.area_model, cfg.price_basis, cfg.constant_price_year,
                         self.coverage.get(county_code, {}), cfg.checks, sel.indicator_set, sel.changes, sel.complete,
                         self.statistics_sources.get(county_code, {}),
                         self.ref.equivalent_factor if cfg.equivalent_factor else None, self.carbon_pools)


def prepare(cfg: RunConfig, year: int | None = None, county: str | None = None, *, checks: bool = True,
            landcover_year: int | None = None) -> PreparedRun:
    """Validate all inputs for one year; raise :class:`InputValidationError` listing every problem.

    ``landcover_year``: account ``year`` on another year's land cover, every other input of
    ``year`` (the counterfactual that attributes a GEP change to land-cover change, gep/assess.py).

    Land-cover codes are checked during the accounting pass (the raster is decoded once per run):
    codes the scheme does not know are refused there, before anything is written. ``checks=False``
    only loads (a worker rebuilding a run that was validated in the flow): no coverage or range
    checks, no hashing of inputs.
    """
    cfg_file = str(cfg.source_file or "run configuration")
    year = cfg.resolve_year(year)
    ref = load_reference_data(cfg)
    problems: list[InputProblem] = []

    scheme = ref.schemes.get(cfg.landcover_scheme)
    if scheme is None and cfg.user_scheme_file is None:
        problems.append(InputProblem(cfg_file, "landcover_scheme", f"unknown scheme {cfg.landcover_scheme!r}",
                                     f"use one of {', '.join(ref.schemes)}"))
    for key, py in (("constant_price_year", cfg.constant_price_year), (f"landcover.{year}", year)):
        if py not in ref.cpi_index:  # checked once here, not once per service price
            what = "constant price year" if key == "constant_price_year" else "accounting year (current prices)"
            problems.append(InputProblem(cfg_file, key, f"{what} {py} is outside the CPI table {ref.path('cpi.csv')} "
                                         f"({min(ref.cpi_index)}-{max(ref.cpi_index)})",
                                         f"choose a year in {min(ref.cpi_index)}-{max(ref.cpi_index)}, or add the NBS "
                                         f"CPI change of {py} to the CPI table"))
    services, selection, found = _check_services(cfg, cfg_file, ref, year)
    problems += found
    counties, found = _read_counties(cfg, county)
    problems += found

    with contextlib.ExitStack() as stack:  # closes every opened raster unless the run is returned
        lc_year = year if landcover_year is None else cfg.resolve_year(landcover_year)
        lc_path = cfg.landcover[lc_year]
        landcover, found = io.open_raster(lc_path, f"landcover.{lc_year}")
        problems += found
        coverage: dict[str, dict[str, float]] = {}
        areas: dict[str, tuple[float, float]] = {}
        if landcover is not None:
            stack.enter_context(landcover)
            problems += _check_landcover(cfg, cfg_file, lc_path, landcover, scheme)
            problems += _check_baseline_landcover(cfg, cfg_file, year, landcover, scheme)
            if counties is not None:
                counties, found = _align_boundaries(cfg, counties, landcover)
                problems += found
            if counties is not None and checks:
                areas, found = _landcover_coverage(cfg, lc_path, landcover, counties)
                problems += found
                coverage = {code: {"landcover": inside_share(*a)} for code, a in areas.items()}
        # Counties off the land cover are reported once, there, not again by every auxiliary raster.
        on_landcover = None if counties is None else counties if not checks else \
            counties[[coverage.get(c, {}).get("landcover", 0.0) > 0 for c in counties["county_code"]]]
        means: dict[str, dict[str, float]] = {}
        aux, found = _open_auxiliary(cfg, cfg_file, ref, services, year, on_landcover,
                                     landcover.crs if landcover is not None else None, stack, coverage, means, checks)
        problems += found

        statistics: dict[str, dict[str, float]] = {}
        sources: dict[str, dict[str, str]] = {}
        needs: dict[str, list[str]] = {}
        for key, opts in services:
            for f in REGISTRY[key].statistics_needed(opts):
                needs.setdefault(f, []).append(key)
        for f in scheme.share_fields if scheme is not None else ():
            needs.setdefault(f, []).append(f"landcover_scheme {scheme.key}")
        optional = [*SUMMARY_STATISTICS, *(f for key, _ in services for f in REGISTRY[key].optional_statistics)]
        if counties is not None and (needs or cfg.statistics is not None):
            statistics, sources, found = _load_statistics(cfg, cfg_file, dict(sorted(needs.items())), optional,
                                                          counties, year)
            problems += found
            if scheme is not None:
                problems += _split_problems(cfg, scheme, statistics, year)
        tables, found = _load_tables(cfg, cfg_file, services, counties, year)
        problems += found
        vectors, found = _load_vectors(cfg, cfg_file, services, counties)
        problems += found
        pools, found = _load_carbon_pools(cfg, scheme)
        problems += found

        prepared = PreparedRun(cfg, year, ref, scheme, counties, landcover, aux, statistics, services,
                               coverage, areas, means, tables, vectors, pools, selection, sources)
        if problems:
            # The run fails anyway: check the land-cover codes now so every problem is reported at
            # once (in a valid run they are checked during the accounting pass, one decode per run).
            if checks and landcover is not None and scheme is not None and counties is not None \
                    and not any(p.file == str(lc_path) for p in problems):
                problems += landcover_code_problems(prepared)
            raise InputValidationError(problems)
        lineage = _lineage(cfg, ref, year, lc_path, {a.name: a.path for a in aux}, services) if checks else {}
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


def _check_baseline_landcover(cfg: RunConfig, cfg_file: str, year: int, landcover, scheme: LandCoverScheme | None
                              ) -> list[InputProblem]:
    """The carbon stock's baseline land cover passes the checks of the run's own, in its CRS."""
    base = cfg.carbon_stock.baseline_year if cfg.carbon_stock else None
    if base is None or base == year:
        return []
    path = cfg.landcover[base]
    ds, problems = io.open_raster(path, f"landcover.{base}")
    if ds is None:
        return problems
    with ds:
        problems = _check_landcover(cfg, cfg_file, path, ds, scheme)
        if CRS.from_user_input(ds.crs) != CRS.from_user_input(landcover.crs):
            problems.append(InputProblem(str(path), "crs", f"the carbon stock's baseline land cover is in "
                                         f"{ds.crs.to_string()}, the run's in {landcover.crs.to_string()}",
                                         "give both years' land cover in one CRS"))
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


@dataclass(frozen=True)
class ServiceSelection:
    """Where a run's services come from: its indicator set, and how the run configuration changes it."""

    indicator_set: str              # a set of configs/indicator_sets.toml, or "custom" (a list of services)
    changes: tuple[str, ...] = ()   # services added or removed, switches changed (empty: the set as published)
    complete: bool = False          # every service of a named set is enabled: the §11.2 check applies


def _check_services(cfg: RunConfig, cfg_file: str, ref: ReferenceData, year: int):
    """The run's services with validated options (the indicator set's switches, then the run
    configuration's options), and its :class:`ServiceSelection`. Every indicator must be valued
    at both price years (current: the accounting year; constant: the base year): a price in its
    quantity's unit, or a price index covering both years for a money-valued quantity."""
    problems, services, changes = [], [], []
    iset = None
    if cfg.indicator_set is not None:
        iset = ref.indicator_sets.get(cfg.indicator_set)
        if iset is None:
            problems.append(InputProblem(cfg_file, "indicator_set", f"unknown indicator set {cfg.indicator_set!r}",
                                         f"use one of {', '.join(ref.indicator_sets)} ({ref.path('indicator_sets.toml')})"))
    in_set = list(iset.services) if iset else []
    switches = iset.switches if iset else {}
    for key in [k for k in (*in_set, *switches) if k not in REGISTRY]:
        problems.append(InputProblem(ref.path("indicator_sets.toml"), f"{cfg.indicator_set}.services",
                                     f"unknown service {key!r}", f"known services: {', '.join(sorted(REGISTRY))}"))
    for key in sorted(set(cfg.services.options) - set(REGISTRY)):
        problems.append(InputProblem(cfg_file, f"services.{key}", "options for an unknown service",
                                     f"known services: {', '.join(sorted(REGISTRY))}"))
    enabled = list(cfg.services.enabled) if cfg.services.enabled is not None else in_set
    price_years = sorted({year, cfg.constant_price_year})
    for key in enabled:
        svc = REGISTRY.get(key)
        if svc is None:
            problems.append(InputProblem(cfg_file, "services.enabled", f"unknown service {key!r}",
                                         f"known services: {', '.join(sorted(REGISTRY))}"))
            continue
        try:
            opts = svc.Options.model_validate({**switches.get(key, {}), **cfg.services.options.get(key, {})})
            as_set = svc.Options.model_validate(switches.get(key, {})).model_dump()
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(InputProblem(cfg_file, f"services.{key}.{loc}", err["msg"], "correct the option"))
            continue
        changed = {k: v for k, v in opts.model_dump().items() if as_set[k] != v}
        if iset is not None and key in in_set and changed:
            changes.append(f"{key} switches {changed} (set: { {k: as_set[k] for k in changed} })")
        ctx = ServiceContext(ref, opts, {}, "", year)
        for ind in svc.indicators(opts):
            for py in price_years if all(y in ref.cpi_index for y in price_years) else ():
                try:
                    if ind.deflator is not None:
                        deflated(ref, ind.deflator, year, py)
                    elif (price_key := svc.price_key(ind, ctx, py)) is not None:
                        priced(ref, price_key, py, ind.unit)
                except InputValidationError as exc:
                    problems.extend(InputProblem(p.file, p.field, f"{p.problem} (service {key}, indicator {ind.key}, "
                                                 f"accounting year {year}, price year {py})", p.fix) for p in exc.problems)
        services.append((key, opts))
    removed = [k for k in in_set if k not in enabled]
    if iset is not None:
        added = [k for k in enabled if k not in in_set]
        changes = ([f"added {', '.join(added)}"] if added else []) + \
                  ([f"removed {', '.join(removed)}"] if removed else []) + changes
    return services, ServiceSelection(cfg.indicator_set or "custom", tuple(changes), iset is not None and not removed), \
        problems


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


def _open_auxiliary(cfg: RunConfig, cfg_file: str, ref: ReferenceData, services, year: int, counties, lc_crs,
                    stack: contextlib.ExitStack, coverage: dict[str, dict[str, float]],
                    means: dict[str, dict[str, float]], report: bool):
    """Open the auxiliary rasters the enabled services need (deriving those computed from others:
    the LS factor from a DEM, the sum of a multi-band raster's bands); check units, values and
    county coverage (``counties``: those to measure, None: none). Coverage shares go into
    ``coverage`` and each county's mean of valid cells into ``means`` (the ``county_mean`` fill);
    problems are reported when ``report``."""
    problems: list[InputProblem] = []
    aux: list[AuxSpec] = []
    needed = {a.name: (a, key) for key, opts in services for a in REGISTRY[key].inputs_needed(opts)}
    for name, (aux_input, svc_key) in needed.items():
        source, found = _auxiliary_source(cfg, cfg_file, ref, aux_input, svc_key, year)
        problems += found
        if source is None:
            continue
        path, scale, resampling = source
        ds, found = io.open_raster(path, f"auxiliary.{name}")
        problems += found
        if ds is None:
            continue
        stack.enter_context(ds)
        if counties is not None and lc_crs is not None:
            found = _check_aux_values(cfg, path, aux_input, scale, ds, counties, lc_crs, coverage, means)
            problems += found if report else []
        aux.append(AuxSpec(name, path, scale, resampling))
        rule = fill_rules(cfg).get(name, aux_input.fill)
        if rule == "class_default" and aux_input.default_parameter is None:
            problems.append(InputProblem(cfg_file, f"auxiliary.{name}.fill", f"{name} has no per-class default",
                                         "use fill = \"county_mean\" or \"nearest\""))
        elif rule == "nearest":
            filled = _cached(cfg, f"{name}-nearest", [path], "", lambda target: derived.fill_nearest(path, target))
            aux.append(AuxSpec(name + NEAREST, filled, scale, "nearest"))
    return tuple(aux), problems


def fill_rules(cfg: RunConfig) -> dict[str, str]:
    """Fill rules the run configuration sets for its auxiliary inputs."""
    return {name: a.fill for name, a in cfg.auxiliary.items() if a.fill is not None}


def _auxiliary_source(cfg: RunConfig, cfg_file: str, ref: ReferenceData, aux_input: AuxInput, svc_key: str, year: int):
    """(path, scale, resampling) of an auxiliary input: as configured (several bands summed once
    into a cached layer), or derived from its sources (cached); else the problem."""
    name, acfg = aux_input.name, cfg.auxiliary.get(aux_input.name)
    if acfg is not None:
        if acfg.unit != aux_input.unit:
            return None, [InputProblem(cfg_file, f"auxiliary.{name}.unit",
                                       f"unit {acfg.unit!r} but {svc_key} expects {aux_input.unit!r}",
                                       f"convert with `scale` and set unit = \"{aux_input.unit}\"")]
        path = acfg.path_for(year)
        if acfg.bands == [1]:
            return (path, acfg.scale, acfg.resampling), []
        found = _check_bands(path, name, acfg.bands)
        if found:
            return None, found
        out = _cached(cfg, f"{name}-bands", [path], repr(acfg.bands),
                      lambda target: derived.sum_bands(path, acfg.bands, target))
        return (out, acfg.scale, acfg.resampling), []
    layer = aux_input.derived
    if layer is None or not all(s in cfg.auxiliary for s in layer.sources):
        via = f", or [auxiliary.{'], ['.join(layer.sources)}] to derive it from" if layer else ""
        return None, [InputProblem(cfg_file, f"auxiliary.{name}", f"service {svc_key} needs the auxiliary raster {name!r}",
                                   f"add [auxiliary.{name}] with path, unit = \"{aux_input.unit}\"{via}")]
    sources, grids, problems = {}, {}, []
    for s in layer.sources:
        scfg = cfg.auxiliary[s]
        if scfg.unit != AUXILIARY[s].unit or scfg.scale != 1.0 or scfg.bands != [1]:
            problems.append(InputProblem(cfg_file, f"auxiliary.{s}", f"a source of the derived {name} must be one band "
                                         f"in {AUXILIARY[s].unit!r} with scale 1", f"give {s} in {AUXILIARY[s].unit}"))
        sources[s] = scfg.path_for(year)
        ds, found = io.open_raster(sources[s], f"auxiliary.{s}")
        problems += found
        if ds is not None:
            with ds:
                grids[s] = (ds.shape, tuple(ds.transform), ds.crs.to_string())
    if not problems and len(sources) > 1:
        first = next(iter(sources))
        problems += [InputProblem(str(sources[s]), f"auxiliary.{s}", f"not on the grid of {sources[first]} (the {name} "
                                  f"is computed cell by cell from {', '.join(layer.sources)})",
                                  "bring the rasters onto one grid (gdalwarp -tr/-te/-t_srs), or give "
                                  f"[auxiliary.{name}] yourself") for s in sources if grids[s] != grids[first]]
    if problems:
        return None, problems
    params = {p: ref.coefficient(p).value for p in layer.parameters}
    out = _cached(cfg, name, list(sources.values()), repr(sorted(params.items())),
                  lambda target: layer.compute(sources, params, target))
    return (out, 1.0, "bilinear"), []


def _check_bands(path: Path, name: str, bands: list[int]) -> list[InputProblem]:
    ds, problems = io.open_raster(path, f"auxiliary.{name}")
    if ds is None:
        return problems
    with ds:
        if max(bands) > ds.count:
            return [InputProblem(str(path), f"auxiliary.{name}.bands", f"bands {bands} asked for, but the raster has "
                                 f"{ds.count} band(s)", f"use bands between 1 and {ds.count}")]
    return []


def _cached(cfg: RunConfig, name: str, sources: list[Path], params: str, compute) -> Path:
    """A derived layer in the output directory's cache, keyed by the SHA-256 of its sources, its
    parameters and the code of gep/derived.py; computed (atomically) when absent."""
    code = sha256_file(Path(derived.__file__))
    key = hashlib.sha256("|".join([name, params, code, *(sha256_file(p) for p in sources)]).encode()).hexdigest()
    target = cfg.output_dir / CACHE / f"{name}-{key[:20]}.tif"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            compute(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _check_aux_values(cfg: RunConfig, path: Path, aux_input, scale: float, ds, counties: gpd.GeoDataFrame,
                      lc_crs, coverage: dict[str, dict[str, float]], means: dict[str, dict[str, float]]
                      ) -> list[InputProblem]:
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
        weight_sum, weighted = 0.0, 0.0
        # In row chunks: a 30 m layer (the LS factor) over a large county stays within bounded memory.
        for r0 in range(z.row0, z.row1, CHECK_ROWS) if z is not None else ():
            nrows, width = min(CHECK_ROWS, z.row1 - r0), z.col1 - z.col0
            arr = ds.read(1, window=Window(z.col0, r0, width, nrows), masked=True)
            data = np.ma.getdata(arr).astype(np.float64) * scale
            valid = ~np.ma.getmaskarray(arr) & np.isfinite(data)
            cover = kernels.polygon_coverage(z.xs, z.ys, z.ring_starts, z.ring_signs, z.col0, r0, nrows, width)
            weight = cover * valid
            weight_sum += float(weight.sum())
            weighted += float((np.where(valid, data, 0.0) * weight).sum())
            inside = data[valid & (cover > 0)]
            bad = inside[(inside < lo) | (inside > hi)]
            n_valid, n_bad = n_valid + inside.size, n_bad + bad.size
            if bad.size:
                bad_min, bad_max = min(bad_min, bad.min()), max(bad_max, bad.max())
        covered = weight_sum / (g.area / cell)
        if weight_sum > 0:
            means.setdefault(code, {})[name] = weighted / weight_sum
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


def _load_statistics(cfg, cfg_file, needs: dict[str, list[str]], optional: list[str], counties, year):
    """County statistics of the year: every field a service needs (``needs``: field -> its users)
    for every county, and the ``optional`` ones where given; each value's source is its own
    ``<field>_source`` column, else the row's ``source``. Returns (values, sources, problems)."""
    if cfg.statistics is None:
        return {}, {}, [InputProblem(cfg_file, "statistics", f"county statistics needed for {', '.join(needs)}",
                                     "add [statistics] path = \"county_statistics.csv\"")]
    path = cfg.statistics.path
    df, problems = io.read_statistics(path)
    if df is None:
        return {}, {}, problems
    problems = [InputProblem(str(path), f, f"column missing, needed by {', '.join(needs[f])}",
                             f"add the column {f} ({STATISTICS_FIELDS[f][2]}), one value per county and year")
                for f in needs if f not in df.columns]
    needs = {f: users for f, users in needs.items() if f in df.columns}  # the others are checked all the same
    rows = df[df["year"] == year].set_index("county_code")
    values_out: dict[str, dict[str, float]] = {}
    sources_out: dict[str, dict[str, str]] = {}
    for code in counties["county_code"]:
        if code not in rows.index:
            problems.append(InputProblem(str(path), "county_code, year", f"no row for county {code} in {year}",
                                         f"add a row county_code={code}, year={year}", county=code))
            continue
        values, sources = {}, {}
        for f in [*needs, *(f for f in optional if f in df.columns and f not in needs)]:
            raw = rows.at[code, f]
            lo, hi, what = STATISTICS_FIELDS[f]
            if f not in needs and pd.isna(raw):
                continue  # an optional field not given for this county
            v = pd.to_numeric(raw, errors="coerce")
            if not np.isfinite(v) or not lo <= v <= hi:
                given = "empty" if pd.isna(raw) else f"{raw!r} is not a number in [{lo:g}, {hi:g}]"
                users = f" (needed by {', '.join(needs[f])})" if f in needs else ""
                problems.append(InputProblem(str(path), f, f"county {code} {year}: {given}{users}",
                                             f"give {f} ({what}) for county {code} in {year}", county=code))
                continue
            values[f] = float(v)
            own = rows.at[code, f"{f}_source"] if f"{f}_source" in rows.columns else None
            sources[f] = str(own) if isinstance(own, str) and own.strip() else str(rows.at[code, "source"])
        values_out[code], sources_out[code] = values, sources
    return values_out, sources_out, problems


def _split_problems(cfg: RunConfig, scheme: LandCoverScheme, statistics: dict[str, dict[str, float]], year: int
                    ) -> list[InputProblem]:
    """The shares splitting a land-cover class must leave a non-negative rest in every county."""
    problems = []
    for code, values in statistics.items():
        for cls in scheme.classes.values():
            if cls.split and all(f in values for f in cls.share_fields):
                try:
                    cls.type_shares(values)
                except ValueError as exc:
                    problems.append(InputProblem(str(cfg.statistics.path), ", ".join(cls.share_fields),
                                                 f"county {code} {year}: {exc}", "correct the shares", county=code))
    return problems


def _load_tables(cfg: RunConfig, cfg_file: str, services, counties, year: int):
    """Per-county tables the services need, as county -> table -> key -> value; every county and
    key of the year must have a finite, non-negative value."""
    merged = {}
    for key, _ in services:  # several services may read one table: the union of their keys
        for t in REGISTRY[key].table_inputs:
            merged[t.name] = (t, sorted(set(merged.get(t.name, (t, []))[1]) | set(t.keys)))
    out: dict[str, dict[str, dict[str, float]]] = {}
    problems: list[InputProblem] = []
    for name, (t, keys) in merged.items():
        users = ", ".join(key for key, _ in services if any(x.name == name for x in REGISTRY[key].table_inputs))
        tcfg = cfg.tables.get(name)
        if tcfg is None:
            problems.append(InputProblem(cfg_file, f"tables.{name}", f"services {users} need the table {name!r}",
                                         f"add [tables.{name}] path = \"{name}.csv\" (columns county_code, year, "
                                         f"{t.key_column}, {t.value_column}, source)"))
            continue
        df, found = io.read_county_table(tcfg.path, name, t.key_column, t.value_column)
        problems += found
        if df is None or counties is None:
            continue
        rows = df[df["year"] == year]
        for code in counties["county_code"]:
            here = rows[rows.county_code == code].set_index(t.key_column)[t.value_column]
            values = {}
            for k in keys:
                v = pd.to_numeric(here.get(k), errors="coerce") if k in here.index else np.nan
                if not np.isfinite(v) or v < 0:
                    problems.append(InputProblem(str(tcfg.path), f"{t.key_column}={k}", f"county {code} {year}: "
                                                 f"{'no row' if k not in here.index else repr(here.get(k))} for "
                                                 f"{k} ({t.unit}), needed by {users}",
                                                 f"add a row county_code={code}, year={year}, {t.key_column}={k} with "
                                                 f"a non-negative {t.value_column}", county=code))
                    continue
                values[k] = float(v)
            out.setdefault(code, {})[name] = values
    return out, problems


def _load_vectors(cfg: RunConfig, cfg_file: str, services, counties):
    """Vector layers the services read, as county -> layer -> features in the county: a polygon
    feature with its whole area and the share inside the county, a point with its value."""
    needed = {v.name: (v, key) for key, _ in services for v in REGISTRY[key].vector_inputs}
    out: dict[str, dict[str, list[dict]]] = {}
    problems: list[InputProblem] = []
    for name, (v, svc_key) in needed.items():
        vcfg = cfg.vectors.get(name)
        if vcfg is None:
            continue  # the service writes a row saying the layer is missing
        if v.value_unit is not None and (vcfg.value_field is None or vcfg.unit != v.value_unit):
            problems.append(InputProblem(cfg_file, f"vectors.{name}", f"{svc_key} needs value_field with unit = "
                                         f"\"{v.value_unit}\"", f"set value_field and unit = \"{v.value_unit}\""))
            continue
        gdf, found = io.read_vector_layer(vcfg.path, vcfg.layer, vcfg.name_field, vcfg.value_field, name, v.geometry)
        problems += found
        if gdf is None or counties is None:
            continue
        if gdf.crs != counties.crs:
            problems.append(InputProblem(str(vcfg.path), "crs", f"layer CRS {gdf.crs.to_string()} differs from the "
                                         f"boundaries' {counties.crs.to_string()}", "reproject the layer to the "
                                         "boundaries' CRS (e.g. ogr2ogr -t_srs)"))
            continue
        for code, geom in zip(counties["county_code"], counties.geometry):
            features = []
            for fname, fgeom, value in zip(gdf["name"], gdf.geometry, gdf.get("value", [None] * len(gdf))):
                if v.geometry == "point":
                    if geom.covers(fgeom):
                        features.append({"name": fname, "value": float(value)})
                    continue
                if not geom.intersects(fgeom):
                    continue
                whole = polygon_area_m2(fgeom, counties.crs, cfg.area_model)
                inside = polygon_area_m2(geom.intersection(fgeom), counties.crs, cfg.area_model)
                if inside > 0:
                    features.append({"name": fname, "area_km2": whole / 1e6, "share_in_county": inside / whole})
            out.setdefault(code, {})[name] = features
    return out, problems


def _load_carbon_pools(cfg: RunConfig, scheme: LandCoverScheme | None) -> tuple[CarbonPools | None, list[InputProblem]]:
    """The carbon pools table (InVEST Carbon layout): a row for every class code of the scheme."""
    if cfg.carbon_stock is None:
        return None, []
    path = cfg.carbon_stock.pools
    df, problems = io.read_carbon_pools(path)
    if df is None:
        return None, problems
    if scheme is not None:
        absent = sorted(set(scheme.classes) - set(df.lucode.astype(int)))
        if absent:
            return None, [InputProblem(str(path), "lucode", f"no pools for land-cover codes {absent} of scheme "
                                       f"{scheme.key!r}", "add a row per code (0 for built-up or water if so)")]
    pools = {int(r.lucode): (float(r.c_above), float(r.c_below), float(r.c_soil), float(r.c_dead))
             for r in df.itertuples()}
    source = df.get("source", pd.Series([""] * len(df)))
    tag = df.get("tag", pd.Series([""] * len(df)))
    sources = {int(c): f"[{t}] {s}".strip() for c, t, s in zip(df.lucode, tag.fillna(""), source.fillna(""))}
    return CarbonPools(str(path), pools, sources), []


def _lineage(cfg: RunConfig, ref: ReferenceData, year: int, lc_path: Path, aux_paths: dict[str, Path], services
             ) -> dict[str, str]:
    files = {"boundaries": cfg.boundaries.path, f"landcover_{year}": lc_path, **{f"aux_{k}": p for k, p in aux_paths.items()}}
    if cfg.statistics:
        files["statistics"] = cfg.statistics.path
    used = {t.name for key, _ in services for t in REGISTRY[key].table_inputs}
    files |= {f"table_{k}": t.path for k, t in cfg.tables.items() if k in used}
    layers = {v.name for key, _ in services for v in REGISTRY[key].vector_inputs}
    files |= {f"vector_{k}": v.path for k, v in cfg.vectors.items() if k in layers}
    if cfg.carbon_stock:
        files["carbon_pools"] = cfg.carbon_stock.pools
        base = cfg.carbon_stock.baseline_year
        if base is not None and base != year:
            files[f"landcover_{base}"] = cfg.landcover[base]
    lineage = {"gep_version": version("gep"), "area_model": cfg.area_model,
               "landcover_scheme": cfg.landcover_scheme, "price_basis": cfg.price_basis,
               "price_year": str(cfg.price_year_for(year)), "constant_price_year": str(cfg.constant_price_year)}
    lineage |= {f"sha256:{k}": sha256_file(Path(p)) for k, p in files.items()}
    lineage |= {f"sha256:configs/{k}": v for k, v in ref.file_hashes.items()}
    return lineage


def method_choices(cfg: RunConfig, year: int, services, selection: ServiceSelection) -> dict:
    """Every method choice of a run: scheme, area model, price basis and years, the indicator set
    and how the run changes it, and each service's options with their defaults (the switches:
    climate water term, paddy crediting, carbon price rule, CO2/O2 pairing, humidifier, ...)."""
    return {"landcover_scheme": cfg.landcover_scheme, "area_model": cfg.area_model,
            "price_basis": cfg.price_basis, "price_year": cfg.price_year_for(year),
            "constant_price_year": cfg.constant_price_year, "indicator_set": selection.indicator_set,
            "indicator_set_changes": list(selection.changes), "equivalent_factor": cfg.equivalent_factor,
            "services": {key: opts.model_dump() for key, opts in services},
            "carbon_stock": cfg.carbon_stock.model_dump(mode="json") if cfg.carbon_stock else None}


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
    baseline = carbon_baseline_areas(prepared)
    if baseline:
        for code, acc in p.accountants.items():
            acc.job.carbon_baseline = (prepared.cfg.carbon_stock.baseline_year, baseline.get(code, {}))
    results = engine.finish(p, tally(p))
    problems = default_fill_problems(prepared, results)
    if problems:
        raise InputValidationError(problems)
    for r in results:
        log.info(describe(r))
    return results


def carbon_baseline_areas(prepared: PreparedRun) -> dict[str, dict[int, float]]:
    """Class areas [m^2] per county of the carbon stock's baseline land cover (an extent-only pass
    over that year's raster), when a baseline other than the run's year is configured."""
    cs = prepared.cfg.carbon_stock
    if cs is None or cs.baseline_year is None or cs.baseline_year == prepared.year:
        return {}
    # Its file, codes' type, nodata and CRS were checked in validation (_check_baseline_landcover);
    # its codes are checked here, in the one pass that decodes it.
    with rasterio.open(prepared.cfg.landcover[cs.baseline_year]) as lc:
        base = replace(prepared, year=cs.baseline_year, landcover=lc, aux=(), services=[])
        p = engine.plan(base, extent_only=True)
        merged = engine.merge(p, engine.tally_local(p))
        problems = engine.unknown_code_problems(p, merged)
        if problems:
            raise InputValidationError(problems)
    codes = list(prepared.scheme.classes)
    return {code: {c: float(t.class_area_m2[c]) for c in codes if c < len(t.class_area_m2) - 1 and t.class_pixels[c] > 0}
            for code, t in merged.items()}


def default_fill_problems(prepared: PreparedRun, results: list[CountyAccounts]) -> list[InputProblem]:
    """Counties where a service took filled inputs over more of its land than the checks allow
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
                    "be filled by the inputs' fill rules", "use rasters with valid data over the county's land, or set "
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
    meta = {"lineage": json.dumps(prepared.lineage, sort_keys=True),
            "method_choices": json.dumps(method_choices(prepared.cfg, prepared.year, prepared.services, prepared.selection),
                                         sort_keys=True,
                                         ensure_ascii=False), **metadata}
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
    """County summary table (one row per county) for loan officers and the console: GEP in the
    run's basis with its range and categories, at constant prices, the equivalent-factor GEP
    beside it, GGI, per capita, growth since the previous published year, flags."""
    yi = 1e8
    return gep.assign(
        gep_low_yi_cny=gep.gep_cny_low / yi, gep_high_yi_cny=gep.gep_cny_high / yi,
        provisioning_yi_cny=gep.provisioning_cny / yi, regulating_yi_cny=gep.regulating_cny / yi,
        cultural_yi_cny=gep.cultural_cny / yi, gep_constant_yi_cny=gep.gep_constant_cny / yi,
        gep_equivalent_factor_yi_cny=gep.gep_equivalent_factor_cny / yi, gep_per_km2_yi_cny=gep.gep_per_km2_cny / yi,
        gep_per_capita_1e4_cny=gep.gep_per_capita_cny / 1e4)[
        ["county_code", "county_name", "year", "indicator_set", "price_basis", "price_year", "gep_yi_cny",
         "gep_low_yi_cny", "gep_high_yi_cny", "provisioning_yi_cny", "regulating_yi_cny", "cultural_yi_cny",
         "gep_constant_yi_cny", "gep_equivalent_factor_yi_cny", "area_km2", "gep_per_km2_yi_cny", "ggi",
         "gep_per_capita_1e4_cny", "gep_growth_constant_pct", "plausibility_flag", "quality_flag"]]
