"""The scheduled annual run: a deployment of the annual flow with a yearly cron schedule.

Every 1 March it accounts the calendar year just ended (``year = "previous"``, in China's time
zone). Start it against a Prefect server (a temporary server cannot run schedules):

    prefect server start            # in one terminal
    PREFECT_API_URL=http://127.0.0.1:4200/api gep serve --config configs/sample_run.toml
"""
from __future__ import annotations

from pathlib import Path

from prefect.client.schemas.schedules import CronSchedule

from flows.annual import annual_gep_flow

DEPLOYMENT_NAME = "gep-annual-scheduled"
CRON = "0 2 1 3 *"  # 1 March, 02:00: the previous year's land cover and statistics are out by then
TIMEZONE = "Asia/Shanghai"


def build_deployment(config_path: str | Path):
    """The annual flow as a deployment with its yearly schedule (no server needed to build it)."""
    return annual_gep_flow.to_deployment(
        name=DEPLOYMENT_NAME,
        schedule=CronSchedule(cron=CRON, timezone=TIMEZONE),
        parameters={"config_path": str(Path(config_path).resolve()), "year": "previous"},
        description="Annual GEP accounts of all counties for the calendar year just ended.",
        tags=["gep", "annual"],
    )


def serve(config_path: str | Path) -> None:
    """Serve the deployment until stopped (Ctrl-C or SIGTERM) on the server PREFECT_API_URL names."""
    from prefect import serve as prefect_serve
    prefect_serve(build_deployment(config_path))
