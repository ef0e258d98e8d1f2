"""The one place for configuration: the run configuration and the reference tables.

Run configuration (TOML, e.g. ``configs/sample_run.toml``): typed, validated with pydantic, unknown
keys rejected by name; relative paths resolve against the configuration file's folder.

Reference tables (data, never code): land-cover schemes (``landcover_schemes.toml``), coefficients
(``coefficients.csv``), prices (``prices.csv``) and the CPI chain (``cpi.csv``). Every value carries
its unit, year where it has one, evidence tag (V/V*/L/E, methodology §0.1) and source.
"""
from __future__ import annotations

import csv
import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gep.errors import InputProblem, InputValidationError, fail
from gep.zonal import DEFAULT_STRIP_PIXELS

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"

ECOSYSTEM_TYPES = (
    "forest", "forest_conifer", "bamboo", "garden", "shrub", "grassland", "wetland", "water",
    "cropland_paddy", "cropland_dry", "built_up", "bare", "snow_ice",
)
"""GEP ecosystem types. ``forest`` is broadleaf and mixed forest (Zhejiang's evergreen broadleaf by
default); ``forest_conifer`` and ``bamboo`` are the forest sub-types whose coefficients differ
(methodology §4.7, §10.2); ``garden`` is orchards and tea gardens (园地, runoff 9.57 %, §4.1, §6.3)."""
EVIDENCE_TAGS = ("V", "V*", "L", "E")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- run configuration
class BoundariesConfig(_Strict):
    path: Path
    layer: str | None = None
    code_field: str
    name_field: str
    reproject: bool = Field(False, description="transform boundaries to the land-cover CRS when they differ")
    encoding: str | None = Field(None, description="text encoding of the attribute table when the file does not "
                                                   "declare it (a Shapefile without .cpg), e.g. \"gbk\"")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        if v is not None:
            import codecs
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown text encoding {v!r} (e.g. \"utf-8\", \"gbk\", \"gb18030\")") from None
        return v


class AuxiliaryConfig(_Strict):
    path: str = Field(description="raster path; may contain {year}")
    unit: str
    scale: float = Field(1.0, gt=0, description="multiply stored values by this to get `unit` (MODIS: 0.1, 0.0001)")
    resampling: Literal["bilinear", "nearest", "average", "cubic"] = "bilinear"
    fill: Literal["class_default", "county_mean", "nearest"] | None = Field(
        None, description="how cells without data are filled (default: the input's own rule, gep/services/inputs.py)")
    bands: list[int] = Field(default_factory=lambda: [1], min_length=1,
                             description="bands to use; several are summed once per run into a cached layer "
                                         "(12 monthly precipitation bands -> annual precipitation)")

    @field_validator("bands")
    @classmethod
    def _bands_positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v) or len(set(v)) != len(v):
            raise ValueError("bands are distinct band numbers counted from 1")
        return v

    def path_for(self, year: int) -> Path:
        return Path(self.path.format(year=year))


class StatisticsConfig(_Strict):
    path: Path


class VectorConfig(_Strict):
    """A vector layer a service reads (lakes as polygons, reservoirs as points with their storage)."""

    path: Path
    layer: str | None = None
    name_field: str = Field(description="field naming each feature (for the audit trail)")
    value_field: str | None = Field(None, description="numeric field the service needs (e.g. reservoir total "
                                                      "storage); its unit is `unit`")
    unit: str | None = None


class TableConfig(_Strict):
    """A per-county table a service reads (e.g. emissions: county_code, year, pollutant, value, source)."""

    path: Path


class CarbonStockConfig(_Strict):
    """The carbon stock account (ecosystem asset): pools per land-cover code, InVEST Carbon layout."""

    pools: Path = Field(description="CSV with lucode, c_above, c_below, c_soil, c_dead [t C/ha] (+ optional "
                                    "lulc_name, tag, source), one row per land-cover code of the scheme")
    baseline_year: int | None = Field(None, description="year whose land cover gives the opening stock; the "
                                                        "change is closing (the run's year) minus opening")


class ServicesConfig(BaseModel):
    """``enabled`` lists service keys (default: the indicator set's); a sub-table named after a
    service holds its options (over the set's switches)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    enabled: list[str] | None = Field(None, min_length=1)

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        return dict(self.model_extra or {})


class ComputeConfig(_Strict):
    """Where the strips of the land cover are tallied (README "Scaling out")."""

    runner: Literal["threads", "dask"] = Field(
        "threads", description="threads of this process, or Dask (a scheduler at dask_address, else a temporary local cluster)")
    workers: int | None = Field(None, ge=1, description="threads or local Dask workers; default: every core")
    dask_address: str | None = Field(None, description="scheduler address, e.g. tcp://10.0.0.5:8786; implies runner = dask")
    strip_pixels: int = Field(DEFAULT_STRIP_PIXELS, ge=10_000, description="land-cover cells per strip (memory per worker)")

    @model_validator(mode="before")
    @classmethod
    def _address_means_dask(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("dask_address") and data.get("runner", "dask") == "dask":
            return {**data, "runner": "dask"}
        return data

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "ComputeConfig":
        if self.dask_address and self.runner != "dask":
            raise ValueError("dask_address is set but runner is not \"dask\"")
        return self


class ChecksConfig(_Strict):
    """How much of each county the inputs must cover, and when a county's figures are flagged."""

    min_landcover_coverage: float = Field(
        0.995, ge=0, le=1, description="share of each county polygon that must lie inside the land-cover raster")
    min_aux_coverage: float = Field(
        0.5, ge=0, le=1, description="share of each county polygon (sea included) each auxiliary raster must cover "
                                     "with valid data")
    max_default_filled_share: float = Field(
        0.10, ge=0, le=1, description="largest share of a service's credited land in a county that may take per-class "
                                      "defaults because an auxiliary raster has no data there")
    allow_partial_coverage: bool = Field(
        False, description="true: a county beyond these limits is accounted and flagged, not refused")


class RunConfig(_Strict):
    title: str = ""
    output_dir: Path
    landcover_scheme: str = Field(description="a scheme of the schemes file, or the path of a scheme of your own "
                                              "(.csv: code, name, ecosystem_type [, name_zh]; .toml: one scheme)")
    constant_price_year: int = Field(description="base year of the constant prices (one price vector for every "
                                                 "year: comparisons across years, ΔGEP)")
    price_basis: Literal["constant", "current"] = Field(
        "constant", description="basis of value_cny and gep_cny: constant prices of constant_price_year, or current "
                                "prices (each year its own); both are written in every run")
    indicator_set: str | None = Field(None, description="a set of configs/indicator_sets.toml (services and method "
                                                        "switches of a standard); [services] may modify it")
    equivalent_factor: bool = Field(True, description="also write the equivalent-factor (Xie 2015) value of the "
                                                      "extent account, in its own rows and GEP column")
    default_year: int | None = None
    area_model: Literal["ellipsoid", "sphere"] = "ellipsoid"
    boundaries: BoundariesConfig
    landcover: dict[int, Path] = Field(min_length=1)
    landcover_band: int = Field(1, ge=1, description="band of the land-cover rasters holding the class codes")
    auxiliary: dict[str, AuxiliaryConfig] = Field(default_factory=dict)
    statistics: StatisticsConfig | None = None
    vectors: dict[str, VectorConfig] = Field(default_factory=dict)
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    carbon_stock: CarbonStockConfig | None = None
    services: ServicesConfig = ServicesConfig()
    compute: ComputeConfig = ComputeConfig()
    checks: ChecksConfig = ChecksConfig()
    schemes_file: Path = REPO_CONFIGS / "landcover_schemes.toml"
    coefficients_file: Path = REPO_CONFIGS / "coefficients.csv"
    prices_file: Path = REPO_CONFIGS / "prices.csv"
    cpi_file: Path = REPO_CONFIGS / "cpi.csv"
    price_indices_file: Path = REPO_CONFIGS / "price_indices.csv"
    indicator_sets_file: Path = REPO_CONFIGS / "indicator_sets.toml"
    equivalent_factor_file: Path = REPO_CONFIGS / "equivalent_factor.toml"
    source_file: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _services_named(self) -> "RunConfig":
        if self.indicator_set is None and self.services.enabled is None:
            raise ValueError("name an indicator_set (configs/indicator_sets.toml, e.g. \"zj_db33_2025\") or list "
                             "[services] enabled")
        return self

    @field_validator("landcover")
    @classmethod
    def _years_plausible(cls, v: dict[int, Path]) -> dict[int, Path]:
        for year in v:
            if not 1980 <= year <= 2100:
                raise ValueError(f"land-cover year {year} is not a plausible calendar year")
        return v

    @model_validator(mode="after")
    def _baseline_has_landcover(self) -> "RunConfig":
        b = self.carbon_stock.baseline_year if self.carbon_stock else None
        if b is not None and b not in self.landcover:
            raise ValueError(f"carbon_stock.baseline_year {b} has no [landcover] raster; "
                             f"years with land cover: {sorted(self.landcover)}")
        return self

    @model_validator(mode="after")
    def _default_year_has_landcover(self) -> "RunConfig":
        if self.default_year is not None and self.default_year not in self.landcover:
            raise ValueError(f"default_year {self.default_year} has no [landcover] raster; "
                             f"years with land cover: {sorted(self.landcover)}")
        return self

    @property
    def years(self) -> list[int]:
        return sorted(self.landcover)

    def resolve_year(self, year: int | Literal["previous"] | None, today: date | None = None) -> int:
        """The year to account: the one asked for, else default_year, else the latest land cover;
        ``"previous"``: the calendar year before ``today`` in China (the scheduled annual run)."""
        if year is None:
            return self.default_year if self.default_year is not None else max(self.landcover)
        if year == "previous":
            year = (today or datetime.now(ZoneInfo("Asia/Shanghai")).date()).year - 1
        if year not in self.landcover:
            raise fail(self.source_file or "run configuration", f"landcover.{year}",
                       f"no land-cover raster is configured for year {year}",
                       f"add `{year} = \"path/to/landcover_{year}.tif\"` under [landcover], or run one of "
                       f"the configured years {self.years}")
        return year

    def price_year_for(self, year: int) -> int:
        """Price year of value_cny for an accounting year: the year itself (current prices) or the base."""
        return year if self.price_basis == "current" else self.constant_price_year

    @property
    def user_scheme_file(self) -> Path | None:
        """The user's own land-cover scheme file, when ``landcover_scheme`` names one."""
        return Path(self.landcover_scheme) if self.landcover_scheme.endswith((".csv", ".toml")) else None


def _resolve(base: Path, p: Path | str) -> Path:
    return Path(os.path.normpath(base / Path(p)))


def load_run_config(path: str | Path, *, output_dir: str | Path | None = None, indicator_set: str | None = None
                    ) -> RunConfig:
    """Read, validate and resolve a run configuration file (``output_dir``, ``indicator_set``:
    the command line's overrides of its keys).

    Raises :class:`InputValidationError` naming the file and each bad key (unknown keys included).
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "(file)", "run configuration file not found",
                   "pass an existing TOML file, e.g. --config configs/sample_run.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(path, "(file)", f"not valid TOML: {exc}", "fix the syntax at the position given") from exc
    base = path.resolve().parent
    if indicator_set is not None:
        raw["indicator_set"] = indicator_set
    if "price_year" in raw:  # the key of gep before both price bases were written
        was = raw["price_year"]
        basis = "current" if was == "accounting_year" else "constant"
        year = "YEAR" if was == "accounting_year" else was
        raise fail(path, "price_year", "replaced: every run now writes current and constant prices",
                   f"write `constant_price_year = {year}` (the constant-price base year) and `price_basis = "
                   f"\"{basis}\"` (the basis of value_cny and gep_cny)")
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(InputProblem(str(path), loc, "unknown key",
                                             f"remove or rename `{loc}`; allowed keys are documented in README.md"))
            else:
                problems.append(InputProblem(str(path), loc, err["msg"], "correct the value"))
        raise InputValidationError(problems) from exc
    updates: dict[str, Any] = {
        "output_dir": Path(output_dir).resolve() if output_dir is not None else _resolve(base, cfg.output_dir),
        "boundaries": cfg.boundaries.model_copy(update={"path": _resolve(base, cfg.boundaries.path)}),
        "landcover": {y: _resolve(base, p) for y, p in cfg.landcover.items()},
        "auxiliary": {k: a.model_copy(update={"path": str(_resolve(base, a.path))}) for k, a in cfg.auxiliary.items()},
        "statistics": (cfg.statistics.model_copy(update={"path": _resolve(base, cfg.statistics.path)})
                       if cfg.statistics else None),
        "vectors": {k: v.model_copy(update={"path": _resolve(base, v.path)}) for k, v in cfg.vectors.items()},
        "tables": {k: t.model_copy(update={"path": _resolve(base, t.path)}) for k, t in cfg.tables.items()},
        "carbon_stock": (cfg.carbon_stock.model_copy(update={"pools": _resolve(base, cfg.carbon_stock.pools)})
                         if cfg.carbon_stock else None),
        "source_file": path.resolve(),
    }
    for key in ("schemes_file", "coefficients_file", "prices_file", "cpi_file", "price_indices_file",
                "indicator_sets_file", "equivalent_factor_file"):
        if key in raw:
            updates[key] = _resolve(base, raw[key])
    if cfg.user_scheme_file is not None:
        updates["landcover_scheme"] = str(_resolve(base, cfg.user_scheme_file))
    return cfg.model_copy(update=updates)


# --------------------------------------------------------------------------- reference tables
REST = "rest"
PADDY_SPLIT = {"cropland_paddy": "paddy_share", "cropland_dry": REST}


class LandCoverClass(_Strict):
    """A land-cover class: one ecosystem type, or a split of its area between several types by
    county statistics (``split = {bamboo = "bamboo_share", forest = "rest"}``; the shorthand
    ``split = "paddy_share"`` is cropland into paddy and dry)."""

    name: str
    name_zh: str = ""
    ecosystem_type: str | None = None
    split: dict[str, str] | None = None

    @field_validator("split", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return dict(PADDY_SPLIT) if v == "paddy_share" else v

    @model_validator(mode="after")
    def _one_target(self) -> "LandCoverClass":
        if (self.ecosystem_type is None) == (self.split is None):
            raise ValueError("give exactly one of ecosystem_type or split")
        for t in [self.ecosystem_type] if self.ecosystem_type is not None else list(self.split):
            if t not in ECOSYSTEM_TYPES:
                raise ValueError(f"unknown ecosystem_type {t!r}; known: {', '.join(ECOSYSTEM_TYPES)}")
        if self.split is not None and list(self.split.values()).count(REST) != 1:
            raise ValueError(f"a split gives exactly one type the {REST!r} of the class (the others a statistics field)")
        return self

    @property
    def share_fields(self) -> tuple[str, ...]:
        """County-statistics fields (shares 0-1) this class is split by."""
        return tuple(f for f in (self.split or {}).values() if f != REST)

    def type_shares(self, statistics: Mapping[str, float]) -> dict[str, float]:
        """Ecosystem types this class maps to, with the share of its area each gets (the shares of
        a split from the county's statistics; they must leave a non-negative rest)."""
        if self.ecosystem_type is not None:
            return {self.ecosystem_type: 1.0}
        shares = {t: float(statistics[f]) for t, f in self.split.items() if f != REST}
        rest = 1.0 - sum(shares.values())
        if rest < -1e-9:
            raise ValueError(f"class {self.name!r}: the split shares {shares} add up to more than 1")
        shares.update({t: max(rest, 0.0) for t, f in self.split.items() if f == REST})
        return shares


class LandCoverScheme(_Strict):
    key: str
    title: str
    nodata: int
    excluded: list[int] = Field(default_factory=list)
    source: str
    classes: dict[int, LandCoverClass]

    @property
    def share_fields(self) -> tuple[str, ...]:
        """County-statistics fields the scheme's splits need."""
        return tuple(sorted({f for c in self.classes.values() for f in c.share_fields}))


@dataclass(frozen=True)
class Coefficient:
    parameter: str
    ecosystem_type: str
    value: float
    low: float | None
    high: float | None
    unit: str
    tag: str
    source: str
    year: int | None = None

    def cite(self) -> str:
        where = "" if self.ecosystem_type == "*" else f"[{self.ecosystem_type}]"
        ranged = self.low is not None and self.high is not None and self.low != self.high
        rng = f" [{self.low:g}-{self.high:g}]" if ranged else ""
        when = f" @{self.year}" if self.year is not None else ""
        return f"{self.parameter}{where}={self.value:g}{rng} {self.unit}{when} ({self.tag}: {self.source})"

    def bounds3(self, decreasing: bool = False):
        """(central, value giving the low quantity, value giving the high quantity) for interval
        arithmetic: a parameter the quantity grows with gives (v, low, high); ``decreasing`` (the
        quantity falls as it grows, e.g. runoff) gives (v, high, low)."""
        lo = self.value if self.low is None else self.low
        hi = self.value if self.high is None else self.high
        return np.array([self.value, hi, lo] if decreasing else [self.value, lo, hi])

    def triple(self, decreasing: bool = False):
        """:meth:`bounds3` as a (3, 1) column to broadcast against pixels, or the plain value when
        the coefficient has no range (no extra work for it)."""
        if self.low in (None, self.value) and self.high in (None, self.value):
            return self.value
        return self.bounds3(decreasing)[:, None]


@dataclass(frozen=True)
class Price:
    key: str
    item: str
    value: float
    unit: str
    price_year: int
    tag: str
    source: str
    low: float | None = None          # the low end of the range, in low_price_year CNY
    low_price_year: int | None = None
    high: float | None = None
    high_price_year: int | None = None

    def cite(self) -> str:
        return f"{self.tag}: {self.source}"

    def bound(self, side: str) -> tuple[float, int]:
        """(price, its year) at one end of the range ("low", "high"), or the central value."""
        if side == "low" and self.low is not None:
            return self.low, self.low_price_year or self.price_year
        if side == "high" and self.high is not None:
            return self.high, self.high_price_year or self.price_year
        return self.value, self.price_year


class IndicatorSet(_Strict):
    """The services and method switches of a standard (configs/indicator_sets.toml)."""

    key: str
    title: str
    document: str
    tag: Literal["V", "V*", "L", "E"]
    services: list[str] = Field(min_length=1)
    optional: list[str] = Field(default_factory=list)
    note: str = ""
    switches: dict[str, dict[str, Any]] = Field(default_factory=dict)


class XieService(_Strict):
    name_zh: str
    category: Literal["provisioning", "regulating", "cultural", "supporting"]


class XieType(_Strict):
    xie_type: str
    note: str = ""


class RegionalFactor(_Strict):
    value: float = Field(gt=0)
    tag: Literal["V", "V*", "L", "E"]
    source: str


class EquivalentFactorSpec(_Strict):
    """The equivalent-factor method (configs/equivalent_factor.toml) with its table of equivalents."""

    table: str
    standard_equivalent_price: str
    regional_factor: RegionalFactor
    services: dict[str, XieService]
    types: dict[str, XieType]
    equivalents: dict[str, dict[str, float]] = Field(default_factory=dict)  # xie_type -> service -> equivalent
    row_sources: dict[str, str] = Field(default_factory=dict)               # xie_type -> "[tag] source"


@dataclass(frozen=True)
class ReferenceData:
    """Schemes, coefficients, prices, CPI and sector price indices, indicator sets and the
    equivalent-factor table, each traceable to its file and hash."""

    schemes: dict[str, LandCoverScheme]
    coefficients: dict[tuple[str, str], Coefficient]
    prices: dict[str, Price]
    cpi_index: dict[int, float]
    price_indices: dict[str, dict[int, float]] = field(default_factory=dict)  # index -> year -> level
    indicator_sets: dict[str, IndicatorSet] = field(default_factory=dict)
    equivalent_factor: EquivalentFactorSpec | None = None
    file_hashes: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # "prices.csv" -> the path actually read

    def path(self, table: str) -> str:
        """The file a reference table was read from, as the run configuration named it."""
        return str(self.files.get(table, table))

    def coefficient(self, parameter: str, ecosystem_type: str = "*") -> Coefficient:
        try:
            return self.coefficients[(parameter, ecosystem_type)]
        except KeyError:
            raise fail(self.path("coefficients.csv"), f"{parameter}/{ecosystem_type}", "coefficient missing",
                       f"add a row parameter={parameter}, ecosystem_type={ecosystem_type}") from None

    def per_type(self, parameter: str) -> dict[str, Coefficient]:
        """All ecosystem-type rows of a parameter: the types it is defined (and credited) for."""
        return {t: c for (p, t), c in self.coefficients.items() if p == parameter and t != "*"}

    def price(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise fail(self.path("prices.csv"), key, "price missing", f"add a row with key={key}") from None

    def cpi_factor(self, from_year: int, to_year: int) -> float:
        """CPI(to_year) / CPI(from_year): converts a from_year price into to_year CNY (methodology §8.3)."""
        for y in (from_year, to_year):
            if y not in self.cpi_index:
                raise fail(self.path("cpi.csv"), str(y), f"no CPI for year {y}",
                           f"add the NBS CPI change of {y} to cpi.csv (covered: "
                           f"{min(self.cpi_index)}-{max(self.cpi_index)})")
        return self.cpi_index[to_year] / self.cpi_index[from_year]

    def index_factor(self, index: str, from_year: int, to_year: int) -> float:
        """Index(to_year) / index(from_year) of a price index ("cpi", or a sector index of
        price_indices.csv): converts from_year money into to_year money of that sector."""
        if index == "cpi":
            return self.cpi_factor(from_year, to_year)
        chain = self.price_indices.get(index)
        if chain is None:
            raise fail(self.path("price_indices.csv"), index, f"no price index {index!r}",
                       f"use cpi or one of {', '.join(sorted(self.price_indices))}, or add its rows")
        for y in (from_year, to_year):
            if y not in chain:
                raise fail(self.path("price_indices.csv"), f"{index} {y}", f"no {index} index for year {y}",
                           f"add the change of {y} (covered: {min(chain)}-{max(chain)})")
        return chain[to_year] / chain[from_year]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_csv(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Rows of a reference CSV (UTF-8, a BOM tolerated) with exactly the required columns (and any of
    the optional ones)."""
    if not path.is_file():
        raise fail(path, "(file)", "reference table not found", "check the path (the repository's own are in configs/)")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = tuple(reader.fieldnames or ())
        rows = list(reader)
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in required + optional]
    if missing or unknown:
        raise fail(path, ", ".join(missing + unknown) or "(header)",
                   f"columns missing {missing} / unknown {unknown}",
                   f"use exactly the columns {list(required)}" + (f" (optional: {list(optional)})" if optional else ""))
    return rows


def _num(path: Path, row_no: int, name: str, text: str, *, optional: bool = False) -> float | None:
    if text.strip() == "":
        if optional:
            return None
        raise fail(path, f"row {row_no}: {name}", "value is empty", "give a number")
    try:
        return float(text)
    except ValueError:
        raise fail(path, f"row {row_no}: {name}", f"{text!r} is not a number", "give a number") from None


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise fail(path, "(file)", f"{what} not found", "check the path (the repository's own is in configs/)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(path, "(file)", f"not valid TOML: {exc}", "fix the syntax at the position given") from exc


def _scheme(path: Path, key: str, body: dict[str, Any]) -> LandCoverScheme:
    try:
        return LandCoverScheme.model_validate({"key": key, **body})
    except ValidationError as exc:
        raise fail(path, key, str(exc).replace("\n", " "), "fix the scheme definition") from exc


SCHEME_CSV_COLUMNS = ("code", "name", "ecosystem_type")


def load_user_scheme(path: Path) -> LandCoverScheme:
    """A land-cover scheme of the user's own: a TOML file holding one scheme in the layout of
    configs/landcover_schemes.toml, or a CSV with ``code, name, ecosystem_type`` (optional
    ``name_zh``), where ``ecosystem_type`` may also be ``nodata`` (the raster's nodata code) or
    ``excluded`` (codes counted as nodata, e.g. sea)."""
    key = path.stem
    if path.suffix == ".toml":
        raw = _read_toml(path, "land-cover scheme file")
        return _scheme(path, key, raw if "classes" in raw else next(iter(raw.values()), {}))
    rows = _read_csv(path, SCHEME_CSV_COLUMNS, ("name_zh",))
    classes, nodata, excluded = {}, None, []
    for i, r in enumerate(rows, start=2):
        try:
            code = int(r["code"])
        except ValueError:
            raise fail(path, f"row {i}: code", f"{r['code']!r} is not an integer code", "give the raster's class code") from None
        target = r["ecosystem_type"].strip()
        if target == "nodata":
            nodata = code
        elif target == "excluded":
            excluded.append(code)
        else:
            classes[code] = {"name": r["name"], "name_zh": r.get("name_zh") or "", "ecosystem_type": target}
    if nodata is None:
        raise fail(path, "ecosystem_type", "no row gives the nodata code", "add a row `0,No data,nodata` (with the "
                   "raster's nodata value)")
    return _scheme(path, key, {"title": f"user scheme {path.name}", "nodata": nodata, "excluded": excluded,
                               "source": f"user file {path}", "classes": classes})


def load_reference_data(cfg: RunConfig) -> ReferenceData:
    """Load and check the reference tables named by the run configuration."""
    schemes_path = cfg.schemes_file
    raw = _read_toml(schemes_path, "land-cover scheme file")
    schemes = {key: _scheme(schemes_path, key, body) for key, body in raw.items()}
    scheme_files = [schemes_path]
    if cfg.user_scheme_file is not None:
        schemes[cfg.landcover_scheme] = load_user_scheme(cfg.user_scheme_file)
        scheme_files.append(cfg.user_scheme_file)

    cpath = cfg.coefficients_file
    coefficients: dict[tuple[str, str], Coefficient] = {}
    cols = ("parameter", "ecosystem_type", "value", "low", "high", "unit", "year", "tag", "source", "note")
    for i, r in enumerate(_read_csv(cpath, cols), start=2):
        if r["ecosystem_type"] != "*" and r["ecosystem_type"] not in ECOSYSTEM_TYPES:
            raise fail(cpath, f"row {i}: ecosystem_type", f"unknown type {r['ecosystem_type']!r}",
                       f"use * or one of {', '.join(ECOSYSTEM_TYPES)}")
        if r["tag"] not in EVIDENCE_TAGS:
            raise fail(cpath, f"row {i}: tag", f"unknown evidence tag {r['tag']!r}", f"use one of {EVIDENCE_TAGS}")
        key = (r["parameter"], r["ecosystem_type"])
        if key in coefficients:
            raise fail(cpath, f"row {i}", f"duplicate coefficient {key}", "keep one row per parameter and type")
        coefficients[key] = Coefficient(
            r["parameter"], r["ecosystem_type"], _num(cpath, i, "value", r["value"]),
            _num(cpath, i, "low", r["low"], optional=True), _num(cpath, i, "high", r["high"], optional=True),
            r["unit"], r["tag"], r["source"],
            None if r["year"].strip() == "" else int(_num(cpath, i, "year", r["year"])))

    ppath = cfg.prices_file
    prices: dict[str, Price] = {}
    cols = ("key", "item", "value", "unit", "price_year", "low", "low_price_year", "high", "high_price_year",
            "tag", "source", "note")
    for i, r in enumerate(_read_csv(ppath, cols), start=2):
        if r["tag"] not in EVIDENCE_TAGS:
            raise fail(ppath, f"row {i}: tag", f"unknown evidence tag {r['tag']!r}", f"use one of {EVIDENCE_TAGS}")
        if r["key"] in prices:
            raise fail(ppath, f"row {i}: key", f"duplicate price key {r['key']!r}", "keep one row per key")
        value = _num(ppath, i, "value", r["value"])
        low, high = (_num(ppath, i, c, r[c], optional=True) for c in ("low", "high"))
        years = {}
        for end, v in (("low", low), ("high", high)):
            y = _num(ppath, i, f"{end}_price_year", r[f"{end}_price_year"], optional=True)
            if (v is None) != (y is None):
                raise fail(ppath, f"row {i}: {end}, {end}_price_year", "a range end needs its own price year",
                           f"give both {end} and {end}_price_year, or neither")
            years[end] = None if y is None else int(y)
        if any(v is not None and v < 0 for v in (value, low, high)):
            raise fail(ppath, f"row {i}: value", "price must be >= 0", "give a non-negative price")
        prices[r["key"]] = Price(r["key"], r["item"], value, r["unit"],
                                 int(_num(ppath, i, "price_year", r["price_year"])), r["tag"], r["source"],
                                 low, years["low"], high, years["high"])

    ipath = cfg.cpi_file
    rows = _read_csv(ipath, ("year", "cpi_change_pct", "tag", "source"))
    index = _chain(ipath, "CPI", list(enumerate(rows, start=2)), "cpi_change_pct")
    spath = cfg.price_indices_file
    by_index: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for i, r in enumerate(_read_csv(spath, ("index", "year", "change_pct", "tag", "source")), start=2):
        by_index.setdefault(r["index"], []).append((i, r))
    sector = {name: _chain(spath, name, rows, "change_pct") for name, rows in by_index.items()}
    if "cpi" in sector:
        raise fail(spath, "index", "the index name 'cpi' is taken by cpi.csv", "rename the index")

    sets_path = cfg.indicator_sets_file
    sets = {}
    for key, body in _read_toml(sets_path, "indicator sets file").items():
        try:
            sets[key] = IndicatorSet.model_validate({"key": key, **body})
        except ValidationError as exc:
            raise fail(sets_path, key, str(exc).replace("\n", " "), "fix the indicator set") from exc
    epath = cfg.equivalent_factor_file
    equivalent, table_path = _equivalent_factor(epath)

    paths = (*scheme_files, cpath, ppath, ipath, spath, sets_path, epath, table_path)
    names = ("landcover_schemes.toml", *(p.name for p in scheme_files[1:]), "coefficients.csv", "prices.csv", "cpi.csv",
             "price_indices.csv", "indicator_sets.toml", "equivalent_factor.toml", table_path.name)
    return ReferenceData(schemes, coefficients, prices, index, sector, sets, equivalent,
                         {n: sha256_file(p) for n, p in zip(names, paths)}, dict(zip(names, paths)))


def _chain(path: Path, name: str, rows: list[tuple[int, dict[str, str]]], change_column: str) -> dict[int, float]:
    """A price index chain from yearly changes in % (rows with their row numbers in the file): the
    first year is 1.0."""
    for i, r in rows:
        if not r["year"].strip().isdigit():
            raise fail(path, f"row {i}: year", f"{r['year']!r} is not a calendar year", "give the year as e.g. 2020")
    index: dict[int, float] = {}
    for i, r in sorted(rows, key=lambda ir: int(ir[1]["year"])):
        year = int(r["year"])
        if not index:
            index[year] = 1.0
            continue
        if year != max(index) + 1:
            raise fail(path, f"{name} year {year}", "index years must be consecutive",
                       f"add the missing year {max(index) + 1}")
        index[year] = index[year - 1] * (1.0 + _num(path, i, change_column, r[change_column]) / 100.0)
    return index


def _equivalent_factor(path: Path) -> tuple[EquivalentFactorSpec, Path]:
    """The method's specification and its table of equivalents, each row checked against its own
    printed total and CNY/ha (the published table's arithmetic)."""
    try:
        spec = EquivalentFactorSpec.model_validate(_read_toml(path, "equivalent-factor file"))
    except ValidationError as exc:
        raise fail(path, "(file)", str(exc).replace("\n", " "), "fix the specification") from None
    unknown = sorted(set(spec.types) - set(ECOSYSTEM_TYPES))
    missing = sorted(set(ECOSYSTEM_TYPES) - set(spec.types))
    if unknown or missing:
        raise fail(path, "types", f"ecosystem types unknown {unknown} / without a Xie row {missing}",
                   "map every ecosystem type of gep/config.py ECOSYSTEM_TYPES to one row of the table")
    table = path.parent / spec.table
    services = list(spec.services)
    rows = _read_csv(table, ("xie_type", "name_zh", *services, "total", "cny_per_ha", "tag", "source"))
    equivalents, sources = {}, {}
    for i, r in enumerate(rows, start=2):
        values = {k: _num(table, i, k, r[k]) for k in services}
        total = sum(values.values())
        if abs(total - _num(table, i, "total", r["total"])) > 0.011:
            raise fail(table, f"row {i}: total", f"the equivalents add up to {total:.2f}, the row says {r['total']}",
                       "correct the row against the published table")
        equivalents[r["xie_type"]] = values
        sources[r["xie_type"]] = f"[{r['tag']}] {r['source']}"
    absent = sorted({t.xie_type for t in spec.types.values()} - set(equivalents))
    if absent:
        raise fail(path, "types", f"Xie rows {absent} are not in {table.name}", "use rows of the table")
    return spec.model_copy(update={"equivalents": equivalents, "row_sources": sources}), table
