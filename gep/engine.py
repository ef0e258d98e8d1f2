"""Running the zonal engine over a prepared run: plan, tally strips, merge in strip order, account.

Strips are tallied by whichever runner is at hand: this thread (``workers=1``), a pool of threads
(the default: the compiled kernels, GDAL decoding and numpy release the GIL), or Prefect tasks on a
thread pool or a Dask cluster (flows/annual.py). A task is a batch of strips and its arguments are
small: a :class:`RunHandle` (the run configuration: paths and options) and strip numbers; the worker
rebuilds the plan once per process from the handle. Every runner merges the per-strip tallies in
strip order, so all give the same bits.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from gep.accounts import CountyAccountant, CountyAccounts, ZoneTally
from gep.config import RunConfig
from gep.errors import InputProblem, InputValidationError
from gep.zonal import DEFAULT_STRIP_PIXELS, AuxSpec, GridReader, Strip, ZonePolygon, plan_strips, zone_polygon

StripTallies = dict[str, ZoneTally]  # county code -> what its pixels in one strip add up to


@dataclass(frozen=True)
class RunHandle:
    """What a worker needs to rebuild a run's plan: small and picklable (paths, ids)."""

    cfg: RunConfig
    year: int
    county: str | None
    strip_pixels: int = DEFAULT_STRIP_PIXELS

    @property
    def key(self) -> tuple:
        return (self.cfg.model_dump_json(), self.year, self.county, self.strip_pixels)


@dataclass
class EnginePlan:
    """The strips of a run, its zones on the land-cover grid and an accountant per zone."""

    landcover: Path
    landcover_band: int
    aux: tuple[AuxSpec, ...]
    area_model: str
    scheme_key: str
    schemes_file: Path
    n_codes: int
    zones: list[ZonePolygon]
    strips: list[Strip]
    accountants: dict[str, CountyAccountant]

    @property
    def has_services(self) -> bool:
        return any(acc.job.services for acc in self.accountants.values())


def plan(prepared, strip_pixels: int = DEFAULT_STRIP_PIXELS, extent_only: bool = False) -> EnginePlan:
    """Zones in grid pixels, strips of whole tile rows, one accountant per county.

    ``extent_only``: no auxiliary rasters and no services, only the per-code tallies (the extent
    account, or the land-cover code check).
    """
    lc = prepared.landcover
    scheme = prepared.scheme
    known = [*scheme.classes, scheme.nodata, *scheme.excluded]
    n_codes = max(0, max(known)) + 1
    zones = []
    accountants = {}
    for job in prepared.jobs():
        if extent_only:
            job = replace(job, services=[])
        accountants[job.county_code] = CountyAccountant(job, n_codes)
        z = zone_polygon(job.county_code, job.geometry, lc.transform, lc.width, lc.height)
        if z is not None:
            zones.append(z)
    strips = plan_strips(lc.height, lc.width, lc.block_shapes[0][0], zones, strip_pixels)
    return EnginePlan(Path(lc.name), prepared.cfg.landcover_band, () if extent_only else prepared.aux, prepared.cfg.area_model, scheme.key,
                      prepared.cfg.schemes_file, n_codes, zones, strips, accountants)


def tally_strips(p: EnginePlan, strip_ids: list[int]) -> list[tuple[int, StripTallies]]:
    """Tally the given strips in this thread, with its own raster handles."""
    out = []
    with GridReader(p.landcover, p.aux, p.area_model, group=p.has_services, band=p.landcover_band) as reader:
        for i in strip_ids:
            strip = p.strips[i]
            out.append((i, {z.code: p.accountants[z.code].tally(block)
                            for z, block in reader.blocks(strip, p.zones, p.n_codes)}))
    return out


def batches(n_strips: int, n_batches: int) -> list[list[int]]:
    """Strip numbers cut into about ``n_batches`` interleaved batches (north and south mixed,
    so that batches cost about the same)."""
    n = max(1, min(n_batches, n_strips))
    return [list(range(k, n_strips, n)) for k in range(n)] if n_strips else []


BATCHES_PER_WORKER = 4  # several batches per worker keep every worker busy to the end


def workers_or_default(workers: int | None) -> int:
    """``workers``, or every core this process may use."""
    if workers:
        return workers
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def work_batches(p: EnginePlan, workers: int) -> list[list[int]]:
    """The plan's strips cut into batches for ``workers`` workers (threads, tasks)."""
    return batches(len(p.strips), BATCHES_PER_WORKER * workers)


def tally_local(p: EnginePlan, workers: int | None = None) -> dict[int, StripTallies]:
    """Tally every strip on ``workers`` threads of this process (default: every core)."""
    workers = workers_or_default(workers)
    if workers == 1 or len(p.strips) <= 1:
        return dict(tally_strips(p, list(range(len(p.strips)))))
    # Each batch opens its own raster handles.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gep-strips") as pool:
        done = pool.map(lambda ids: tally_strips(p, ids), work_batches(p, workers))
        return {i: t for part in done for i, t in part}


def merge(p: EnginePlan, per_strip: dict[int, StripTallies]) -> dict[str, ZoneTally]:
    """Every county's tally over all strips, added in strip order (the same bits on any runner)."""
    missing = sorted(set(range(len(p.strips))) - set(per_strip))
    if missing:
        raise RuntimeError(f"strips {missing[:10]} were not tallied")
    merged = {code: acc.empty() for code, acc in p.accountants.items()}
    for i in range(len(p.strips)):
        for code, tally in per_strip[i].items():
            merged[code].add(tally)
    return merged


def finish(p: EnginePlan, per_strip: dict[int, StripTallies]) -> list[CountyAccounts]:
    """Merge the strips' tallies, refuse unknown codes, build every county's tables."""
    merged = merge(p, per_strip)
    problems = unknown_code_problems(p, merged)
    if problems:
        raise InputValidationError(problems)
    return [acc.accounts(merged[code]) for code, acc in p.accountants.items()]


def unknown_code_problems(p: EnginePlan, merged: dict[str, ZoneTally]) -> list[InputProblem]:
    """One problem per county holding land-cover codes its scheme does not know."""
    problems = []
    for code, acc in p.accountants.items():
        unknown = acc.unknown_codes(merged[code])
        if unknown:
            listing = ", ".join(f"{v} ({n:,} pixels)" for v, n in sorted(unknown.items()))
            problems.append(InputProblem(
                str(p.landcover), "pixel values",
                f"land-cover codes not in scheme {p.scheme_key!r} inside county {code}: {listing}",
                f"use the right landcover_scheme (known codes: {sorted(acc.job.scheme.classes)}), or add the "
                f"codes to {p.schemes_file} ([{p.scheme_key}.classes] or excluded)", county=code))
    return problems


# ------------------------------------------------------------------ workers in other processes
_PLANS: dict[tuple, EnginePlan] = {}
_PLANS_LOCK = threading.Lock()


def remember(handle: RunHandle, p: EnginePlan) -> None:
    """Make a plan built in this process available to tasks of the same run (no rebuild)."""
    with _PLANS_LOCK:
        _PLANS.clear()  # one run at a time per process: keep memory bounded
        _PLANS[handle.key] = p


def plan_for(handle: RunHandle) -> EnginePlan:
    """The run's plan in this process: remembered, or rebuilt once from the handle (a Dask worker)."""
    with _PLANS_LOCK:
        found = _PLANS.get(handle.key)
        if found is None:
            from gep import pipeline
            prepared = pipeline.prepare(handle.cfg, handle.year, handle.county, checks=False)
            try:
                found = plan(prepared, handle.strip_pixels)
            finally:
                prepared.close()
            _PLANS.clear()
            _PLANS[handle.key] = found
        return found


def tally_batch(handle: RunHandle, strip_ids: list[int]) -> list[tuple[int, StripTallies]]:
    """A task's work: tally a batch of strips of the run the handle names."""
    return tally_strips(plan_for(handle), strip_ids)
