"""Print speed and memory figures of the pipeline on the sample (no Prefect; plain functions).

Figures: seconds for validation, accounting (per county and total), writing; pixels per second;
peak resident memory. Usage: uv run python benchmarks/bench_sample.py [--year 2020] [--block-pixels N]
"""
from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time

from gep import pipeline
from gep.accounts import account_county
from gep.config import load_run_config
from gep.zonal import DEFAULT_MAX_BLOCK_PIXELS


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sample_run.toml")
    ap.add_argument("--year", type=int, default=2020)
    ap.add_argument("--block-pixels", type=int, default=DEFAULT_MAX_BLOCK_PIXELS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_run_config(args.config, output_dir=out)
        t0 = time.perf_counter()
        prep = pipeline.prepare(cfg, args.year)
        t1 = time.perf_counter()
        results, pixels = [], 0
        for job in prep.jobs(args.block_pixels):
            s = time.perf_counter()
            acc = account_county(job)
            results.append(acc)
            n = acc.extent.pixel_count.sum()
            pixels += n
            print(f"  {job.county_code} {job.county_name}: {time.perf_counter() - s:6.2f} s, {n / 1e6:5.2f} M pixels")
        t2 = time.perf_counter()
        files = pipeline.write(prep, results)
        t3 = time.perf_counter()
        prep.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"year {args.year}, {len(results)} counties, {pixels / 1e6:.1f} M land-cover pixels in counties, "
          f"block <= {args.block_pixels:,} pixels")
    print(f"validate {t1 - t0:.2f} s | account {t2 - t1:.2f} s ({pixels / (t2 - t1) / 1e6:.2f} M pixels/s) | "
          f"write {len(files)} files {t3 - t2:.2f} s | peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
