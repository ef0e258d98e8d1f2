"""Print speed and memory figures of the pipeline on the sample (no Prefect; plain functions).

Figures: seconds for validation, accounting (one pass over the land cover, every county), building
and checking the tables, publishing them (what `gep run --no-prefect` does); pixels per second;
peak resident memory.
Usage: uv run python benchmarks/bench_sample.py [--year 2020] [--workers N] [--strip-pixels N]
"""
from __future__ import annotations

import argparse
import logging
import resource
import tempfile

from gep import engine, runs
from gep.config import load_run_config


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sample_run.toml")
    ap.add_argument("--year", type=int, default=2020)
    ap.add_argument("--workers", type=int, help="threads (default: every core)")
    ap.add_argument("--strip-pixels", type=int, help="land-cover cells per strip (default: the configuration's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_run_config(args.config, output_dir=out)
        if args.strip_pixels:
            cfg = cfg.model_copy(update={"compute": cfg.compute.model_copy(update={"strip_pixels": args.strip_pixels})})
        with runs.RecordedRun(cfg, args.year, None) as run:
            run.validate()
            results = run.account(lambda plan: engine.tally_local(plan, args.workers))
            files = run.publish(results)
    t = run.timings
    pixels = sum(r.extent.pixel_count.sum() for r in results)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"year {args.year}, {len(results)} counties, {pixels / 1e6:.1f} M land-cover pixels in counties")
    print(f"validate {t['validate']:.2f} s (includes hashing the inputs) | "
          f"account {t['account']:.2f} s ({pixels / t['account'] / 1e6:.1f} M pixels/s; includes the first "
          f"compiled call, ~1 s once per process) | tables {t['tables']:.2f} s | publish {len(files)} files "
          f"{t['publish']:.2f} s | peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
