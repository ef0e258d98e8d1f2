"""Green-loan assessment of counties: the GEP change between a baseline and an assessment year at
constant prices, what part of it land-cover change explains, and the discount a loan policy gives
for it (methodology §8.3, §12).

Plain functions over the published outputs of the two years (``gep``, ``services``, ``extent``):
both years must be accounted in the output directory, up to date with the configuration's inputs,
with one indicator set and one constant price year (one price vector: the change is the
ecosystems', not inflation's); the nominal change (current prices) is written beside it.

Attribution: the baseline year is recomputed on the assessment year's land cover, every other
input the baseline's (the counterfactual CF). ΔGEP_extent = CF − GEP_baseline, ΔGEP_other =
GEP_year − CF: they add up to ΔGEP exactly, per service, indicator and ecosystem type. Reading the
datasets and writing the assessment's tables are gep/io.py and gep/store.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gep import vocabulary
from gep.errors import InputProblem, InputValidationError
from gep.growth import COMPARABLE
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
    for col, what in COMPARABLE:
        values = sorted({str(v) for v in pd.concat([b[col], y_[col]])})
        if len(values) > 1:
            problems.append(InputProblem(where, f"gep.{col}", f"{baseline} and {year} were accounted with another "
                                         f"{what}: {values}", "re-run both years with one configuration"))
    return problems


def service_change(base: YearAccounts, now: YearAccounts, counterfactual: pd.DataFrame) -> pd.DataFrame:
    """ΔGEP per county, service, indicator and ecosystem type (functional accounted rows), at
    constant and at current prices, split into land-cover change and the rest by the
    ``counterfactual``'s services; a row present in one year only counts 0 in the other."""
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
    cf = counterfactual[KEY + ["value_constant_cny"]].rename(columns={"value_constant_cny": "cf"})
    m = m.merge(cf, on=KEY, how="left")
    cf_only = counterfactual.merge(m[KEY], on=KEY, how="left", indicator=True)
    if (cf_only._merge == "left_only").any():  # a type on the new land cover valued with the old inputs only
        extra = cf_only[cf_only._merge == "left_only"]
        raise vocabulary.SchemaViolation(f"gep_change: counterfactual rows without a row in either year: "
                                         f"{extra[KEY].head(3).to_dict(orient='records')}")
    m["cf"] = m.cf.fillna(0.0)
    m["delta_extent_constant_cny"] = m.cf - m.baseline_value_constant_cny
    m["delta_other_constant_cny"] = m.value_constant_cny - m.cf
    m["baseline_year"], m["year"] = base.year, now.year
    return m[vocabulary.names("gep_change")].sort_values(KEY, ignore_index=True)


BALANCE_HA = 1e-6  # opening + additions − reductions = closing, and the matrix's sums, to this [ha]


def extent_change(base: YearAccounts, now: YearAccounts, matrix: pd.DataFrame) -> pd.DataFrame:
    """The SEEA extent account per county and ecosystem type [ha]: opening, additions, reductions,
    net change, closing; the matrix's row and column sums must equal the opening and closing areas
    of the two years' extent accounts, and opening + additions − reductions = closing."""
    ident = ["county_code", "county_name", "ecosystem_type"]

    def by_type(e):
        return e.groupby(ident, as_index=False).area_ha.sum()
    m = by_type(base.extent).merge(by_type(now.extent), on=ident, how="outer", suffixes=("_opening", "_closing"))
    m = m.fillna({"area_ha_opening": 0.0, "area_ha_closing": 0.0}).rename(
        columns={"area_ha_opening": "opening_ha", "area_ha_closing": "closing_ha"})
    moved = matrix[matrix.from_type != matrix.to_type]
    adds = moved.groupby(["county_code", "to_type"]).area_ha.sum().rename("additions_ha")
    subs = moved.groupby(["county_code", "from_type"]).area_ha.sum().rename("reductions_ha")
    rows_sum = matrix[matrix.from_type != "nodata"].groupby(["county_code", "from_type"]).area_ha.sum()
    cols_sum = matrix[matrix.to_type != "nodata"].groupby(["county_code", "to_type"]).area_ha.sum()
    key = list(zip(m.county_code, m.ecosystem_type))
    m["additions_ha"] = [adds.get(k, 0.0) for k in key]
    m["reductions_ha"] = [subs.get(k, 0.0) for k in key]
    m["net_change_ha"] = m.additions_ha - m.reductions_ha
    m["baseline_year"], m["year"] = base.year, now.year
    checks = {"opening + additions - reductions - closing": m.opening_ha + m.net_change_ha - m.closing_ha,
              "matrix row sum - opening": pd.Series([rows_sum.get(k, 0.0) for k in key]) - m.opening_ha,
              "matrix column sum - closing": pd.Series([cols_sum.get(k, 0.0) for k in key]) - m.closing_ha}
    for what, diff in checks.items():
        worst = float(diff.abs().max()) if len(diff) else 0.0
        if not worst <= BALANCE_HA * max(1.0, float(m.opening_ha.max() if len(m) else 1.0)):
            raise vocabulary.SchemaViolation(f"extent_change: {what} off by {worst:.6g} ha: the two years' extent "
                                             "accounts and their change matrix disagree (nothing was written)")
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
        extent = float(mine.delta_extent_constant_cny.sum())
        d = discount(policy, delta, pct, filled, quality_ok, extent)
        rows.append({
            "unit_id": code, "unit_type": "county", "unit_name": n.county_name, "owner": "",
            "area_km2": float(n.area_km2), "baseline_year": base.year, "year": now.year,
            "indicator_set": n.indicator_set, "constant_price_year": int(n.constant_price_year),
            "gep_baseline_cny": float(b.gep_constant_cny), "gep_cny": float(n.gep_constant_cny),
            "delta_gep_cny": delta, "delta_gep_pct": pct,
            "delta_gep_low_cny": min(ends), "delta_gep_high_cny": max(ends),
            **{f"delta_{c}_cny": float(n[f"{c}_constant_cny"] - b[f"{c}_constant_cny"]) for c in vocabulary.CATEGORIES},
            "delta_gep_current_cny": float(n.gep_current_cny - b.gep_current_cny),
            "delta_gep_extent_cny": extent, "delta_gep_other_cny": delta - extent,
            "extent_share": extent / delta if delta != 0 else None,
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
    return pd.DataFrame(rows, columns=vocabulary.names("loan_summary"))


MAP_COLUMNS = ("unit_id", "unit_type", "unit_name", "baseline_year", "year", "gep_baseline_cny", "gep_cny",
               "delta_gep_cny", "delta_gep_pct", "delta_gep_extent_cny", "impact_flag", "discount_pp",
               "gep_per_km2_cny")


def unit_geometries(cfg, summary: pd.DataFrame):
    """The assessed units' polygons (the boundary file's, in its CRS) with their GEP and ΔGEP, to
    map without a join."""
    from gep import io
    b = cfg.boundaries
    counties, problems = io.read_boundaries(b.path, b.layer, b.code_field, b.name_field, b.encoding)
    if problems:
        raise InputValidationError(problems)
    geo = counties[["county_code", "geometry"]].rename(columns={"county_code": "unit_id"})
    values = summary[list(MAP_COLUMNS)].copy()
    for c in ("gep_baseline_cny", "gep_cny", "delta_gep_cny", "delta_gep_pct", "delta_gep_extent_cny", "discount_pp",
              "gep_per_km2_cny"):
        values[c] = pd.to_numeric(values[c]).astype("float64")  # None (a null) -> NaN, typed columns
    return geo.merge(values, on="unit_id", how="inner")


def assess(cfg, baseline: int, year: int, policy: LoanPolicy, policy_path: str):
    """Assess every county accounted in both years of the configuration's output directory and
    publish the assessment (``OUT/assessments/BASELINE-YEAR/``); returns the loan summary and the
    files written."""
    import json

    from gep import io, pipeline, report, runs, transitions
    from gep.store import OutputStore, holder_info

    store = OutputStore(cfg.output_dir)
    where = str(store.root)
    if not (store.root / "gep").exists():
        raise InputValidationError([InputProblem(where, "gep", "no accounted year in the output directory",
                                                 f"run `gep run --year {baseline}` and `--year {year}` first")])
    with store.lock(holder_info(runs.new_run_id())):
        published = {d: io.read_dataset(store.root, d) for d in ("gep", "services", "extent")}
        problems = check_years(published, baseline, year, where)
        if problems:
            raise InputValidationError(problems)
        for y in (baseline, year):  # the published years must come from the configuration's inputs
            r = runs.RecordedRun(cfg, y, None)
            try:
                r.validate()
                if not r.up_to_date():
                    problems.append(InputProblem(where, f"gep/year={y}", f"the published {y} does not come from the "
                                                 "configuration's current inputs, configuration or code",
                                                 f"re-run `gep run --config FILE --year {y}`, then assess"))
            finally:
                if r.prepared is not None:
                    r.prepared.close()
        if problems:
            raise InputValidationError(problems)
        functional = published["services"]
        functional = functional[(functional.method == "functional") & (functional.status == "accounted")]
        years = {y: YearAccounts(y, *(df[df.year == y].reset_index(drop=True) for df in
                                      (published["gep"], functional, published["extent"])))
                 for y in (baseline, year)}
        prepared = pipeline.prepare(cfg, baseline, landcover_year=year)  # the counterfactual
        try:
            cf = pd.concat([a.services for a in pipeline.account(prepared)], ignore_index=True)
            shares = {y: {c: {int(code): dict(zip(g.ecosystem_type, g.type_share)) for code, g in cg.groupby("lc_code")}
                          for c, cg in years[y].extent.groupby("county_code")} for y in (baseline, year)}
            matrix = transitions.extent_matrix(prepared, cfg.landcover[baseline], cfg.landcover[year],
                                               shares[baseline], shares[year], baseline, year,
                                               store.root / pipeline.CACHE)
        finally:
            prepared.close()
        cf = cf[(cf.method == "functional") & (cf.status == "accounted")]
        changes = service_change(years[baseline], years[year], cf)
        run_ids: dict[int, set[str]] = {}
        for y, _, entry in store.published_partitions("gep"):
            run_ids.setdefault(y, set()).add(entry.get("run_id", ""))
        summary = loan_summary(years[baseline], years[year], changes, policy, policy_path,
                               {y: ", ".join(sorted(v)) for y, v in run_ids.items()},
                               json.dumps(runs.code_version(), sort_keys=True))
        frames = {"loan_summary": summary, "gep_change": changes,
                  "extent_change": extent_change(years[baseline], years[year], matrix), "extent_matrix": matrix}
        tables = {k: io.to_table(v, k, {"policy": policy_path}) for k, v in frames.items()}
        units = unit_geometries(cfg, summary)
        meta = {"run": cfg.title, "policy": f"{policy_path}: {policy.title}",
                "indicator set": str(summary.indicator_set.iloc[0]) if len(summary) else "",
                "prices": f"constant {cfg.constant_price_year} prices (one price vector for both years)",
                "attribution": f"land-cover change = {baseline} recomputed on the {year} land cover, minus {baseline}; "
                               "other = the rest",
                "runs": "; ".join(f"{y}: {', '.join(sorted(v))}" for y, v in sorted(run_ids.items())),
                "gep": runs.code_version()["gep"]}
        page = report.render(summary, changes, matrix, units, {"title": cfg.title, **meta})
        files = store.publish_assessment(f"{baseline}-{year}", tables, {
            "assessment.xlsx": lambda path: io.write_excel(tables, path),
            "units.parquet": lambda path: io.write_geoparquet(units, path),
            "report.html": lambda path: io.write_text(page, path)})
    return summary, files
