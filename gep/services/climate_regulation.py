"""Climate regulation (气候调节): cooling by vegetation transpiration and water-surface evaporation
(methodology §4.9, ET form).

Vegetation:  E = ET_hot × A × λ_v / (3,600 × r)            [kWh]
Water:       E = E_w,hot × A × λ_v / (3,600 × r)  (+ E_w × A × 10⁻³ × y with the humidifier term)
ET_hot = ET × hot-day share (share of the year's ET on days with Tmax > 26 °C, county statistics);
λ_v latent heat [kJ/kg]; r air-conditioner energy-efficiency ratio; y humidifier energy [kWh/m³].
Valued at the electricity price (replacement cost). The humidifier term is off by default (humid
Zhejiang); the water cooling term is divided by r (methodology §4.9 recommendation).
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.services.base import Service, ServiceBlock, ServiceContext, aux_values
from gep.services.inputs import ACTUAL_ET

KJ_PER_KWH = 3600.0


def evaporative_cooling_kwh(water_mm: np.ndarray | float, area_m2: np.ndarray, latent_heat_kj_per_kg: float,
                            energy_efficiency_ratio: float) -> np.ndarray:
    """Electricity an air conditioner would use to remove the heat taken by evaporation [kWh].

    Parameters
    ----------
    water_mm : evaporated/transpired water depth in the cooling season [mm] (= kg/m^2)
    area_m2 : area [m^2]
    latent_heat_kj_per_kg : latent heat of vaporisation λ_v [kJ/kg]
    energy_efficiency_ratio : air-conditioner EER r [-]

    Notes
    -----
    E = depth × A × λ_v / (3,600 × r); 1 mm over 1 m² = 1 kg; 1 kWh = 3,600 kJ.
    """
    return np.asarray(water_mm) * area_m2 * latent_heat_kj_per_kg / (KJ_PER_KWH * energy_efficiency_ratio)


def humidifier_kwh(water_mm: float, area_m2: np.ndarray, humidifier_kwh_per_m3: float) -> np.ndarray:
    """Electricity a humidifier would use to evaporate the same water [kWh] (S-Garze eq. 13, y term).

    water_mm [mm/a], area_m2 [m^2], humidifier_kwh_per_m3 [kWh/m^3].
    """
    return water_mm * 1e-3 * area_m2 * humidifier_kwh_per_m3


class ClimateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    humidifier: bool = False


class ClimateRegulation(Service):
    key = "climate_regulation"
    name_zh = "气候调节"
    category = "regulating"
    aux_inputs = (ACTUAL_ET,)
    statistics_fields = ("hot_day_share", "water_surface_evaporation_mm")
    Options = ClimateOptions

    def quantity_unit(self, options):
        return "kWh"

    def price_key(self, options):
        return "electricity"

    def method(self, options):
        water = "water evaporation cooling" + (" + humidifier" if options.humidifier else "")
        return f"ET form: hot-season transpiration and {water} energy / EER; replacement cost (electricity)"

    def _vegetation_types(self, ref):
        return tuple(ref.per_type("cooling_et_credit"))

    def _water_types(self, ref):
        return tuple(ref.per_type("cooling_water_evaporation_credit"))

    def credited_types(self, ref, options):
        return self._vegetation_types(ref) + self._water_types(ref)

    def parameters(self, ecosystem_type, ctx):
        ref = ctx.ref
        shared = [ref.coefficient("latent_heat_of_vaporisation"), ref.coefficient("ac_energy_efficiency_ratio")]
        if ecosystem_type in self._water_types(ref):
            extra = [ref.coefficient("humidifier_energy")] if ctx.options.humidifier else []
            return [ref.coefficient("cooling_water_evaporation_credit", ecosystem_type)] + shared + extra
        return [ref.coefficient("cooling_et_credit", ecosystem_type), ref.coefficient("et_default", ecosystem_type)] + shared

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, out = ctx.ref, {}
        lam = ref.coefficient("latent_heat_of_vaporisation").value
        eer = ref.coefficient("ac_energy_efficiency_ratio").value
        hot = ctx.statistics["hot_day_share"]
        for t in self._vegetation_types(ref):
            area = block.type_area_m2.get(t)
            if area is None:
                continue
            et, filled = aux_values(block, ctx, ACTUAL_ET, t)
            credit = ref.coefficient("cooling_et_credit", t).value
            q = evaporative_cooling_kwh(et * hot * credit, area, lam, eer)
            out[t] = (float(q.sum()), float(area[filled].sum()))
        evaporation = ctx.statistics["water_surface_evaporation_mm"]
        for t in self._water_types(ref):
            area = block.type_area_m2.get(t)
            if area is None:
                continue
            credit = ref.coefficient("cooling_water_evaporation_credit", t).value
            q = evaporative_cooling_kwh(evaporation * hot * credit, area, lam, eer)
            if ctx.options.humidifier:
                q = q + humidifier_kwh(evaporation * credit, area, ref.coefficient("humidifier_energy").value)
            out[t] = (float(q.sum()), 0.0)
        return out


SERVICE = ClimateRegulation()
