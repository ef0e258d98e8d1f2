"""Print the effect of each method switch and of each indicator set on the sample's GEP (plain
pipeline, nothing written).

Each switch is one change to the sample configuration (configs/sample_run.toml); the table gives
total GEP of the 12 counties, the change against the defaults, and the change of the service the
switch acts on. The second table gives GEP by category under every indicator set of
configs/indicator_sets.toml, with the equivalent-factor GEP beside it. The sample is SYNTHETIC:
the figures show what the switches do, not Huzhou's GEP.
Usage: uv run python benchmarks/method_switches.py [--year 2020]
"""
from __future__ import annotations

import argparse
import logging

import pandas as pd

from gep import pipeline
from gep.config import ServicesConfig, load_reference_data, load_run_config

SWITCHES = [
    ("defaults", None, {}),
    ("climate: vegetation_term = et (total ET)", "climate_regulation", {"vegetation_term": "et"}),
    ("climate: water_term = s_garze", "climate_regulation", {"water_term": "s_garze"}),
    ("climate: humidifier = true", "climate_regulation", {"humidifier": True}),
    ("climate: s_garze + humidifier", "climate_regulation", {"water_term": "s_garze", "humidifier": True}),
    ("climate: paddy = as_wetland", "climate_regulation", {"paddy": "as_wetland"}),
    ("oxygen: pairing = s_garze", "oxygen_release", {"pairing": "s_garze"}),
    ("oxygen: price = oxygen_s_garze (727 @2010)", "oxygen_release", {"price": "oxygen_s_garze"}),
    ("carbon: method = photosynthesis", "carbon_sequestration", {"method": "photosynthesis"}),
    ("soil: c_factor = by_class", "soil_retention", {"c_factor": "by_class"}),
]


def _results(cfg, year):
    prep = pipeline.prepare(cfg, year)
    try:
        return pipeline.account(prep)
    finally:
        prep.close()


def _accounts(cfg, year):
    services = pd.concat([r.services for r in _results(cfg, year)])
    functional = services[(services.method == "functional") & (services.status == "accounted")]
    return functional.groupby("service").value_cny.sum()


def _by_set(cfg, year) -> pd.DataFrame:
    rows = []
    for key in load_reference_data(cfg).indicator_sets:
        run = cfg.model_copy(update={"indicator_set": key, "services": ServicesConfig()})
        gep = pipeline.gep_table(_results(run, year))
        total = gep.gep_cny.sum()
        rows.append({"indicator set": key, "GEP 1e8 CNY": total / 1e8,
                     **{f"{c} %": 100 * gep[f"{c}_cny"].sum() / total for c in ("provisioning", "regulating", "cultural")},
                     "equivalent factor 1e8 CNY": gep.gep_equivalent_factor_cny.sum() / 1e8,
                     "services": int(gep.n_services.max())})
    return pd.DataFrame(rows)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sample_run.toml")
    ap.add_argument("--year", type=int, default=2020)
    args = ap.parse_args()
    cfg = load_run_config(args.config)
    base_options = cfg.services.options
    rows, base = [], None
    for label, service, change in SWITCHES:
        options = {k: dict(v) for k, v in base_options.items()}
        if service:
            options[service] = {**options.get(service, {}), **change}
        services = ServicesConfig.model_validate({"enabled": cfg.services.enabled, **options})
        by_service = _accounts(cfg.model_copy(update={"services": services}), args.year)
        base = by_service if base is None else base
        total, base_total = by_service.sum(), base.sum()
        rows.append({"switch": label, "GEP 1e8 CNY": total / 1e8, "vs defaults": total / base_total - 1,
                     "service": service or "", "service factor": by_service.get(service, 0) / base.get(service, 1)
                     if service else 1.0})
    with pd.option_context("display.width", 160, "display.max_colwidth", 50):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print("\nGEP by service with the defaults (1e8 CNY):")
    print((base / 1e8).sort_values(ascending=False).round(2).to_string())
    print("\nGEP under each indicator set (each with its own switches):")
    with pd.option_context("display.width", 160):
        print(_by_set(cfg, args.year).to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
