"""Print speed and memory figures of the pipeline on the sample (no Prefect; plain functions).

Figures: seconds for validation, accounting (one pass over the land cover, every county), writing;
pixels per second; peak resident memory.
Usage: uv run python benchmarks/bench_sample.py [--year 2020] [--workers N] [--strip-pixels N]
"""
from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time

from gep import pipeline
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
        t0 = time.perf_counter()
        prep = pipeline.prepare(cfg, args.year)
        t1 = time.perf_counter()
        results = pipeline.account(prep, workers=args.workers, strip_pixels=args.strip_pixels)
        t2 = time.perf_counter()
        files = pipeline.write(prep, results)
        t3 = time.perf_counter()
        prep.close()
    pixels = sum(r.extent.pixel_count.sum() for r in results)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"year {args.year}, {len(results)} counties, {pixels / 1e6:.1f} M land-cover pixels in counties")
    print(f"validate {t1 - t0:.2f} s (includes the first compiled call, ~1 s once per process) | "
          f"account {t2 - t1:.2f} s ({pixels / (t2 - t1) / 1e6:.1f} M pixels/s) | "
          f"write {len(files)} files {t3 - t2:.2f} s | peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
