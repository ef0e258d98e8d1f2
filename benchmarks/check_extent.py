"""Print the check of the extent account against two independent zonal methods on the sample.

1. exactextract's own zonal statistics (`unique`, `frac` and `count` weighted by `area_spherical_m2`,
   a sphere of R = 6,378,137 m), against the pipeline run with area_model = "sphere";
2. pixel-centre masks (rasterio) with the configured area model (WGS 84 ellipsoid), which checks the
   coverage fractions the pipeline takes from exactextract.

Thresholds (issue 2): every class covering >= 10 km² of a county within 0.5 %; county totals within 0.1 %.
Usage: uv run python benchmarks/check_extent.py [--config configs/sample_run.toml] [--year 2020]
"""
from __future__ import annotations

import argparse
import logging

from gep.config import load_run_config
from gep.qa import compare_extent_with_exactextract, compare_extent_with_pixel_centres, county_totals


def report(name: str, table) -> bool:
    big = table[table.reference_km2 >= 10.0]
    totals = county_totals(table)
    worst = big.loc[big.rel_diff.abs().idxmax()]
    ok = big.rel_diff.abs().max() < 0.005 and totals.rel_diff.abs().max() < 0.001
    print(f"\n{name}: {len(big)} county-class pairs >= 10 km², {len(totals)} counties")
    print(f"  max |rel diff| classes >= 10 km²: {big.rel_diff.abs().max():.2e} "
          f"(county {worst.county_code}, class {int(worst.lc_code)}: {worst.gep_km2:.3f} vs {worst.reference_km2:.3f} km²)")
    print(f"  max |rel diff| county totals:     {totals.rel_diff.abs().max():.2e}")
    print(totals.to_string(index=False, float_format=lambda v: f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.2e}"))
    print("  PASS" if ok else "  FAIL")
    return ok


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sample_run.toml")
    ap.add_argument("--year", type=int, default=2020)
    args = ap.parse_args()
    cfg = load_run_config(args.config)
    ok = report("exactextract (sphere R = 6,378,137 m)", compare_extent_with_exactextract(cfg, args.year))
    ok &= report(f"pixel-centre masks ({cfg.area_model})", compare_extent_with_pixel_centres(cfg, args.year))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
