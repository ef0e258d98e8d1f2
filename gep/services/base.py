"""The service framework: what a service declares, and what it is given to compute.

A service module defines plain science functions (arrays in, quantities out, units in the docstring)
and one :class:`Service` subclass instance named ``SERVICE`` that declares:

- ``key``, ``name_zh``, ``category`` (provisioning | regulating | cultural); which standards list
  it is data, in configs/indicator_sets.toml;
- its inputs: ``aux_inputs`` (rasters, with unit, plausible range and fill rule; some derived from
  others, e.g. the LS factor from a DEM), ``statistics_needed`` (county statistics; ``optional_statistics``
  are used where given, e.g. housing data),
  ``vector_inputs`` (lakes, reservoirs) and ``table_inputs`` (emissions by pollutant and year);
- ``Options``: a pydantic model of its options in the run configuration (unknown keys rejected);
- ``indicators``: its physical indicators, each with a unit and the price that values it
  (soil retention: sediment m³ by dredging, N and P t by treatment cost);
- ``credited_types``: the ecosystem types it credits (those with coefficients, as data);
- ``block_quantity``: named quantities per ecosystem type in one block of pixels, each as a triple
  (central, low, high) for the low/high range (interval arithmetic, methodology coefficients'
  low/high columns);
- ``finalize`` (optional): the county-level step after the pixel pass, which sees the county's
  summed pixel quantities, its statistics and tables, and returns the indicators' quantities
  (the purification rule min(emission, capacity); lakes and reservoirs; natural-forest areas);
- ``status`` (optional): why the service is not accounted in a county (not applicable, no method).

Valuation (quantity × price × CPI, for the central value and both ends of the range), the audit
trail and aggregation are done by the framework, the same for all. Adding a service = one new
module in ``gep/services/`` + its coefficients/prices in ``configs/``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.config import Coefficient, ReferenceData
from gep.errors import GepError

Category = Literal["provisioning", "regulating", "cultural"]
FillRule = Literal["class_default", "county_mean", "nearest"]
NEAREST = ".nearest"  # suffix of the nearest-valid copy of an input (a cached derived layer)
Triple = np.ndarray  # shape (3,): central, low, high


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DerivedLayer:
    """How an auxiliary layer is computed from other rasters when it is not given (once per run
    and grid, cached by input content): ``compute(sources, parameters, out_path)``."""

    sources: tuple[str, ...]            # auxiliary names it is computed from
    parameters: tuple[str, ...]         # coefficients.csv parameters (type "*") it uses
    compute: Callable[..., None]
    algorithm: str                      # one line for the audit trail


@dataclass(frozen=True)
class AuxInput:
    """An auxiliary raster a service reads, with the unit it expects and the values it can take."""

    name: str                    # key under [auxiliary] in the run configuration
    unit: str                    # unit the service expects (the configured unit must match)
    default_parameter: str | None  # coefficients.csv parameter filling nodata pixels, per ecosystem type
    plausible: tuple[float, float]  # physically possible values in `unit` (after `scale`); outside: refused
    plausible_reason: str        # why these bounds, for the error message
    fill: FillRule = "class_default"  # how pixels without data are filled (the share is reported per row)
    derived: DerivedLayer | None = None  # computed from other rasters when not configured itself

    def __post_init__(self):
        if self.fill == "class_default" and self.default_parameter is None:
            raise ValueError(f"auxiliary input {self.name}: fill 'class_default' needs a default_parameter")


@dataclass(frozen=True)
class VectorInput:
    """A vector layer a service reads: polygons (lakes) or points (reservoirs)."""

    name: str                    # key under [vectors] in the run configuration
    geometry: Literal["polygon", "point"]
    value_unit: str | None       # unit of the configured value_field (None: no value needed)
    description: str


@dataclass(frozen=True)
class TableInput:
    """A per-county table a service reads: rows of county_code, year, ``key_column``, value, source."""

    name: str                    # key under [tables] in the run configuration
    key_column: str              # e.g. "pollutant"
    keys: tuple[str, ...]        # the keys the service needs, e.g. ("so2", "nox", "dust")
    value_column: str            # e.g. "emission_t"
    unit: str


@dataclass(frozen=True)
class Indicator:
    """An indicator of a service: its unit and what values it. A physical quantity has the prices.csv
    price that values it (None, with no deflator: a memo row, reported for the audit trail but not
    valued, e.g. soil retained, valued through its sediment and nutrients). A money-valued
    quantity (unit CNY of the accounting year: an output value, tourism revenue) has instead the
    price index (``deflator``) that brings it to the price year."""

    key: str
    unit: str
    price_key: str | None
    description: str = ""
    deflator: str | None = None

    @property
    def valued(self) -> bool:
        return self.price_key is not None or self.deflator is not None


@dataclass
class ServiceBlock:
    """One block of a county's pixels, split by ecosystem type.

    For each ecosystem type, the pixels given to it (a class split between two types, such as
    cropland into paddy and dry, gives each its share of the pixel's area): their areas and their
    auxiliary values, aligned. ``aux`` holds the values of all the block's pixels. Auxiliary
    values are sampled when a service first asks for them, and only for those pixels.
    """

    type_area_m2: dict[str, np.ndarray]                # area given to the type, per pixel [m^2]
    type_aux: dict[str, Mapping[str, np.ndarray]]      # type -> auxiliary name -> value per pixel (NaN = no data)
    aux: Mapping[str, np.ndarray]                      # auxiliary values of every pixel of the block


@dataclass
class ServiceContext:
    """Everything a service may use besides the pixels: reference data, options, county statistics,
    tables and vector layers of the county, the fills of its auxiliary inputs."""

    ref: ReferenceData
    options: BaseModel
    statistics: dict[str, float]
    county_code: str
    year: int
    run_options: Mapping[str, BaseModel] = field(default_factory=dict)  # every enabled service's options
    tables: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # table -> key -> value
    vectors: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)  # layer -> features in the county
    aux_county_mean: Mapping[str, float] = field(default_factory=dict)  # input -> county mean of valid cells
    aux_fill: Mapping[str, str] = field(default_factory=dict)  # input -> fill rule set in the run configuration


@dataclass
class TypeQuantity:
    """Accumulated pixel quantities of a service for one ecosystem type."""

    quantities: dict[str, Triple] = field(default_factory=dict)
    area_m2: float = 0.0
    defaulted_area_m2: float = 0.0

    def add(self, name: str, q: Triple) -> None:
        self.quantities[name] = self.quantities.get(name, np.zeros(3)) + q


@dataclass
class Finalized:
    """Indicator quantities of a county per (ecosystem type, indicator), with notes for the audit
    trail (e.g. the emission and capacity behind a min rule)."""

    quantities: dict[tuple[str, str], Triple]
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    areas_m2: dict[tuple[str, str], float] = field(default_factory=dict)  # rows without pixels (lakes)


@dataclass(frozen=True)
class NotAccounted:
    status: Literal["not_applicable", "no_method", "no_input"]
    reason: str


class Service(ABC):
    key: ClassVar[str]
    name_zh: ClassVar[str]
    category: ClassVar[Category]
    aux_inputs: ClassVar[tuple[AuxInput, ...]] = ()
    statistics_fields: ClassVar[tuple[str, ...]] = ()
    optional_statistics: ClassVar[tuple[str, ...]] = ()  # read where given (an empty value: not given)
    vector_inputs: ClassVar[tuple[VectorInput, ...]] = ()
    table_inputs: ClassVar[tuple[TableInput, ...]] = ()
    Options: ClassVar[type[BaseModel]] = NoOptions

    @abstractmethod
    def indicators(self, options: BaseModel) -> tuple[Indicator, ...]:
        ...

    @abstractmethod
    def method(self, options: BaseModel) -> str:
        ...

    def credited_types(self, ref: ReferenceData, options: BaseModel) -> tuple[str, ...]:
        return ()

    def price_key(self, indicator: Indicator, ctx: ServiceContext, price_year: int) -> str | None:
        """The price valuing an indicator at a price year (a rule may depend on it: the carbon
        market opened in 2021)."""
        return indicator.price_key

    def statistics_needed(self, options: BaseModel) -> tuple[str, ...]:
        """The county-statistics fields these options need (default: all declared)."""
        return self.statistics_fields

    def inputs_needed(self, options: BaseModel) -> tuple[AuxInput, ...]:
        """The auxiliary rasters these options need (default: all declared)."""
        return self.aux_inputs

    def status(self, ctx: ServiceContext) -> NotAccounted | None:
        """Why the service is not accounted in this county (None: it is)."""
        return None

    def parameters(self, ecosystem_type: str, ctx: ServiceContext) -> list[Coefficient]:
        """Coefficients behind a row, for the audit trail."""
        return []

    def credited_in(self, block: ServiceBlock, ctx: ServiceContext) -> list[tuple[str, np.ndarray]]:
        """The credited types present in a block, with their pixels' areas [m^2]."""
        return [(t, block.type_area_m2[t]) for t in self.credited_types(ctx.ref, ctx.options) if t in block.type_area_m2]

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext) -> dict[str, tuple[dict[str, Triple], float]]:
        """Named quantities per credited ecosystem type in this block, and the area that used
        filled inputs: ``{ecosystem_type: ({name: (central, low, high)}, filled_area_m2)}``."""
        return {}

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        """The county's indicator quantities from its summed pixel quantities (default: each
        named pixel quantity is the indicator of the same key)."""
        return Finalized({(t, name): q for t, tq in totals.items() for name, q in tq.quantities.items()})


def aux_values(block: ServiceBlock, ctx: ServiceContext, aux: AuxInput, ecosystem_type: str, service: str = "",
               decreasing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Auxiliary values for the pixels of one type, filled by the input's rule; and the filled mask.

    The values are one row (n,) when no pixel was filled, else (3, n) rows (central, value giving
    the low quantity, value giving the high quantity): formulas broadcast either against the (3, 1)
    coefficient triples, so the range costs extra work only where it exists.

    ``class_default``: the type's coefficient (with its low/high range); ``county_mean``: the mean
    of the input's valid cells over the county, from the validation pass; ``nearest``: the value of
    the nearest valid cell of the raster (a cached filled copy). The rule is the input's own, or
    the one the run configuration sets for it. Raises when a pixel cannot be filled: no quantity
    is ever NaN.
    """
    values = block.type_aux[ecosystem_type][aux.name]
    missing = np.isnan(values)
    if not missing.any():
        return values, missing
    rule = ctx.aux_fill.get(aux.name, aux.fill)
    if rule == "class_default":
        fill = ctx.ref.coefficient(aux.default_parameter, ecosystem_type).bounds3(decreasing)[:, None]
    elif rule == "county_mean":
        fill = np.full((3, 1), ctx.aux_county_mean.get(aux.name, float("nan")))
    else:
        fill = np.broadcast_to(block.type_aux[ecosystem_type][aux.name + NEAREST][missing], (3, int(missing.sum())))
        filled = np.broadcast_to(values, (3, values.size)).copy()
        filled[:, missing] = fill
        if np.all(np.isfinite(fill)):
            return filled, missing
    if not np.all(np.isfinite(fill)):
        raise GepError(f"county {ctx.county_code}, service {service or '?'}: the auxiliary raster {aux.name!r} has "
                       f"no data over {int(missing.sum()):,} {ecosystem_type} pixel(s) and its fill rule "
                       f"{rule!r} gives no value (no valid cell in the county); nothing was written.\n"
                       f"    fix: use a raster with valid data over the county, or declare a class default "
                       f"for {aux.name}")
    return np.where(missing[None, :], fill, values[None, :]), missing


def credited_area_ha(service: Service, block: ServiceBlock, ctx: ServiceContext) -> dict[str, tuple[dict[str, Triple], float]]:
    """The block's area of each credited type [ha], as the pixel quantity ``area_ha`` (a service
    whose quantity is a county figure shared by area, or an area itself)."""
    return {t: ({"area_ha": np.full(3, float(area.sum()) / 1e4)}, 0.0) for t, area in service.credited_in(block, ctx)}


def sum3(per_pixel: np.ndarray) -> Triple:
    """Sum per-pixel quantities, (3, n) rows or one (n,) row without a range, into a (central,
    low, high) triple."""
    a = np.asarray(per_pixel, dtype=np.float64)
    return np.full(3, a.sum()) if a.ndim < 2 else a.reshape(3, -1).sum(axis=1)


def area_weighted(values: np.ndarray, area_m2: np.ndarray) -> Triple:
    """Σ value × area over pixels [value unit × m²] as a (central, low, high) triple, for a formula
    linear in the raster term: its coefficients then multiply the sums, not every pixel."""
    v = np.asarray(values)
    # elementwise product and numpy's pairwise sum, not a BLAS dot: the same bits whatever the
    # number of BLAS threads (a Dask worker runs with one)
    return np.full(3, float((v * area_m2).sum())) if v.ndim == 1 else (v * area_m2).sum(axis=1)

