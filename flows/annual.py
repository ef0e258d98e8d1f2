"""Prefect flows: a thin layer over gep.pipeline (validate -> account each county -> write).

- ``annual_gep_flow``: all counties of the boundary file, one year.
- ``county_gep_flow``: one county, one year; replaces only that county's partitions.

Tasks whose I/O can fail (reading rasters, writing partitions) retry on I/O errors only; validation
does not retry (bad input stays bad). Each county logs one line; the county summary is published as a table artifact.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from gep import accounts, pipeline
from gep.accounts import CountyAccounts
from gep.config import load_run_config

SUMMARY_ARTIFACT_KEY = "gep-county-summary"


def retry_on_io_error(task, task_run, state) -> bool:
    """Retry failures to read or write files (OSError, RasterioIOError); bad input and bugs fail at once."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


@task(name="validate-inputs", cache_policy=NO_CACHE)
def validate_inputs(config_path: str, year: int | None, county: str | None,
                    output_dir: str | None) -> pipeline.PreparedRun:
    cfg = load_run_config(config_path, output_dir=output_dir)
    return pipeline.prepare(cfg, year, county)


@task(name="account-county", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error,
      cache_policy=NO_CACHE, task_run_name="account-{county_code}")
def account_county(prepared: pipeline.PreparedRun, county_code: str) -> CountyAccounts:
    result = accounts.account_county(prepared.job(county_code))
    row = result.gep.iloc[0]
    get_run_logger().info("county %s %s %d: GEP %.2f 亿元 (%.3f 亿元/km², %.1f km² classified, %s)",
                          county_code, row.county_name, row.year, row.gep_yi_cny, row.gep_per_km2_cny / 1e8,
                          row.classified_area_km2, row.plausibility_flag)
    return result


@task(name="write-partitions", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error,
      cache_policy=NO_CACHE)
def write_partitions(prepared: pipeline.PreparedRun, results: list[CountyAccounts]) -> list[str]:
    return [str(p) for p in pipeline.write(prepared, results)]


def _run(config_path: str, year: int | None, county: str | None, output_dir: str | None) -> list[dict]:
    prepared = validate_inputs(config_path, year, county, output_dir)
    try:
        results = [account_county(prepared, code) for code in prepared.counties["county_code"]]
        files = write_partitions(prepared, results)
    finally:
        prepared.close()
    table = pipeline.summary(results)
    create_table_artifact(key=SUMMARY_ARTIFACT_KEY, table=table.round(4).to_dict(orient="records"),
                          description=f"GEP per county, {prepared.year}, {prepared.price_year} prices "
                                      f"({len(files)} partitions under {Path(prepared.cfg.output_dir)})")
    return table.to_dict(orient="records")


@flow(name="gep-annual")
def annual_gep_flow(config_path: str, year: int | None = None, output_dir: str | None = None) -> list[dict]:
    """GEP accounts of every county for one year (default: the configuration's default/latest year)."""
    return _run(config_path, year, None, output_dir)


@flow(name="gep-county")
def county_gep_flow(config_path: str, county_code: str, year: int | None = None,
                    output_dir: str | None = None) -> list[dict]:
    """GEP accounts of one county for one year; other counties' files are not touched."""
    return _run(config_path, year, county_code, output_dir)
