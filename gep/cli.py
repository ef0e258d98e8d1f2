"""The ``gep`` command: a thin shell over the flows and gep.pipeline.

    gep run --config FILE [--year YYYY] [--county CODE] [--output DIR] [--workers N] [--dask | --dask-address ADDR]
            [--no-prefect] [--force]
    gep validate --config FILE [--year YYYY]
    gep sample-data --config FILE [--force]
    gep serve --config FILE
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


def _prefect_env() -> None:
    """Offline, project-local Prefect: own home, no analytics, ephemeral server unless one is set."""
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")


def _print_summary(records: list[dict], output_dir: Path, title: str, run) -> None:
    import pandas as pd
    df = pd.DataFrame(records)
    total = df["gep_yi_cny"].sum()
    print(f"\nRun: {title}" if title else "")
    outcome = {"skipped": "up to date: inputs, configuration and code unchanged since the published data; "
                          "nothing recomputed (--force recomputes)",
               "succeeded": f"{run.record['partitions_written']} partitions published"}[run.record["outcome"]]
    print(f"Run {run.run_id}: {outcome}; record in {output_dir}/runs/{run.run_id}.parquet")
    print(f"Outputs under {output_dir}/ (extent/, services/, gep/, carbon_stock/; year=YYYY/county_code=CCCCCC/part-0.parquet)")
    print(f"County GEP summary, {df['year'].iloc[0]} ({len(df)} counties, total {total:,.2f} 亿元 = 1e8 CNY):")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(df.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    flagged = df[df.quality_flag != "ok"]
    for code, flag in zip(flagged.county_code, flagged.quality_flag):
        print(f"  quality {code}: {flag}")


def cmd_run(args) -> int:
    from gep import engine, pipeline, runs
    from gep.config import load_run_config
    cfg = load_run_config(args.config, output_dir=args.output, indicator_set=args.indicator_set)
    compute = _compute(cfg.compute, args)
    if args.no_prefect and compute.runner == "dask":
        print("gep: error: --no-prefect runs on local threads; drop --dask/--dask-address or [compute] runner",
              file=sys.stderr)
        return 2
    # Lock, record and validate before the orchestrator starts: bad input or a locked or unwritable
    # output directory is refused in a second, and an up-to-date run ends here.
    with runs.RecordedRun(cfg, args.year, args.county, force=args.force,
                          orchestrator="plain" if args.no_prefect else "prefect") as run:
        run.validate()
        if run.up_to_date():
            records = run.skip().to_dict(orient="records")
        elif args.no_prefect:
            results = run.account(lambda plan: engine.tally_local(plan, compute.workers))
            run.publish(results)
            records = pipeline.summary(pipeline.gep_table(results)).to_dict(orient="records")
        else:
            from flows.annual import annual_gep_flow, county_gep_flow, temporary_api, with_runner
            runs.hand_over(run)
            output = str(cfg.output_dir)
            try:
                with temporary_api():
                    if args.county:
                        records = with_runner(county_gep_flow, compute)(str(args.config), args.county, args.year,
                                                                        output, args.force, args.indicator_set)
                    else:
                        records = with_runner(annual_gep_flow, compute)(str(args.config), args.year, output,
                                                                        args.force, args.indicator_set)
            finally:
                runs.take_over(cfg, run.year, args.county)  # not taken if the flow never started
    _print_summary(records, cfg.output_dir, cfg.title, run)
    return 0


def _compute(compute, args):
    """The configuration's [compute] settings with the command line's overrides."""
    update = {}
    if args.workers:
        update["workers"] = args.workers
    if args.dask or args.dask_address:
        update["runner"] = "dask"
    if args.dask_address:
        update["dask_address"] = args.dask_address
    return compute.model_copy(update=update)


def cmd_assess(args) -> int:
    import pandas as pd
    from gep.assess import assess
    from gep.config import load_run_config
    from gep.policy import DEFAULT_POLICY, load_policy
    cfg = load_run_config(args.config, output_dir=args.output)
    policy_path = args.policy or DEFAULT_POLICY
    policy = load_policy(Path(policy_path))
    summary, files = assess(cfg, args.baseline, args.year, policy, str(policy_path))
    print(f"Assessment {args.baseline} -> {args.year} under {policy_path} ({policy.title}):")
    print(f"  {len(files)} files under {files[0].parent}/ (the tables as .parquet and .csv, assessment.xlsx, units.parquet, report.html)")
    show = summary.assign(gep_baseline_yi_cny=summary.gep_baseline_cny / 1e8, gep_yi_cny=summary.gep_cny / 1e8,
                          delta_gep_yi_cny=summary.delta_gep_cny / 1e8)[
        ["unit_id", "unit_name", "gep_baseline_yi_cny", "gep_yi_cny", "delta_gep_yi_cny", "delta_gep_pct",
         "extent_share", "impact_flag", "discount_pp", "discount_tier", "discount_reasons"]]
    with pd.option_context("display.width", 250, "display.max_colwidth", 70):
        print(show.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    return 0


def cmd_validate(args) -> int:
    from gep import pipeline
    from gep.config import load_run_config
    from gep.errors import InputValidationError
    cfg = load_run_config(args.config)
    for year in ([args.year] if args.year else cfg.years):
        prepared = pipeline.prepare(cfg, year)
        try:  # a run checks the codes in its accounting pass; validating alone decodes for them
            problems = pipeline.landcover_code_problems(prepared)
        finally:
            prepared.close()
        if problems:
            raise InputValidationError(problems)
        print(f"{args.config}: inputs for {year} are valid")
    return 0


def cmd_sample_data(args) -> int:
    from gep import sample_data
    from gep.config import load_run_config
    cfg = load_run_config(args.config)
    print("making sure the SYNTHETIC sample inputs exist (seeded, deterministic; about 30 s to generate) ...")
    written = sample_data.ensure_sample(cfg, force=args.force)
    for p in written:
        print(f"  wrote {p}")
    if not written:
        print("  all present; use --force to regenerate")
    return 0


def cmd_serve(args) -> int:
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        print("gep: error: gep serve needs a running Prefect server (a temporary one cannot run schedules)\n"
              "    fix: start one with `PREFECT_HOME=$PWD/.prefect uv run prefect server start`, then run\n"
              "         PREFECT_API_URL=http://127.0.0.1:4200/api uv run gep serve --config FILE", file=sys.stderr)
        return 2
    from flows.deployment import CRON, DEPLOYMENT_NAME, TIMEZONE, serve
    print(f"serving gep-annual/{DEPLOYMENT_NAME} on the Prefect server at {api}: every year at cron '{CRON}' "
          f"({TIMEZONE}), accounting the previous calendar year; stop with Ctrl-C or SIGTERM", flush=True)
    try:
        serve(args.config)
    except KeyboardInterrupt:
        pass
    print("gep serve: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    _prefect_env()
    parser = argparse.ArgumentParser(prog="gep", description="Gross Ecosystem Product accounting per county and year.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="validate inputs, compute and write one year's accounts")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--year", type=int)
    p.add_argument("--county", help="county code: recompute and replace only this county's partitions")
    p.add_argument("--output", type=Path, help="output directory (overrides output_dir of the configuration)")
    p.add_argument("--indicator-set", help="indicator set of configs/indicator_sets.toml (overrides indicator_set of "
                                           "the configuration), e.g. ndrc_2022")
    p.add_argument("--workers", type=int, help="threads or local Dask workers (default: every core)")
    p.add_argument("--dask", action="store_true", help="run the strip tasks on a temporary local Dask cluster")
    p.add_argument("--dask-address", help="run the strip tasks on the Dask scheduler at this address")
    p.add_argument("--no-prefect", action="store_true",
                   help="run without Prefect (no server start; for quick ad-hoc re-runs); same outputs and run record")
    p.add_argument("--force", action="store_true", help="recompute even if inputs, configuration and code are unchanged")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("assess", help="green-loan assessment: ΔGEP at constant prices between two accounted years, "
                                      "and the loan policy's discount")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--baseline", required=True, type=int, help="baseline year (accounted in the output directory)")
    p.add_argument("--year", required=True, type=int, help="assessment year (accounted in the output directory)")
    p.add_argument("--policy", type=Path, help="loan policy TOML (default: configs/loan_policy_example.toml, an example)")
    p.add_argument("--output", type=Path, help="output directory (overrides output_dir of the configuration)")
    p.set_defaults(func=cmd_assess)
    p = sub.add_parser("validate", help="validate the inputs only (all configured years, or --year)")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--year", type=int)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("sample-data", help="generate the SYNTHETIC sample inputs the configuration names")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_sample_data)
    p = sub.add_parser("serve", help="serve the yearly scheduled deployment (needs `prefect server start`)")
    p.add_argument("--config", required=True, type=Path)
    p.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    from gep.errors import GepError
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None  # a clean stop: record, lock, server
    try:
        return args.func(args)
    except GepError as exc:
        print(f"gep: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("gep: interrupted; nothing of this run was published", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
