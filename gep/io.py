"""The one place that reads and writes files.

Reading normalises names (county_code, county_name), dtypes (codes as strings) and reports problems as
:class:`~gep.errors.InputProblem` with the file, the field and the fix. Writing produces Hive-
partitioned Parquet, one file per partition, each written atomically (temporary file in the same
folder, fsync, ``os.replace``) so a reader never sees a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import rasterio
from rasterio.errors import RasterioIOError
from shapely.validation import explain_validity

from gep import vocabulary
from gep.errors import InputProblem

PART_FILE = "part-0.parquet"


# --------------------------------------------------------------------------- reading
def read_boundaries(path: Path, layer: str | None, code_field: str, name_field: str
                    ) -> tuple[gpd.GeoDataFrame | None, list[InputProblem]]:
    """County polygons as ``county_code`` (str), ``county_name``, ``geometry``; plus every problem found."""
    f = str(path)
    if not Path(path).is_file():
        return None, [InputProblem(f, "boundaries.path", "file not found",
                                   "point [boundaries] path at an existing GeoPackage/Shapefile/GeoJSON")]
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        return None, [InputProblem(f, "boundaries.layer" if layer else "(file)",
                                   f"cannot read as a vector layer: {exc}",
                                   "check the file is a valid vector dataset and the layer name exists")]
    problems: list[InputProblem] = []
    for key, col in (("boundaries.code_field", code_field), ("boundaries.name_field", name_field)):
        if col not in gdf.columns:
            problems.append(InputProblem(f, key, f"column {col!r} not in the file (columns: "
                                         f"{', '.join(c for c in gdf.columns if c != 'geometry')})",
                                         f"set {key} to one of those columns"))
    if gdf.crs is None:
        problems.append(InputProblem(f, "crs", "the layer has no coordinate reference system",
                                     "assign the CRS in the file (e.g. EPSG:4326) with a GIS tool"))
    if problems:
        return None, problems
    codes = gdf[code_field]
    codes = codes.map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).strip())
    out = gpd.GeoDataFrame({"county_code": codes.astype(str), "county_name": gdf[name_field].astype(str)},
                           geometry=gdf.geometry.values, crs=gdf.crs)
    empty = out.index[out["county_code"] == ""].tolist()
    if empty:
        problems.append(InputProblem(f, code_field, f"{len(empty)} feature(s) with an empty code (rows {empty[:10]})",
                                     "give every county a unique code"))
    dup = sorted(set(out.loc[out["county_code"].duplicated() & (out["county_code"] != ""), "county_code"]))
    if dup:
        problems.append(InputProblem(f, code_field, f"duplicated county codes: {', '.join(dup)}",
                                     "make codes unique (dissolve the parts of one county into one feature)"))
    geom = out.geometry
    bad = out.loc[geom.isna() | geom.is_empty | ~geom.is_valid, "county_code"].tolist()
    if bad:
        reasons = [shapely_reason(g) for g in geom[geom.isna() | geom.is_empty | ~geom.is_valid]]
        problems.append(InputProblem(f, "geometry", "invalid or empty geometries for counties "
                                     + "; ".join(f"{c} ({r})" for c, r in zip(bad, reasons)),
                                     "repair them (e.g. shapely.make_valid or QGIS 'Fix geometries') and re-run"))
    return out, problems


def shapely_reason(geom) -> str:
    """Why a geometry is unusable, in shapely's words."""
    if geom is None or geom.is_empty:
        return "empty"
    return explain_validity(geom)


def open_raster(path: Path, key: str) -> tuple[rasterio.DatasetReader | None, list[InputProblem]]:
    """Open a raster for reading, or explain why it cannot be."""
    if not Path(path).is_file():
        return None, [InputProblem(str(path), key, "file not found", "check the path in the run configuration")]
    try:
        ds = rasterio.open(path)
    except RasterioIOError as exc:
        return None, [InputProblem(str(path), key, f"not a readable raster: {exc}",
                                   "replace the file with a valid GeoTIFF")]
    if ds.crs is None:
        ds.close()
        return None, [InputProblem(str(path), f"{key} (crs)", "the raster has no CRS",
                                   "assign the CRS (e.g. gdal_edit.py -a_srs EPSG:4326 file.tif)")]
    return ds, []


STATISTICS_KEY_COLUMNS = ("county_code", "year", "source")


def read_statistics(path: Path) -> tuple[pd.DataFrame | None, list[InputProblem]]:
    """County statistics table: one row per county and year; codes kept as strings."""
    f = str(path)
    if not Path(path).is_file():
        return None, [InputProblem(f, "statistics.path", "file not found", "point [statistics] path at the CSV")]
    try:
        df = pd.read_csv(path, dtype={"county_code": str}, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        return None, [InputProblem(f, "(file)", f"not a readable CSV: {exc}", "save it as UTF-8 CSV")]
    missing = [c for c in STATISTICS_KEY_COLUMNS if c not in df.columns]
    if missing:
        return None, [InputProblem(f, ", ".join(missing), "required column(s) missing",
                                   f"add columns {list(STATISTICS_KEY_COLUMNS)}")]
    dup = df[df.duplicated(["county_code", "year"], keep=False)]
    if len(dup):
        pairs = sorted({f"{c}/{y}" for c, y in zip(dup.county_code, dup.year)})
        return None, [InputProblem(f, "county_code, year", f"duplicated rows for {', '.join(pairs)}",
                                   "keep one row per county and year")]
    return df, []


# --------------------------------------------------------------------------- writing
def partition_dir(output_dir: Path, dataset: str, year: int, county_code: str) -> Path:
    return Path(output_dir) / dataset / f"year={year}" / f"county_code={county_code}"


def to_table(df: pd.DataFrame, dataset: str, lineage: dict[str, str]) -> pa.Table:
    """Cast a frame to the dataset's schema (units in field metadata, lineage in file metadata)."""
    sch = vocabulary.schema(dataset)
    missing = [n for n in sch.names if n not in df.columns]
    if missing:
        raise KeyError(f"{dataset}: columns {missing} missing from the computed table")
    table = pa.Table.from_pandas(df[sch.names], schema=sch, preserve_index=False)
    units = {c.name: c.unit for c in vocabulary.DATASETS[dataset]}
    meta = {b"gep:dataset": dataset.encode(), b"gep:units": json.dumps(units).encode(),
            b"gep:lineage": json.dumps(lineage, sort_keys=True).encode()}
    return table.replace_schema_metadata(meta)


def write_partition(table: pa.Table, output_dir: Path, dataset: str, year: int, county_code: str) -> Path:
    """Write one partition atomically; replaces an existing file in one step."""
    target_dir = partition_dir(output_dir, dataset, year, county_code)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / PART_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{PART_FILE}.tmp-", dir=target_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


def read_dataset(output_dir: Path | str, dataset: str) -> pd.DataFrame:
    """Read an output dataset with its partition types kept (county_code str, year int32)."""
    keys = {c.name: c.type for c in vocabulary.DATASETS[dataset] if c.name in vocabulary.PARTITION_COLUMNS}
    part = pads.partitioning(pa.schema([(k, keys[k]) for k in vocabulary.PARTITION_COLUMNS]), flavor="hive")
    return pd.read_parquet(Path(output_dir) / dataset, partitioning=part)
