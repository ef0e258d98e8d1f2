"""County accounts for one year: ecosystem extent, service quantities and values, GEP.

Plain computation over the pixel blocks of one county (from the zonal engine, zonal.py): each block
is tallied on its own (extent sums, service quantities), the tallies are merged, and the merged
tally becomes the extent, services and gep rows. No files are read or written here.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from gep.area import AreaModel
from gep import vocabulary
from gep.config import ChecksConfig, EquivalentFactorSpec, LandCoverScheme, ReferenceData
from gep.errors import GepError
from gep.services.base import Indicator, Service, ServiceBlock, ServiceContext, TypeQuantity
from gep.growth import growth
from gep.equivalent_factor import METHOD as EQUIVALENT_FACTOR, equivalent_factor_rows
from gep.services.attributed import ALL_TYPES
from gep.valuation import UnitValue, deflated, priced
from gep.zonal import PixelBlock

log = logging.getLogger(__name__)

NO_CREDITED_TYPE = "no credited ecosystem type in the county"
PLAUSIBLE_GEP_PER_KM2 = (0.1e8, 1.5e8)  # CNY/km2, methodology §11.2 [E]
M2_PER_HA, M2_PER_KM2 = 1e4, 1e6


@dataclass
class ServiceRun:
    service: Service
    context: ServiceContext


@dataclass
class CountyJob:
    """Everything needed to account one county, except its pixels (they come from the engine)."""

    county_code: str
    county_name: str
    year: int
    geometry: BaseGeometry           # in the land-cover CRS
    polygon_m2: float                # area of the polygon on the area model (measured once, in validation)
    outside_raster_m2: float         # part of it outside the land-cover raster
    scheme: LandCoverScheme
    ref: ReferenceData
    services: list[ServiceRun]
    statistics: dict[str, float]
    area_model: AreaModel
    price_basis: str                 # "constant" or "current": the basis of value_cny (both are written)
    constant_price_year: int
    coverage: dict[str, float]       # input ("landcover", auxiliary name) -> share of the polygon covered
    checks: ChecksConfig
    indicator_set: str = "custom"
    indicator_set_changes: tuple[str, ...] = ()
    complete_indicator_set: bool = False  # every service of a named set is enabled (the §11.2 check applies)
    statistics_sources: dict[str, str] = field(default_factory=dict)  # field -> source
    equivalent_factor: EquivalentFactorSpec | None = None
    carbon_pools: "CarbonPools | None" = None
    carbon_baseline: tuple[int, dict[int, float]] | None = None  # (baseline year, code -> area m^2)

    @property
    def price_year(self) -> int:
        """Price year of value_cny: the accounting year (current prices) or the base year."""
        return self.year if self.price_basis == "current" else self.constant_price_year


@dataclass(frozen=True)
class CarbonPools:
    """Carbon densities per land-cover code [t C/ha] (InVEST Carbon's table), with its source."""

    path: str
    pools: dict[int, tuple[float, float, float, float]]  # code -> (c_above, c_below, c_soil, c_dead)
    sources: dict[int, str]


@dataclass
class CountyAccounts:
    extent: pd.DataFrame
    services: pd.DataFrame
    gep: pd.DataFrame
    carbon_stock: pd.DataFrame


@dataclass
class ZoneTally:
    """What the pixels of one county add up to (in one strip, or merged over all strips)."""

    class_area_m2: np.ndarray   # per code slot (last slot: codes out of the tallied range) [m^2]
    class_pixels: np.ndarray    # coverage-weighted pixel count per code slot
    services: dict[str, dict[str, TypeQuantity]]
    out_of_range_codes: dict[int, int]

    def add(self, other: "ZoneTally") -> None:
        """Add another tally into this one (the caller fixes the order: results are reproducible)."""
        self.class_area_m2 += other.class_area_m2
        self.class_pixels += other.class_pixels
        for key, by_type in other.services.items():
            mine = self.services.setdefault(key, {})
            for t, q in by_type.items():
                acc = mine.setdefault(t, TypeQuantity())
                for name, value in q.quantities.items():
                    acc.add(name, value)
                acc.area_m2 += q.area_m2
                acc.defaulted_area_m2 += q.defaulted_area_m2
        for code, n in other.out_of_range_codes.items():
            self.out_of_range_codes[code] = self.out_of_range_codes.get(code, 0) + n


class _TypeAux(Mapping):
    """One ecosystem type's auxiliary values: the slices of its codes' pixels, sampled on demand."""

    def __init__(self, values, spans: list[tuple[int, int]]):
        self._values, self._spans = values, spans

    def __getitem__(self, name: str) -> np.ndarray:
        parts = [self._values.slice(name, lo, hi) for lo, hi in self._spans]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _shares_or_none(cls, statistics) -> dict[str, float]:
    """The class's type shares, or none when its split shares are missing or impossible (a run
    that failed validation: the problem is reported there)."""
    try:
        return cls.type_shares(statistics) if all(f in statistics for f in cls.share_fields) else {}
    except ValueError:
        return {}


class CountyAccountant:
    """Turns one county's pixel blocks into tallies, and its merged tally into account tables."""

    def __init__(self, job: CountyJob, n_codes: int):
        self.job = job
        self.n_codes = n_codes
        scheme = job.scheme
        # Without its split shares (only in a run that failed validation: its codes are still
        # counted) a split class gives no ecosystem type, and accounts() refuses to run.
        self.shares_by_code = {code: _shares_or_none(cls, job.statistics) for code, cls in scheme.classes.items()}
        self.nodata_codes = sorted(c for c in {scheme.nodata, *scheme.excluded} if 0 <= c < n_codes)
        # code slots of each ecosystem type, with the share of the class's area the type gets
        self.type_codes: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for code, shares in self.shares_by_code.items():
            for t, share in shares.items():
                self.type_codes[t].append((code, share))

    def empty(self) -> ZoneTally:
        return ZoneTally(np.zeros(self.n_codes + 1), np.zeros(self.n_codes + 1), {}, {})

    def tally(self, block: PixelBlock) -> ZoneTally:
        """Extent sums and every service's quantities over one block of the county's pixels."""
        starts = block.code_starts
        type_area: dict[str, np.ndarray] = {}
        type_aux: dict[str, dict[str, np.ndarray]] = {}
        for t, codes in self.type_codes.items():
            parts = [(int(starts[c]), int(starts[c + 1]), share) for c, share in codes if starts[c + 1] > starts[c]]
            if not parts:
                continue
            if len(parts) == 1:  # the usual case: a view, no copy
                (lo, hi, share), = parts
                type_area[t] = block.area_m2[lo:hi] * share if share != 1.0 else block.area_m2[lo:hi]
            else:
                type_area[t] = np.concatenate([block.area_m2[lo:hi] * share for lo, hi, share in parts])
            type_aux[t] = _TypeAux(block.aux, [(lo, hi) for lo, hi, _ in parts])
        sblock = ServiceBlock(type_area_m2=type_area, type_aux=type_aux, aux=block.aux)
        services: dict[str, dict[str, TypeQuantity]] = {}
        for run in self.job.services:
            by_type = services.setdefault(run.service.key, {})
            for t, (quantities, defaulted_m2) in run.service.block_quantity(sblock, run.context).items():
                by_type[t] = TypeQuantity(quantities, float(type_area[t].sum()), defaulted_m2)
        return ZoneTally(block.class_area_m2, block.class_pixels, services, dict(block.out_of_range_codes))

    def unknown_codes(self, tally: ZoneTally) -> dict[int, int]:
        """Codes inside the county that the scheme does not know, with their pixel counts."""
        known = set(self.shares_by_code) | set(self.nodata_codes)
        found = {int(c): int(math.ceil(tally.class_pixels[c])) for c in np.flatnonzero(tally.class_pixels[:-1] > 0)
                 if int(c) not in known}
        return found | dict(tally.out_of_range_codes)

    def accounts(self, tally: ZoneTally) -> CountyAccounts:
        job = self.job
        if any(not shares for shares in self.shares_by_code.values()):
            raise GepError(f"county {job.county_code}: a land-cover class has no ecosystem type (its split shares "
                           "are missing from the statistics)")
        class_area = {c: float(tally.class_area_m2[c]) for c in self.shares_by_code
                      if c < self.n_codes and tally.class_pixels[c] > 0}
        class_pixels = {c: float(tally.class_pixels[c]) for c in class_area}
        nodata_m2 = float(sum(tally.class_area_m2[c] for c in self.nodata_codes))
        ident = {"county_code": job.county_code, "county_name": job.county_name, "year": job.year}
        extent = _extent_rows(ident, job.scheme, self.shares_by_code, class_area, class_pixels)
        services = _service_rows(ident, job, tally.services)
        if job.equivalent_factor is not None:
            areas = extent.groupby("ecosystem_type")["area_ha"].sum().to_dict()
            ef = equivalent_factor_rows(ident, job.ref, job.equivalent_factor, areas, job.year, job.constant_price_year,
                                        job.price_basis)
            services = pd.concat([services, pd.DataFrame(ef, columns=services.columns)], ignore_index=True)
        classified_m2 = sum(class_area.values())
        polygon_m2, outside_m2 = job.polygon_m2, job.outside_raster_m2
        gep = _gep_row(ident, job, services, polygon_m2, classified_m2, nodata_m2, outside_m2)
        stock = carbon_stock_rows(ident, job, class_area)
        return CountyAccounts(extent, services, gep, stock)


def _extent_rows(ident, scheme, shares_by_code, class_area, class_pixels) -> pd.DataFrame:
    rows = []
    for code in sorted(class_area):
        cls = scheme.classes[code]
        for t, share in shares_by_code[code].items():
            rows.append({**ident, "lc_scheme": scheme.key, "lc_code": code, "lc_name": cls.name,
                         "ecosystem_type": t, "type_share": share,
                         "area_ha": class_area[code] * share / M2_PER_HA,
                         "pixel_count": class_pixels[code] * share})
    return pd.DataFrame(rows, columns=[*ident, "lc_scheme", "lc_code", "lc_name", "ecosystem_type",
                                       "type_share", "area_ha", "pixel_count"])


def _status_row(ident, job: CountyJob, svc: Service, indicator: str, unit: str, status: str, reason: str,
                method: str) -> dict:
    return {**ident, "method": "functional", "service": svc.key, "service_zh": svc.name_zh, "category": svc.category,
            "indicator": indicator, "ecosystem_type": "all", "status": status, "status_reason": reason,
            "quantity_unit": unit, "price_year": job.price_year, "price_basis": job.price_basis,
            "method_detail": method, "price_source": "", "parameters": "", "notes": ""}


def _service_rows(ident, job: CountyJob, acc: dict[str, dict[str, TypeQuantity]]) -> pd.DataFrame:
    """One row per service × indicator × ecosystem type: quantity and value with their ranges and
    the audit trail; a service not accounted in the county gets a row saying why, with no value."""
    rows = []
    for run in job.services:
        svc, ctx = run.service, run.context
        opts, method = ctx.options, svc.method(ctx.options)
        status = svc.status(ctx)
        if status is not None:
            rows.append(_status_row(ident, job, svc, "all", "", status.status, status.reason, method))
            continue
        totals = acc.get(svc.key, {})
        done = svc.finalize(totals, ctx)
        accounted, written = 0, len(rows)
        for ind in svc.indicators(opts):
            for t in (*svc.credited_types(job.ref, opts), ALL_TYPES):
                q = done.quantities.get((t, ind.key))
                if q is None:
                    continue
                area_m2 = done.areas_m2.get((t, ind.key), totals[t].area_m2 if t in totals else 0.0)
                tq = totals.get(t)
                rows.append(_value_row(ident, job, svc, ctx, ind, t, np.asarray(q, dtype=np.float64), area_m2,
                                       tq, done.notes.get((t, ind.key), ""), method))
                accounted += ind.valued
            for v in svc.vector_inputs:
                if v.name == ind.key and v.name not in ctx.vectors:
                    rows.append(_status_row(ident, job, svc, ind.key, ind.unit, "no_input",
                                            f"no [vectors.{v.name}] layer in the run configuration ({v.description})",
                                            method))
        if not accounted and len(rows) == written:
            rows.append(_status_row(ident, job, svc, "all", "", "not_applicable", NO_CREDITED_TYPE, method))
    return pd.DataFrame(rows, columns=vocabulary.names("services"))


def _unit_value(job: CountyJob, svc: Service, ctx: ServiceContext, ind: Indicator, price_year: int
                ) -> UnitValue | None:
    """What one unit of the indicator is worth in price_year CNY (None: a memo indicator)."""
    if ind.deflator is not None:  # money of the accounting year, by the sector's price index
        return deflated(job.ref, ind.deflator, job.year, price_year)
    key = svc.price_key(ind, ctx, price_year)
    return None if key is None else priced(job.ref, key, price_year, ind.unit)


def _value_row(ident, job: CountyJob, svc: Service, ctx: ServiceContext, ind: Indicator, t: str, q: np.ndarray,
               area_m2: float, tq: TypeQuantity | None, notes: str, method: str) -> dict:
    if q.shape != (3,) or not np.all(np.isfinite(q)):
        raise GepError(f"county {job.county_code}, service {svc.key}, indicator {ind.key}, {t}: the quantity is not "
                       f"finite ({q}); nothing was written. This is a bug or an input the checks missed: report it "
                       "with the run record")
    if (q < 0).any():  # e.g. NPP below 0 over a type's land: a net carbon source, not a service
        raise GepError(f"county {job.county_code}, service {svc.key}, indicator {ind.key}, {t}: the quantity is "
                       f"negative ({q[0]:.6g} {ind.unit}; range {q.min():.6g} to {q.max():.6g}); nothing was written.\n"
                       "    fix: check the auxiliary inputs of this service over the county (a negative NPP makes "
                       "the land a net carbon source, which gep does not value as a service)")
    filled = tq.defaulted_area_m2 / tq.area_m2 if tq is not None and tq.area_m2 > 0 else 0.0
    params = "; ".join(c.cite() for c in svc.parameters(t, ctx))
    row = {**ident, "method": "functional", "service": svc.key, "service_zh": svc.name_zh, "category": svc.category,
           "indicator": ind.key, "ecosystem_type": t, "area_ha": area_m2 / M2_PER_HA,
           "quantity": q[0], "quantity_low": min(q[1], q[0]), "quantity_high": max(q[2], q[0]),
           "quantity_unit": ind.unit, "price_year": job.price_year, "price_basis": job.price_basis,
           "method_detail": method, "parameters": params, "notes": notes, "default_filled_share": filled}
    current = _unit_value(job, svc, ctx, ind, job.year)
    if current is None:
        return row | {"status": "memo", "status_reason": "physical quantity for the audit trail; valued through "
                      "the service's other indicators", "price_source": ""}
    constant = _unit_value(job, svc, ctx, ind, job.constant_price_year)
    uv = current if job.price_basis == "current" else constant
    return row | {"status": "accounted", "status_reason": "", "unit_price": uv.unit_price,
                  "unit_price_low": uv.low, "unit_price_high": uv.high, "price_unit": uv.price_unit,
                  "value_cny": uv.value(row["quantity"]), "value_cny_low": row["quantity_low"] * uv.low,
                  "value_cny_high": row["quantity_high"] * uv.high,
                  "value_current_cny": current.value(row["quantity"]), "value_constant_cny": constant.value(row["quantity"]),
                  "price_key": uv.key, "base_unit_price": uv.base_unit_price, "base_price_year": uv.base_price_year,
                  "price_index": uv.index, "index_factor": uv.index_factor, "price_source": uv.source}


PLAUSIBILITY_RULE = (f"methodology §11.2: GEP per km2 of classified area in {PLAUSIBLE_GEP_PER_KM2[0] / 1e8:g}-"
                     f"{PLAUSIBLE_GEP_PER_KM2[1] / 1e8:g}e8 CNY/km2, for a complete indicator set")


def _plausibility(job: CountyJob, per_km2: float, area_km2: float) -> str:
    """The §11.2 GEP-per-km² check, for a complete indicator set only."""
    low, high = PLAUSIBLE_GEP_PER_KM2
    if not job.complete_indicator_set:
        why = ("custom service list" if job.indicator_set == "custom" else
               f"indicator set {job.indicator_set} modified: {'; '.join(job.indicator_set_changes)}")
        return f"not checked: not a complete indicator set ({why})"
    if not area_km2 > 0:
        return "not checked: no classified area"
    if per_km2 < low:
        return "below range"
    if per_km2 > high:
        return "above range"
    return "ok"


def _sum_by_category(rows: pd.DataFrame, column: str) -> dict[str, float]:
    sums = rows.groupby("category")[column].sum() if len(rows) else pd.Series(dtype=float)
    return {c: float(sums.get(c, 0.0)) for c in vocabulary.CATEGORIES}


def _gep_row(ident, job: CountyJob, services: pd.DataFrame, polygon_m2, classified_m2, nodata_m2, outside_m2
             ) -> pd.DataFrame:
    """The county's GEP in the run's basis, in current and constant prices, by category; the
    equivalent-factor GEP beside it; GDP, population, GGI, GEP per capita and the conversion ratio;
    flags. GDP-based ratios use current prices, GDP's own."""
    functional = services[services.method == "functional"]
    valued = functional[functional.status == "accounted"]
    run, current, constant = (_sum_by_category(valued, c) for c in ("value_cny", "value_current_cny", "value_constant_cny"))
    gep, gep_current = sum(run.values()), sum(current.values())
    area_km2 = classified_m2 / M2_PER_KM2
    per_km2 = gep / area_km2 if area_km2 > 0 else float("nan")  # written as null
    flag = _plausibility(job, per_km2, area_km2)
    if flag.startswith(("below", "above")):
        log.warning("county %s %s: GEP per km2 is %.3g CNY, %s (%s)", job.county_code, job.year, per_km2, flag,
                    PLAUSIBILITY_RULE)
    accounted = list(dict.fromkeys(valued.service))
    not_accounted = list(dict.fromkeys(functional.service[~functional.status.isin(["accounted", "memo"])]))
    ef = services[(services.method == EQUIVALENT_FACTOR) & (services.status == "accounted")]
    stats, sources = job.statistics, job.statistics_sources
    gdp = stats["gdp_1e8_cny"] * 1e8 if "gdp_1e8_cny" in stats else None
    people = stats["population_1e4"] * 1e4 if "population_1e4" in stats else None
    row = {**ident, "indicator_set": job.indicator_set, "indicator_set_modified": bool(job.indicator_set_changes),
           "indicator_set_changes": "; ".join(job.indicator_set_changes),
           "price_basis": job.price_basis, "price_year": job.price_year, "constant_price_year": job.constant_price_year,
           "gep_cny": gep, "gep_cny_low": float(valued.value_cny_low.sum()),
           "gep_cny_high": float(valued.value_cny_high.sum()),
           **{f"{c}_cny": v for c, v in run.items()},
           "gep_current_cny": gep_current, **{f"{c}_current_cny": v for c, v in current.items()},
           "gep_constant_cny": sum(constant.values()), **{f"{c}_constant_cny": v for c, v in constant.items()},
           "gep_equivalent_factor_cny": float(ef.value_cny.sum()) if job.equivalent_factor is not None else None,
           "gep_yi_cny": gep / 1e8, "area_km2": area_km2, "gep_per_km2_cny": per_km2,
           "polygon_area_km2": polygon_m2 / M2_PER_KM2, "classified_area_km2": area_km2,
           "nodata_area_km2": nodata_m2 / M2_PER_KM2, "outside_raster_area_km2": outside_m2 / M2_PER_KM2,
           "gdp_cny": gdp, "gdp_source": sources.get("gdp_1e8_cny"),
           "population": people, "population_source": sources.get("population_1e4"),
           "gep_per_capita_cny": gep_current / people if people else None,
           "ggi": gep_current / gdp if gdp else None,
           "conversion_ratio": (current["provisioning"] + current["cultural"]) / gep_current if gep_current > 0 else None,
           **growth({}, None),
           "services": ",".join(accounted), "n_services": len(accounted), "n_services_not_accounted": len(not_accounted),
           "plausibility_flag": flag, "plausibility_rule": PLAUSIBILITY_RULE,
           **_quality(job, functional, polygon_m2, outside_m2, area_km2)}
    return pd.DataFrame([row], columns=vocabulary.names("gep"))


def inside_share(polygon_m2: float, outside_m2: float) -> float:
    """Share of a polygon inside the land-cover raster."""
    return 1.0 - outside_m2 / polygon_m2 if polygon_m2 > 0 else 0.0


def default_filled_shares(services: pd.DataFrame) -> dict[str, float]:
    """Per service: the share of its credited area whose auxiliary inputs were filled (raster
    nodata), over the rows with pixels."""
    rows = services[(services.method == "functional") & services.status.isin(["accounted", "memo"])
                    & (services.area_ha > 0)]
    rows = rows.drop_duplicates(["service", "ecosystem_type"])  # one area per type, not per indicator
    if not len(rows):
        return {}
    area = rows.groupby("service")["area_ha"].sum()
    defaulted = (rows.default_filled_share * rows.area_ha).groupby(rows.service).sum()
    return (defaulted / area).to_dict()


def _quality(job: CountyJob, services: pd.DataFrame, polygon_m2: float, outside_m2: float, area_km2: float
             ) -> dict[str, object]:
    """How complete a county's inputs were (``services``: its functional rows): coverage shares,
    default-filled shares, services not accounted; ``quality_flag`` is "ok" or every reason it is not."""
    checks, reasons = job.checks, []
    lc_share = inside_share(polygon_m2, outside_m2)
    if lc_share < checks.min_landcover_coverage:
        reasons.append(f"land cover covers {lc_share:.1%} of the county")
    aux_shares = {k: v for k, v in job.coverage.items() if k != "landcover"}
    for name, share in sorted(aux_shares.items()):
        if share < checks.min_aux_coverage:
            reasons.append(f"{name} valid over {share:.1%} of the county")
    if not area_km2 > 0:
        reasons.append("no classified land-cover pixels")
    filled = default_filled_shares(services)
    for key, share in sorted(filled.items()):
        if share > checks.max_default_filled_share:
            reasons.append(f"{key}: {share:.1%} of its area took filled inputs (raster nodata; each input's fill rule)")
    missing = list(dict.fromkeys(services.service[~services.status.isin(["accounted", "memo"])]))
    # Input gaps lower the quality; a service without a method or outside its scope does not.
    gaps = services[(services.status == "no_input") | (services.status_reason == NO_CREDITED_TYPE)]
    if len(gaps):
        reasons.append("not accounted: " + ", ".join(f"{s} ({r})" for s, r in
                                                     dict(zip(gaps.service, gaps.status_reason)).items()))
    return {"landcover_coverage_share": lc_share,
            "aux_coverage_share": min(aux_shares.values(), default=1.0),
            "default_filled_share": max(filled.values(), default=0.0),
            "services_not_accounted": ",".join(missing),
            "quality_flag": "; ".join(reasons) or "ok"}


def carbon_stock_rows(ident, job: CountyJob, class_area_m2: dict[int, float]) -> pd.DataFrame:
    """Carbon stock per land-cover code (ecosystem asset account): area × Σ pools, as InVEST
    Carbon (stock = Σ_pixels (c_above + c_below + c_soil + c_dead) × pixel area [ha]); and its
    change since the baseline year's land cover, when one is configured."""
    cols = vocabulary.names("carbon_stock")
    pools = job.carbon_pools
    if pools is None:
        return pd.DataFrame(columns=cols)
    base_year, base_area = job.carbon_baseline or (None, {})
    rows = []
    for code in sorted(set(class_area_m2) | set(base_area)):
        p = pools.pools[code]
        density = float(sum(p))
        area_ha = class_area_m2.get(code, 0.0) / M2_PER_HA
        row = {**ident, "lc_scheme": job.scheme.key, "lc_code": code, "lc_name": job.scheme.classes[code].name,
               "c_above": p[0], "c_below": p[1], "c_soil": p[2], "c_dead": p[3], "carbon_density": density,
               "area_ha": area_ha, "stock_t_c": density * area_ha, "baseline_year": base_year,
               "pools_source": f"{pools.path}: {pools.sources[code]}"}
        if base_year is not None:
            b_ha = base_area.get(code, 0.0) / M2_PER_HA
            row |= {"baseline_area_ha": b_ha, "baseline_stock_t_c": density * b_ha,
                    "stock_change_t_c": density * (area_ha - b_ha)}
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)
