"""The catalogue of auxiliary rasters: each input once, with its unit, fill rule for pixels without
data, and the physically possible range of its values (validation refuses a raster with values
outside it: a wrong unit or scale, an undeclared nodata value). Services import their inputs from here.

Fill rules: ``class_default`` takes the ecosystem type's default coefficient (ET, NPP: they depend
on the cover); ``county_mean`` takes the mean of the raster's valid cells over the county, measured
in the validation pass (climate and soil fields, which vary smoothly). The filled share is reported
per row; a pixel that cannot be filled stops the run.
"""
from __future__ import annotations

from gep.derived import k_factor_from_soil, ls_factor_from_dem
from gep.services.base import AuxInput, DerivedLayer

PRECIPITATION = AuxInput("precipitation", "mm/a", None, (0.0, 13_000.0),
                         "the wettest places on Earth receive about 12,000 mm/a", fill="county_mean")
ACTUAL_ET = AuxInput("actual_et", "mm/a", "et_default", (0.0, 3_000.0),
                     "actual evapotranspiration stays below about 2,500 mm/a even over tropical open water")
NPP = AuxInput("npp", "kg C/m2/a", "npp_default", (-0.5, 3.5),
               "annual NPP on land is about -0.3 to 3.3 kg C/m2/a (MOD17A3 valid range x 0.0001)")
EROSIVITY = AuxInput("rainfall_erosivity", "MJ mm/ha/h/a", None, (0.0, 30_000.0),
                     "published annual R stays below about 25,000 MJ mm/ha/h/a (tropical monsoon maxima)",
                     fill="county_mean")
DEM = AuxInput("dem", "m", None, (-500.0, 9_000.0), "elevations on land lie between -430 m and 8,849 m",
               fill="county_mean")
LS_FACTOR = AuxInput("ls_factor", "1", None, (0.0, 200.0),
                     "the slope-based LS of RUSLE stays below about 100 even on 60 degree slopes", fill="county_mean",
                     derived=DerivedLayer(("dem",), ("slope_length",), ls_factor_from_dem,
                                          "slope by Horn's 3x3 method on the DEM's own grid (metres per degree per "
                                          "row for geographic DEMs); L = (lambda/22.13)^m, m by slope class; "
                                          "S of McCool (< 5 deg, 5-10 deg) and Liu Baoyuan (>= 10 deg), methodology §4.2"))
SOIL_SAND = AuxInput("soil_sand", "%", None, (0.0, 100.0), "a mass percentage", fill="county_mean")
SOIL_SILT = AuxInput("soil_silt", "%", None, (0.0, 100.0), "a mass percentage", fill="county_mean")
SOIL_CLAY = AuxInput("soil_clay", "%", None, (0.0, 100.0), "a mass percentage", fill="county_mean")
SOIL_ORGANIC_CARBON = AuxInput("soil_organic_carbon", "%", None, (0.0, 60.0),
                               "organic carbon is below about 58 % even in peat", fill="county_mean")
SOIL_ERODIBILITY = AuxInput("soil_erodibility", "t ha h/(ha MJ mm)", None, (0.0, 0.1),
                            "RUSLE K in SI units lies between about 0 and 0.08", fill="county_mean")
SOIL_ERODIBILITY_EPIC = AuxInput("soil_erodibility_epic", "t ha h/(ha MJ mm)", None, (0.0, 0.1),
                                 "RUSLE K in SI units lies between about 0 and 0.08", fill="county_mean",
                                 derived=DerivedLayer(("soil_sand", "soil_silt", "soil_clay", "soil_organic_carbon"),
                                                      ("zhang_k_intercept", "zhang_k_slope", "epic_si_factor"),
                                                      k_factor_from_soil,
                                                      "K by EPIC (Williams 1990) with Zhang Keli's correction, "
                                                      "(-0.01383 + 0.51575 K_EPIC) x 0.1317, on the soil grid"))
VEGETATION_COVER = AuxInput("vegetation_cover", "1", "vegetation_cover_default", (0.0, 1.0),
                            "fractional vegetation cover is a share 0-1")

AUXILIARY = {a.name: a for a in (PRECIPITATION, ACTUAL_ET, NPP, EROSIVITY, DEM, LS_FACTOR, SOIL_SAND, SOIL_SILT,
                                 SOIL_CLAY, SOIL_ORGANIC_CARBON, SOIL_ERODIBILITY, SOIL_ERODIBILITY_EPIC,
                                 VEGETATION_COVER)}

# County-statistics fields: the range each value must lie in, and what it is (validation refuses
# a value outside; the land-cover schemes' split shares and the services' fields are all here).
STATISTICS_FIELDS: dict[str, tuple[float, float, str]] = {
    "paddy_share": (0.0, 1.0, "paddy / cropland area (splits cropland)"),
    "garden_share": (0.0, 1.0, "orchard and tea garden / cropland area (splits cropland)"),
    "bamboo_share": (0.0, 1.0, "bamboo / forest area (splits forest)"),
    "conifer_share": (0.0, 1.0, "coniferous forest / forest area (splits forest)"),
    "hot_day_share": (0.0, 1.0, "share of the year's evaporation on days with Tmax > 26 °C"),
    "water_surface_evaporation_mm": (0.0, 3000.0, "open-water evaporation [mm/a]"),
    "natural_forest_share": (0.0, 1.0, "natural / all forest area (pest control)"),
    "natural_grassland_share": (0.0, 1.0, "natural / all grassland area (pest control)"),
    "coastal": (0.0, 1.0, "1 for a county on the sea coast, else 0 (coastal protection)"),
    **{f"{stem}_{basis}_1e4_cny": (0.0, 1e8, f"{what} of {stem} [1e4 CNY, current prices]")
       for stem in ("agriculture", "forestry", "livestock", "fishery")
       for basis, what in (("output", "gross output value (总产值)"), ("net_output", "net output value (净产值)"))},
    **{f"water_use_{use}_1e4_m3": (0.0, 1e6, f"{use} water use [1e4 m3/a] (water resources bulletin)")
       for use in ("domestic", "industrial", "agricultural")},
    "water_local_share": (0.0, 1.0, "share of the water use abstracted from the county's own ecosystems"),
    "hydropower_1e4_kwh": (0.0, 1e8, "hydropower generation, pumped storage included [1e4 kWh/a]"),
    "pumped_storage_1e4_kwh": (0.0, 1e8, "pumped-storage generation [1e4 kWh/a] (subtracted: not an ecosystem product)"),
    "tourist_visits_1e4": (0.0, 1e6, "tourist visits [1e4 person-visits/a]"),
    "tourism_revenue_1e8_cny": (0.0, 1e5, "total tourism revenue [1e8 CNY, current prices]"),
    "tourism_eco_share": (0.0, 1.0, "nature-based share of tourism (methodology §5.1, default 0.5 [E])"),
    "visit_days": (0.0, 30.0, "travel and visit time per visit [d] (travel-cost method)"),
    "average_wage_cny": (0.0, 1e6, "average annual wage [CNY/a, current prices] (travel-cost method)"),
    "landscape_floor_area_1e4_m2": (0.0, 1e6, "floor area of dwellings with ecological views [1e4 m2]"),
    "landscape_premium_cny_m2": (0.0, 1e4, "annual price premium of those dwellings [CNY/m2/a, current prices]"),
    "gdp_1e8_cny": (0.0, 1e6, "gross domestic product [1e8 CNY, current prices] (the summary's GGI)"),
    "population_1e4": (0.0, 1e5, "resident population [1e4 persons] (the summary's GEP per capita)"),
}
SUMMARY_STATISTICS = ("gdp_1e8_cny", "population_1e4")  # read where given, for the gep summary
