"""A run killed with SIGKILL at any moment: readers see the previous run or the new one, never a mix;
the next run tidies up, records the killed run as interrupted, and succeeds."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gep import runs
from gep.config import load_run_config
from gep.store import OutputStore
from tiny_world import data_files

HERE = Path(__file__).resolve().parent


def _tables(out: Path) -> dict:
    return {rel: pq.read_table(p).replace_schema_metadata() for rel, p in data_files(out).items()}


def _kill_at(phase: str, config: Path, tmp: Path, *, timeout: float = 120, while_paused=None) -> None:
    marker = tmp / f"reached-{phase}"
    proc = subprocess.Popen([sys.executable, str(HERE / "killable_run.py"), phase, str(config), str(marker)],
                            cwd=HERE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before reaching {phase}: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, f"{phase} not reached in {timeout} s"
        time.sleep(0.05)
    if while_paused is not None:
        while_paused(proc.pid)
    proc.kill()  # SIGKILL: no handler, no clean-up
    proc.wait()
    proc.stderr.close()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """A tiny world with a published first run (v1) and the data a second run with new statistics
    gives (v2, computed in another folder)."""
    from tiny_world import TinyWorld
    root = tmp_path_factory.mktemp("kill")
    world = TinyWorld(root)
    runs.run(load_run_config(world.write()))
    v1 = _tables(world.out)
    world.statistics_rows = ["000001,2020,0.75,0.55,900,x", "000002,2020,0.75,0.55,900,x"]  # hotter summers
    config = world.write()
    runs.run(load_run_config(config, output_dir=root / "reference"))
    v2 = _tables(root / "reference")
    assert v1.keys() == v2.keys() and any(not v1[k].equals(v2[k]) for k in v1)
    return world, config, v1, v2


@pytest.mark.parametrize("phase, visible", [
    ("validate", "v1"), ("account", "v1"), ("write", "v1"), ("swap", "v1"), ("published", "v2")])
def test_sigkill_in_each_phase_leaves_one_whole_run_visible_and_a_rerun_succeeds(two_versions, tmp_path, phase,
                                                                                   visible):
    world, config, v1, v2 = two_versions
    _reset_to_v1(world, v1)
    _kill_at(phase, config, tmp_path)
    seen = _tables(world.out)
    assert seen.keys() == v1.keys()
    expected = v1 if visible == "v1" else v2
    assert all(seen[k].equals(expected[k]) for k in seen), f"readers see a mix after a kill in {phase}"
    store = OutputStore(world.out)
    killed = store.records().iloc[-1]
    assert killed.outcome == "running"                              # as the killed process left it
    summary, files = runs.run(load_run_config(config))              # the next run ...
    records = store.records()
    assert records[records.run_id == killed.run_id].outcome.item() == "interrupted"  # ... records the kill,
    assert records.iloc[-1].outcome == ("skipped" if visible == "v2" else "succeeded")
    after = _tables(world.out)
    assert all(after[k].equals(v2[k]) for k in after)               # ... publishes v2,
    versions = {p.name for p in (world.out / ".gep" / "versions").iterdir()}
    assert len(versions) <= 2                                       # ... and tidies up
    if visible == "v1":
        assert killed.run_id not in versions                        # (the unpublished version is gone)
    assert not [p for p in world.out.rglob("*") if ".tmp" in p.name]


def _reset_to_v1(world, v1):
    """Publish the v1 data again (the statistics of v1), then restore v2's statistics."""
    stats = world.root / "stats.csv"
    v2_text = stats.read_text()
    world.statistics_rows = None
    world.write()
    runs.run(load_run_config(world.config()))
    assert all(_tables(world.out)[k].equals(v1[k]) for k in v1)
    stats.write_text(v2_text)


def test_two_concurrent_runs_the_second_fails_clearly(two_versions, tmp_path):
    world, config, v1, _ = two_versions
    _reset_to_v1(world, v1)

    def second_run(first_pid):
        done = subprocess.run([sys.executable, "-m", "gep.cli", "run", "--config", str(config), "--no-prefect"],
                              cwd=HERE.parent, capture_output=True, text=True, timeout=120)
        assert done.returncode == 4, done.stderr
        assert "another gep run is writing this output directory" in done.stderr
        assert f'"pid": {first_pid}' in done.stderr and "Traceback" not in done.stderr
    _kill_at("account", config, tmp_path, while_paused=second_run)
    assert all(_tables(world.out)[k].equals(v1[k]) for k in v1)


@pytest.mark.slow
def test_a_killed_prefect_run_leaves_no_server_and_its_flow_run_is_marked_crashed(world, tmp_path):
    config = world.write()
    _kill_at("prefect", config, tmp_path, timeout=180)
    home = os.environ["PREFECT_HOME"]
    time.sleep(1.0)
    assert not _servers_of(home), "the temporary Prefect server outlived the killed run"
    killed = OutputStore(world.out).records().iloc[-1]
    assert killed.outcome == "running" and killed.prefect_flow_run_id
    done = subprocess.run([sys.executable, "-m", "gep.cli", "run", "--config", str(config)], cwd=HERE.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = OutputStore(world.out).records()
    assert records[records.run_id == killed.run_id].outcome.item() == "interrupted"
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(killed.prefect_flow_run_id).state
    assert state.type.value == "CRASHED" and killed.run_id in state.message
    assert not _servers_of(home)


def _servers_of(prefect_home: str) -> list[int]:
    """Temporary Prefect servers (uvicorn) running with this PREFECT_HOME, other than this test's."""
    from prefect.server.api.server import SubprocessASGIServer
    ours = {s.server_process.pid for s in SubprocessASGIServer._instances.values() if s.server_process}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in ours:
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"prefect.server.api.server:create_app" in cmd and f"PREFECT_HOME={prefect_home}".encode() in env:
            found.append(int(proc.name))
    return found


def test_records_are_json_readable(two_versions):
    world, *_ = two_versions
    rec = OutputStore(world.out).records().iloc[0]
    assert json.loads(rec.inputs_sha256)["landcover_2020"] and json.loads(rec.code_version)["gep"]
