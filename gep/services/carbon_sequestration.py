"""Carbon sequestration (固碳), from NPP (methodology §4.5).

Two routes, chosen by ``[services.carbon_sequestration] method``:

- ``nep`` (default, recommended): NEP = ratio × NPP (carbon units); CO₂ = 44/12 × NEP.
- ``photosynthesis``: CO₂ = 1.63 × NPP in dry matter (NPP_C / carbon fraction); overstates net uptake.

Price, ``price_rule`` (methodology §0.5 item 8):

- ``ets_from_2021`` (default): the national ETS price of the price year (``carbon_ets_YYYY`` in
  prices.csv) from 2021, when the market opened; the afforestation cost (``carbon_afforestation``)
  for earlier years. Current prices take the accounting year's own nominal market price; constant
  prices take the base year's (one price vector for every year), and CPI only brings a base-year
  price quoted in another year to the base year.
- ``fixed``: the price ``price`` (default ``carbon_afforestation``) for every year.

Credited ecosystem types: those with a ``nep_npp_ratio`` > 0 (cropland is harvested: 0).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.services.base import Indicator, Service, ServiceBlock, ServiceContext, area_weighted, aux_values
from gep.services.inputs import NPP

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO2 / C
ETS_OPENED = 2021        # the national carbon market opened on 16 July 2021


def co2_nep_route_t(npp_kgc_m2: np.ndarray, nep_npp_ratio, area_m2: np.ndarray) -> np.ndarray:
    """CO₂ sequestered per pixel by the NEP route [t CO2/a].

    Parameters
    ----------
    npp_kgc_m2 : net primary production [kg C m^-2 a^-1]
    nep_npp_ratio : NEP/NPP of the ecosystem type [-]
    area_m2 : pixel area [m^2]

    Notes
    -----
    CO₂ = 44/12 × ratio × NPP × A / 1000 (kg → t). S-Forest; guideline form (methodology §4.5b).
    """
    return CO2_PER_C * nep_npp_ratio * npp_kgc_m2 * area_m2 / 1000.0


def co2_photosynthesis_route_t(npp_kgc_m2: np.ndarray, carbon_fraction, co2_per_dm, area_m2: np.ndarray) -> np.ndarray:
    """CO₂ fixed per pixel by the photosynthesis route [t CO2/a].

    Parameters
    ----------
    npp_kgc_m2 : net primary production [kg C m^-2 a^-1]
    carbon_fraction : carbon per dry matter [kg C / kg DM] (0.45)
    co2_per_dm : CO₂ fixed per dry matter [kg CO2 / kg DM] (1.63)
    area_m2 : pixel area [m^2]

    Notes
    -----
    CO₂ = 1.63 × (NPP_C / 0.45) × A / 1000. S-Miao Table 2 (methodology §4.5a).
    """
    return co2_per_dm * npp_kgc_m2 / carbon_fraction * area_m2 / 1000.0


def carbon_price_key(rule: str, fixed: str, year: int) -> str:
    """The prices.csv key of the carbon price for a price year under a price rule (current prices:
    the accounting year's market; constant prices: the base year's, one price vector)."""
    if rule == "fixed":
        return fixed
    return f"carbon_ets_{year}" if year >= ETS_OPENED else "carbon_afforestation"


class CarbonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["nep", "photosynthesis"] = "nep"
    price_rule: Literal["ets_from_2021", "fixed"] = "ets_from_2021"
    price: str = "carbon_afforestation"


def co2_t(block: ServiceBlock, ctx: ServiceContext, t: str, method: str, service: str):
    """CO₂ of the type's pixels by a route as a (central, low, high) triple [t CO2], and the
    NPP-filled mask (shared with oxygen). Both routes are linear in NPP × area, so the pixels are
    summed first (Σ NPP × A) and the coefficients multiply the sum."""
    ref = ctx.ref
    npp, filled = aux_values(block, ctx, NPP, t, service)
    npp_area = area_weighted(npp, block.type_area_m2[t])  # [kg C/m2/a x m2]
    if method == "nep":
        return co2_nep_route_t(npp_area, ref.coefficient("nep_npp_ratio", t).bounds3(), 1.0), filled
    # carbon fraction divides: the low quantity takes its high value
    return co2_photosynthesis_route_t(npp_area, ref.coefficient("carbon_fraction_of_dry_matter").bounds3(decreasing=True),
                                      ref.coefficient("co2_per_dry_matter").bounds3(), 1.0), filled


class CarbonSequestration(Service):
    key = "carbon_sequestration"
    name_zh = "固碳"
    category = "regulating"
    aux_inputs = (NPP,)
    Options = CarbonOptions

    def indicators(self, options):
        return (Indicator("co2", "t CO2", options.price, "CO2 sequestered"),)

    def price_key(self, indicator, ctx, price_year):
        return carbon_price_key(ctx.options.price_rule, ctx.options.price, price_year)

    def method(self, options):
        route = ("NEP route: 44/12 x NEP/NPP x NPP" if options.method == "nep"
                 else "photosynthesis route: 1.63 x NPP dry matter")
        rule = ("carbon price: national ETS of the year from 2021, afforestation cost before" if options.price_rule
                == "ets_from_2021" else f"carbon price: {options.price} for every year")
        return f"{route}; {rule}"

    def credited_types(self, ref, options):
        return tuple(t for t, c in ref.per_type("nep_npp_ratio").items() if c.value > 0)

    def parameters(self, ecosystem_type, ctx):
        ref = ctx.ref
        params = [ref.coefficient("npp_default", ecosystem_type)]
        if ctx.options.method == "nep":
            return [ref.coefficient("nep_npp_ratio", ecosystem_type)] + params
        return [ref.coefficient("co2_per_dry_matter"), ref.coefficient("carbon_fraction_of_dry_matter")] + params

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        out = {}
        for t, area in self.credited_in(block, ctx):
            q, filled = co2_t(block, ctx, t, ctx.options.method, self.key)
            out[t] = ({"co2": q}, float(area[filled].sum()))
        return out


SERVICE = CarbonSequestration()
