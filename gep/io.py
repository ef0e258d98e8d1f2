"""Reading inputs and output datasets; turning computed frames into checked Arrow tables.

Reading normalises names (county_code, county_name), dtypes (codes as strings) and reports problems as
:class:`~gep.errors.InputProblem` with the file, the field and the fix. Output files are written by
gep/store.py only (versions published atomically, run records).
"""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pyogrio
import rasterio
from rasterio.errors import RasterioIOError
from shapely.validation import explain_validity

from gep import vocabulary
from gep.errors import InputProblem
from gep.store import partition_path

# --------------------------------------------------------------------------- reading
def read_boundaries(path: Path, layer: str | None, code_field: str, name_field: str, encoding: str | None = None
                    ) -> tuple[gpd.GeoDataFrame | None, list[InputProblem]]:
    """County polygons as ``county_code`` (str), ``county_name``, ``geometry``; plus every problem found.

    ``encoding``: the attribute table's text encoding when the file does not declare it (a Shapefile
    without .cpg); undeclared non-UTF-8 Chinese names are detected and refused, never garbled.
    """
    f = str(path)
    if not Path(path).exists():
        return None, [InputProblem(f, "boundaries.path", "file not found",
                                   "point [boundaries] path at an existing GeoPackage/Shapefile/GeoJSON")]
    problems: list[InputProblem] = []
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several types for unreadable files
        return None, [InputProblem(f, "(file)", f"cannot read as a vector dataset: {exc}",
                                   "check the file is a valid GeoPackage/Shapefile/GeoJSON")]
    if layer is not None and layer not in layers:
        return None, [InputProblem(f, "boundaries.layer", f"no layer {layer!r} (layers: {', '.join(layers)})",
                                   "set [boundaries] layer to one of those layers")]
    try:
        gdf = gpd.read_file(path, layer=layer, encoding=encoding)
    except Exception as exc:
        return None, [InputProblem(f, "boundaries.layer" if layer else "(file)",
                                   f"cannot read as a vector layer: {exc}",
                                   "check the file is a valid vector dataset and the layer name exists")]
    if len(gdf) == 0:
        return None, [InputProblem(f, f"layer {layer or layers[0]!r}", "the layer has no features",
                                   "point [boundaries] at the layer holding the county polygons")]
    problems += _column_problems(f, gdf, {"boundaries.code_field": code_field, "boundaries.name_field": name_field})
    if gdf.crs is None:
        problems.append(InputProblem(f, "crs", "the layer has no coordinate reference system",
                                     "assign the CRS in the file (e.g. EPSG:4326) with a GIS tool"))
    if problems:
        return None, problems
    codes = gdf[code_field]
    if codes.dtype.kind == "f":
        problems.append(InputProblem(f, code_field, f"county codes are stored as decimal numbers (e.g. "
                                     f"{float(codes.dropna().iloc[0]) if codes.notna().any() else 'NaN'}), so they cannot "
                                     "match the statistics' codes", f"store {code_field} as text (or integer) codes, "
                                     "e.g. 330402, in the boundary file"))
    codes = codes.map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).strip())
    out = gpd.GeoDataFrame({"county_code": codes.astype(str), "county_name": gdf[name_field].astype(str)},
                           geometry=gdf.geometry.values, crs=gdf.crs)
    problems += _garbled_names(f, name_field, out["county_name"], encoding)
    empty = out.index[out["county_code"] == ""].tolist()
    if empty:
        problems.append(InputProblem(f, code_field, f"{len(empty)} feature(s) with an empty code (rows {empty[:10]})",
                                     "give every county a unique code"))
    dup = sorted(set(out.loc[out["county_code"].duplicated() & (out["county_code"] != ""), "county_code"]))
    if dup:
        problems.append(InputProblem(f, code_field, f"duplicated county codes: {', '.join(dup)}",
                                     "make codes unique (dissolve the parts of one county into one feature)"))
    geom = out.geometry
    kinds = geom.geom_type
    not_polygons = out.loc[geom.notna() & ~geom.is_empty & ~kinds.isin(["Polygon", "MultiPolygon"])]
    if len(not_polygons):
        listing = ", ".join(f"{c} ({k})" for c, k in zip(not_polygons.county_code, kinds[not_polygons.index]))
        problems.append(InputProblem(f, "geometry", f"counties must be polygons; found {listing}",
                                     "use the county polygons (areas), not their outlines or centroids "
                                     "(e.g. QGIS 'Lines to polygons')"))
    bad_mask = geom.isna() | geom.is_empty | ~geom.is_valid
    bad = out.loc[bad_mask, "county_code"].tolist()
    if bad:
        reasons = [shapely_reason(g) for g in geom[bad_mask]]
        problems.append(InputProblem(f, "geometry", "invalid or empty geometries for counties "
                                     + "; ".join(f"{c} ({r})" for c, r in zip(bad, reasons)),
                                     "repair them (e.g. shapely.make_valid or QGIS 'Fix geometries') and re-run"))
    return out, problems


def _column_problems(file: str, gdf: pd.DataFrame, fields: dict[str, str | None]) -> list[InputProblem]:
    """Configured columns (configuration key -> column; None: not asked for) missing from a layer."""
    present = ", ".join(c for c in gdf.columns if c != "geometry")
    return [InputProblem(file, key, f"column {col!r} not in the file (columns: {present})",
                         f"set {key} to one of those columns") for key, col in fields.items()
            if col is not None and col not in gdf.columns]


def _garbled_names(file: str, field: str, names: pd.Series, encoding: str | None) -> list[InputProblem]:
    """Names that are Chinese text decoded with the wrong encoding (GBK read as Latin-1)."""
    if encoding is not None:
        return []
    for name in names:
        if not any("\x80" <= ch <= "\xff" for ch in name):
            continue
        try:
            fixed = name.encode("latin-1").decode("gb18030")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if any("\u4e00" <= ch <= "\u9fff" for ch in fixed):
            return [InputProblem(file, field, f"county names are not in the encoding the file declares: {name!r} "
                                 f"reads as {fixed!r} in GBK", "set [boundaries] encoding = \"gbk\" (or add a .cpg "
                                 "file saying GBK beside the Shapefile, or save the file as UTF-8)")]
    return []


def shapely_reason(geom) -> str:
    """Why a geometry is unusable, in shapely's words."""
    if geom is None or geom.is_empty:
        return "empty"
    return explain_validity(geom)


def open_raster(path: Path, key: str) -> tuple[rasterio.DatasetReader | None, list[InputProblem]]:
    """Open a raster for reading, or explain why it cannot be."""
    if Path(path).is_dir():
        return None, [InputProblem(str(path), key, "is a directory, not a raster file",
                                   "point it at the GeoTIFF itself (mosaic tiles first, e.g. with gdalbuildvrt)")]
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


def _read_csv(path: Path, field: str, section: str, required: tuple[str, ...], dtype: dict | None = None
              ) -> tuple[pd.DataFrame | None, list[InputProblem]]:
    """A CSV input with its required columns, or why not (``field``: the configuration key of its
    path; ``section``: where that key is set, for the fix)."""
    f = str(path)
    if Path(path).is_dir():
        return None, [InputProblem(f, field, "is a directory, not a CSV file", f"point {section} at the CSV file")]
    if not Path(path).is_file():
        return None, [InputProblem(f, field, "file not found", f"point {section} at the CSV")]
    try:
        df = pd.read_csv(path, dtype=dtype, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        return None, [InputProblem(f, "(file)", f"not a readable CSV: {exc}", "save it as UTF-8 CSV")]
    missing = [c for c in required if c not in df.columns]
    if missing:
        return None, [InputProblem(f, ", ".join(missing), "required column(s) missing",
                                   f"use the columns {list(required)}")]
    return df, []


def read_statistics(path: Path) -> tuple[pd.DataFrame | None, list[InputProblem]]:
    """County statistics table: one row per county and year; codes kept as strings."""
    df, problems = _read_csv(path, "statistics.path", "[statistics] path", STATISTICS_KEY_COLUMNS,
                             {"county_code": str})
    if df is None:
        return None, problems
    f = str(path)
    dup = df[df.duplicated(["county_code", "year"], keep=False)]
    if len(dup):
        pairs = sorted({f"{c}/{y}" for c, y in zip(dup.county_code, dup.year)})
        return None, [InputProblem(f, "county_code, year", f"duplicated rows for {', '.join(pairs)}",
                                   "keep one row per county and year")]
    return df, []


def read_vector_layer(path: Path, layer: str | None, name_field: str, value_field: str | None, key: str,
                      geometry: str) -> tuple[gpd.GeoDataFrame | None, list[InputProblem]]:
    """A service's vector layer as ``name``, ``value`` (if asked for), ``geometry``; plus every problem.

    ``geometry``: "polygon" or "point", the only kinds accepted; invalid geometries are refused."""
    f = str(path)
    if not Path(path).is_file():
        return None, [InputProblem(f, f"vectors.{key}.path", "file not found", "point it at a GeoPackage/GeoJSON/Shapefile")]
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:
        return None, [InputProblem(f, f"vectors.{key}", f"cannot read as a vector layer: {exc}",
                                   "check the file and the layer name")]
    problems = _column_problems(f, gdf, {f"vectors.{key}.name_field": name_field,
                                         f"vectors.{key}.value_field": value_field})
    if gdf.crs is None:
        problems.append(InputProblem(f, "crs", "the layer has no CRS", "assign it (e.g. EPSG:4326) with a GIS tool"))
    if problems:
        return None, problems
    kinds = {"polygon": ("Polygon", "MultiPolygon"), "point": ("Point",)}[geometry]
    wrong = gdf[~gdf.geometry.geom_type.isin(kinds)]
    if len(wrong):
        problems.append(InputProblem(f, "geometry", f"{len(wrong)} feature(s) are not {geometry}s "
                                     f"({', '.join(sorted(set(wrong.geometry.geom_type.astype(str))))})",
                                     f"keep only {geometry} features in the {key} layer"))
    invalid = gdf[gdf.geometry.notna() & ~gdf.geometry.is_valid]
    if len(invalid):
        problems.append(InputProblem(f, "geometry", f"invalid geometries: {', '.join(map(str, invalid[name_field][:5]))} "
                                     f"({shapely_reason(invalid.geometry.iloc[0])})",
                                     "repair them (shapely.make_valid or QGIS 'Fix geometries')"))
    out = gpd.GeoDataFrame({"name": gdf[name_field].astype(str)}, geometry=gdf.geometry.values, crs=gdf.crs)
    if value_field is not None:
        values = pd.to_numeric(gdf[value_field], errors="coerce")
        bad = gdf.loc[~(values >= 0) | ~values.map(lambda v: pd.notna(v) and abs(v) != float("inf")), name_field]
        if len(bad):
            problems.append(InputProblem(f, value_field, f"not a non-negative number for {', '.join(map(str, bad[:5]))}",
                                         "give every feature its value"))
        out["value"] = values.astype(float)
    return (None if problems else out), problems


def read_county_table(path: Path, key: str, key_column: str, value_column: str
                      ) -> tuple[pd.DataFrame | None, list[InputProblem]]:
    """A per-county table in long form: county_code, year, ``key_column``, ``value_column``, source."""
    df, problems = _read_csv(path, f"tables.{key}.path", f"[tables.{key}] path",
                             ("county_code", "year", key_column, value_column, "source"),
                             {"county_code": str, key_column: str})
    if df is None:
        return None, problems
    f = str(path)
    dup = df[df.duplicated(["county_code", "year", key_column], keep=False)]
    if len(dup):
        return None, [InputProblem(f, f"county_code, year, {key_column}", f"duplicated rows, e.g. "
                                   f"{dup.county_code.iloc[0]}/{dup.year.iloc[0]}/{dup[key_column].iloc[0]}",
                                   "keep one row per county, year and key")]
    return df, []


POOL_COLUMNS = ("lucode", "c_above", "c_below", "c_soil", "c_dead")


def read_carbon_pools(path: Path) -> tuple[pd.DataFrame | None, list[InputProblem]]:
    """Carbon pools in InVEST Carbon's layout (``lucode, c_above, c_below, c_soil, c_dead`` [t C/ha],
    optional ``lulc_name, tag, source``): one row per land-cover code, every density >= 0."""
    df, problems = _read_csv(path, "carbon_stock.pools", "[carbon_stock] pools", POOL_COLUMNS)
    if df is None:
        return None, problems
    values = df[list(POOL_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    bad = df.lucode[~(values >= 0).all(axis=1)].tolist()
    if bad:
        return None, [InputProblem(str(path), "c_above..c_dead", f"not a non-negative density for lucode {bad[:10]}",
                                   "give every pool in t C/ha")]
    return df, []


# --------------------------------------------------------------------------- output tables
def to_table(df: pd.DataFrame, dataset: str, metadata: dict[str, str]) -> pa.Table:
    """Cast a frame to the dataset's schema: units in the field metadata; ``metadata`` (lineage,
    run id) in the file metadata. The caller checks the whole dataset (gep.vocabulary.check) once."""
    sch = vocabulary.schema(dataset)
    missing = [n for n in sch.names if n not in df.columns]
    if missing:
        raise vocabulary.SchemaViolation(f"{dataset}: columns {missing} missing from the computed table")
    table = pa.Table.from_pandas(df[sch.names], schema=sch, preserve_index=False)
    units = {c.name: c.unit for c in vocabulary.DATASETS[dataset]}
    meta = {b"gep:dataset": dataset.encode(), b"gep:units": json.dumps(units).encode(),
            **{f"gep:{k}".encode(): v.encode() for k, v in metadata.items()}}
    return table.replace_schema_metadata(meta)


def read_partition(output_dir: Path | str, dataset: str, year: int, county_code: str) -> pa.Table:
    """One published partition of an output dataset (county and year)."""
    return pq.read_table(Path(output_dir) / partition_path(dataset, year, county_code))


def read_dataset(output_dir: Path | str, dataset: str) -> pd.DataFrame:
    """Read an output dataset with its partition types kept (county_code str, year int32)."""
    keys = {c.name: c.type for c in vocabulary.DATASETS[dataset] if c.name in vocabulary.PARTITION_COLUMNS}
    part = pads.partitioning(pa.schema([(k, keys[k]) for k in vocabulary.PARTITION_COLUMNS]), flavor="hive")
    return pd.read_parquet(Path(output_dir) / dataset, partitioning=part)


def write_excel(tables: dict[str, pa.Table], path: Path) -> None:
    """One workbook, one sheet per table, the unit of every column in its header ("name [unit]"),
    the header row frozen: it opens as it reads for a loan officer."""
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        for dataset, table in tables.items():
            units = {c.name: c.unit for c in vocabulary.DATASETS[dataset]}
            df = table.to_pandas()
            df.columns = [f"{c} [{units[c]}]" if units.get(c) else c for c in df.columns]
            df.to_excel(xl, sheet_name=dataset, index=False, freeze_panes=(1, 0))
            sheet = xl.sheets[dataset]
            for i, col in enumerate(df.columns, start=1):
                width = min(60, max(len(str(col)), *(len(str(v)) for v in df.iloc[:50, i - 1])) + 2)
                sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = width


def write_geoparquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """GeoParquet 1.1 with a bbox covering column, readable by QGIS, GDAL and geopandas."""
    gdf.to_parquet(path, schema_version="1.1.0", write_covering_bbox=True, compression="zstd")


def write_text(text: str, path: Path) -> None:
    """A UTF-8 text file (the assessment's HTML report)."""
    path.write_text(text, encoding="utf-8")
