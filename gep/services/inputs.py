"""The catalogue of auxiliary rasters: each input once, with its unit, per-class default and the
physically possible range of its values (validation refuses a raster with values outside it: a
wrong unit or scale, an undeclared nodata value). Services import their inputs from here.
"""
from __future__ import annotations

from gep.services.base import AuxInput

PRECIPITATION = AuxInput("precipitation", "mm/a", None, (0.0, 13_000.0),
                         "the wettest places on Earth receive about 12,000 mm/a")
ACTUAL_ET = AuxInput("actual_et", "mm/a", "et_default", (0.0, 3_000.0),
                     "actual evapotranspiration stays below about 2,500 mm/a even over tropical open water")
NPP = AuxInput("npp", "kg C/m2/a", "npp_default", (-0.5, 3.5),
               "annual NPP on land is about -0.3 to 3.3 kg C/m2/a (MOD17A3 valid range x 0.0001)")
