"""Water conservation (水源涵养), water-balance method (methodology §4.1).

Q = Σ_i (P_i − R_i − ET_i) × A_i, with R_i = P_i × α_i; negatives clipped to 0 per pixel.
Valued by shadow engineering: reservoir construction cost per m³ of storage (S-Garze eq. 3).
Credited ecosystem types: those with a ``runoff_coefficient`` in configs/coefficients.csv.
"""
from __future__ import annotations

import numpy as np

from gep.services.base import Service, ServiceBlock, ServiceContext, aux_values
from gep.services.inputs import ACTUAL_ET, PRECIPITATION



def water_conservation_m3(precipitation_mm: np.ndarray, runoff_coefficient: float,
                          actual_et_mm: np.ndarray, area_m2: np.ndarray) -> np.ndarray:
    """Water conserved per pixel [m^3/a].

    Parameters
    ----------
    precipitation_mm : annual precipitation P [mm/a]
    runoff_coefficient : surface-runoff coefficient α of the ecosystem type [-]
    actual_et_mm : annual actual evapotranspiration ET [mm/a]
    area_m2 : pixel area A [m^2]

    Notes
    -----
    Q = max(P − P·α − ET, 0) · A · 10⁻³ (mm × m² = 10⁻³ m³); S-Garze eq. 2, S-Gong.
    """
    depth_mm = np.maximum(precipitation_mm * (1.0 - runoff_coefficient) - actual_et_mm, 0.0)
    return depth_mm * 1e-3 * area_m2


class WaterConservation(Service):
    key = "water_conservation"
    name_zh = "水源涵养"
    category = "regulating"
    aux_inputs = (PRECIPITATION, ACTUAL_ET)

    def quantity_unit(self, options):
        return "m3"

    def price_key(self, options):
        return "reservoir_storage"

    def method(self, options):
        return "water balance (P - R - ET) x A; shadow engineering (reservoir storage cost)"

    def credited_types(self, ref, options):
        return tuple(ref.per_type("runoff_coefficient"))

    def parameters(self, ecosystem_type, ctx):
        return [ctx.ref.coefficient("runoff_coefficient", ecosystem_type),
                ctx.ref.coefficient("et_default", ecosystem_type)]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        out = {}
        for t in self.credited_types(ctx.ref, ctx.options):
            area = block.type_area_m2.get(t)
            if area is None:
                continue
            p, p_filled = aux_values(block, ctx, PRECIPITATION, t)
            et, et_filled = aux_values(block, ctx, ACTUAL_ET, t)
            alpha = ctx.ref.coefficient("runoff_coefficient", t).value
            q = water_conservation_m3(p, alpha, et, area)
            out[t] = (float(q.sum()), float(area[p_filled | et_filled].sum()))
        return out


SERVICE = WaterConservation()
