"""Services of the Chinese GEP catalogues that are reported, county by county, as not accounted,
with the reason, until a method with numbers exists (methodology §0.5 item 12, §4.3, §4.11, §4.13).
A "not accounted" row has no quantity and no value: it is never a zero.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gep.services.base import NotAccounted, Service


class _Reported(Service):
    category = "regulating"

    def indicators(self, options):
        return ()

    def method(self, options):
        return "not accounted (see status_reason)"


class CoastalProtection(_Reported):
    key = "coastal_protection"
    name_zh = "海岸带防护"
    statistics_fields = ("coastal",)

    def status(self, ctx):
        if not ctx.statistics["coastal"]:
            return NotAccounted("not_applicable", "inland county (statistics: coastal = 0)")
        return NotAccounted("no_method", "no seawall construction or maintenance cost in the methodology "
                                         "(§0.5 item 12, §4.13); the Hangzhou Bay shore is engineered seawall")


class SandFixationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    wind_erosion_region: bool = False


class WindbreakSandFixation(_Reported):
    key = "windbreak_sand_fixation"
    name_zh = "防风固沙"
    Options = SandFixationOptions

    def status(self, ctx):
        if not ctx.options.wind_erosion_region:
            return NotAccounted("not_applicable", "not a wind-erosion region (methodology §4.3: humid subtropical, "
                                                  "no desertification context); set wind_erosion_region = true "
                                                  "where it applies")
        return NotAccounted("no_method", "RWEQ (§4.3) is not implemented: it needs weather, erodible-fraction, "
                                         "crust and roughness factors that no input provides")


class SpeciesConservation(_Reported):
    key = "species_conservation"
    name_zh = "物种保育"

    def status(self, ctx):
        return NotAccounted("no_method", "only the LY/T 1721 Shannon-Wiener unit values [L] exist (§4.11), a "
                                         "supporting service that overlaps the others; not in the RCEES lists")


class _NoMethod(_Reported):
    def status(self, ctx):
        return NotAccounted("no_method", "no method or price in the methodology (§0.5 item 12)")


class NegativeAirIons(_NoMethod):
    key = "negative_air_ions"
    name_zh = "负氧离子"


class NoiseReduction(_NoMethod):
    key = "noise_reduction"
    name_zh = "噪声消减"


SERVICES = (CoastalProtection(), WindbreakSandFixation(), SpeciesConservation(), NegativeAirIons(), NoiseReduction())
