"""Green-loan assessment of counties: the GEP change between a baseline and an assessment year at
constant prices, and the discount a loan policy gives for it (methodology §8.3, §12).

Plain functions over the published outputs of the two years (``gep``, ``services``, ``extent``):
both years must be accounted in the output directory with one indicator set and one constant
price year (one price vector: the change is the ecosystems', not inflation's); the nominal change
(current prices) is written beside it. Reading the datasets and writing the assessment's tables
are gep/io.py and gep/store.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gep import vocabulary
from gep.errors import InputProblem, InputValidationError
from gep.policy import LoanPolicy, discount

KEY = ["county_code", "service", "indicator", "ecosystem_type"]
TOP_DRIVERS = 3


@dataclass
class YearAccounts:
    year: int
    gep: pd.DataFrame       # one row per county
    services: pd.DataFrame  # functional rows
    extent: pd.DataFrame


def check_years(published: dict[str, pd.DataFrame], baseline: int, year: int, where: str) -> list[InputProblem]:
    """Both years accounted, for the same counties, with one indicator set and constant price year."""
    if baseline >= year:
        return [InputProblem("command line", "--baseline", f"baseline year {baseline} is not before the assessment "
                             f"year {year}", "give a baseline earlier than --year")]
    gep = published["gep"]
    problems = []
    years = sorted(set(gep.year))
    for y in (baseline, year):
        if y not in years:
            problems.append(InputProblem(where, f"gep/year={y}", f"year {y} is not accounted in the output "
                                         f"directory (accounted: {years or 'none'})",
                                         f"run `gep run --config FILE --year {y}` first"))
    if problems:
        return problems
    b, y_ = gep[gep.year == baseline], gep[gep.year == year]
    only = sorted(set(b.county_code) ^ set(y_.county_code))
    if only:
        problems.append(InputProblem(where, "county_code", f"counties {', '.join(only)} are accounted in only one of "
                                     f"{baseline} and {year}", "run both years for every county"))
    for col, what in (("indicator_set", "indicator set"), ("indicator_set_changes", "changes to the set"),
                      ("constant_price_year", "constant price year")):
        values = sorted({str(v) for v in pd.concat([b[col], y_[col]])})
        if len(values) > 1:
            problems.append(InputProblem(where, f"gep.{col}", f"{baseline} and {year} were accounted with another "
                                         f"{what}: {values}", "re-run both years with one configuration"))
    return problems


def service_change(base: YearAccounts, now: YearAccounts) -> pd.DataFrame:
    """ΔGEP per county, service, indicator and ecosystem type (functional accounted rows), at
    constant and at current prices; a row present in one year only counts 0 in the other."""
    cols = ["value_constant_cny", "value_current_cny"]
    keep = KEY + ["county_name", "service_zh", "category"]
    b = base.services[keep + cols].rename(columns={c: f"baseline_{c}" for c in cols})
    n = now.services[keep + cols]
    m = b.merge(n, on=KEY, how="outer", suffixes=("_b", ""), indicator=True)
    for c in ("county_name", "service_zh", "category"):
        m[c] = m[c].fillna(m.pop(f"{c}_b")) if f"{c}_b" in m else m[c]
    for c in cols:
        m[f"baseline_{c}"] = m[f"baseline_{c}"].fillna(0.0)
        m[c] = m[c].fillna(0.0)
    m["present"] = m.pop("_merge").map({"both": "both", "left_only": "baseline only", "right_only": "assessment only"})
    m["delta_constant_cny"] = m.value_constant_cny - m.baseline_value_constant_cny
    m["delta_current_cny"] = m.value_current_cny - m.baseline_value_current_cny
    m["baseline_year"], m["year"] = base.year, now.year
    return m[vocabulary.names("gep_change")].sort_values(KEY, ignore_index=True)


def extent_change(base: YearAccounts, now: YearAccounts) -> pd.DataFrame:
    """Opening and closing area per county and ecosystem type, and the net change [ha]; opening +
    net change = closing is checked here."""
    def by_type(e):
        return e.groupby(["county_code", "county_name", "ecosystem_type"], as_index=False).area_ha.sum()
    m = by_type(base.extent).merge(by_type(now.extent), on=["county_code", "county_name", "ecosystem_type"],
                                   how="outer", suffixes=("_opening", "_closing")).fillna({"area_ha_opening": 0.0,
                                                                                          "area_ha_closing": 0.0})
    m = m.rename(columns={"area_ha_opening": "opening_ha", "area_ha_closing": "closing_ha"})
    m["net_change_ha"] = m.closing_ha - m.opening_ha
    m["baseline_year"], m["year"] = base.year, now.year
    balance = (m.opening_ha + m.net_change_ha - m.closing_ha).abs().max() if len(m) else 0.0
    if not balance <= 1e-6:
        raise vocabulary.SchemaViolation(f"extent_change: opening + net change != closing (off by {balance} ha)")
    return m[vocabulary.names("extent_change")].sort_values(["county_code", "ecosystem_type"], ignore_index=True)


def _pct(delta: float, base: float) -> float | None:
    return delta / base * 100.0 if base > 0 else None


def loan_summary(base: YearAccounts, now: YearAccounts, changes: pd.DataFrame, policy: LoanPolicy, policy_path: str,
                 run_ids: dict[int, str], code_version: str) -> pd.DataFrame:
    """One row per county: GEP at baseline and now at constant prices, ΔGEP with its range, by
    category, the drivers and impact, the discount and why, the county's ratios and flags."""
    rows = []
    b_all, n_all = base.gep.set_index("county_code"), now.gep.set_index("county_code")
    for code in n_all.index:
        b, n = b_all.loc[code], n_all.loc[code]
        delta = float(n.gep_constant_cny - b.gep_constant_cny)
        pct = _pct(delta, float(b.gep_constant_cny))
        ends = (delta,)
        if b.price_basis == "constant" == n.price_basis:  # the rows' ranges are at constant prices
            ends = (delta, float(n.gep_cny_low - b.gep_cny_low), float(n.gep_cny_high - b.gep_cny_high))
        mine = changes[changes.county_code == code]
        by_service = mine.groupby("service").delta_constant_cny.sum()
        drivers = by_service.reindex(by_service.abs().sort_values(ascending=False).index)[:TOP_DRIVERS]
        band = policy.neutral_band_pct
        impact = ("neutral" if pct is not None and abs(pct) <= band or delta == 0 else
                  "positive" if delta > 0 else "negative")
        filled = max(float(b.default_filled_share), float(n.default_filled_share))
        quality_ok = b.quality_flag == "ok" and n.quality_flag == "ok"
        d = discount(policy, delta, pct, filled, quality_ok)
        rows.append({
            "unit_id": code, "unit_type": "county", "unit_name": n.county_name, "owner": "",
            "area_km2": float(n.area_km2), "baseline_year": base.year, "year": now.year,
            "indicator_set": n.indicator_set, "constant_price_year": int(n.constant_price_year),
            "gep_baseline_cny": float(b.gep_constant_cny), "gep_cny": float(n.gep_constant_cny),
            "delta_gep_cny": delta, "delta_gep_pct": pct,
            "delta_gep_low_cny": min(ends), "delta_gep_high_cny": max(ends),
            **{f"delta_{c}_cny": float(n[f"{c}_constant_cny"] - b[f"{c}_constant_cny"]) for c in vocabulary.CATEGORIES},
            "delta_gep_current_cny": float(n.gep_current_cny - b.gep_current_cny),
            "delta_by_service": "; ".join(f"{s} {v:+,.0f}" for s, v in by_service.sort_index().items()),
            "impact_flag": impact,
            "impact_drivers": "; ".join(f"{s} {v:+,.0f} CNY" for s, v in drivers.items() if v != 0),
            "discount_pp": d.discount_pp, "discount_tier": d.tier, "discount_reasons": d.reasons,
            "policy": f"{policy_path}: {policy.title}",
            "gep_per_km2_cny": None if pd.isna(n.gep_per_km2_cny) else float(n.gep_per_km2_cny),
            "gep_per_capita_cny": None if pd.isna(n.gep_per_capita_cny) else float(n.gep_per_capita_cny),
            "ggi": None if pd.isna(n.ggi) else float(n.ggi),
            "default_filled_share": filled,
            "quality_flag": "; ".join(f"{y}: {f}" for y, f in ((base.year, b.quality_flag), (now.year, n.quality_flag))
                                      if f != "ok") or "ok",
            "services_not_accounted": n.services_not_accounted,
            "run_ids": f"{base.year}: {run_ids.get(base.year, '')}; {now.year}: {run_ids.get(now.year, '')}",
            "code_version": code_version,
        })
    out = pd.DataFrame(rows, columns=vocabulary.names("loan_summary"))
    return out.replace({np.nan: None}) if len(out) else out


def assess(output_dir, baseline: int, year: int, policy: LoanPolicy, policy_path: str):
    """Assess every county accounted in both years of an output directory and publish the
    assessment (``OUT/assessments/BASELINE-YEAR/``); returns the loan summary and the files."""
    import json

    from gep import io
    from gep.runs import code_version, new_run_id
    from gep.store import OutputStore, holder_info

    store = OutputStore(output_dir)
    where = str(store.root)
    if not (store.root / "gep").exists():
        raise InputValidationError([InputProblem(where, "gep", "no accounted year in the output directory",
                                                 f"run `gep run --year {baseline}` and `--year {year}` first")])
    with store.lock(holder_info(new_run_id())):
        published = {d: io.read_dataset(store.root, d) for d in ("gep", "services", "extent")}
        problems = check_years(published, baseline, year, where)
        if problems:
            raise InputValidationError(problems)
        functional = published["services"]
        functional = functional[(functional.method == "functional") & (functional.status == "accounted")]
        years = {y: YearAccounts(y, *(df[df.year == y].reset_index(drop=True) for df in
                                      (published["gep"], functional, published["extent"])))
                 for y in (baseline, year)}
        changes = service_change(years[baseline], years[year])
        run_ids = {}
        for rel, entry in store.manifest()["partitions"].items():
            if rel.startswith("gep/"):
                y = int(rel.split("/")[1].removeprefix("year="))
                run_ids.setdefault(y, set()).add(entry.get("run_id", ""))
        summary = loan_summary(years[baseline], years[year], changes, policy, policy_path,
                               {y: ", ".join(sorted(v)) for y, v in run_ids.items()},
                               json.dumps(code_version(), sort_keys=True))
        tables = {"loan_summary": summary, "gep_change": changes,
                  "extent_change": extent_change(years[baseline], years[year])}
        files = store.publish_assessment(f"{baseline}-{year}", {k: io.to_table(v, k, {"policy": policy_path})
                                                                for k, v in tables.items()})
    return summary, files
