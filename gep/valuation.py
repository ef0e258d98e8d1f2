"""Valuation: what one unit of a quantity is worth in the CNY of a price year.

Two kinds of quantity (methodology §8.3):

- a physical quantity (m³, t, kWh) × a unit price of prices.csv, indexed by CPI from the price's
  own year: P_t = P_base × CPI_t / CPI_base;
- a money-valued quantity (a sector's output value, tourism revenue, in CNY of the accounting year)
  brought to the price year by its sector's price index (agricultural producer prices, PPI;
  consumer spending by the CPI), never by the CPI alone when a sector index applies.

Current prices value each year at its own price year; constant prices value every year at one
base year (one price vector: comparisons across years). Each price carries its unit, year and
source; a price whose unit does not match the quantity's unit is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from gep.config import ReferenceData
from gep.errors import fail

MONEY = "CNY"  # the unit of a money-valued quantity


@dataclass(frozen=True)
class UnitValue:
    """One unit of a quantity in price_year CNY, its range, and where it comes from."""

    unit_price: float       # CNY of price_year per unit of quantity
    low: float              # the range's ends (prices.csv low/high, each from its own year)
    high: float
    price_unit: str
    price_year: int
    key: str                # prices.csv key, or the price index deflating a money-valued quantity
    base_unit_price: float  # as recorded (1 for money: 1 CNY of the accounting year)
    base_price_year: int
    index: str              # "cpi" or the sector index
    index_factor: float     # index(price_year) / index(base_price_year)
    source: str

    def value(self, quantity: float) -> float:
        """Money value [CNY of price_year] = quantity [unit] × unit price [CNY/unit]."""
        return quantity * self.unit_price


def priced(ref: ReferenceData, key: str, price_year: int, quantity_unit: str) -> UnitValue:
    """A prices.csv price brought to ``price_year`` CNY by CPI; it must price ``quantity_unit``.

    The range is the span of the central price and both ends, each indexed from its own price year
    (an end recorded as "high" may fall below the central price once both are in one year's CNY:
    the 2018 tax-based SO2 price is below S-Garze's 2010 cost in 2020 CNY)."""
    price = ref.price(key)
    if price.unit != f"CNY/{quantity_unit}":
        raise fail(ref.path("prices.csv"), key, f"unit {price.unit!r} does not price a quantity in {quantity_unit!r}",
                   f"use a price in CNY/{quantity_unit}")
    factor = ref.cpi_factor(price.price_year, price_year)
    candidates = [price.value * factor]
    for side in ("low", "high"):
        value, year = price.bound(side)
        candidates.append(value * ref.cpi_factor(year, price_year))
    return UnitValue(price.value * factor, min(candidates), max(candidates), price.unit, price_year, key, price.value,
                     price.price_year, "cpi", factor, f"{price.item}; {price.cite()}")


def deflated(ref: ReferenceData, index: str, money_year: int, price_year: int) -> UnitValue:
    """1 CNY of ``money_year`` (a money-valued quantity) in ``price_year`` CNY by a price index."""
    factor = ref.index_factor(index, money_year, price_year)
    what = "CPI (configs/cpi.csv)" if index == "cpi" else f"price index {index} (configs/price_indices.csv)"
    return UnitValue(factor, factor, factor, f"CNY/{MONEY}", price_year, index, 1.0, money_year, index, factor,
                     f"money value of {money_year} brought to {price_year} by the {what}")
