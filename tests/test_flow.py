"""The Prefect flows on the sample: the annual run, the summary artifact, a single-county re-run."""
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.annual import annual_gep_flow, county_gep_flow, summary_artifact_key
from gep import io, vocabulary
from tiny_world import data_files

pytestmark = pytest.mark.slow
COUNTIES = {"330402", "330411", "330421", "330424", "330481", "330482", "330483",
            "330502", "330503", "330521", "330522", "330523"}


def _files(out: Path) -> dict[str, os.stat_result]:
    return {rel: p.stat() for rel, p in data_files(out).items()}


@pytest.fixture(scope="module")
def annual_run(sample_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("annual")
    records = annual_gep_flow(str(sample_config), 2020, str(out))
    return out, records


def test_annual_flow_writes_all_counties(annual_run):
    out, records = annual_run
    assert {r["county_code"] for r in records} == COUNTIES
    files = _files(out)
    assert len(files) == 12 * len(vocabulary.DATA_DATASETS)
    gep = io.read_dataset(out, "gep")
    assert set(gep.county_code) == COUNTIES and set(gep.year) == {2020}
    # Anji, the forest county, has the highest GEP per km²; the three categories add up to GEP.
    assert gep.set_index("county_code").gep_per_km2_cny.idxmax() == "330523"
    parts = gep.provisioning_cny + gep.regulating_cny + gep.cultural_cny
    assert ((parts - gep.gep_cny).abs() <= 1e-9 * gep.gep_cny).all() and (gep.provisioning_cny > 0).all()
    assert (gep.cultural_cny > 0).all() and (gep.indicator_set == "zj_db33_2025").all()
    assert (gep.plausibility_flag == "ok").all()  # a complete set: the §11.2 check ran
    services = io.read_dataset(out, "services")
    functional = services[services.method == "functional"]
    share = functional.groupby("service").value_cny.sum() / functional.value_cny.sum()
    assert share.idxmax() == "climate_regulation"  # methodology §0.4: the largest item in humid Zhejiang


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC)
    return found[0]


def test_single_county_rerun_replaces_only_its_partitions_and_artifact(annual_run, sample_config):
    out, _ = annual_run
    before = _files(out)
    tables = {rel: pq.read_table(p).replace_schema_metadata() for rel, p in data_files(out).items()}
    county_gep_flow(str(sample_config), "330521", 2020, str(out), force=True)
    after = _files(out)
    assert set(after) == set(before)
    for rel, st in after.items():
        if "county_code=330521" in rel:
            assert st.st_ino != before[rel].st_ino          # replaced by a new file ...
        else:
            assert st.st_ino == before[rel].st_ino and st.st_mtime_ns == before[rel].st_mtime_ns  # ... others untouched
    for rel, p in data_files(out).items():              # and the results are deterministic
        assert pq.read_table(p).replace_schema_metadata().equals(tables[rel])
    everyone = _artifact(summary_artifact_key(2020, None))
    assert everyone.type == "table" and str(everyone.data).count("county_code") == 12  # not replaced by ...
    assert str(_artifact(summary_artifact_key(2020, "330521")).data).count("county_code") == 1  # ... this one


def test_unchanged_county_rerun_is_skipped(annual_run, sample_config):
    out, _ = annual_run
    before = _files(out)
    records = county_gep_flow(str(sample_config), "330523", 2020, str(out))
    assert [r["county_code"] for r in records] == ["330523"] and _files(out) == before


def _flaky(monkeypatch, error: Exception):
    """Make the first strip batch fail with ``error``; record the batches tallied."""
    import gep.engine
    real, calls = gep.engine.tally_strips, []

    def tally(plan, strip_ids):
        calls.append(tuple(strip_ids))
        if len(calls) == 1:
            raise error
        return real(plan, strip_ids)
    monkeypatch.setattr(gep.engine, "tally_strips", tally)
    return calls


def test_io_errors_are_retried(world, monkeypatch):
    calls = _flaky(monkeypatch, OSError("NFS hiccup"))
    records = annual_gep_flow(str(world.write()), 2020)
    assert calls.count(calls[0]) == 2 and len(records) == 2  # the failed batch ran again, and once only


def test_bugs_and_bad_input_are_not_retried(world, monkeypatch):
    calls = _flaky(monkeypatch, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        annual_gep_flow(str(world.write()), 2020)
    assert calls.count(calls[0]) == 1
    assert not (world.out / "gep").exists()  # nothing written
