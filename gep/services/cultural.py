"""Cultural services (文化服务), from county statistics (methodology §5).

- Recreation and tourism (休闲旅游, §5.1): only the nature-based share of tourism
  (``tourism_eco_share``, county statistics; heritage towns are culture, not ecosystems).
  ``method = "revenue"`` (default): eco share × tourism revenue. ``"travel_cost"`` (S-Garze's
  method name): eco share × (revenue + the visitors' time: visits × days per visit × daily wage
  × the share of the wage that values leisure time, 1/3 [L]). Money-valued quantities in CNY of
  the accounting year, brought to the price year by the CPI (tourism is consumer spending).
- Landscape value (景观价值, hedonic, §5.2): floor area of dwellings that benefit from ecological
  views × their annual price premium. Only where housing data are given
  (``landscape_floor_area_1e4_m2``, ``landscape_premium_cny_m2``); otherwise a "no input" row.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from gep.services.attributed import AttributedService
from gep.services.base import Indicator, NotAccounted

CNY_PER_1E8_CNY, VISITS_PER_1E4, M2_PER_1E4_M2 = 1e8, 1e4, 1e4


class RecreationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["revenue", "travel_cost"] = "revenue"


class RecreationTourism(AttributedService):
    key = "recreation_tourism"
    name_zh = "休闲旅游"
    category = "cultural"
    Options = RecreationOptions

    def statistics_needed(self, options):
        base = ("tourism_revenue_1e8_cny", "tourism_eco_share")
        return (*base, "tourist_visits_1e4", "visit_days", "average_wage_cny") if options.method == "travel_cost" else base

    def indicators(self, options):
        spent = Indicator("eco_tourism_revenue", "CNY", None, "nature-based share of tourism revenue", deflator="cpi")
        if options.method == "revenue":
            return (spent,)
        return (spent, Indicator("eco_tourism_time_cost", "CNY", None, "value of the visitors' time", deflator="cpi"))

    def method(self, options):
        how = ("tourism revenue" if options.method == "revenue" else
               "travel cost: tourism revenue + visits x days x daily wage x time share")
        return f"{how} x tourism_eco_share; constant prices by the CPI; attributed by {self.rule()} x area"

    def parameters(self, ecosystem_type, ctx):
        extra = [] if ctx.options.method == "revenue" else [ctx.ref.coefficient("travel_time_wage_share"),
                                                            ctx.ref.coefficient("working_days_per_year")]
        return extra + super().parameters(ecosystem_type, ctx)

    def county_totals(self, ctx):
        s = ctx.statistics
        share = s["tourism_eco_share"]
        out = {"eco_tourism_revenue": (s["tourism_revenue_1e8_cny"] * CNY_PER_1E8_CNY * share,
                                       f"tourism_revenue_1e8_cny = {s['tourism_revenue_1e8_cny']:,.2f} x "
                                       f"tourism_eco_share = {share:g}")}
        if ctx.options.method == "travel_cost":
            wage_share = ctx.ref.coefficient("travel_time_wage_share").bounds3()
            days = ctx.ref.coefficient("working_days_per_year").value
            time_cost = s["tourist_visits_1e4"] * VISITS_PER_1E4 * share * s["visit_days"] * s["average_wage_cny"] / days
            out["eco_tourism_time_cost"] = (time_cost * wage_share,
                                            f"tourist_visits_1e4 = {s['tourist_visits_1e4']:,.2f} x share {share:g} x "
                                            f"visit_days = {s['visit_days']:g} x average_wage_cny = "
                                            f"{s['average_wage_cny']:,.0f} / {days:g} d")
        return out


class LandscapeValue(AttributedService):
    key = "landscape_value"
    name_zh = "景观价值"
    category = "cultural"
    optional_statistics = ("landscape_floor_area_1e4_m2", "landscape_premium_cny_m2")

    def indicators(self, options):
        return (Indicator("housing_premium", "CNY", None, "annual price premium of dwellings with ecological views",
                          deflator="cpi"),)

    def method(self, options):
        return ("hedonic: floor area of dwellings with ecological views x annual premium per m2; constant prices by "
                f"the CPI; attributed by {self.rule()} x area")

    def status(self, ctx):
        missing = [f for f in self.optional_statistics if f not in ctx.statistics]
        if missing:
            return NotAccounted("no_input", f"no housing data for the county ({', '.join(missing)} not in the county "
                                            "statistics): give both to account the landscape premium")
        return None

    def county_totals(self, ctx):
        area, premium = ctx.statistics["landscape_floor_area_1e4_m2"], ctx.statistics["landscape_premium_cny_m2"]
        return {"housing_premium": (area * M2_PER_1E4_M2 * premium, f"landscape_floor_area_1e4_m2 = {area:,.2f} x "
                                                                    f"landscape_premium_cny_m2 = {premium:g}")}


SERVICES = (RecreationTourism(), LandscapeValue())
