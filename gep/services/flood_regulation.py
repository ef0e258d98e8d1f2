"""Flood regulation (洪水调蓄), methodology §4.4 with §0.5 item 7.

Regulating capacity of lakes + reservoirs + marshes, valued at the reservoir construction cost per m³
(shadow engineering, the price of water conservation):

- Lakes (a polygon layer, ``[vectors.lakes]``): Rao et al. 2014's regional model for the eastern
  plain, C_l = e^4.924 × A^1.128 × T [10⁴ m³/a], A = the area of the **whole** lake [km²],
  T = water-exchange times (1, as S-Garze). The exponent is above 1, so the model is applied to each
  whole lake and its capacity apportioned to counties by the share of the lake's area inside each;
  never to a lake clipped at a border. Water outside the layer's lakes (rivers, ponds) is not credited.
- Reservoirs (a point layer with total storage, ``[vectors.reservoirs]``): C_r = 0.35 × total storage
  (S-Garze eq. 8), credited to the county the point lies in.
- Marshes (wetland pixels): C_m = H × S, H = 0.3 m retainable depth (S-Garze: 0.3 × S × 10⁶, S in km²).

Rows: ``lakes`` and ``reservoirs`` on ecosystem type water, ``marshes`` on wetland (m³). A layer not
configured gives a row that says so, not a zero.
"""
from __future__ import annotations

import math

import numpy as np

from gep.services.base import (Finalized, Indicator, Service, ServiceBlock, ServiceContext, TypeQuantity,
                               VectorInput)

LAKES = VectorInput("lakes", "polygon", None, "lake polygons (whole lakes, also beyond the counties)")
RESERVOIRS = VectorInput("reservoirs", "point", "1e4 m3", "reservoirs as points with their total storage")
M3_PER_1E4_M3 = 1e4


def lake_capacity_m3(lake_area_km2: float, ln_a: float, b, exchange_times: float = 1.0) -> np.ndarray:
    """Flood-regulating capacity of a whole lake [m^3/a]: e^ln_a × A^b × T [10⁴ m³] (Rao et al. 2014).

    lake_area_km2 : area of the whole lake [km^2]; ln_a, b : regional regression coefficients [-];
    exchange_times : water-exchange times per year T [1/a].
    """
    return math.exp(ln_a) * np.power(lake_area_km2, b) * exchange_times * M3_PER_1E4_M3


def reservoir_capacity_m3(total_storage_1e4_m3: float, flood_share) -> np.ndarray:
    """Flood-control storage of a reservoir [m^3] = 0.35 × total storage (S-Garze eq. 8)."""
    return np.asarray(flood_share) * total_storage_1e4_m3 * M3_PER_1E4_M3


class FloodRegulation(Service):
    key = "flood_regulation"
    name_zh = "洪水调蓄"
    category = "regulating"
    vector_inputs = (LAKES, RESERVOIRS)

    def indicators(self, options):
        return (Indicator("lakes", "m3", "reservoir_storage", "lake regulating capacity (whole-lake model, apportioned)"),
                Indicator("reservoirs", "m3", "reservoir_storage", "reservoir flood-control storage"),
                Indicator("marshes", "m3", "reservoir_storage", "marsh retainable water"))

    def method(self, options):
        return ("lakes: ln C = 1.128 ln A + 4.924 on whole lakes, apportioned by area share; reservoirs 0.35 x "
                "storage; marshes 0.3 m x area; shadow engineering (reservoir storage cost)")

    def credited_types(self, ref, options):
        return ("water", "wetland")

    def parameters(self, ecosystem_type, ctx):
        ref = ctx.ref
        if ecosystem_type == "wetland":
            return [ref.coefficient("marsh_water_depth")]
        return [ref.coefficient(k) for k in ("lake_model_ln_a", "lake_model_b", "lake_exchange_times",
                                             "reservoir_flood_share")]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        area = block.type_area_m2.get("wetland")
        if area is None:
            return {}
        depth = ctx.ref.coefficient("marsh_water_depth").bounds3()
        return {"wetland": ({"marshes": depth * float(area.sum())}, 0.0)}

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        ref = ctx.ref
        out = Finalized({})
        if "wetland" in totals:
            out.quantities[("wetland", "marshes")] = totals["wetland"].quantities["marshes"]
        lakes = ctx.vectors.get("lakes")
        if lakes:
            ln_a, b = ref.coefficient("lake_model_ln_a").value, ref.coefficient("lake_model_b").bounds3()
            t = ref.coefficient("lake_exchange_times").value
            caps = [lake_capacity_m3(f["area_km2"], ln_a, b, t) * f["share_in_county"] for f in lakes]
            out.quantities[("water", "lakes")] = sum(caps)
            out.areas_m2[("water", "lakes")] = sum(f["area_km2"] * f["share_in_county"] for f in lakes) * 1e6
            out.notes[("water", "lakes")] = "; ".join(
                f"{f['name']}: whole lake {f['area_km2']:,.3f} km2, {f['share_in_county']:.4f} in the county, "
                f"{c[0]:,.6g} m3" for f, c in zip(lakes, caps))
        reservoirs = ctx.vectors.get("reservoirs")
        if reservoirs:
            share = ref.coefficient("reservoir_flood_share").bounds3()
            caps = [reservoir_capacity_m3(f["value"], share) for f in reservoirs]
            out.quantities[("water", "reservoirs")] = sum(caps)
            out.areas_m2[("water", "reservoirs")] = 0.0
            out.notes[("water", "reservoirs")] = "; ".join(
                f"{f['name']}: total storage {f['value']:,.6g} x 1e4 m3" for f in reservoirs)
        return out


SERVICE = FloodRegulation()
