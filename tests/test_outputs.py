"""The analysts' contract: Hive-partitioned Parquet whose types and units survive every reader."""
import json

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from gep import io, pipeline
from gep.config import load_run_config


@pytest.fixture
def written(world):
    cfg = load_run_config(world.write())
    summary, files = pipeline.run(cfg)
    return world.out, files


def test_one_file_per_partition_and_no_temporary_files(written):
    out, files = written
    assert sorted(str(p.relative_to(out)) for p in files) == sorted(
        f"{d}/year=2020/county_code={c}/part-0.parquet" for d in ("extent", "services", "gep")
        for c in ("000001", "000002"))
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_required_columns_are_present(written):
    out, _ = written
    required = {
        "extent": {"county_code", "county_name", "year", "lc_code", "ecosystem_type", "area_ha"},
        "services": {"service", "category", "ecosystem_type", "quantity", "quantity_unit", "unit_price",
                     "price_unit", "price_year", "value_cny", "method"},
        "gep": {"county_name", "gep_cny", "provisioning_cny", "regulating_cny", "cultural_cny", "area_km2",
                "gep_per_km2_cny"},
    }
    for name, cols in required.items():
        assert cols <= set(io.read_dataset(out, name).columns)


def test_partition_types_survive_pyarrow_pandas_and_duckdb(written):
    out, _ = written
    df = io.read_dataset(out, "gep")  # the README's pandas reader
    assert str(df.county_code.dtype) in {"str", "string", "object"} and df.county_code.tolist() == ["000001", "000002"]
    assert df.year.dtype.kind == "i" and set(df.year) == {2020}
    part = ds.partitioning(pa.schema([("year", pa.int32()), ("county_code", pa.string())]), flavor="hive")
    table = ds.dataset(out / "gep", format="parquet", partitioning=part).to_table()
    assert str(table.schema.field("county_code").type) == "string" and str(table.schema.field("year").type) == "int32"
    rel = duckdb.sql(f"SELECT county_code, year, gep_cny FROM read_parquet('{out}/gep/**/*.parquet', "
                     "hive_partitioning = true, hive_types = {'year': INTEGER, 'county_code': VARCHAR}) ORDER BY 1")
    assert [t.id for t in rel.types[:2]] == ["varchar", "integer"]
    assert rel.fetchall()[0][:2] == ("000001", 2020)


def test_units_and_lineage_are_in_the_parquet_metadata(written):
    out, _ = written
    f = pq.ParquetFile(out / "services" / "year=2020" / "county_code=000001" / "part-0.parquet")
    schema = f.schema_arrow
    assert schema.field("value_cny").metadata[b"unit"] == b"CNY"
    assert schema.field("area_ha").metadata[b"unit"] == b"ha"
    units = json.loads(schema.metadata[b"gep:units"])
    assert units["quantity"] == "see quantity_unit" and units["price_year"] == "a"
    lineage = json.loads(schema.metadata[b"gep:lineage"])
    assert lineage["area_model"] == "sphere" and len(lineage["sha256:landcover_2020"]) == 64
    assert {"sha256:configs/prices.csv", "sha256:configs/coefficients.csv", "sha256:configs/cpi.csv"} <= set(lineage)


def test_rerun_is_byte_identical(world):
    cfg = load_run_config(world.write())
    _, files = pipeline.run(cfg)
    first = {p: p.read_bytes() for p in files}
    pipeline.run(cfg)
    assert {p: p.read_bytes() for p in files} == first


def test_a_failed_write_leaves_the_previous_file_intact(world, monkeypatch):
    cfg = load_run_config(world.write())
    _, files = pipeline.run(cfg)
    target = files[0]
    before = target.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(io.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        pipeline.run(cfg)
    assert target.read_bytes() == before
    assert not [p for p in world.out.rglob("*") if ".tmp-" in p.name]
