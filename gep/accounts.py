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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from gep.area import AreaModel
from gep import vocabulary
from gep.config import ChecksConfig, LandCoverScheme, ReferenceData
from gep.errors import GepError
from gep.services.base import Service, ServiceBlock, ServiceContext, TypeQuantity
from gep.valuation import index_price, value_cny
from gep.zonal import PixelBlock

log = logging.getLogger(__name__)

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
    price_year: int
    coverage: dict[str, float]       # input ("landcover", auxiliary name) -> share of the polygon covered
    checks: ChecksConfig


@dataclass
class CountyAccounts:
    extent: pd.DataFrame
    services: pd.DataFrame
    gep: pd.DataFrame


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
                acc.quantity += q.quantity
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


class CountyAccountant:
    """Turns one county's pixel blocks into tallies, and its merged tally into account tables."""

    def __init__(self, job: CountyJob, n_codes: int):
        self.job = job
        self.n_codes = n_codes
        scheme = job.scheme
        paddy = job.statistics.get("paddy_share")
        # Without a paddy share (only in a run that failed validation: its codes are still counted)
        # a split class gives no ecosystem type, and accounts() refuses to run.
        self.shares_by_code = {code: cls.type_shares(paddy) if cls.split is None or paddy is not None else {}
                               for code, cls in scheme.classes.items()}
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
            for t, (quantity, defaulted_m2) in run.service.block_quantity(sblock, run.context).items():
                by_type[t] = TypeQuantity(quantity, float(type_area[t].sum()), defaulted_m2)
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
            raise GepError(f"county {job.county_code}: a land-cover class has no ecosystem type (paddy_share missing)")
        class_area = {c: float(tally.class_area_m2[c]) for c in self.shares_by_code
                      if c < self.n_codes and tally.class_pixels[c] > 0}
        class_pixels = {c: float(tally.class_pixels[c]) for c in class_area}
        nodata_m2 = float(sum(tally.class_area_m2[c] for c in self.nodata_codes))
        ident = {"county_code": job.county_code, "county_name": job.county_name, "year": job.year}
        extent = _extent_rows(ident, job.scheme, self.shares_by_code, class_area, class_pixels)
        services = _service_rows(ident, job, tally.services)
        classified_m2 = sum(class_area.values())
        polygon_m2, outside_m2 = job.polygon_m2, job.outside_raster_m2
        gep = _gep_row(ident, job, services, polygon_m2, classified_m2, nodata_m2, outside_m2)
        return CountyAccounts(extent, services, gep)


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


def _service_rows(ident, job: CountyJob, acc) -> pd.DataFrame:
    rows = []
    for run in job.services:
        svc, opts = run.service, run.context.options
        unit = svc.quantity_unit(opts)
        price = index_price(job.ref, svc.price_key(opts), job.price_year, unit)
        for t in svc.credited_types(job.ref, opts):
            tq = acc.get(svc.key, {}).get(t)
            if tq is None or tq.area_m2 <= 0:
                continue
            rows.append({
                **ident, "service": svc.key, "service_zh": svc.name_zh, "category": svc.category,
                "ecosystem_type": t, "area_ha": tq.area_m2 / M2_PER_HA,
                "quantity": tq.quantity, "quantity_unit": unit,
                "unit_price": price.unit_price, "price_unit": price.price.unit, "price_year": price.price_year,
                "value_cny": value_cny(tq.quantity, price), "method": svc.method(opts),
                "price_key": price.price.key, "base_unit_price": price.price.value,
                "base_price_year": price.price.price_year, "cpi_factor": price.cpi_factor,
                "price_source": price.price.cite(),
                "parameters": "; ".join(c.cite() for c in svc.parameters(t, run.context)),
                "default_filled_share": tq.defaulted_area_m2 / tq.area_m2,
            })
    return pd.DataFrame(rows, columns=vocabulary.names("services"))


def _gep_row(ident, job: CountyJob, services: pd.DataFrame, polygon_m2, classified_m2, nodata_m2, outside_m2
             ) -> pd.DataFrame:
    by_cat = services.groupby("category")["value_cny"].sum() if len(services) else pd.Series(dtype=float)
    gep = float(by_cat.sum())
    area_km2 = classified_m2 / M2_PER_KM2
    per_km2 = gep / area_km2 if area_km2 > 0 else float("nan")  # written as null
    low, high = PLAUSIBLE_GEP_PER_KM2
    if not area_km2 > 0:
        flag = "no classified area"
    elif per_km2 < low:
        flag = f"below {low / 1e8:g}e8 CNY/km2"
    elif per_km2 > high:
        flag = f"above {high / 1e8:g}e8 CNY/km2"
    else:
        flag = "ok"
    if flag != "ok":
        log.warning("county %s %s: GEP per km2 is %s (methodology §11.2)", job.county_code, job.year,
                    flag if math.isnan(per_km2) else f"{per_km2:.3g} CNY, {flag}")
    keys = [r.service.key for r in job.services]
    quality = _quality(job, services, polygon_m2, outside_m2, area_km2)
    row = {**ident, "gep_cny": gep,
           "provisioning_cny": float(by_cat.get("provisioning", 0.0)),
           "regulating_cny": float(by_cat.get("regulating", 0.0)),
           "cultural_cny": float(by_cat.get("cultural", 0.0)),
           "gep_yi_cny": gep / 1e8, "area_km2": area_km2, "gep_per_km2_cny": per_km2,
           "polygon_area_km2": polygon_m2 / M2_PER_KM2, "classified_area_km2": area_km2,
           "nodata_area_km2": nodata_m2 / M2_PER_KM2, "outside_raster_area_km2": outside_m2 / M2_PER_KM2,
           "price_year": job.price_year, "services": ",".join(keys), "n_services": len(keys),
           "plausibility_flag": flag, **quality}
    return pd.DataFrame([row])


def inside_share(polygon_m2: float, outside_m2: float) -> float:
    """Share of a polygon inside the land-cover raster."""
    return 1.0 - outside_m2 / polygon_m2 if polygon_m2 > 0 else 0.0


def default_filled_shares(services: pd.DataFrame) -> dict[str, float]:
    """Per service: the share of its credited area whose auxiliary inputs took per-class defaults."""
    if not len(services):
        return {}
    area = services.groupby("service")["area_ha"].sum()
    defaulted = (services.default_filled_share * services.area_ha).groupby(services.service).sum()
    return (defaulted / area).to_dict()


def _quality(job: CountyJob, services: pd.DataFrame, polygon_m2: float, outside_m2: float, area_km2: float
             ) -> dict[str, object]:
    """How complete a county's inputs were: coverage shares, default-filled shares, services not
    accounted; ``quality_flag`` is "ok" or every reason it is not."""
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
            reasons.append(f"{key}: {share:.1%} of its area took per-class default inputs")
    missing = [r.service.key for r in job.services if r.service.key not in filled]
    if missing:
        reasons.append(f"not accounted (no credited ecosystem type in the county): {', '.join(missing)}")
    return {"landcover_coverage_share": lc_share,
            "aux_coverage_share": min(aux_shares.values(), default=1.0),
            "default_filled_share": max(filled.values(), default=0.0),
            "services_not_accounted": ",".join(missing),
            "quality_flag": "; ".join(reasons) or "ok"}
