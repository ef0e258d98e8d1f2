"""Prefect flows: a thin layer over gep.runs, gep.pipeline and gep.engine.

- ``annual_gep_flow``: all counties of the boundary file, one year.
- ``county_gep_flow``: one county, one year; replaces only that county's partitions.

A flow run is one recorded run (gep/runs.py): it locks the output directory, validates its inputs
once (a CLI run that already did hands its run over), skips the work when inputs, configuration
and code are unchanged, else plans the strips of the land cover and submits one task per batch of
strips (about four per worker, so Prefect's per-task cost stays small next to the work), and
publishes every county's partitions in one step. Task arguments are small: the run handle
(configuration: paths and options) and strip numbers; each worker reads its own data. Tasks run on
the flow's task runner: threads on every local core by default, or a Dask cluster
(:func:`with_runner`). Tallies are merged in strip order, so every runner gives the same bits.
Strip tasks retry on I/O errors only.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from gep import engine, pipeline, runs
from gep.config import ComputeConfig, load_run_config


def summary_artifact_key(year: int, county: str | None) -> str:
    """One artifact per year and scope: a single-county run does not replace the all-county table."""
    return f"gep-summary-{year}-{county or 'all'}"


def retry_on_io_error(task, task_run, state) -> bool:
    """Retry failures to read files (OSError, RasterioIOError); bad input and bugs fail at once."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


@task(name="tally-strips", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error,
      cache_policy=NO_CACHE, task_run_name="strips-{batch_no}")
def tally_strips(handle: engine.RunHandle, batch_no: int, strip_ids: list[int]):
    return engine.tally_batch(handle, strip_ids)


def _tally_on_tasks(run: runs.RecordedRun):
    """The strips of a run as Prefect tasks on the flow's task runner."""
    def tally(plan: engine.EnginePlan):
        handle = engine.RunHandle(run.cfg, run.year, run.county, run.cfg.compute.strip_pixels)
        engine.remember(handle, plan)
        batches = engine.work_batches(plan, engine.workers_or_default(run.cfg.compute.workers))
        futures = [tally_strips.submit(handle, k, ids) for k, ids in enumerate(batches)]
        return {i: tallies for f in futures for i, tallies in f.result()}
    return tally


def _mark_crashed(dead: list[dict]) -> None:
    """Flow runs of killed runs (found by this run) are marked Crashed instead of staying RUNNING."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed
    log = get_run_logger()
    with get_client(sync_client=True) as client:
        for rec in dead:
            if not rec.get("prefect_flow_run_id"):
                continue
            try:
                client.set_flow_run_state(rec["prefect_flow_run_id"], Crashed(
                    message=f"gep run {rec['run_id']} was killed; found by a later run"), force=True)
                log.warning("flow run %s of killed gep run %s marked Crashed", rec["prefect_flow_run_id"],
                            rec["run_id"])
            except Exception as exc:  # a flow run of another Prefect server: the run record says it all
                log.warning("could not mark flow run %s Crashed: %s", rec["prefect_flow_run_id"], exc)


def _run(config_path: str, year: int | Literal["previous"] | None, county: str | None, output_dir: str | None,
         force: bool, indicator_set: str | None) -> list[dict]:
    cfg = load_run_config(config_path, output_dir=output_dir, indicator_set=indicator_set)
    handed = runs.take_over(cfg, cfg.resolve_year(year), county)
    log = get_run_logger()
    own = runs.RecordedRun(cfg, year, county, orchestrator="prefect", force=force) if handed is None else None
    with own if own is not None else contextlib.nullcontext(handed) as r:
        r.note(orchestrator="prefect", prefect_flow_run_id=str(flow_run.id))
        _mark_crashed(r.interrupted)
        r.validate()
        if r.up_to_date():
            table, files = r.skip(), []
            log.info("inputs, configuration and code unchanged: nothing recomputed (run %s)", r.run_id)
        else:
            results = r.account(_tally_on_tasks(r))
            for res in results:
                log.info(pipeline.describe(res))
            files = r.publish(results)
            table = pipeline.summary(pipeline.gep_table(results))
    create_table_artifact(key=summary_artifact_key(r.year, county), table=table.round(4).to_dict(orient="records"),
                          description=f"GEP per county, {r.year} ({'all counties' if county is None else county}), "
                                      f"run {r.run_id}: {r.record['outcome']}, {len(files)} partitions under "
                                      f"{cfg.output_dir}")
    return table.to_dict(orient="records")


@flow(name="gep-annual", task_runner=ThreadPoolTaskRunner())
def annual_gep_flow(config_path: str, year: int | Literal["previous"] | None = None, output_dir: str | None = None,
                    force: bool = False, indicator_set: str | None = None) -> list[dict]:
    """GEP accounts of every county for one year (default: the configuration's default/latest year;
    "previous": the calendar year before today in China, as the scheduled run uses), under the
    configuration's indicator set or ``indicator_set``."""
    return _run(config_path, year, None, output_dir, force, indicator_set)


@flow(name="gep-county", task_runner=ThreadPoolTaskRunner())
def county_gep_flow(config_path: str, county_code: str, year: int | None = None,
                    output_dir: str | None = None, force: bool = False, indicator_set: str | None = None) -> list[dict]:
    """GEP accounts of one county for one year; other counties' files are not touched."""
    return _run(config_path, year, county_code, output_dir, force, indicator_set)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def temporary_api():
    """A temporary Prefect server for this process and the Dask workers it spawns, unless
    PREFECT_API_URL names one. Unlike Prefect's own temporary server it dies with this process,
    even on SIGKILL (Linux: the kernel signals it when its parent dies), so a killed run leaves no
    server behind."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class TiedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self):
            if not sys.platform.startswith("linux"):
                return super()._run_uvicorn_command()
            real = subprocess.Popen
            subprocess.Popen = lambda *a, **kw: real(*a, preexec_fn=_die_with_parent, **kw)
            try:
                return super()._run_uvicorn_command()
            finally:
                subprocess.Popen = real

    server = TiedServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by a local Dask cluster's workers
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
        APILogWorker.drain_all()  # send queued logs and events while the server still listens
        EventsWorker.drain_all()
        del os.environ["PREFECT_API_URL"]
        server.stop()


def with_runner(gep_flow, compute: ComputeConfig):
    """The flow on the task runner the compute settings ask for.

    ``runner = "threads"``: a thread pool of ``workers`` (default: every core) in this process.
    ``runner = "dask"``: prefect-dask's DaskTaskRunner on the scheduler at ``dask_address``, or on a
    temporary local cluster of ``workers`` single-threaded worker processes when no address is given.
    """
    workers = engine.workers_or_default(compute.workers)
    if compute.runner == "threads":
        return gep_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    from prefect_dask import DaskTaskRunner
    if compute.dask_address:
        return gep_flow.with_options(task_runner=DaskTaskRunner(address=compute.dask_address))
    return gep_flow.with_options(task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                        "dashboard_address": None}))
