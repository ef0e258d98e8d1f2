"""Services valued from county statistics and shared among the ecosystem types that supply them.

A county total (an output value, water abstracted, electricity generated, tourism revenue) is
attributed to its ecosystem types by a declared rule, data in configs/coefficients.csv:
``attribution_<service>`` gives each credited type a weight per hectare, and type t receives
w_t A_t / Σ w A of the total (by area share when every weight is 1; methodology §3.1, §5.1). A
county without any credited type keeps its total on one row of ecosystem type ``all``, with a
note: the value is real, only its split by type is not.
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from gep.services.base import Finalized, Service, ServiceBlock, ServiceContext, Triple, TypeQuantity, credited_area_ha

ALL_TYPES = "all"


class AttributedService(Service):
    def rule(self) -> str:
        return f"attribution_{self.key}"

    def credited_types(self, ref, options):
        return tuple(ref.per_type(self.rule()))

    def parameters(self, ecosystem_type, ctx):
        return [] if ecosystem_type == ALL_TYPES else [ctx.ref.coefficient(self.rule(), ecosystem_type)]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        return credited_area_ha(self, block, ctx)

    @abstractmethod
    def county_totals(self, ctx: ServiceContext) -> dict[str, tuple[Triple | float, str]]:
        """Each indicator's county total (in its unit) with a note of the statistics behind it."""

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        weights = {t: ctx.ref.coefficient(self.rule(), t).value * float(tq.quantities["area_ha"][0])
                   for t, tq in totals.items()}
        total_weight = sum(weights.values())
        out = Finalized({})
        for indicator, (total, note) in self.county_totals(ctx).items():
            q = np.broadcast_to(np.asarray(total, dtype=np.float64), (3,))
            if total_weight <= 0:
                out.quantities[(ALL_TYPES, indicator)] = q
                out.areas_m2[(ALL_TYPES, indicator)] = 0.0
                out.notes[(ALL_TYPES, indicator)] = (f"{note}; no ecosystem type of the rule {self.rule()} in the county: "
                                                     "the whole value on this row, not split by type")
                continue
            for t, w in weights.items():
                if w > 0:
                    out.quantities[(t, indicator)] = q * (w / total_weight)
                    out.notes[(t, indicator)] = f"{note}; {w / total_weight:.4%} of it to {t} ({self.rule()} x area)"
        return out
