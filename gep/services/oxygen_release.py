"""Oxygen release (释氧 / 氧气提供), from the same NPP as carbon sequestration (methodology §4.6).

The CO₂/O₂ pairing is an explicit, recorded choice (methodology §0.5 item 3),
``[services.oxygen_release] pairing``:

- ``consistent`` (default): O₂ = 32/44 × the CO₂ net fixed by the carbon route in use (the
  carbon service's ``method``; NEP when carbon is not enabled): oxygen for the same carbon.
- ``s_garze``: O₂ = 1.19 × NPP in dry matter whatever the carbon route, as S-Garze (CO₂ from
  NEP, O₂ from NPP): this credits oxygen for carbon that is respired again; with the NEP route
  its O₂/CO₂ mass ratio is 1.19/(0.45 × ratio × 44/12) instead of 32/44.

Valued at the industrial oxygen cost (工业制氧法), default LY/T 1721's 1,000 CNY/t (2005);
``price = "oxygen_s_garze"`` takes S-Garze's 727 CNY/t (2010). Excluded by the NDRC 2022 set [L].
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from gep.services.base import Indicator, Service, ServiceBlock, ServiceContext, area_weighted, aux_values
from gep.services.carbon_sequestration import SERVICE as CARBON, co2_t
from gep.services.inputs import NPP


def o2_from_npp_t(npp_kgc_m2, carbon_fraction, o2_per_dm, area_m2):
    """O₂ released per pixel from NPP [t O2/a]: 1.19 × NPP_C / 0.45 × A / 1000 (S-Miao Table 2).

    npp_kgc_m2 [kg C m^-2 a^-1]; carbon_fraction [kg C/kg DM]; o2_per_dm [kg O2/kg DM]; area_m2 [m^2].
    """
    return o2_per_dm * npp_kgc_m2 / carbon_fraction * area_m2 / 1000.0


class OxygenOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pairing: Literal["consistent", "s_garze"] = "consistent"
    price: str = "oxygen"


class OxygenRelease(Service):
    key = "oxygen_release"
    name_zh = "释氧"
    category = "regulating"
    aux_inputs = (NPP,)
    Options = OxygenOptions

    def indicators(self, options):
        return (Indicator("o2", "t O2", options.price, "oxygen released"),)

    def _route(self, ctx: ServiceContext) -> str:
        carbon = ctx.run_options.get(CARBON.key)
        return carbon.method if carbon is not None else "nep"

    def method(self, options):
        if options.pairing == "s_garze":
            return "S-Garze pairing: O2 = 1.19 x NPP dry matter (whatever the carbon route); industrial oxygen cost"
        return "consistent pairing: O2 = 32/44 x net CO2 of the carbon route; industrial oxygen cost"

    def credited_types(self, ref, options):
        return CARBON.credited_types(ref, options)

    def parameters(self, ecosystem_type, ctx):
        ref = ctx.ref
        if ctx.options.pairing == "s_garze":
            return [ref.coefficient("o2_per_dry_matter"), ref.coefficient("carbon_fraction_of_dry_matter"),
                    ref.coefficient("npp_default", ecosystem_type)]
        carbon = CARBON.parameters(ecosystem_type, ServiceContext(ref, CARBON.Options(method=self._route(ctx)), {},
                                                                  ctx.county_code, ctx.year))
        return [ref.coefficient("o2_per_co2")] + carbon

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, out = ctx.ref, {}
        for t, area in self.credited_in(block, ctx):
            if ctx.options.pairing == "s_garze":
                npp, filled = aux_values(block, ctx, NPP, t, self.key)  # linear in NPP x area: summed first
                q = o2_from_npp_t(area_weighted(npp, area),
                                  ref.coefficient("carbon_fraction_of_dry_matter").bounds3(decreasing=True),
                                  ref.coefficient("o2_per_dry_matter").bounds3(), 1.0)
            else:
                co2, filled = co2_t(block, ctx, t, self._route(ctx), self.key)
                q = ref.coefficient("o2_per_co2").bounds3() * co2
            out[t] = ({"o2": q}, float(area[filled].sum()))
        return out


SERVICE = OxygenRelease()
