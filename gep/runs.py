"""A run from start to record: lock the output directory, validate, skip or compute, publish, record.

Every run, successful or not, leaves a record in ``OUT/runs/`` (gep/store.py; columns in
docs/data-dictionary.md): its configuration, the SHA-256 of every input and reference table, the
code version, timings, row counts, outcome and, on failure, the reasons per county. A run whose
inputs (by content), configuration and code are unchanged since the published data skips the work
(outcome ``skipped``). Prefect flows and the CLI drive the same :class:`RecordedRun`; ``run`` is the
plain path (no orchestrator).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from contextlib import ExitStack
from functools import cache
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from gep import io, pipeline
from gep.config import RunConfig
from gep.errors import InputValidationError
from gep.growth import growth
from gep.store import OutputStore, holder_info

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARIES = ("numpy", "numba", "pandas", "pyarrow", "pyproj", "rasterio", "shapely", "geopandas")


def new_run_id() -> str:
    """Sortable and unique: UTC start time and a random suffix."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"


@cache
def code_version() -> dict[str, str]:
    """The package version, a hash of its source (an edit changes it) and the numerical libraries."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(f.relative_to(PACKAGE_DIR)).encode() + b"\0" + f.read_bytes())
    import rasterio
    return {"gep": version("gep"), "source_sha256": h.hexdigest(), "gdal": rasterio.__gdal_version__,
            **{lib: version(lib) for lib in LIBRARIES}}


def input_key(cfg: RunConfig, year: int, lineage: dict[str, str]) -> str:
    """Equal keys give identical data: code, configuration (without where and on what it runs),
    year and the content hashes of every input and reference table."""
    config = cfg.model_dump(mode="json", exclude={  # paths: their contents are hashed in the lineage
        "title": True, "output_dir": True, "landcover": True, "statistics": True, "schemes_file": True,
        "coefficients_file": True, "prices_file": True, "cpi_file": True, "boundaries": {"path"},
        "auxiliary": {"__all__": {"path"}}, "compute": {"runner", "workers", "dask_address"}})  # no bit depends on these
    blob = json.dumps({"code": code_version(), "config": config, "year": year, "lineage": lineage}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class RecordedRun:
    """One run of one year (all counties or one) on one output directory.

    Use as a context manager: entering locks the output directory (failing at once if another run
    holds it or it is not writable), tidies what a killed run left, and writes the record
    ``running``; leaving writes the outcome (``succeeded``, ``skipped``, ``failed`` with the
    reasons, ``interrupted`` on Ctrl-C/SIGTERM) and releases the lock.
    """

    def __init__(self, cfg: RunConfig, year: int | None, county: str | None, *, orchestrator: str = "plain",
                 force: bool = False):
        self.cfg, self.county, self.force = cfg, county, force
        self.year = cfg.resolve_year(year)
        self.run_id = new_run_id()
        self.store = OutputStore(cfg.output_dir)
        self.prepared: pipeline.PreparedRun | None = None
        self.key: str | None = None
        self.growth_bases: dict[str, tuple[int, str]] = {}  # county -> (base year, its input key)
        self.interrupted: list[dict] = []  # records of killed runs found on entry
        self.timings: dict[str, float] = {}
        self._stack = ExitStack()
        self.record = {
            "run_id": self.run_id, "started_at": pd.Timestamp.now(tz="UTC"), "ended_at": None,
            "outcome": "running", "year": self.year, "scope": county or "all", "output_dir": str(cfg.output_dir),
            "host": socket.gethostname(), "pid": os.getpid(), "orchestrator": orchestrator,
            "prefect_flow_run_id": None, "code_version": json.dumps(code_version(), sort_keys=True),
            "config": cfg.model_dump_json(), "inputs_sha256": None, "input_key": None,
            "indicator_set": json.dumps({"set": cfg.indicator_set or "custom", "services": cfg.services.enabled}),
            "method_choices": json.dumps({
                "landcover_scheme": cfg.landcover_scheme, "area_model": cfg.area_model,
                "price_basis": cfg.price_basis, "constant_price_year": cfg.constant_price_year,
                "services": cfg.services.options, "checks": cfg.checks.model_dump()}, sort_keys=True,
                ensure_ascii=False),
            "rows": None, "partitions_written": 0, "timings_s": "{}", "counties_flagged": None,
            "error": None, "failed_counties": None,
        }

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "RecordedRun":
        self._stack.enter_context(self.store.lock(holder_info(self.run_id)))
        try:
            self.store.recover()
            self.interrupted = self.store.mark_interrupted(self.run_id)
            self.store.write_record(self.record)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.prepared is not None:
                self.prepared.close()
            if exc is not None:
                self._failed(exc)
            self.record["ended_at"] = pd.Timestamp.now(tz="UTC")
            self.record["timings_s"] = json.dumps({k: round(v, 3) for k, v in self.timings.items()})
            self.store.write_record(self.record)
        finally:
            self._stack.close()

    def note(self, **fields) -> None:
        """Add fields to the record and write it now (e.g. the Prefect flow run id, so that a
        later run can mark the flow run of a killed one)."""
        self.record.update(fields)
        self.store.write_record(self.record)

    def _failed(self, exc: BaseException) -> None:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        self.record["outcome"] = "interrupted" if interrupted else "failed"
        self.record["error"] = f"{type(exc).__name__}: {exc}"[:20_000]
        if isinstance(exc, InputValidationError):
            by_county: dict[str, list[str]] = {}
            for p in exc.problems:
                if p.county:
                    by_county.setdefault(p.county, []).append(f"{p.file} [{p.field}]: {p.problem}")
            self.record["failed_counties"] = json.dumps(by_county, ensure_ascii=False) if by_county else None

    def _timed(self, step: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - t0

    # ------------------------------------------------------------------ steps
    def validate(self) -> pipeline.PreparedRun:
        """Validate every input (once per run) and hash them for the record and the input key."""
        if self.prepared is None:
            self.prepared = self._timed("validate", pipeline.prepare, self.cfg, self.year, self.county)
            lineage = self.prepared.lineage
            self.record["inputs_sha256"] = json.dumps({k.removeprefix("sha256:"): v for k, v in lineage.items()
                                                       if k.startswith("sha256:")}, sort_keys=True)
            self.growth_bases = self._growth_bases()
            # the growth columns depend on the base year's published GEP: its key is an input
            bases = {f"growth_base:{c}": f"{y}:{k}" for c, (y, k) in sorted(self.growth_bases.items())}
            self.key = self.record["input_key"] = input_key(self.cfg, self.year, lineage | bases)
            sel = self.prepared.selection
            self.record["indicator_set"] = json.dumps({"set": sel.indicator_set, "changes": list(sel.changes),
                                                       "services": [k for k, _ in self.prepared.services]})
            choices = pipeline.method_choices(self.cfg, self.year, self.prepared.services, sel)
            self.record["method_choices"] = json.dumps(choices | {"checks": self.cfg.checks.model_dump()},
                                                       sort_keys=True, ensure_ascii=False)
        return self.prepared

    def _growth_bases(self) -> dict[str, tuple[int, str]]:
        """Per county: the latest earlier year with a published gep partition, and its input key."""
        found: dict[str, tuple[int, str]] = {}
        for year, code, entry in self.store.published_partitions("gep"):
            if year < self.year and year > found.get(code, (0, ""))[0]:
                found[code] = (year, str(entry.get("input_key")))
        codes = set(self.county_codes())
        return {c: v for c, v in found.items() if c in codes}

    def _attach_growth(self, results: list) -> None:
        """The growth columns of each county against its base year's published gep row."""
        for r in results:
            row = r.gep.iloc[0].to_dict()
            base_year = self.growth_bases.get(row["county_code"], (None, ""))[0]
            base = None
            if base_year is not None:
                published = io.read_partition(self.store.root, "gep", base_year, row["county_code"])
                base = published.to_pylist()[0] | {"year": base_year}
                if "gep_constant_cny" not in base:  # written by a gep before constant prices
                    base = {"year": base_year, "indicator_set": None}
            for k, v in growth(row, base).items():
                r.gep[k] = [v]

    def county_codes(self) -> list[str]:
        return list(self.validate().counties["county_code"])

    def up_to_date(self) -> bool:
        """The published data of this scope came from identical inputs, configuration and code."""
        return not self.force and self.store.is_up_to_date(self.year, self.county_codes(), self.key)

    def skip(self) -> pd.DataFrame:
        """Record the run as skipped; the summary of the published data it would have written."""
        self.record["outcome"] = "skipped"
        published = io.read_dataset(self.store.root, "gep")
        published = published[(published.year == self.year) & published.county_code.isin(self.county_codes())]
        log.info("run %s: inputs, configuration and code unchanged since run %s; nothing recomputed",
                 self.run_id, self.store.manifest()["run_id"])
        return pipeline.summary(published.reset_index(drop=True))

    def account(self, tally=None) -> list:
        """Every county's accounts; ``tally(plan)`` runs the strips (default: threads here)."""
        prepared = self.validate()
        if tally is None:
            return self._timed("account", pipeline.account, prepared)
        return self._timed("account", pipeline.account_with, prepared, tally)

    def publish(self, results: list) -> list[Path]:
        """Check and publish every county's tables in one step; record rows and flags."""
        self._attach_growth(results)
        tables = self._timed("tables", pipeline.tables, self.validate(), results,
                             {"run_id": self.run_id, "input_key": self.key})
        files = self._timed("publish", self.store.publish, self.run_id, tables, self.key)
        rows: dict[str, int] = {}
        for (dataset, _, _), t in tables.items():
            rows[dataset] = rows.get(dataset, 0) + t.num_rows
        flagged = {}
        for r in results:
            flags = [f for f in (r.gep.quality_flag.iloc[0], r.gep.plausibility_flag.iloc[0])
                     if f != "ok" and not f.startswith("not checked")]
            if flags:
                flagged[r.gep.county_code.iloc[0]] = "; ".join(flags)
        self.record.update(outcome="succeeded", rows=json.dumps(rows), partitions_written=len(files),
                           counties_flagged=json.dumps(flagged, ensure_ascii=False) if flagged else None)
        return files


# ------------------------------------------------------------------ hand-over (CLI -> flow)
_STARTED: dict[tuple, RecordedRun] = {}


def _key(cfg: RunConfig, year: int | None, county: str | None) -> tuple:
    return (cfg.model_dump_json(), cfg.resolve_year(year), county)


def hand_over(run: RecordedRun) -> None:
    """Let the flow of this process continue a run the CLI started and validated (so bad input is
    refused before the orchestrator starts, and validated once)."""
    _STARTED[_key(run.cfg, run.year, run.county)] = run


def take_over(cfg: RunConfig, year: int | None, county: str | None) -> RecordedRun | None:
    return _STARTED.pop(_key(cfg, year, county), None)


def run(cfg: RunConfig, year: int | None = None, county: str | None = None, *, force: bool = False
        ) -> tuple[pd.DataFrame, list[Path]]:
    """Validate, compute and publish one year (all counties, or one) without an orchestrator.

    Returns the county summary and the files written (none when the run was up to date)."""
    with RecordedRun(cfg, year, county, force=force) as r:
        r.validate()
        if r.up_to_date():
            return r.skip(), []
        results = r.account()
        files = r.publish(results)
        return pipeline.summary(pipeline.gep_table(results)), files
