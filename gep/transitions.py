"""The ecosystem extent change matrix between two years (SEEA EA extent account): from-type ×
to-type areas per county, from one pass over both years' land cover.

The two rasters must share one grid. Each cell's pair of codes becomes one code of a transition
raster (written once to the output directory's cache), which the zonal engine tallies per county
as it tallies any land cover (exact coverage fractions, cell areas of the area model). A class split
between types by county shares (cropland into paddy and dry) gives each pair of types the product
of its two years' shares when the class changed (the pixels say nothing finer). Cells classified in one year and nodata in
the other go to the type ``nodata``, so every row of the matrix sums to the opening area and every
column to the closing area. A split class that stays the same class keeps its common shares in
place (only a change of the shares moves area between its types).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from gep import engine, vocabulary
from gep.config import LandCoverScheme
from gep.errors import InputProblem, InputValidationError

NODATA_TYPE = "nodata"
M2_PER_HA = 1e4


def _codes(scheme: LandCoverScheme) -> list[int]:
    return sorted(scheme.classes)


def transition_raster(path_from: Path, path_to: Path, band: int, scheme: LandCoverScheme, target: Path) -> None:
    """Write the raster of (from, to) pairs: code 1 + i_from × (n + 1) + i_to, i = the class's index
    in the scheme (n: nodata or excluded), 0 where both years are nodata."""
    codes = _codes(scheme)
    n = len(codes)
    lut = np.full(max(max(codes), scheme.nodata, *scheme.excluded, 0) + 2, n, dtype=np.int32)
    lut[codes] = np.arange(n)
    with rasterio.open(path_from) as a, rasterio.open(path_to) as b:
        if (a.shape, a.transform, a.crs) != (b.shape, b.transform, b.crs):
            raise InputValidationError([InputProblem(str(path_to), "grid", f"not on the grid of {path_from} (shape "
                                                     f"{b.shape} vs {a.shape}, transform or CRS differ): the change "
                                                     "matrix pairs the two years cell by cell",
                                                     "bring both years onto one grid (gdalwarp -tr/-te/-t_srs)")])
        profile = dict(driver="GTiff", width=a.width, height=a.height, count=1, dtype="uint16", crs=a.crs,
                       transform=a.transform, nodata=0, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with rasterio.open(tmp, "w", **profile) as out:
                rows = 256
                for r0 in range(0, a.height, rows):
                    w = Window(0, r0, a.width, min(rows, a.height - r0))
                    fa = lut[np.clip(a.read(band, window=w).astype(np.int64), 0, len(lut) - 1)]
                    fb = lut[np.clip(b.read(band, window=w).astype(np.int64), 0, len(lut) - 1)]
                    pair = 1 + fa * (n + 1) + fb
                    pair[(fa == n) & (fb == n)] = 0
                    out.write(pair.astype(np.uint16), 1, window=w)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def transition_scheme(scheme: LandCoverScheme) -> LandCoverScheme:
    """A scheme whose classes are the pair codes (types are mapped afterwards, by each year's shares)."""
    n = len(_codes(scheme))
    classes = {c: {"name": f"pair {c}", "ecosystem_type": "bare"} for c in range(1, (n + 1) ** 2 + 1)}
    return LandCoverScheme.model_validate({"key": f"{scheme.key}-transitions", "title": "pairs", "nodata": 0,
                                           "source": scheme.source, "classes": classes})


def _split(from_types: dict[str, float], to_types: dict[str, float], same_class: bool) -> dict[tuple[str, str], float]:
    """Shares of a cell pair's area per (from type, to type), summing to each year's type shares.
    A class unchanged keeps what both years' shares have in common on the diagonal and moves only
    the difference (a paddy share from 0.6 to 0.7 moves 0.1 from dry to paddy); a class changed
    pairs the types by the product of their shares."""
    if not same_class:
        return {(tf, tt): sf * st for tf, sf in from_types.items() for tt, st in to_types.items()}
    kept = {t: min(from_types.get(t, 0.0), to_types.get(t, 0.0)) for t in from_types}
    lost = {t: s - kept[t] for t, s in from_types.items() if s - kept[t] > 0}
    gained = {t: s - kept.get(t, 0.0) for t, s in to_types.items() if s - kept.get(t, 0.0) > 0}
    moved = sum(lost.values())
    out = {(t, t): k for t, k in kept.items() if k > 0}
    for tf, lf in lost.items():
        for tt, gt in gained.items():
            out[(tf, tt)] = out.get((tf, tt), 0.0) + lf * gt / moved
    return out


def extent_matrix(prepared, path_from: Path, path_to: Path, shares_from: dict, shares_to: dict, baseline: int,
                  year: int, cache: Path) -> pd.DataFrame:
    """From-type × to-type areas [ha] per county. ``prepared``: a prepared run of the assessment
    year (counties, area model); ``shares_*``: county -> land-cover code -> {type: share}, from each
    year's published extent account."""
    scheme = prepared.scheme
    codes = _codes(scheme)
    n = len(codes)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"transitions-{baseline}-{year}-{os.getpid()}.tif"
    transition_raster(path_from, path_to, prepared.cfg.landcover_band, scheme, target)
    try:
        with rasterio.open(target) as ds:
            cfg = prepared.cfg.model_copy(update={"landcover_band": 1})
            run = replace(prepared, cfg=cfg, landcover=ds, scheme=transition_scheme(scheme), aux=(), services=[])
            p = engine.plan(run, extent_only=True)
            merged = engine.merge(p, engine.tally_local(p))
    finally:
        target.unlink(missing_ok=True)
    rows = []
    names = dict(zip(prepared.counties["county_code"], prepared.counties["county_name"]))
    for county, tally in merged.items():
        cells: dict[tuple[str, str], float] = {}
        for pair in np.flatnonzero(tally.class_pixels[1:(n + 1) ** 2 + 1] > 0) + 1:
            i_from, i_to = divmod(int(pair) - 1, n + 1)
            area = float(tally.class_area_m2[pair]) / M2_PER_HA
            from_types = {NODATA_TYPE: 1.0} if i_from == n else shares_from[county][codes[i_from]]
            to_types = {NODATA_TYPE: 1.0} if i_to == n else shares_to[county][codes[i_to]]
            for (tf, tt), share in _split(from_types, to_types, i_from == i_to).items():
                cells[(tf, tt)] = cells.get((tf, tt), 0.0) + area * share
        rows += [{"county_code": county, "county_name": names[county], "baseline_year": baseline, "year": year,
                  "from_type": tf, "to_type": tt, "area_ha": a} for (tf, tt), a in sorted(cells.items()) if a > 0]
    return pd.DataFrame(rows, columns=vocabulary.names("extent_matrix"))
