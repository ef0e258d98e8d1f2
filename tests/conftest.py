"""Shared fixtures. Prefect runs offline with a throw-away home and no analytics."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="gep-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

from tiny_world import TinyWorld  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = REPO / "configs" / "sample_run.toml"


@pytest.fixture
def world(tmp_path: Path) -> TinyWorld:
    return TinyWorld(tmp_path)


@pytest.fixture(scope="session")
def sample_config() -> Path:
    """The bundled sample configuration, with its SYNTHETIC rasters generated if missing."""
    from gep import sample_data
    from gep.config import load_run_config
    sample_data.ensure_sample(load_run_config(SAMPLE_CONFIG))
    return SAMPLE_CONFIG


@pytest.fixture(scope="session", autouse=True)
def stop_prefect_temporary_server():
    """Stop Prefect's ephemeral server while pytest still captures output.

    Otherwise it stops at interpreter exit and logs to closed streams (PrefectHQ/prefect#16626).
    """
    yield
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    APILogWorker.drain_all()  # send queued run logs while the server still listens
    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()
