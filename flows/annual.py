"""Prefect flows: a thin layer over gep.pipeline and gep.engine.

- ``annual_gep_flow``: all counties of the boundary file, one year.
- ``county_gep_flow``: one county, one year; replaces only that county's partitions.

A run validates its inputs once (in the flow; a CLI run that already validated them in this process
hands its validated run over instead), plans the strips of the land cover and submits one task per
batch of strips (about four per worker, so Prefect's per-task cost stays small next to the work).
Task arguments are small: the run handle (configuration: paths and options) and strip numbers; each
worker reads its own data. Tasks run on the flow's task runner: threads on every local core by
default, or a Dask cluster (:func:`with_runner`). The strips' tallies are merged in strip order, so
every runner gives the same bits. Reading and writing retry on I/O errors only.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from gep import engine, pipeline
from gep.accounts import CountyAccounts
from gep.config import ComputeConfig, load_run_config

SUMMARY_ARTIFACT_KEY = "gep-county-summary"


def retry_on_io_error(task, task_run, state) -> bool:
    """Retry failures to read or write files (OSError, RasterioIOError); bad input and bugs fail at once."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


@task(name="tally-strips", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error,
      cache_policy=NO_CACHE, task_run_name="strips-{batch_no}")
def tally_strips(handle: engine.RunHandle, batch_no: int, strip_ids: list[int]):
    return engine.tally_batch(handle, strip_ids)


@task(name="write-partitions", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error,
      cache_policy=NO_CACHE)
def write_partitions(prepared: pipeline.PreparedRun, results: list[CountyAccounts]) -> list[str]:
    return [str(p) for p in pipeline.write(prepared, results)]


def _run(config_path: str, year: int | None, county: str | None, output_dir: str | None) -> list[dict]:
    cfg = load_run_config(config_path, output_dir=output_dir)
    prepared = pipeline.prepare_once(cfg, year, county)
    log = get_run_logger()
    try:
        handle = engine.RunHandle(cfg, prepared.year, county, cfg.compute.strip_pixels)
        plan = engine.plan(prepared, handle.strip_pixels)
        engine.remember(handle, plan)
        batches = engine.work_batches(plan, engine.workers_or_default(cfg.compute.workers))
        futures = [tally_strips.submit(handle, k, ids) for k, ids in enumerate(batches)]
        per_strip = {i: tallies for f in futures for i, tallies in f.result()}
        results = engine.finish(plan, per_strip)
        for r in results:
            log.info(pipeline.describe(r))
        files = write_partitions(prepared, results)
    finally:
        prepared.close()
    table = pipeline.summary(results)
    create_table_artifact(key=SUMMARY_ARTIFACT_KEY, table=table.round(4).to_dict(orient="records"),
                          description=f"GEP per county, {prepared.year}, {prepared.price_year} prices "
                                      f"({len(files)} partitions under {Path(prepared.cfg.output_dir)})")
    return table.to_dict(orient="records")


@flow(name="gep-annual", task_runner=ThreadPoolTaskRunner())
def annual_gep_flow(config_path: str, year: int | None = None, output_dir: str | None = None) -> list[dict]:
    """GEP accounts of every county for one year (default: the configuration's default/latest year)."""
    return _run(config_path, year, None, output_dir)


@flow(name="gep-county", task_runner=ThreadPoolTaskRunner())
def county_gep_flow(config_path: str, county_code: str, year: int | None = None,
                    output_dir: str | None = None) -> list[dict]:
    """GEP accounts of one county for one year; other counties' files are not touched."""
    return _run(config_path, year, county_code, output_dir)


@contextmanager
def shared_api_for_workers(compute: ComputeConfig):
    """Dask workers are other processes: without an API address each would start its own
    temporary Prefect server. Start one here (unless an API is configured) and point this process
    and the workers it spawns at it; stop it afterwards."""
    if compute.runner != "dask" or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings
    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by the local cluster's workers
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        del os.environ["PREFECT_API_URL"]


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
