"""One vocabulary of column names, types and units for every output table.

The same definitions build the Arrow schemas, check outputs before they are written, and go into the
Parquet metadata (each field carries ``unit`` and ``description``), so a reader of any file knows the
unit of every number without this package.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    description: str

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, metadata={"unit": self.unit, "description": self.description})


def _c(name: str, type_: pa.DataType, unit: str, description: str) -> Column:
    return Column(name, type_, unit, description)


STR, F64, I32 = pa.string(), pa.float64(), pa.int32()

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
    _c("type_share", F64, "1", "share of the class's area given to this ecosystem type (cropland split by paddy share; else 1)"),
    _c("area_ha", F64, "ha", "area of the class (x type_share) inside the county, from coverage-weighted pixel areas"),
    _c("pixel_count", F64, "pixel", "coverage-weighted number of land-cover pixels (x type_share)"),
)

SERVICES = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("service", STR, "", "ecosystem service key (e.g. water_conservation)"),
    _c("service_zh", STR, "", "service name in Chinese (e.g. 水源涵养)"),
    _c("category", STR, "", "provisioning | regulating | cultural"),
    ECOSYSTEM_TYPE,
    _c("area_ha", F64, "ha", "area of this ecosystem type credited by the service"),
    _c("quantity", F64, "see quantity_unit", "physical quantity (功能量) supplied in the year"),
    _c("quantity_unit", STR, "", "unit of quantity"),
    _c("unit_price", F64, "see price_unit", "price per unit of quantity in price_year CNY"),
    _c("price_unit", STR, "", "unit of unit_price"),
    _c("price_year", I32, "a", "price year of unit_price and value_cny"),
    _c("value_cny", F64, "CNY", "money value (价值量) = quantity x unit_price, in price_year CNY"),
    _c("method", STR, "", "physical and valuation method"),
    _c("price_key", STR, "", "key of the price in configs/prices.csv"),
    _c("base_unit_price", F64, "see price_unit", "price as recorded in configs/prices.csv"),
    _c("base_price_year", I32, "a", "year of base_unit_price"),
    _c("cpi_factor", F64, "1", "CPI(price_year) / CPI(base_price_year) from configs/cpi.csv"),
    _c("price_source", STR, "", "source and evidence tag of the price"),
    _c("parameters", STR, "", "coefficients used for this row, with unit and evidence tag"),
    _c("default_filled_share", F64, "1", "share of the credited area whose auxiliary inputs came from per-class defaults (raster nodata)"),
)

GEP = (
    COUNTY_CODE, COUNTY_NAME, YEAR,
    _c("gep_cny", F64, "CNY", "GEP: sum of the value of all enabled services, price_year CNY"),
    _c("provisioning_cny", F64, "CNY", "provisioning services (物质产品) value"),
    _c("regulating_cny", F64, "CNY", "regulating services (调节服务) value"),
    _c("cultural_cny", F64, "CNY", "cultural services (文化服务) value"),
    _c("gep_yi_cny", F64, "1e8 CNY", "GEP in 亿元 (1e8 CNY)"),
    _c("area_km2", F64, "km2", "classified ecosystem area of the county (land-cover pixels, excludes sea/nodata)"),
    _c("gep_per_km2_cny", F64, "CNY/km2", "gep_cny / area_km2"),
    _c("polygon_area_km2", F64, "km2", "area of the county polygon on the area model"),
    _c("classified_area_km2", F64, "km2", "part of the polygon covered by classified land-cover pixels"),
    _c("nodata_area_km2", F64, "km2", "part of the polygon inside the raster but nodata/excluded (sea, gaps)"),
    _c("outside_raster_area_km2", F64, "km2", "part of the polygon outside the land-cover raster"),
    _c("price_year", I32, "a", "price year of all values"),
    _c("services", STR, "", "comma-separated services summed into GEP"),
    _c("n_services", I32, "1", "number of services summed into GEP"),
    _c("plausibility_flag", STR, "", "'ok' or why GEP per km2 is outside the 0.1-1.5e8 CNY/km2 range of methodology §11.2"),
)

DATASETS: dict[str, tuple[Column, ...]] = {"extent": EXTENT, "services": SERVICES, "gep": GEP}
PARTITION_COLUMNS = ("year", "county_code")


def schema(dataset: str) -> pa.Schema:
    """Arrow schema of an output dataset, with units in the field metadata."""
    return pa.schema([c.field() for c in DATASETS[dataset]])
