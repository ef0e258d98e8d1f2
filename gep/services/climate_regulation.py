"""Climate regulation (气候调节): cooling by vegetation transpiration and water-surface evaporation
(methodology §4.9 with §0.5 items 4-6), replacement cost (electricity).

Vegetation (``vegetation_term``):
  ``transpiration_share`` (default): E = ET × T/ET × hot-day share × A × λ_v / (3,600 × r) [kWh],
  the transpiration part of ET by a per-type share (coefficients.csv ``transpiration_share``);
  ``et``: the same with total ET (T/ET = 1), the ET shortcut §0.5 item 4 says overstates.
Water surface (``water_term``), E_w = water-surface evaporation depth (county statistics):
  ``eer_hot_season`` (default): E = E_w × hot-day share × A × λ_v / (3,600 × r);
  ``s_garze``: E = E_w × A × λ_v / 3,600, the full year and no EER (S-Garze eq. 13);
  ``humidifier = true`` adds E_w × A × 10⁻³ × y (y kWh per m³ evaporated) to either form.
  Without the humidifier, s_garze / eer_hot_season = r / hot-day share (3 / 0.45 = 6.7).
Paddy (``paddy``): ``not_credited`` (default) or ``as_wetland`` (vegetation term with wetland's
T/ET share): §0.5 item 6, some standards credit paddies as wetlands, without a source.

λ_v latent heat [kJ/kg]; r air-conditioner energy-efficiency ratio; hot-day share = share of the
year's evaporation on days with Tmax > 26 °C (county statistics).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.services.base import Indicator, Service, ServiceBlock, ServiceContext, area_weighted, aux_values
from gep.services.inputs import ACTUAL_ET

KJ_PER_KWH = 3600.0


def evaporative_cooling_kwh(water_mm, area_m2, latent_heat_kj_per_kg, energy_efficiency_ratio) -> np.ndarray:
    """Electricity an air conditioner would use to remove the heat taken by evaporation [kWh].

    Parameters
    ----------
    water_mm : evaporated/transpired water depth in the cooling season [mm] (= kg/m^2)
    area_m2 : area [m^2]
    latent_heat_kj_per_kg : latent heat of vaporisation λ_v [kJ/kg]
    energy_efficiency_ratio : air-conditioner EER r [-] (1: the heat itself, no EER)

    Notes
    -----
    E = depth × A × λ_v / (3,600 × r); 1 mm over 1 m² = 1 kg; 1 kWh = 3,600 kJ.
    """
    return np.asarray(water_mm) * area_m2 * latent_heat_kj_per_kg / (KJ_PER_KWH * energy_efficiency_ratio)


def humidifier_kwh(water_mm, area_m2, humidifier_kwh_per_m3) -> np.ndarray:
    """Electricity a humidifier would use to evaporate the same water [kWh] (S-Garze eq. 13, y term).

    water_mm [mm/a], area_m2 [m^2], humidifier_kwh_per_m3 [kWh/m^3].
    """
    return np.asarray(water_mm) * 1e-3 * area_m2 * humidifier_kwh_per_m3


class ClimateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    vegetation_term: Literal["transpiration_share", "et"] = "transpiration_share"
    water_term: Literal["eer_hot_season", "s_garze"] = "eer_hot_season"
    humidifier: bool = False
    paddy: Literal["not_credited", "as_wetland"] = "not_credited"


class ClimateRegulation(Service):
    key = "climate_regulation"
    name_zh = "气候调节"
    category = "regulating"
    aux_inputs = (ACTUAL_ET,)
    statistics_fields = ("hot_day_share", "water_surface_evaporation_mm")
    Options = ClimateOptions

    def indicators(self, options):
        return (Indicator("electricity_saved", "kWh", "electricity", "air-conditioning (and humidifier) energy"),)

    def method(self, options):
        veg = ("hot-season transpiration (ET x T/ET)" if options.vegetation_term == "transpiration_share"
               else "hot-season total ET (ET shortcut)")
        water = ("water evaporation, hot season / EER" if options.water_term == "eer_hot_season"
                 else "water evaporation, full year, no EER (S-Garze form)")
        extra = " + humidifier" if options.humidifier else ""
        paddy = "; paddy credited as wetland" if options.paddy == "as_wetland" else ""
        return f"{veg} and {water}{extra} energy; replacement cost (electricity){paddy}"

    def _vegetation(self, ref, options) -> dict[str, str]:
        """Credited vegetation type -> the type whose T/ET share it takes."""
        veg = {t: t for t in ref.per_type("transpiration_share")}
        if options.paddy == "as_wetland":
            veg["cropland_paddy"] = "wetland"
        return veg

    def _water_types(self, ref):
        return tuple(ref.per_type("cooling_water_evaporation_credit"))

    def credited_types(self, ref, options):
        return tuple(self._vegetation(ref, options)) + self._water_types(ref)

    def parameters(self, ecosystem_type, ctx):
        ref, o = ctx.ref, ctx.options
        shared = [ref.coefficient("latent_heat_of_vaporisation"), ref.coefficient("ac_energy_efficiency_ratio")]
        if ecosystem_type in self._water_types(ref):
            extra = [ref.coefficient("humidifier_energy")] if o.humidifier else []
            return [ref.coefficient("cooling_water_evaporation_credit", ecosystem_type)] + shared + extra
        share = ([ref.coefficient("transpiration_share", self._vegetation(ref, o)[ecosystem_type])]
                 if o.vegetation_term == "transpiration_share" else [])
        return share + [ref.coefficient("et_default", ecosystem_type)] + shared

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, o, out = ctx.ref, ctx.options, {}
        # Linear in ET x area and in the water area: the pixels are summed first, the coefficients
        # (central, low, high) multiply the sums.
        lam = ref.coefficient("latent_heat_of_vaporisation").bounds3()
        eer = ref.coefficient("ac_energy_efficiency_ratio").bounds3(decreasing=True)
        hot = ctx.statistics["hot_day_share"]
        for t, share_of in self._vegetation(ref, o).items():
            area = block.type_area_m2.get(t)
            if area is None:  # not a credited_in loop: each type names the type whose share it takes
                continue
            et, filled = aux_values(block, ctx, ACTUAL_ET, t, self.key)
            share = (ref.coefficient("transpiration_share", share_of).bounds3()
                     if o.vegetation_term == "transpiration_share" else 1.0)
            q = evaporative_cooling_kwh(area_weighted(et, area) * share * hot, 1.0, lam, eer)
            out[t] = ({"electricity_saved": q}, float(area[filled].sum()))
        evaporation = ctx.statistics["water_surface_evaporation_mm"]
        for t in self._water_types(ref):
            area = block.type_area_m2.get(t)
            if area is None:
                continue
            credit = ref.coefficient("cooling_water_evaporation_credit", t).bounds3()
            water_m2 = float(area.sum())
            if o.water_term == "eer_hot_season":
                q = evaporative_cooling_kwh(evaporation * hot * credit, water_m2, lam, eer)
            else:
                q = evaporative_cooling_kwh(evaporation * credit, water_m2, lam, 1.0)
            if o.humidifier:
                q = q + humidifier_kwh(evaporation * credit, water_m2, ref.coefficient("humidifier_energy").bounds3())
            out[t] = ({"electricity_saved": q}, 0.0)
        return out


SERVICE = ClimateRegulation()
