"""The analysts' contract: Hive-partitioned Parquet whose types and units survive every reader."""
import json
import os
import stat

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from gep import vocabulary

from gep import io, runs, store
from gep.config import load_run_config
from tiny_world import data_files, fill_the_disk_for_partitions


@pytest.fixture
def written(world):
    cfg = load_run_config(world.write())
    summary, files = runs.run(cfg)
    return world.out, files


def test_one_file_per_partition_and_no_temporary_files(written):
    out, files = written
    expected = sorted(f"{d}/year=2020/county_code={c}/part-0.parquet" for d in vocabulary.DATA_DATASETS
                      for c in ("000001", "000002"))
    assert sorted(str(p.relative_to(out)) for p in files) == expected == sorted(data_files(out))
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert len(list((out / ".gep" / "versions").iterdir())) == 1


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
    assert schema.metadata[b"gep:run_id"].decode() == store.OutputStore(out).manifest()["run_id"]
    lineage = json.loads(schema.metadata[b"gep:lineage"])
    assert lineage["area_model"] == "sphere" and len(lineage["sha256:landcover_2020"]) == 64
    assert {"sha256:configs/prices.csv", "sha256:configs/coefficients.csv", "sha256:configs/cpi.csv"} <= set(lineage)


def test_unchanged_rerun_is_skipped_and_a_forced_one_writes_identical_data(world):
    cfg = load_run_config(world.write())
    _, files = runs.run(cfg)
    first = {p: p.read_bytes() for p in files}
    summary, written = runs.run(cfg)                     # same inputs, configuration and code
    assert written == [] and {p: p.read_bytes() for p in files} == first and len(summary) == 2
    _, again = runs.run(cfg, force=True)
    for p in again:                                      # new files, same data; only the run id differs
        new, old = pq.read_table(p), pq.read_table(pa.BufferReader(first[p]))
        assert new.equals(old)
        meta_new, meta_old = dict(new.schema.metadata), dict(old.schema.metadata)
        assert meta_new.pop(b"gep:run_id") != meta_old.pop(b"gep:run_id") and meta_new == meta_old
    records = store.OutputStore(world.out).records()
    assert records.outcome.tolist() == ["succeeded", "skipped", "succeeded"]


def test_new_content_at_the_same_path_is_recomputed(world):
    cfg = load_run_config(world.write())
    runs.run(cfg)
    world.statistics_rows = ["000001,2020,0.75,0.5,900,x", "000002,2020,0.75,0.45,900,x"]  # a hotter county A
    world.write()
    _, files = runs.run(cfg)
    assert len(files) == 2 * len(vocabulary.DATA_DATASETS)
    assert store.OutputStore(world.out).records().outcome.tolist() == ["succeeded", "succeeded"]


def test_a_failed_write_leaves_the_previous_outputs_intact(world, monkeypatch):
    from gep.errors import OutputError
    cfg = load_run_config(world.write())
    _, files = runs.run(cfg)
    before = {p: p.read_bytes() for p in files}

    fill_the_disk_for_partitions(monkeypatch)
    with pytest.raises(OutputError, match="No space left on device") as failed:
        runs.run(cfg, force=True)
    assert "previous outputs are unchanged" in str(failed.value)
    assert {p: p.read_bytes() for p in files} == before
    assert not [p for p in world.out.rglob("*") if ".tmp" in p.name]
    assert len(list((world.out / ".gep" / "versions").iterdir())) == 1  # the failed version is gone
    assert store.OutputStore(world.out).records().outcome.tolist() == ["succeeded", "failed"]


def test_files_are_readable_by_colleagues_per_the_umask(world):
    old = os.umask(0o022)
    try:
        _, files = runs.run(load_run_config(world.write()))
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in files}
    records = list((world.out / "runs").glob("*.parquet"))
    assert modes == {0o644} and {stat.S_IMODE(p.stat().st_mode) for p in records} == {0o644}


def test_the_data_dictionary_is_generated_from_the_schemas():
    from pathlib import Path
    from gep.vocabulary import data_dictionary
    doc = Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md"
    assert doc.read_text(encoding="utf-8") == data_dictionary(), "run: python -m gep.vocabulary docs/data-dictionary.md"


def test_a_table_breaking_its_schema_is_refused_before_writing():
    from gep.vocabulary import SchemaViolation, check, schema
    rows = {c: [None] for c in schema("gep").names}
    good = dict(county_code="1", county_name="A", year=2020, gep_cny=1.0, gep_cny_low=0.5, gep_cny_high=2.0,
                provisioning_cny=0.0, regulating_cny=1.0,
                cultural_cny=0.0, gep_yi_cny=1e-8, area_km2=1.0, gep_per_km2_cny=None, polygon_area_km2=1.0,
                classified_area_km2=1.0, nodata_area_km2=0.0, outside_raster_area_km2=0.0, price_year=2020,
                services="x", n_services=1, plausibility_flag="ok", landcover_coverage_share=1.0,
                aux_coverage_share=1.0, default_filled_share=0.0, services_not_accounted="", quality_flag="ok",
                indicator_set="custom", indicator_set_modified=False, indicator_set_changes="", price_basis="constant",
                constant_price_year=2020, gep_current_cny=1.0, provisioning_current_cny=0.0, regulating_current_cny=1.0,
                cultural_current_cny=0.0, gep_constant_cny=1.0, provisioning_constant_cny=0.0,
                regulating_constant_cny=1.0, cultural_constant_cny=0.0, growth_note="", n_services_not_accounted=0,
                plausibility_rule="r")
    rows.update({k: [v] for k, v in good.items()})
    check(pa.Table.from_pydict(rows, schema=schema("gep")), "gep")  # null GEP per km² is allowed
    bad = dict(rows, gep_cny=[float("nan")], area_km2=[-1.0], default_filled_share=[1.5])
    with pytest.raises(SchemaViolation) as err:
        check(pa.Table.from_pydict(bad, schema=schema("gep")), "gep")
    text = str(err.value)
    assert "gep_cny: 1 value(s) not finite" in text and "area_km2: values below 0" in text
    assert "default_filled_share: values above 1" in text
    twice = pa.concat_tables([pa.Table.from_pydict(rows, schema=schema("gep"))] * 2)
    with pytest.raises(SchemaViolation, match=r"key \['county_code', 'year'\] not unique"):
        check(twice, "gep")
