"""One vocabulary of column names, types, units and constraints for every output table.

The same definitions build the Arrow schemas, check every table before it is written
(:func:`check`: types, nulls, finite numbers, bounds, allowed values, unique keys), go into the
Parquet metadata (each field carries ``unit`` and ``description``, so a reader of any file knows
the unit of every number without this package) and generate ``docs/data-dictionary.md``
(``python -m gep.vocabulary docs/data-dictionary.md``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from gep.errors import GepError


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    description: str
    minimum: float | None = None          # values must be >= this
    maximum: float | None = None          # values must be <= this
    allowed: tuple[str, ...] | None = None  # the only values a text column may hold
    nullable: bool = False                # null allowed (never NaN: numbers are finite or null)

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable,
                        metadata={"unit": self.unit, "description": self.description})


def _c(name: str, type_: pa.DataType, unit: str, description: str, **constraints) -> Column:
    return Column(name, type_, unit, description, **constraints)


STR, F64, I32, I64 = pa.string(), pa.float64(), pa.int32(), pa.int64()
TIME = pa.timestamp("us", tz="UTC")
NONNEG = {"minimum": 0.0}
SHARE = {"minimum": 0.0, "maximum": 1.0}
CATEGORIES = ("provisioning", "regulating", "cultural")

# Columns shared by several tables.
COUNTY_CODE = _c("county_code", STR, "", "county (区县) administrative code, 6 digits, as in the boundary file")
COUNTY_NAME = _c("county_name", STR, "", "county name as in the boundary file")
YEAR = _c("year", I32, "a", "accounting year (calendar year of the land cover)")
ECOSYSTEM_TYPE = _c("ecosystem_type", STR, "", "GEP ecosystem type (forest, shrub, grassland, wetland, water, cropland_paddy, cropland_dry, built_up, bare, snow_ice)")

EXTENT = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("lc_scheme", STR, "", "land-cover scheme of the input raster (configs/landcover_schemes.toml)"),
    _c("lc_code", I32, "", "land-cover class code in that scheme"),
    _c("lc_name", STR, "", "land-cover class name"),
    ECOSYSTEM_TYPE,
    _c("type_share", F64, "1", "share of the class's area given to this ecosystem type (cropland split by paddy share; else 1)", **SHARE),
    _c("area_ha", F64, "ha", "area of the class (x type_share) inside the county, from coverage-weighted pixel areas", **NONNEG),
    _c("pixel_count", F64, "pixel", "coverage-weighted number of land-cover pixels (x type_share)", **NONNEG),
)

STATUSES = ("accounted", "memo", "supporting", "not_applicable", "no_method", "no_input")
METHODS = ("functional", "equivalent_factor")
SERVICES = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("method", STR, "", "functional (the standards' physical models and prices, summed into gep_cny) | equivalent_factor (Xie 2015 benefit transfer from the extent account, summed into gep_equivalent_factor_cny only)", allowed=METHODS),
    _c("service", STR, "", "ecosystem service key (e.g. water_conservation; equivalent-factor rows: the Xie 2015 service, e.g. hydrological_regulation); docs/services.md"),
    _c("service_zh", STR, "", "service name in Chinese (e.g. 水源涵养)"),
    _c("category", STR, "", "provisioning | regulating | cultural | supporting (equivalent-factor rows only: never part of GEP)", allowed=(*CATEGORIES, "supporting")),
    _c("indicator", STR, "", "indicator of the service (e.g. sediment, nitrogen, so2, output_value; xie_2015 on equivalent-factor rows); 'all' on a row of a service not accounted"),
    _c("ecosystem_type", STR, "", "GEP ecosystem type credited (ECOSYSTEM_TYPE); 'all' on a row of a service not accounted, or of a county total without any type of its attribution rule"),
    _c("status", STR, "", "accounted (valued, summed into its method's GEP) | memo (physical quantity for the audit trail, valued through other indicators) | supporting (equivalent-factor supporting service: valued, not part of GEP) | not_applicable | no_method | no_input (not accounted: no quantity, no value, never a zero)", allowed=STATUSES),
    _c("status_reason", STR, "", "why a service is not accounted (or what a memo or supporting row is); empty when accounted"),
    _c("area_ha", F64, "ha", "area of this ecosystem type credited by the service (lakes: lake area in the county; reservoirs and county totals without a type: 0)", nullable=True, **NONNEG),
    _c("quantity", F64, "see quantity_unit", "physical quantity (功能量) supplied in the year, central estimate; money-valued indicators (quantity_unit CNY): CNY of the accounting year (current prices)", nullable=True, **NONNEG),
    _c("quantity_low", F64, "see quantity_unit", "low end of the quantity's range (coefficients at their low/high ends, interval arithmetic; README 'Ranges')", nullable=True, **NONNEG),
    _c("quantity_high", F64, "see quantity_unit", "high end of the quantity's range", nullable=True, **NONNEG),
    _c("quantity_unit", STR, "", "unit of quantity"),
    _c("unit_price", F64, "see price_unit", "price per unit of quantity in price_year CNY = base_unit_price x index_factor (money-valued indicators: the index factor; equivalent-factor rows: x the equivalent and the regional factor of parameters, negative only for a negative equivalent, paddy water supply)", nullable=True),
    _c("unit_price_low", F64, "see price_unit", "low end of the price's range, from its own price year, in price_year CNY", nullable=True),
    _c("unit_price_high", F64, "see price_unit", "high end of the price's range, in price_year CNY", nullable=True),
    _c("price_unit", STR, "", "unit of unit_price", nullable=True),
    _c("price_year", I32, "a", "price year of unit_price and value_cny: the accounting year (price_basis current) or the constant-price base year"),
    _c("price_basis", STR, "", "basis of unit_price and value_cny: constant | current (run configuration price_basis)", allowed=("constant", "current")),
    _c("value_cny", F64, "CNY", "money value (价值量) = quantity x unit_price, in price_year CNY; null unless status = accounted or supporting", nullable=True),
    _c("value_cny_low", F64, "CNY", "quantity_low x unit_price_low", nullable=True),
    _c("value_cny_high", F64, "CNY", "quantity_high x unit_price_high", nullable=True),
    _c("value_current_cny", F64, "CNY", "value at current prices: the accounting year's CNY (prices indexed to the year, market prices of the year, money-valued quantities as reported)", nullable=True),
    _c("value_constant_cny", F64, "CNY", "value at constant prices of the gep table's constant_price_year (one price vector for every year; money-valued quantities deflated by their sector price index)", nullable=True),
    _c("method_detail", STR, "", "physical and valuation method, with the run's method switches"),
    _c("price_key", STR, "", "key of the price in configs/prices.csv, or the price index deflating a money-valued quantity", nullable=True),
    _c("base_unit_price", F64, "see price_unit", "price as recorded in configs/prices.csv (1 for a money-valued quantity)", nullable=True, **NONNEG),
    _c("base_price_year", I32, "a", "year of base_unit_price (the accounting year for a money-valued quantity)", nullable=True),
    _c("price_index", STR, "", "index bringing base_unit_price to price_year: cpi (configs/cpi.csv) or a sector index of configs/price_indices.csv", nullable=True),
    _c("index_factor", F64, "1", "index(price_year) / index(base_price_year)", nullable=True, minimum=0.0),
    _c("price_source", STR, "", "item, evidence tag and source of the price"),
    _c("parameters", STR, "", "coefficients used for this row: key[type]=value [low-high] unit (tag: source)"),
    _c("notes", STR, "", "county-level step behind the row (emission and capacity of a min rule, lakes and reservoirs, statistics used and their attribution)"),
    _c("default_filled_share", F64, "1", "share of the credited area whose auxiliary inputs were filled by their rule (raster nodata)", nullable=True, **SHARE),
)

_CAT_ZH = {"provisioning": "物质产品", "regulating": "调节服务", "cultural": "文化服务"}
GEP = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("indicator_set", STR, "", "indicator set of the run (configs/indicator_sets.toml), or 'custom' (a list of services)"),
    _c("indicator_set_modified", pa.bool_(), "", "true when the run configuration changed the set (services added or removed, switches changed)"),
    _c("indicator_set_changes", STR, "", "how the set was changed; empty when it was not"),
    _c("price_basis", STR, "", "basis of gep_cny and the *_cny category columns: constant | current", allowed=("constant", "current")),
    _c("price_year", I32, "a", "price year of gep_cny (the accounting year for current prices)"),
    _c("constant_price_year", I32, "a", "base year of the *_constant_cny columns"),
    _c("gep_cny", F64, "CNY", "GEP: sum of value_cny of the accounted functional service rows, price_year CNY", **NONNEG),
    _c("gep_cny_low", F64, "CNY", "sum of value_cny_low: GEP with every coefficient and price at the end of its range that lowers it", **NONNEG),
    _c("gep_cny_high", F64, "CNY", "sum of value_cny_high", **NONNEG),
    *(_c(f"{c}_cny", F64, "CNY", f"{c} services ({_CAT_ZH[c]}), price_year CNY", **NONNEG) for c in CATEGORIES),
    _c("gep_current_cny", F64, "CNY", "GEP at current prices (the accounting year's CNY)", **NONNEG),
    *(_c(f"{c}_current_cny", F64, "CNY", f"{c} services at current prices", **NONNEG) for c in CATEGORIES),
    _c("gep_constant_cny", F64, "CNY", "GEP at constant prices of constant_price_year (compare across years with this)", **NONNEG),
    *(_c(f"{c}_constant_cny", F64, "CNY", f"{c} services at constant prices", **NONNEG) for c in CATEGORIES),
    _c("gep_equivalent_factor_cny", F64, "CNY", "equivalent-factor GEP (Xie 2015, supporting services excluded), price_year CNY: a different method, never added to gep_cny; null when [equivalent_factor] is off", nullable=True),
    _c("gep_yi_cny", F64, "1e8 CNY", "GEP in 亿元 (1e8 CNY)", **NONNEG),
    _c("area_km2", F64, "km2", "classified ecosystem area of the county (land-cover pixels, excludes sea/nodata)", **NONNEG),
    _c("gep_per_km2_cny", F64, "CNY/km2", "gep_cny / area_km2; null when the county has no classified area", nullable=True, **NONNEG),
    _c("polygon_area_km2", F64, "km2", "area of the county polygon on the area model", **NONNEG),
    _c("classified_area_km2", F64, "km2", "part of the polygon covered by classified land-cover pixels", **NONNEG),
    _c("nodata_area_km2", F64, "km2", "part of the polygon inside the raster but nodata/excluded (sea, gaps)", **NONNEG),
    _c("outside_raster_area_km2", F64, "km2", "part of the polygon outside the land-cover raster", **NONNEG),
    _c("gdp_cny", F64, "CNY", "GDP of the county and year (statistics gdp_1e8_cny, current prices); null when not given", nullable=True, **NONNEG),
    _c("gdp_source", STR, "", "source of gdp_cny", nullable=True),
    _c("population", F64, "persons", "resident population (statistics population_1e4); null when not given", nullable=True, **NONNEG),
    _c("population_source", STR, "", "source of population", nullable=True),
    _c("gep_per_capita_cny", F64, "CNY/person", "gep_current_cny / population", nullable=True, **NONNEG),
    _c("ggi", F64, "1", "GGI 绿金指数 = gep_current_cny / gdp_cny (methodology §1.1; both current prices)", nullable=True, **NONNEG),
    _c("conversion_ratio", F64, "1", "GEP-to-GDP conversion ratio [E]: the market-realised part of GEP (provisioning + cultural, sold as products, tourism and housing) / GEP, current prices", nullable=True, **SHARE),
    _c("growth_base_year", I32, "a", "the county's latest earlier year published in the output directory, that the growth columns compare with; null without one", nullable=True),
    _c("gdp_growth_pct", F64, "%", "GDP growth since growth_base_year, current prices (nominal)", nullable=True),
    _c("gep_growth_current_pct", F64, "%", "GEP growth since growth_base_year at current prices (nominal, comparable with gdp_growth_pct)", nullable=True),
    _c("gep_growth_constant_pct", F64, "%", "GEP growth since growth_base_year at constant prices (the ecological change, price effects removed)", nullable=True),
    _c("conversion_ratio_change_pp", F64, "percentage points", "change of conversion_ratio since growth_base_year", nullable=True),
    _c("growth_note", STR, "", "why a growth column is null (no earlier year; a different indicator set or constant price year; no GDP)"),
    _c("services", STR, "", "comma-separated services with a value in the county, summed into GEP"),
    _c("n_services", I32, "1", "number of services accounted (summed into GEP)", **NONNEG),
    _c("n_services_not_accounted", I32, "1", "number of enabled services not accounted in the county (a status row each in services)", **NONNEG),
    _c("plausibility_flag", STR, "", "'ok', 'below range' or 'above range' of plausibility_rule, or 'not checked: why' (the rule applies to a complete indicator set only)"),
    _c("plausibility_rule", STR, "", "the rule behind plausibility_flag"),
    _c("landcover_coverage_share", F64, "1", "share of the county polygon inside the land-cover raster", **SHARE),
    _c("aux_coverage_share", F64, "1", "smallest share of the county polygon with valid data among the auxiliary rasters used (1 when none is used)", **SHARE),
    _c("default_filled_share", F64, "1", "largest share, over services, of a service's credited area whose auxiliary inputs were filled by their rule (raster nodata)", **SHARE),
    _c("services_not_accounted", STR, "", "comma-separated enabled services (or indicators' layers) not accounted in the county, with a status row in services; empty if none"),
    _c("quality_flag", STR, "", "'ok', or every reason the county's inputs were incomplete ([checks] of the run configuration): coverage below the required shares, default-filled shares above the limit, services not accounted, no classified area"),
)

CARBON_STOCK = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("lc_scheme", STR, "", "land-cover scheme of the input raster"),
    _c("lc_code", I32, "", "land-cover class code (lucode of the pools table)"),
    _c("lc_name", STR, "", "land-cover class name"),
    _c("c_above", F64, "t C/ha", "above-ground biomass carbon density", **NONNEG),
    _c("c_below", F64, "t C/ha", "below-ground biomass carbon density", **NONNEG),
    _c("c_soil", F64, "t C/ha", "soil organic carbon density", **NONNEG),
    _c("c_dead", F64, "t C/ha", "dead organic matter carbon density", **NONNEG),
    _c("carbon_density", F64, "t C/ha", "c_above + c_below + c_soil + c_dead", **NONNEG),
    _c("area_ha", F64, "ha", "area of the class in the county in the year (as the extent account)", **NONNEG),
    _c("stock_t_c", F64, "t C", "carbon stock = carbon_density x area_ha (InVEST Carbon's storage)", **NONNEG),
    _c("baseline_year", I32, "a", "year of the opening land cover ([carbon_stock] baseline_year); null without one", nullable=True),
    _c("baseline_area_ha", F64, "ha", "area of the class in the baseline year", nullable=True, **NONNEG),
    _c("baseline_stock_t_c", F64, "t C", "carbon stock of the class in the baseline year", nullable=True, **NONNEG),
    _c("stock_change_t_c", F64, "t C", "stock_t_c - baseline_stock_t_c (closing minus opening; negative: a loss)", nullable=True),
    _c("pools_source", STR, "", "pools table and the source of the row"),
)

ASSESSMENT_IDS = (
    _c("baseline_year", I32, "a", "baseline year of the assessment"),
    _c("year", I32, "a", "assessment year"),
)
GEP_CHANGE = (
    COUNTY_CODE, COUNTY_NAME, *ASSESSMENT_IDS,
    _c("service", STR, "", "service key (functional rows of the services dataset)"),
    _c("service_zh", STR, "", "service name in Chinese"),
    _c("category", STR, "", "provisioning | regulating | cultural", allowed=CATEGORIES),
    _c("indicator", STR, "", "indicator of the service"),
    ECOSYSTEM_TYPE,
    _c("present", STR, "", "both | baseline only | assessment only (the missing year counts 0: no area of the type, or the service not accounted there)", allowed=("both", "baseline only", "assessment only")),
    _c("baseline_value_constant_cny", F64, "CNY", "value in the baseline year at constant prices"),
    _c("value_constant_cny", F64, "CNY", "value in the assessment year at constant prices"),
    _c("delta_constant_cny", F64, "CNY", "value_constant_cny - baseline_value_constant_cny: the change at one price vector"),
    _c("delta_extent_constant_cny", F64, "CNY", "the part of delta_constant_cny due to land-cover change: the baseline year recomputed on the assessment year's land cover, minus the baseline"),
    _c("delta_other_constant_cny", F64, "CNY", "the rest: climate, statistics, condition (delta_extent + delta_other = delta, exactly)"),
    _c("baseline_value_current_cny", F64, "CNY", "value in the baseline year at its current prices"),
    _c("value_current_cny", F64, "CNY", "value in the assessment year at its current prices"),
    _c("delta_current_cny", F64, "CNY", "the nominal change (prices included)"),
)
EXTENT_CHANGE = (
    COUNTY_CODE, COUNTY_NAME, *ASSESSMENT_IDS, ECOSYSTEM_TYPE,
    _c("opening_ha", F64, "ha", "area in the baseline year (extent account)", **NONNEG),
    _c("closing_ha", F64, "ha", "area in the assessment year", **NONNEG),
    _c("additions_ha", F64, "ha", "area that became this type (from other types, or from nodata), from extent_matrix", **NONNEG),
    _c("reductions_ha", F64, "ha", "area this type lost to other types (or to nodata)", **NONNEG),
    _c("net_change_ha", F64, "ha", "additions_ha - reductions_ha = closing_ha - opening_ha (checked)"),
)
EXTENT_MATRIX = (
    COUNTY_CODE, COUNTY_NAME, *ASSESSMENT_IDS,
    _c("from_type", STR, "", "ecosystem type in the baseline year ('nodata': classified only in the assessment year)"),
    _c("to_type", STR, "", "ecosystem type in the assessment year ('nodata': classified only in the baseline year)"),
    _c("area_ha", F64, "ha", "area that was from_type and is to_type (cells paired on one grid; split classes by the product of the two years' shares)", **NONNEG),
)
LOAN_SUMMARY = (
    _c("unit_id", STR, "", "county code (or project id)"),
    _c("unit_type", STR, "", "county | project", allowed=("county", "project")),
    _c("unit_name", STR, "", "county (or project) name"),
    _c("owner", STR, "", "borrower of a project; empty for a county"),
    _c("area_km2", F64, "km2", "classified ecosystem area in the assessment year", **NONNEG),
    *ASSESSMENT_IDS,
    _c("indicator_set", STR, "", "indicator set of both years"),
    _c("constant_price_year", I32, "a", "base year of the constant prices of every GEP column"),
    _c("gep_baseline_cny", F64, "CNY", "GEP in the baseline year at constant prices", **NONNEG),
    _c("gep_cny", F64, "CNY", "GEP in the assessment year at constant prices", **NONNEG),
    _c("delta_gep_cny", F64, "CNY", "gep_cny - gep_baseline_cny (ΔGEP at one price vector)"),
    _c("delta_gep_pct", F64, "%", "delta_gep_cny / gep_baseline_cny; null when the baseline GEP is 0", nullable=True),
    _c("delta_gep_low_cny", F64, "CNY", "low end of ΔGEP: every coefficient and price at the same end of its range in both years (the rows' _low and _high), with the central ΔGEP"),
    _c("delta_gep_high_cny", F64, "CNY", "high end of ΔGEP"),
    *(_c(f"delta_{c}_cny", F64, "CNY", f"ΔGEP of the {c} services at constant prices") for c in CATEGORIES),
    _c("delta_gep_current_cny", F64, "CNY", "the nominal ΔGEP (current prices of each year)"),
    _c("delta_gep_extent_cny", F64, "CNY", "the part of delta_gep_cny due to land-cover change (the baseline year recomputed on the assessment year's land cover, minus the baseline)"),
    _c("delta_gep_other_cny", F64, "CNY", "the rest (climate, statistics, condition); extent + other = delta_gep_cny exactly"),
    _c("extent_share", F64, "1", "delta_gep_extent_cny / delta_gep_cny; null when delta_gep_cny is 0", nullable=True),
    _c("delta_by_service", STR, "", "ΔGEP per service at constant prices: 'service +CNY; ...'"),
    _c("impact_flag", STR, "", "positive | neutral (|ΔGEP| within the policy's neutral band) | negative", allowed=("positive", "neutral", "negative")),
    _c("impact_drivers", STR, "", "the services with the largest |ΔGEP|, signed"),
    _c("discount_pp", F64, "percentage points", "interest-rate discount of the loan policy", **NONNEG),
    _c("discount_tier", STR, "", "the tier or rule that applied ('none': withheld or below the tiers)"),
    _c("discount_reasons", STR, "", "the ΔGEP measure and tier, ratchet and cap, or every eligibility rule that withheld the discount"),
    _c("policy", STR, "", "policy file and its title"),
    _c("gep_per_km2_cny", F64, "CNY/km2", "GEP per km² in the assessment year (run basis)", nullable=True, **NONNEG),
    _c("gep_per_capita_cny", F64, "CNY/person", "GEP per capita in the assessment year (current prices)", nullable=True, **NONNEG),
    _c("ggi", F64, "1", "GEP / GDP in the assessment year (current prices)", nullable=True, **NONNEG),
    _c("default_filled_share", F64, "1", "largest share of a service's land whose inputs were filled, over both years", **SHARE),
    _c("quality_flag", STR, "", "'ok', or each year's quality flag that is not"),
    _c("services_not_accounted", STR, "", "enabled services not accounted in the assessment year"),
    _c("run_ids", STR, "", "the runs that published the two years"),
    _c("code_version", STR, "", "gep version and source hash of the assessment (JSON)"),
)

RUN_OUTCOMES = ("running", "succeeded", "failed", "interrupted", "skipped")
RUNS = (
    _c("run_id", STR, "", "run identifier: UTC start time and a random suffix; also in every output file's Parquet metadata (gep:run_id)"),
    _c("started_at", TIME, "UTC", "when the run started"),
    _c("ended_at", TIME, "UTC", "when the run ended; null while running (or if it was killed: then outcome is set to 'interrupted' by the next run)", nullable=True),
    _c("outcome", STR, "", "running | succeeded | failed | interrupted (killed; found by a later run) | skipped (inputs, configuration and code unchanged: nothing recomputed)", allowed=RUN_OUTCOMES),
    _c("year", I32, "a", "accounting year", nullable=True),
    _c("scope", STR, "", "'all' (every county of the boundary file) or the county code of a single-county run"),
    _c("output_dir", STR, "", "output directory of the run"),
    _c("host", STR, "", "machine the run ran on"),
    _c("pid", I64, "", "process id of the run"),
    _c("orchestrator", STR, "", "prefect (with the flow run id) or plain (--no-prefect, gep.pipeline)"),
    _c("prefect_flow_run_id", STR, "", "Prefect flow run id, when run by Prefect", nullable=True),
    _c("code_version", STR, "", "gep version, SHA-256 of the package source and versions of the numerical libraries (JSON)"),
    _c("config", STR, "", "the full run configuration as validated, paths resolved (JSON)"),
    _c("inputs_sha256", STR, "", "SHA-256 of every input file and reference table (JSON: name -> hash)", nullable=True),
    _c("input_key", STR, "", "SHA-256 over code version, configuration (minus where and how it runs), year and input hashes: equal keys give identical data", nullable=True),
    _c("indicator_set", STR, "", "indicator set, how the run changes it, and the services accounted in order (JSON)"),
    _c("method_choices", STR, "", "land-cover scheme, area model, price basis and years, indicator set, service options and checks (JSON)"),
    _c("rows", STR, "", "rows written per dataset (JSON)", nullable=True),
    _c("partitions_written", I32, "1", "partition files published by the run", **NONNEG),
    _c("timings_s", STR, "", "seconds per step: validate, account, write, publish (JSON)"),
    _c("counties_flagged", STR, "", "counties whose quality_flag or plausibility_flag is not ok, with the reason (JSON)", nullable=True),
    _c("error", STR, "", "on failure: the error as the user saw it", nullable=True),
    _c("failed_counties", STR, "", "on failure: counties named by the error, with the reasons (JSON)", nullable=True),
)

DATASETS: dict[str, tuple[Column, ...]] = {"extent": EXTENT, "services": SERVICES, "gep": GEP,
                                           "carbon_stock": CARBON_STOCK, "runs": RUNS, "gep_change": GEP_CHANGE,
                                           "extent_change": EXTENT_CHANGE, "extent_matrix": EXTENT_MATRIX,
                                           "loan_summary": LOAN_SUMMARY}
ASSESSMENT_DATASETS = ("loan_summary", "gep_change", "extent_change", "extent_matrix")  # one file each per assessment
DATA_DATASETS = ("extent", "services", "gep", "carbon_stock")  # partitioned by year and county; "runs" holds one file per run
PARTITION_COLUMNS = ("year", "county_code")
KEYS: dict[str, tuple[str, ...]] = {
    "extent": ("county_code", "year", "lc_code", "ecosystem_type"),
    "services": ("county_code", "year", "method", "service", "indicator", "ecosystem_type"),
    "gep": ("county_code", "year"),
    "carbon_stock": ("county_code", "year", "lc_code"),
    "runs": ("run_id",),
    "gep_change": ("county_code", "baseline_year", "year", "service", "indicator", "ecosystem_type"),
    "extent_change": ("county_code", "baseline_year", "year", "ecosystem_type"),
    "extent_matrix": ("county_code", "baseline_year", "year", "from_type", "to_type"),
    "loan_summary": ("unit_id", "baseline_year", "year"),
}
DESCRIPTIONS = {
    "extent": "Ecosystem extent account: one row per county, year, land-cover class and ecosystem type.",
    "services": "Ecosystem services: physical quantity (功能量) and money value (价值量) per county, year, "
                "method, service, indicator and ecosystem type, with low/high ranges, in the run's price basis and "
                "in current and constant prices, each row with its price, price index factor, coefficients and "
                "sources; a service not accounted in a county is a row with its status and no value. The "
                "equivalent-factor rows (method equivalent_factor) value the extent account by Xie 2015.",
    "carbon_stock": "Carbon stock account (ecosystem asset): carbon pools x area per county, year and land-cover "
                    "code, as InVEST Carbon, and its change since the baseline year.",
    "gep": "GEP per county and year: the sum of the services' values by category, in the run's basis and in "
           "current and constant prices, the equivalent-factor GEP beside it, GDP, population, GGI, GEP per "
           "capita, growth since the previous published year, and the county's quality and plausibility flags.",
    "runs": "The run record: one row (file) per run, successful or not, outside the data globs.",
    "gep_change": "GEP change between a baseline and an assessment year (gep assess) per county, service, "
                  "indicator and ecosystem type, at constant prices and, beside it, nominal.",
    "extent_change": "Ecosystem extent change (SEEA extent account) between the two years of an assessment: "
                     "opening, additions, reductions, net change and closing per county and ecosystem type.",
    "extent_matrix": "Ecosystem extent change matrix between the two years of an assessment: from-type x to-type "
                     "areas per county, from one pass over both years' land cover.",
    "loan_summary": "The green-loan summary of an assessment: one row per county, ΔGEP at constant prices with "
                    "its range, by category and service, impact, the loan policy's discount and why, flags.",
}


class SchemaViolation(GepError):
    """A computed table breaks its dataset's schema: a bug, caught before anything was written."""

    exit_status = 1


def names(dataset: str) -> list[str]:
    return [c.name for c in DATASETS[dataset]]


def schema(dataset: str) -> pa.Schema:
    """Arrow schema of an output dataset, with units in the field metadata."""
    return pa.schema([c.field() for c in DATASETS[dataset]])


def check(table: pa.Table, dataset: str) -> None:
    """Refuse a table that breaks its dataset's constraints (raises :class:`SchemaViolation`
    listing every broken rule): exact schema, no nulls where not allowed, finite numbers, bounds,
    allowed values, unique keys."""
    problems = []
    if table.schema.remove_metadata() != schema(dataset).remove_metadata():
        problems.append(f"schema differs: {table.schema.remove_metadata()} != {schema(dataset).remove_metadata()}")
    for col in DATASETS[dataset]:
        if col.name not in table.column_names:
            continue
        arr = table[col.name]
        if not col.nullable and arr.null_count:
            problems.append(f"{col.name}: {arr.null_count} null value(s)")
        if pa.types.is_floating(col.type):
            bad = len(arr) - arr.null_count - (pc.sum(pc.is_finite(arr)).as_py() or 0)
            if bad:
                problems.append(f"{col.name}: {bad} value(s) not finite (NaN or infinite)")
        if col.minimum is not None and len(arr) and (pc.min(arr).as_py() or 0) < col.minimum:
            problems.append(f"{col.name}: values below {col.minimum:g} (min {pc.min(arr).as_py()!r})")
        if col.maximum is not None and len(arr) and (pc.max(arr).as_py() or 0) > col.maximum:
            problems.append(f"{col.name}: values above {col.maximum:g} (max {pc.max(arr).as_py()!r})")
        if col.allowed is not None:
            unknown = set(pc.unique(arr).to_pylist()) - set(col.allowed) - {None}
            if unknown:
                problems.append(f"{col.name}: values {sorted(unknown)} not in {list(col.allowed)}")
    problems += [f"{dataset}: {p}" for p in _row_rules(table, dataset)]
    keys = list(KEYS[dataset])
    if len(table) and not problems:
        counts = table.group_by(keys).aggregate([([], "count_all")])
        dup = counts.filter(pc.greater(counts["count_all"], 1))
        if len(dup):
            problems.append(f"key {keys} not unique: {dup.slice(0, 3).to_pylist()}")
    if problems:
        raise SchemaViolation(f"the computed {dataset} table breaks its schema (nothing was written):\n  "
                              + "\n  ".join(problems))


VALUED = ("area_ha", "quantity", "quantity_low", "quantity_high", "unit_price", "unit_price_low", "unit_price_high",
          "value_cny", "value_cny_low", "value_cny_high", "value_current_cny", "value_constant_cny", "base_unit_price",
          "base_price_year", "price_index", "index_factor", "price_key", "price_unit", "default_filled_share")


def _row_rules(table: pa.Table, dataset: str) -> list[str]:
    """Rules across columns: an accounted (or supporting) services row has every number (finite,
    low <= central <= high); a row not accounted has no quantity and no value (never a zero); only
    an equivalent-factor row may have a negative value."""
    if dataset != "services" or not len(table):
        return []
    problems = []
    status = table["status"]
    accounted = pc.is_in(status, pa.array(["accounted", "supporting"]))
    not_accounted = pc.invert(pc.is_in(status, pa.array(["accounted", "memo", "supporting"])))
    functional = pc.equal(table["method"], "functional")
    for name in ("unit_price", "value_cny", "value_current_cny", "value_constant_cny"):
        negative = pc.sum(pc.and_(functional, pc.less(table[name], 0))).as_py() or 0
        if negative:
            problems.append(f"{name}: negative on {negative} functional row(s) (only an equivalent-factor "
                            "equivalent may be negative)")
    for name in VALUED:
        nulls = pc.sum(pc.and_(accounted, pc.is_null(table[name]))).as_py() or 0
        if nulls:
            problems.append(f"{name}: null on {nulls} accounted row(s)")
    for name in ("quantity", "value_cny"):
        filled = pc.sum(pc.and_(not_accounted, pc.is_valid(table[name]))).as_py() or 0
        if filled:
            problems.append(f"{name}: a value on {filled} row(s) of a service not accounted")
    for lo, mid, hi in (("quantity_low", "quantity", "quantity_high"), ("value_cny_low", "value_cny", "value_cny_high")):
        bad = pc.sum(pc.or_(pc.greater(table[lo], table[mid]), pc.greater(table[mid], table[hi]))).as_py() or 0
        if bad:
            problems.append(f"{lo} <= {mid} <= {hi} broken on {bad} row(s)")
    return problems


def data_dictionary() -> str:
    """docs/data-dictionary.md, generated from the definitions above."""
    out = ["# Data dictionary", "",
           "Generated from `gep/vocabulary.py` (`python -m gep.vocabulary docs/data-dictionary.md`); the same",
           "definitions check every table before it is written and go into each Parquet file's field metadata",
           "(`unit`, `description`). Numbers are finite: a value that cannot be computed is null, and only in a",
           "column marked nullable. Layout and readers: README.md, \"Outputs\".", ""]
    for name, cols in DATASETS.items():
        where = (f"`{name}/year=YYYY/county_code=CCCCCC/part-0.parquet`" if name in DATA_DATASETS
                 else f"`assessments/BASELINE-YEAR/{name}.parquet` (and `.csv`)" if name in ASSESSMENT_DATASETS
                 else "`runs/RUN_ID.parquet`")
        out += [f"## `{name}`", "", DESCRIPTIONS[name], "", f"Files: {where}. Unique key: "
                + ", ".join(f"`{k}`" for k in KEYS[name]) + ".", "",
                "| column | type | unit | constraints | description |", "|---|---|---|---|---|"]
        for c in cols:
            rules = []
            if c.minimum is not None and c.maximum is not None:
                rules.append(f"{c.minimum:g} to {c.maximum:g}")
            elif c.minimum is not None:
                rules.append(f">= {c.minimum:g}")
            if c.allowed:
                rules.append(" \\| ".join(c.allowed))
            rules.append("nullable" if c.nullable else "not null")
            description = c.description.replace("|", "\\|")
            out.append(f"| `{c.name}` | {c.type} | {c.unit} | {', '.join(rules)} | {description} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    text = data_dictionary()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text)
