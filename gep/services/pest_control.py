"""Pest control (病虫害控制), optional, off by default (methodology §4.10).

Physical quantity: the area of natural forest and natural grassland, which recover from pests by
themselves: forest area (all forest sub-types) × ``natural_forest_share`` and grassland area ×
``natural_grassland_share`` (county statistics; a county-level step after the pixel pass). Valued
at the prevention cost per hectare (S-Garze 2010: forest 375, grassland 112.5 CNY/ha). Not in the
NDRC 2022 list; optional in the 2020 guideline [L].
"""
from __future__ import annotations

from gep.services.base import Finalized, Indicator, Service, ServiceBlock, ServiceContext, TypeQuantity, credited_area_ha

FOREST_TYPES = ("forest", "forest_conifer", "bamboo")


class PestControl(Service):
    key = "pest_control"
    name_zh = "病虫害控制"
    category = "regulating"
    statistics_fields = ("natural_forest_share", "natural_grassland_share")

    def indicators(self, options):
        return (Indicator("natural_forest_area", "ha", "pest_forest", "natural forest area"),
                Indicator("natural_grassland_area", "ha", "pest_grass", "natural grassland area"))

    def method(self, options):
        return "natural forest and grassland area (county shares) x prevention cost (S-Garze)"

    def credited_types(self, ref, options):
        return (*FOREST_TYPES, "grassland")

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        return credited_area_ha(self, block, ctx)

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        s = ctx.statistics
        out = Finalized({})
        for t, tq in totals.items():
            grass = t == "grassland"
            field, indicator = (("natural_grassland_share", "natural_grassland_area") if grass
                                else ("natural_forest_share", "natural_forest_area"))
            out.quantities[(t, indicator)] = tq.quantities["area_ha"] * s[field]
            out.notes[(t, indicator)] = f"{field} = {s[field]:g} (county statistics)"
        return out


SERVICE = PestControl()
