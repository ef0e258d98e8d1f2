"""Growth of a county's GDP and GEP between two accounted years (the "two faster, coordinated
growths" of GDP and GEP in scale and in conversion, 两个较快增长).

Plain arithmetic on two rows of the gep table: the year's and the base year's (the county's
latest earlier year published in the output directory). GEP growth is given at current prices
(nominal, comparable with GDP growth at current prices) and at constant prices (the ecological
change with price effects removed, methodology §8.3); the conversion ratio's change is in
percentage points. A pair that is not comparable (another indicator set, another constant price
year) gets no growth, and ``growth_note`` says why.
"""
from __future__ import annotations

from collections.abc import Mapping

# gep columns two years must share to be compared (growth, ΔGEP): one price vector, one set of services
COMPARABLE = (("indicator_set", "indicator set"), ("indicator_set_changes", "changes to the set"),
              ("constant_price_year", "constant price year"))
GROWTH_COLUMNS = ("growth_base_year", "gdp_growth_pct", "gep_growth_current_pct", "gep_growth_constant_pct",
                  "conversion_ratio_change_pp", "growth_note")


def _pct(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or not before > 0:
        return None
    return (now / before - 1.0) * 100.0


def _value(row: Mapping, key: str) -> float | None:
    v = row.get(key)
    return None if v is None or v != v else float(v)  # NaN read back from a frame: null


def growth(row: Mapping, base: Mapping | None) -> dict:
    """The growth columns of ``row`` against ``base`` (None: no earlier year published)."""
    none = dict.fromkeys(GROWTH_COLUMNS[:-1])
    if base is None:
        return none | {"growth_note": "no earlier year of the county published in the output directory"}
    for key, what in COMPARABLE:
        if base.get(key) != row.get(key):
            return none | {"growth_note": f"base year {int(base['year'])} has another {what} ({base.get(key)!r}, "
                                          f"this year {row.get(key)!r}): re-run it with this configuration"}
    notes = []
    gdp = _pct(_value(row, "gdp_cny"), _value(base, "gdp_cny"))
    if gdp is None:
        notes.append("GDP missing in one of the years")
    ratio_now, ratio_before = _value(row, "conversion_ratio"), _value(base, "conversion_ratio")
    return {"growth_base_year": int(base["year"]), "gdp_growth_pct": gdp,
            "gep_growth_current_pct": _pct(_value(row, "gep_current_cny"), _value(base, "gep_current_cny")),
            "gep_growth_constant_pct": _pct(_value(row, "gep_constant_cny"), _value(base, "gep_constant_cny")),
            "conversion_ratio_change_pp": (None if ratio_now is None or ratio_before is None
                                           else (ratio_now - ratio_before) * 100.0),
            "growth_note": "; ".join(notes)}
