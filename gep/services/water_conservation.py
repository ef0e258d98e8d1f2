"""Water conservation (水源涵养), water-balance method (methodology §4.1).

Q = Σ_i max(P_i − R_i − ET_i, 0) × A_i per pixel, with R_i = P_i × α_i. Valued by shadow
engineering: reservoir construction cost per m³ of storage (S-Garze eq. 3). Credited ecosystem
types: those with a ``runoff_coefficient`` in configs/coefficients.csv (forest and its sub-types,
garden 9.57 %, shrub, grassland, wetland; cropland, water and built-up are not credited).
Range: low with the high runoff coefficient and the high default ET, high with the low ones.
"""
from __future__ import annotations

import numpy as np

from gep.services.base import Indicator, Service, ServiceBlock, ServiceContext, aux_values, sum3
from gep.services.inputs import ACTUAL_ET, PRECIPITATION


def water_conservation_m3(precipitation_mm: np.ndarray, runoff_coefficient, actual_et_mm: np.ndarray,
                          area_m2: np.ndarray) -> np.ndarray:
    """Water conserved per pixel [m^3/a].

    Parameters
    ----------
    precipitation_mm : annual precipitation P [mm/a]
    runoff_coefficient : surface-runoff coefficient α of the ecosystem type [-]
    actual_et_mm : annual actual evapotranspiration ET [mm/a]
    area_m2 : pixel area A [m^2]

    Notes
    -----
    Q = max(P − P·α − ET, 0) · A · 10⁻³ (mm × m² = 10⁻³ m³); S-Garze eq. 2, S-Gong. The clip is per
    pixel: a dry pixel does not cancel a wet one.
    """
    depth_mm = np.maximum(precipitation_mm * (1.0 - runoff_coefficient) - actual_et_mm, 0.0)
    return depth_mm * 1e-3 * area_m2


class WaterConservation(Service):
    key = "water_conservation"
    name_zh = "水源涵养"
    category = "regulating"
    aux_inputs = (PRECIPITATION, ACTUAL_ET)

    def indicators(self, options):
        return (Indicator("water_conserved", "m3", "reservoir_storage", "water retained by the ecosystem"),)

    def method(self, options):
        return "water balance max(P - P*alpha - ET, 0) x A per pixel; shadow engineering (reservoir storage cost)"

    def credited_types(self, ref, options):
        return tuple(ref.per_type("runoff_coefficient"))

    def parameters(self, ecosystem_type, ctx):
        return [ctx.ref.coefficient("runoff_coefficient", ecosystem_type),
                ctx.ref.coefficient("et_default", ecosystem_type)]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        out = {}
        for t, area in self.credited_in(block, ctx):
            p, p_filled = aux_values(block, ctx, PRECIPITATION, t, self.key)
            et, et_filled = aux_values(block, ctx, ACTUAL_ET, t, self.key, decreasing=True)
            alpha = ctx.ref.coefficient("runoff_coefficient", t).triple(decreasing=True)
            q = water_conservation_m3(p, alpha, et, area)
            out[t] = ({"water_conserved": sum3(q)}, float(area[p_filled | et_filled].sum()))
        return out


SERVICE = WaterConservation()
