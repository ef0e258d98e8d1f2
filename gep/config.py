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
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gep.errors import InputProblem, InputValidationError, fail
from gep.zonal import DEFAULT_STRIP_PIXELS

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"

ECOSYSTEM_TYPES = (
    "forest", "shrub", "grassland", "wetland", "water",
    "cropland_paddy", "cropland_dry", "built_up", "bare", "snow_ice",
)
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

    def path_for(self, year: int) -> Path:
        return Path(self.path.format(year=year))


class StatisticsConfig(_Strict):
    path: Path


class ServicesConfig(BaseModel):
    """``enabled`` lists service keys; a sub-table named after a service holds its options."""

    model_config = ConfigDict(extra="allow", frozen=True)
    enabled: list[str] = Field(min_length=1)

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
    landcover_scheme: str
    price_year: int | Literal["accounting_year"] = Field(
        description="price year of all values; 'accounting_year' values each year at its own prices")
    default_year: int | None = None
    area_model: Literal["ellipsoid", "sphere"] = "ellipsoid"
    boundaries: BoundariesConfig
    landcover: dict[int, Path] = Field(min_length=1)
    landcover_band: int = Field(1, ge=1, description="band of the land-cover rasters holding the class codes")
    auxiliary: dict[str, AuxiliaryConfig] = Field(default_factory=dict)
    statistics: StatisticsConfig | None = None
    services: ServicesConfig
    compute: ComputeConfig = ComputeConfig()
    checks: ChecksConfig = ChecksConfig()
    schemes_file: Path = REPO_CONFIGS / "landcover_schemes.toml"
    coefficients_file: Path = REPO_CONFIGS / "coefficients.csv"
    prices_file: Path = REPO_CONFIGS / "prices.csv"
    cpi_file: Path = REPO_CONFIGS / "cpi.csv"
    source_file: Path | None = Field(None, exclude=True)

    @field_validator("landcover")
    @classmethod
    def _years_plausible(cls, v: dict[int, Path]) -> dict[int, Path]:
        for year in v:
            if not 1980 <= year <= 2100:
                raise ValueError(f"land-cover year {year} is not a plausible calendar year")
        return v

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
        return year if self.price_year == "accounting_year" else self.price_year


def _resolve(base: Path, p: Path | str) -> Path:
    return Path(os.path.normpath(base / Path(p)))


def load_run_config(path: str | Path, *, output_dir: str | Path | None = None) -> RunConfig:
    """Read, validate and resolve a run configuration file.

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
        "source_file": path.resolve(),
    }
    for key in ("schemes_file", "coefficients_file", "prices_file", "cpi_file"):
        if key in raw:
            updates[key] = _resolve(base, raw[key])
    return cfg.model_copy(update=updates)


# --------------------------------------------------------------------------- reference tables
class LandCoverClass(_Strict):
    name: str
    name_zh: str = ""
    ecosystem_type: str | None = None
    split: Literal["paddy_share"] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> "LandCoverClass":
        if (self.ecosystem_type is None) == (self.split is None):
            raise ValueError("give exactly one of ecosystem_type or split")
        if self.ecosystem_type is not None and self.ecosystem_type not in ECOSYSTEM_TYPES:
            raise ValueError(f"unknown ecosystem_type {self.ecosystem_type!r}; known: {', '.join(ECOSYSTEM_TYPES)}")
        return self

    def type_shares(self, paddy_share: float | None) -> dict[str, float]:
        """Ecosystem types this class maps to, with the share of its area each gets."""
        if self.ecosystem_type is not None:
            return {self.ecosystem_type: 1.0}
        assert paddy_share is not None
        return {"cropland_paddy": paddy_share, "cropland_dry": 1.0 - paddy_share}


class LandCoverScheme(_Strict):
    key: str
    title: str
    nodata: int
    excluded: list[int] = Field(default_factory=list)
    source: str
    classes: dict[int, LandCoverClass]

    @property
    def needs_paddy_share(self) -> bool:
        return any(c.split == "paddy_share" for c in self.classes.values())


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

    def cite(self) -> str:
        where = "" if self.ecosystem_type == "*" else f"[{self.ecosystem_type}]"
        return f"{self.parameter}{where}={self.value:g} {self.unit} ({self.tag}: {self.source})"


@dataclass(frozen=True)
class Price:
    key: str
    item: str
    value: float
    unit: str
    price_year: int
    tag: str
    source: str

    def cite(self) -> str:
        return f"{self.tag}: {self.source}"


@dataclass(frozen=True)
class ReferenceData:
    """Schemes, coefficients, prices and CPI, each traceable to its file and hash."""

    schemes: dict[str, LandCoverScheme]
    coefficients: dict[tuple[str, str], Coefficient]
    prices: dict[str, Price]
    cpi_index: dict[int, float]
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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise fail(path, "(file)", "reference table not found", "restore it from the repository's configs/")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = tuple(reader.fieldnames or ())
        rows = list(reader)
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in required]
    if missing or unknown:
        raise fail(path, ", ".join(missing + unknown) or "(header)",
                   f"columns missing {missing} / unknown {unknown}", f"use exactly the columns {list(required)}")
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


def load_reference_data(cfg: RunConfig) -> ReferenceData:
    """Load and check the four reference tables named by the run configuration."""
    schemes_path = cfg.schemes_file
    if not schemes_path.is_file():
        raise fail(schemes_path, "(file)", "land-cover scheme file not found", "restore configs/landcover_schemes.toml")
    try:
        raw = tomllib.loads(schemes_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(schemes_path, "(file)", f"not valid TOML: {exc}", "fix the syntax at the position given") from exc
    schemes: dict[str, LandCoverScheme] = {}
    for key, body in raw.items():
        try:
            schemes[key] = LandCoverScheme.model_validate({"key": key, **body})
        except ValidationError as exc:
            raise fail(schemes_path, key, str(exc), "fix the scheme definition") from exc

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
            r["unit"], r["tag"], r["source"])

    ppath = cfg.prices_file
    prices: dict[str, Price] = {}
    cols = ("key", "item", "value", "low", "high", "unit", "price_year", "tag", "source", "note")
    for i, r in enumerate(_read_csv(ppath, cols), start=2):
        if r["tag"] not in EVIDENCE_TAGS:
            raise fail(ppath, f"row {i}: tag", f"unknown evidence tag {r['tag']!r}", f"use one of {EVIDENCE_TAGS}")
        value = _num(ppath, i, "value", r["value"])
        if value is None or value < 0:
            raise fail(ppath, f"row {i}: value", "price must be >= 0", "give a non-negative price")
        prices[r["key"]] = Price(r["key"], r["item"], value, r["unit"],
                                 int(_num(ppath, i, "price_year", r["price_year"])), r["tag"], r["source"])

    ipath = cfg.cpi_file
    index: dict[int, float] = {}
    rows = _read_csv(ipath, ("year", "cpi_change_pct", "tag", "source"))
    for i, r in enumerate(rows, start=2):
        if not r["year"].strip().isdigit():
            raise fail(ipath, f"row {i}: year", f"{r['year']!r} is not a calendar year", "give the year as e.g. 2020")
    rows = sorted(rows, key=lambda r: int(r["year"]))
    for i, r in enumerate(rows):
        year = int(r["year"])
        if i == 0:
            index[year] = 1.0
            continue
        if year != max(index) + 1:
            raise fail(ipath, f"year {year}", "CPI years must be consecutive", f"add the missing year {max(index) + 1}")
        index[year] = index[year - 1] * (1.0 + _num(ipath, i + 2, "cpi_change_pct", r["cpi_change_pct"]) / 100.0)

    paths = (schemes_path, cpath, ppath, ipath)
    return ReferenceData(schemes, coefficients, prices, index, {p.name: sha256_file(p) for p in paths},
                         {name: p for name, p in zip(("landcover_schemes.toml", "coefficients.csv", "prices.csv",
                                                      "cpi.csv"), paths)})
