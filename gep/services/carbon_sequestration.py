"""Carbon sequestration (固碳), from NPP (methodology §4.5).

Two routes, chosen by ``[services.carbon_sequestration] method``:

- ``nep`` (default, recommended): NEP = ratio × NPP (carbon units); CO₂ = 44/12 × NEP.
- ``photosynthesis``: CO₂ = 1.63 × NPP in dry matter (NPP_C / carbon fraction); overstates net uptake.

Valued with the configured carbon price (default: afforestation cost, S-Garze). Credited ecosystem
types: those with a ``nep_npp_ratio`` > 0 in configs/coefficients.csv (cropland is harvested: 0).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.services.base import Service, ServiceBlock, ServiceContext, aux_values
from gep.services.inputs import NPP

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO2 / C


def co2_nep_route_t(npp_kgc_m2: np.ndarray, nep_npp_ratio: float, area_m2: np.ndarray) -> np.ndarray:
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


def co2_photosynthesis_route_t(npp_kgc_m2: np.ndarray, carbon_fraction: float, co2_per_dm: float,
                               area_m2: np.ndarray) -> np.ndarray:
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


class CarbonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["nep", "photosynthesis"] = "nep"
    price: str = "carbon_afforestation"


class CarbonSequestration(Service):
    key = "carbon_sequestration"
    name_zh = "固碳"
    category = "regulating"
    aux_inputs = (NPP,)
    Options = CarbonOptions

    def quantity_unit(self, options):
        return "t CO2"

    def price_key(self, options):
        return options.price

    def method(self, options):
        route = ("NEP route: 44/12 x NEP/NPP x NPP" if options.method == "nep"
                 else "photosynthesis route: 1.63 x NPP dry matter")
        return f"{route}; carbon price ({options.price})"

    def credited_types(self, ref, options):
        return tuple(t for t, c in ref.per_type("nep_npp_ratio").items() if c.value > 0)

    def parameters(self, ecosystem_type, ctx):
        ref = ctx.ref
        params = [ref.coefficient("npp_default", ecosystem_type)]
        if ctx.options.method == "nep":
            return [ref.coefficient("nep_npp_ratio", ecosystem_type)] + params
        return [ref.coefficient("co2_per_dry_matter"), ref.coefficient("carbon_fraction_of_dry_matter")] + params

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, out = ctx.ref, {}
        for t in self.credited_types(ref, ctx.options):
            area = block.type_area_m2.get(t)
            if area is None:
                continue
            npp, filled = aux_values(block, ctx, NPP, t)
            if ctx.options.method == "nep":
                q = co2_nep_route_t(npp, ref.coefficient("nep_npp_ratio", t).value, area)
            else:
                q = co2_photosynthesis_route_t(npp, ref.coefficient("carbon_fraction_of_dry_matter").value,
                                               ref.coefficient("co2_per_dry_matter").value, area)
            out[t] = (float(q.sum()), float(area[filled].sum()))
        return out


SERVICE = CarbonSequestration()
