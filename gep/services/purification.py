"""The purification rule shared by air and water purification (methodology §4.7-4.8):

  Q_k = min(E_k, Σ_i q_k,i × A_i)   per county and pollutant k

E_k = the county's emission of pollutant k (a per-county table), q_k,i = the purification capacity
of ecosystem type i per unit area (coefficients.csv), A_i its area. The purified quantity is
apportioned to the ecosystem types by their share of the capacity. The range carries the capacity's
low/high (emissions have none): low = min(E, capacity_low), high = min(E, capacity_high).
"""
from __future__ import annotations

import numpy as np

from gep.services.base import Finalized, Indicator, Service, ServiceBlock, ServiceContext, TableInput, TypeQuantity

EMISSIONS_TABLE = "emissions"


def purified_t(emission_t: float, capacity_t: np.ndarray) -> np.ndarray:
    """Quantity purified [t/a] = min(emission, capacity), elementwise over (central, low, high)."""
    return np.minimum(float(emission_t), np.asarray(capacity_t, dtype=np.float64))


class PurificationService(Service):
    """A service valuing min(emission, capacity) per pollutant; subclasses give the pollutants,
    the capacity parameter prefix and its unit conversion to t per m² of area."""

    category = "regulating"
    pollutants: tuple[tuple[str, str], ...]   # (pollutant key = price key, description)
    capacity_prefix: str                      # coefficients.csv parameter = prefix + pollutant
    t_per_unit_capacity_m2: float             # capacity unit x m^2 -> t (kg/ha/a: 1e-7; t/km2/a: 1e-6)

    def indicators(self, options):
        return tuple(Indicator(k, "t", k, d) for k, d in self.pollutants)

    def credited_types(self, ref, options):
        return tuple(sorted({t for k, _ in self.pollutants for t in ref.per_type(self.capacity_prefix + k)}))

    def parameters(self, ecosystem_type, ctx):
        return [c for k, _ in self.pollutants
                if (c := ctx.ref.per_type(self.capacity_prefix + k).get(ecosystem_type)) is not None]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, out = ctx.ref, {}
        for t, area in self.credited_in(block, ctx):
            total_m2 = float(area.sum())
            caps = {f"capacity_{k}": ref.per_type(self.capacity_prefix + k)[t].bounds3() * total_m2
                    * self.t_per_unit_capacity_m2
                    for k, _ in self.pollutants if t in ref.per_type(self.capacity_prefix + k)}
            out[t] = (caps, 0.0)
        return out

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        emissions = ctx.tables[EMISSIONS_TABLE]
        quantities, notes = {}, {}
        for k, _ in self.pollutants:
            caps = {t: tq.quantities[f"capacity_{k}"] for t, tq in totals.items() if f"capacity_{k}" in tq.quantities}
            if not caps:
                continue
            capacity = sum(caps.values())
            q = purified_t(emissions[k], capacity)
            binds = "emission binds" if emissions[k] <= capacity[0] else "capacity binds"
            for t, cap in caps.items():
                share = np.divide(cap, capacity, out=np.zeros(3), where=capacity > 0)
                quantities[(t, k)] = q * share
                notes[(t, k)] = (f"min rule: county {k} emission {emissions[k]:,.6g} t (table {EMISSIONS_TABLE}), "
                                 f"capacity {capacity[0]:,.6g} t [{capacity[1]:,.6g}-{capacity[2]:,.6g}] -> "
                                 f"{binds}; {t} share of capacity {share[0]:.4f}")
        return Finalized(quantities, notes)


def emissions_input(pollutants) -> TableInput:
    return TableInput(EMISSIONS_TABLE, "pollutant", tuple(k for k, _ in pollutants), "emission_t", "t/a")
