"""The equivalent-factor (benefit-transfer) method of Xie et al. 2015, from the extent account alone
(methodology §9, §9.3, §9.4).

    value [CNY] = A_t [ha] × e_{i,t} × E_a,    E_a = standard equivalent (3,406.50 CNY/ha @2010)
                                                     × CPI(2010 → price year) × regional factor

for every service i of the table and ecosystem type t (mapped to a row of the table by
configs/equivalent_factor.toml). Its rows carry ``method = "equivalent_factor"`` and its own GEP
column: it is a different method (benefit transfer, supporting services included), never summed
with the functional values. Nutrient cycling and biodiversity are supporting services: their rows
are valued (status ``supporting``) and not part of the equivalent-factor GEP (methodology §1.1).
"""
from __future__ import annotations

from gep.config import EquivalentFactorSpec, ReferenceData
from gep.valuation import UnitValue, priced

METHOD = "equivalent_factor"
INDICATOR = "xie_2015"


def standard_equivalent(ref: ReferenceData, spec: EquivalentFactorSpec, price_year: int) -> tuple[float, UnitValue]:
    """E_a [CNY/ha of price_year]: the standard equivalent by CPI × the regional factor."""
    std = priced(ref, spec.standard_equivalent_price, price_year, "ha")
    return std.unit_price * spec.regional_factor.value, std


def equivalent_factor_rows(ident: dict, ref: ReferenceData, spec: EquivalentFactorSpec, type_area_ha: dict[str, float],
                           year: int, constant_year: int, basis: str) -> list[dict]:
    """One row per ecosystem type × service with a non-zero equivalent, in the services layout."""
    run_year = year if basis == "current" else constant_year
    current, constant = standard_equivalent(ref, spec, year), standard_equivalent(ref, spec, constant_year)
    (e_current, _), (e_constant, _) = current, constant
    e_run, std = current if basis == "current" else constant
    rf = spec.regional_factor
    rows = []
    for t, area in sorted(type_area_ha.items()):
        xie = spec.types[t].xie_type
        for service, meta in spec.services.items():
            e = spec.equivalents[xie][service]
            if e == 0 or area <= 0:
                continue
            supporting = meta.category == "supporting"
            unit_price = e * e_run
            rows.append({
                **ident, "method": METHOD, "service": service, "service_zh": meta.name_zh, "category": meta.category,
                "indicator": INDICATOR, "ecosystem_type": t,
                "status": "supporting" if supporting else "accounted",
                "status_reason": ("supporting service: valued by the method, not part of GEP (methodology §1.1)"
                                  if supporting else ""),
                "area_ha": area, "quantity": area, "quantity_low": area, "quantity_high": area, "quantity_unit": "ha",
                "unit_price": unit_price, "unit_price_low": unit_price, "unit_price_high": unit_price,
                "price_unit": "CNY/ha", "price_year": run_year, "price_basis": basis,
                "value_cny": area * unit_price, "value_cny_low": area * unit_price, "value_cny_high": area * unit_price,
                "value_current_cny": area * e * e_current, "value_constant_cny": area * e * e_constant,
                "method_detail": (f"Xie et al. 2015 equivalent {e:g} ({xie} row, {spec.types[t].note}) x E_a "
                                  f"{e_run:,.2f} CNY/ha = standard equivalent x CPI x regional factor {rf.value:g}"),
                "price_key": std.key, "base_unit_price": std.base_unit_price, "base_price_year": std.base_price_year,
                "price_index": std.index, "index_factor": std.index_factor, "price_source": std.source,
                "parameters": (f"equivalent[{xie}/{service}]={e:g} 1 ({spec.row_sources[xie]}); "
                               f"regional_factor={rf.value:g} 1 ({rf.tag}: {rf.source})"),
                "notes": "from the extent account alone (benefit transfer); not summed with functional values",
                "default_filled_share": 0.0,
            })
    return rows
