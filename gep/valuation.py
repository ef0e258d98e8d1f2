"""Valuation: physical quantity × unit price, with the price indexed to the price year by CPI.

P_t = P_base × CPI_t / CPI_base (methodology §8.3). Each price carries its unit, year and source;
a price whose unit does not match the quantity's unit is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from gep.config import Price, ReferenceData
from gep.errors import fail


@dataclass(frozen=True)
class IndexedPrice:
    price: Price
    price_year: int
    cpi_factor: float

    @property
    def unit_price(self) -> float:
        """Price in price_year CNY per unit of quantity."""
        return self.price.value * self.cpi_factor


def index_price(ref: ReferenceData, key: str, price_year: int, quantity_unit: str) -> IndexedPrice:
    """Look up a price and bring it to ``price_year`` CNY; check it prices ``quantity_unit``."""
    price = ref.price(key)
    if price.unit != f"CNY/{quantity_unit}":
        raise fail(ref.path("prices.csv"), key, f"unit {price.unit!r} does not price a quantity in {quantity_unit!r}",
                   f"use a price in CNY/{quantity_unit}")
    return IndexedPrice(price, price_year, ref.cpi_factor(price.price_year, price_year))


def unit_price_range(ref: ReferenceData, price: IndexedPrice) -> tuple[float, float]:
    """Lowest and highest unit price in price_year CNY among the central price and the ends of its
    range, each indexed by CPI from its own price year (prices.csv low/low_price_year,
    high/high_price_year). An end recorded as "high" may fall below the central price once both
    are in the same year's CNY (the 2018 tax-based SO2 price is below S-Garze's 2010 cost in 2020
    CNY): the range is the span of all three."""
    candidates = [price.unit_price]
    for side in ("low", "high"):
        value, year = price.price.bound(side)
        candidates.append(value * ref.cpi_factor(year, price.price_year))
    return min(candidates), max(candidates)


def value_cny(quantity: float, price: IndexedPrice) -> float:
    """Money value [CNY of price_year] = quantity [unit] × unit price [CNY/unit]."""
    return quantity * price.unit_price
