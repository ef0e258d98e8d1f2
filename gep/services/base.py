"""The service framework: what a service declares, and what it is given to compute.

A service module defines plain science functions (arrays in, quantities out, units in the docstring)
and one :class:`Service` subclass instance named ``SERVICE`` that declares:

- ``key``, ``name_zh``, ``category`` (provisioning | regulating | cultural);
- ``aux_inputs``: auxiliary rasters it reads, each with the unit it expects and the coefficient that
  fills pixels where the raster has no data;
- ``statistics_fields``: county-statistics columns it needs;
- ``Options``: a pydantic model of its options in the run configuration (unknown keys rejected);
- ``quantity_unit``, ``price_key`` and ``method`` (may depend on the options);
- ``credited_types``: the ecosystem types it credits (those with coefficients, as data);
- ``block_quantity``: the physical quantity per ecosystem type in one block of pixels.

Valuation (quantity x price x CPI) and aggregation are done by the framework, the same for all.
Adding a service = one new module in ``gep/services/`` + its coefficients/prices in ``configs/``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.config import Coefficient, ReferenceData

Category = Literal["provisioning", "regulating", "cultural"]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class AuxInput:
    """An auxiliary raster a service reads, with the unit it expects and the values it can take."""

    name: str                    # key under [auxiliary] in the run configuration
    unit: str                    # unit the service expects (the configured unit must match)
    default_parameter: str | None  # coefficients.csv parameter filling nodata pixels, per ecosystem type
    plausible: tuple[float, float]  # physically possible values in `unit` (after `scale`); outside: refused
    plausible_reason: str        # why these bounds, for the error message


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
    """Everything a service may use besides the pixels: reference data, options, county statistics."""

    ref: ReferenceData
    options: BaseModel
    statistics: dict[str, float]
    county_code: str
    year: int


@dataclass
class TypeQuantity:
    """Accumulated result of a service for one ecosystem type."""

    quantity: float = 0.0
    area_m2: float = 0.0
    defaulted_area_m2: float = 0.0


class Service(ABC):
    key: ClassVar[str]
    name_zh: ClassVar[str]
    category: ClassVar[Category]
    aux_inputs: ClassVar[tuple[AuxInput, ...]] = ()
    statistics_fields: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type[BaseModel]] = NoOptions

    @abstractmethod
    def quantity_unit(self, options: BaseModel) -> str:
        ...

    @abstractmethod
    def price_key(self, options: BaseModel) -> str:
        ...

    @abstractmethod
    def method(self, options: BaseModel) -> str:
        ...

    @abstractmethod
    def credited_types(self, ref: ReferenceData, options: BaseModel) -> tuple[str, ...]:
        ...

    def parameters(self, ecosystem_type: str, ctx: ServiceContext) -> list[Coefficient]:
        """Coefficients behind a row, for the audit trail."""
        return []

    @abstractmethod
    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext) -> dict[str, tuple[float, float]]:
        """Quantity per credited ecosystem type in this block, and the area that used default inputs.

        Returns ``{ecosystem_type: (quantity, defaulted_area_m2)}``.
        """


def aux_values(block: ServiceBlock, ctx: ServiceContext, aux: AuxInput, ecosystem_type: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Auxiliary values for the pixels of one type, nodata filled; returns (values, filled_mask).

    Pixels where the raster has no data take the type's default coefficient (``aux.default_parameter``)
    or, for inputs without a per-type default, the mean of the block's valid values.
    """
    values = block.type_aux[ecosystem_type][aux.name]
    missing = np.isnan(values)
    if not missing.any():
        return values, missing
    if aux.default_parameter is not None:
        fill = ctx.ref.coefficient(aux.default_parameter, ecosystem_type).value
    else:
        everywhere = block.aux[aux.name]
        valid = everywhere[~np.isnan(everywhere)]
        fill = float(valid.mean()) if valid.size else np.nan
    return np.where(missing, fill, values), missing
