"""Provisioning services (物质产品), from county statistics (methodology §3).

- Agricultural, forestry, livestock and fishery products (农林牧渔产品, §3.1): the sector's output
  value from the statistical yearbook, gross (总产值, default) or net (净产值, as S-Garze) by
  ``basis``; a money-valued quantity in CNY of the accounting year, brought to the price year by
  a sector price index (``price_index``, default the agricultural producer price index of
  configs/price_indices.csv), not by the CPI.
- Water supply (水资源供给, §3.2): water used by domestic, industrial and agricultural users × the
  tariff of each use; only the share abstracted from local ecosystems (``water_local_share``):
  water transferred from elsewhere (Jiaxing's Taihu and Qiantang supply) is not a local product.
- Eco-energy (生态能源, §3.3): hydropower generation less pumped storage (Anji's Tianhuangping
  pumps water uphill with grid power: not an ecosystem product) × the power price.

Each county total is shared among the ecosystem types that supply it by the declared rule
(attributed.py).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from gep.errors import GepError
from gep.services.attributed import AttributedService
from gep.services.base import Indicator

M3_PER_1E4_M3 = KWH_PER_1E4_KWH = CNY_PER_1E4_CNY = 1e4
SECTORS = {  # service key -> (sector field stem, name_zh, sector)
    "agricultural_products": ("agriculture", "农业产品", "agriculture (farming, incl. orchards and tea)"),
    "forestry_products": ("forestry", "林业产品", "forestry"),
    "livestock_products": ("livestock", "畜牧业产品", "animal husbandry"),
    "fishery_products": ("fishery", "渔业产品", "fishery"),
}
WATER_USES = ("domestic", "industrial", "agricultural")


class ProductOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    basis: Literal["gross", "net"] = "gross"
    price_index: str = "agri_producer"


class ProductOutput(AttributedService):
    category = "provisioning"
    Options = ProductOptions

    def __init__(self, key: str):
        self.key = key
        self.stem, self.name_zh, self.sector = SECTORS[key]

    def field(self, options) -> str:
        return f"{self.stem}_{'output' if options.basis == 'gross' else 'net_output'}_1e4_cny"

    def statistics_needed(self, options):
        return (self.field(options),)

    def indicators(self, options):
        name = "output_value" if options.basis == "gross" else "net_output_value"
        return (Indicator(name, "CNY", None, f"{options.basis} output value of {self.sector}",
                          deflator=options.price_index),)

    def method(self, options):
        basis = "gross output value (总产值)" if options.basis == "gross" else "net output value (净产值)"
        return (f"{basis} of {self.sector} from the county statistics (current prices of the year); constant prices "
                f"by the {options.price_index} price index; attributed by {self.rule()} x area")

    def county_totals(self, ctx):
        f = self.field(ctx.options)
        value = ctx.statistics[f] * CNY_PER_1E4_CNY
        return {self.indicators(ctx.options)[0].key: (value, f"{f} = {ctx.statistics[f]:,.2f} (county statistics)")}


class WaterSupply(AttributedService):
    key = "water_supply"
    name_zh = "水资源供给"
    category = "provisioning"
    statistics_fields = (*(f"water_use_{u}_1e4_m3" for u in WATER_USES), "water_local_share")

    def indicators(self, options):
        return tuple(Indicator(f"{u}_water", "m3", f"water_{u}", f"{u} water use abstracted locally") for u in WATER_USES)

    def method(self, options):
        return ("water use by sector (water resources bulletin) x share abstracted from local ecosystems x the "
                f"tariff of each use; attributed by {self.rule()} x area")

    def county_totals(self, ctx):
        s, share = ctx.statistics, ctx.statistics["water_local_share"]
        out = {}
        for u in WATER_USES:
            f = f"water_use_{u}_1e4_m3"
            out[f"{u}_water"] = (s[f] * M3_PER_1E4_M3 * share, f"{f} = {s[f]:,.2f} x water_local_share = {share:g}")
        return out


class EcoEnergy(AttributedService):
    key = "eco_energy"
    name_zh = "生态能源"
    category = "provisioning"
    statistics_fields = ("hydropower_1e4_kwh", "pumped_storage_1e4_kwh")

    def indicators(self, options):
        return (Indicator("hydropower", "kWh", "hydropower", "hydropower generation without pumped storage"),)

    def method(self, options):
        return f"hydropower generation less pumped-storage generation x power price; attributed by {self.rule()} x area"

    def county_totals(self, ctx):
        hydro, pumped = ctx.statistics["hydropower_1e4_kwh"], ctx.statistics["pumped_storage_1e4_kwh"]
        if pumped > hydro:
            raise GepError(f"county {ctx.county_code} {ctx.year}, service {self.key}: pumped_storage_1e4_kwh {pumped:,.2f} "
                           f"exceeds hydropower_1e4_kwh {hydro:,.2f}; nothing was written.\n    fix: give all hydropower "
                           "generation (pumped storage included) in hydropower_1e4_kwh and the pumped-storage part "
                           "in pumped_storage_1e4_kwh")
        return {"hydropower": ((hydro - pumped) * KWH_PER_1E4_KWH,
                               f"hydropower_1e4_kwh = {hydro:,.2f} less pumped_storage_1e4_kwh = {pumped:,.2f}")}


SERVICES = (*(ProductOutput(k) for k in SECTORS), WaterSupply(), EcoEnergy())
