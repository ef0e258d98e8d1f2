"""County accounts for one year: ecosystem extent, service quantities and values, GEP.

Plain computation over the pixels of one county (zonal.py); no files are written here.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio
from shapely.geometry.base import BaseGeometry

from gep.area import AreaModel, polygon_area_m2
from gep.config import LandCoverScheme, ReferenceData
from gep.errors import GepError
from gep.services.base import Service, ServiceBlock, ServiceContext, TypeQuantity
from gep.valuation import index_price, value_cny
from gep.zonal import AuxSource, iter_county_blocks, outside_raster_area_m2

log = logging.getLogger(__name__)

PLAUSIBLE_GEP_PER_KM2 = (0.1e8, 1.5e8)  # CNY/km2, methodology §11.2 [E]
M2_PER_HA, M2_PER_KM2 = 1e4, 1e6


@dataclass
class ServiceRun:
    service: Service
    context: ServiceContext


@dataclass
class CountyJob:
    county_code: str
    county_name: str
    year: int
    geometry: BaseGeometry           # in the land-cover CRS
    landcover: rasterio.DatasetReader
    scheme: LandCoverScheme
    ref: ReferenceData
    services: list[ServiceRun]
    aux: dict[str, AuxSource]
    statistics: dict[str, float]
    area_model: AreaModel
    price_year: int
    max_block_pixels: int


@dataclass
class CountyAccounts:
    extent: pd.DataFrame
    services: pd.DataFrame
    gep: pd.DataFrame


def _type_luts(scheme: LandCoverScheme, paddy_share: float | None) -> dict[int, dict[str, float]]:
    return {code: cls.type_shares(paddy_share) for code, cls in scheme.classes.items()}


def account_county(job: CountyJob) -> CountyAccounts:
    scheme = job.scheme
    shares_by_code = _type_luts(scheme, job.statistics.get("paddy_share"))
    nodata_codes = {scheme.nodata, *scheme.excluded}
    class_area: dict[int, float] = defaultdict(float)
    class_pixels: dict[int, float] = defaultdict(float)
    nodata_m2 = 0.0
    acc: dict[str, dict[str, TypeQuantity]] = {r.service.key: defaultdict(TypeQuantity) for r in job.services}

    for block in iter_county_blocks(job.landcover, job.geometry, job.area_model, job.aux, job.max_block_pixels):
        codes, inverse = np.unique(block.codes, return_inverse=True)
        area_by_code = np.bincount(inverse, weights=block.area_m2, minlength=codes.size)
        pixels_by_code = np.bincount(inverse, weights=block.coverage, minlength=codes.size)
        type_share: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(codes.size))
        for i, code in enumerate(codes.tolist()):
            if code in nodata_codes:
                nodata_m2 += area_by_code[i]
                continue
            if code not in shares_by_code:
                raise GepError(f"land-cover code {code} in county {job.county_code} is not in scheme "
                               f"{scheme.key} (validation should have caught this)")
            class_area[code] += area_by_code[i]
            class_pixels[code] += pixels_by_code[i]
            for t, s in shares_by_code[code].items():
                type_share[t][i] = s
        type_area = {t: block.area_m2 * lut[inverse] for t, lut in type_share.items() if lut.any()}
        sblock = ServiceBlock(type_area_m2=type_area, aux=block.aux)
        for run in job.services:
            result = run.service.block_quantity(sblock, run.context)
            for t, (quantity, defaulted_m2) in result.items():
                tq = acc[run.service.key][t]
                tq.quantity += quantity
                tq.area_m2 += float(type_area[t].sum())
                tq.defaulted_area_m2 += defaulted_m2

    ident = {"county_code": job.county_code, "county_name": job.county_name, "year": job.year}
    extent = _extent_rows(ident, scheme, shares_by_code, class_area, class_pixels)
    services = _service_rows(ident, job, acc)
    classified_m2 = sum(class_area.values())
    polygon_m2 = polygon_area_m2(job.geometry, job.landcover.crs, job.area_model)
    outside_m2 = outside_raster_area_m2(job.landcover, job.geometry, job.area_model)
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
            tq = acc[svc.key].get(t)
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
    return pd.DataFrame(rows)


def _gep_row(ident, job: CountyJob, services: pd.DataFrame, polygon_m2, classified_m2, nodata_m2, outside_m2
             ) -> pd.DataFrame:
    by_cat = services.groupby("category")["value_cny"].sum() if len(services) else pd.Series(dtype=float)
    gep = float(by_cat.sum())
    area_km2 = classified_m2 / M2_PER_KM2
    per_km2 = gep / area_km2 if area_km2 > 0 else float("nan")
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
        log.warning("county %s %s: GEP per km2 %.3g CNY is %s (methodology §11.2)",
                    job.county_code, job.year, per_km2, flag)
    keys = [r.service.key for r in job.services]
    row = {**ident, "gep_cny": gep,
           "provisioning_cny": float(by_cat.get("provisioning", 0.0)),
           "regulating_cny": float(by_cat.get("regulating", 0.0)),
           "cultural_cny": float(by_cat.get("cultural", 0.0)),
           "gep_yi_cny": gep / 1e8, "area_km2": area_km2, "gep_per_km2_cny": per_km2,
           "polygon_area_km2": polygon_m2 / M2_PER_KM2, "classified_area_km2": area_km2,
           "nodata_area_km2": nodata_m2 / M2_PER_KM2, "outside_raster_area_km2": outside_m2 / M2_PER_KM2,
           "price_year": job.price_year, "services": ",".join(keys), "n_services": len(keys),
           "plausibility_flag": flag}
    return pd.DataFrame([row])
