"""The scheduled annual run: deployment, yearly cron, time zone, and the year it accounts."""
from datetime import date

import pytest

from flows.deployment import CRON, DEPLOYMENT_NAME, TIMEZONE, build_deployment
from gep.config import load_run_config
from gep.errors import InputValidationError


def test_annual_deployment_has_a_yearly_cron_in_shanghai_time(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("")
    deployment = build_deployment(config)
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.flow_name == "gep-annual"
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == CRON == "0 2 1 3 *"   # 1 March, 02:00
    assert schedule.schedule.timezone == TIMEZONE == "Asia/Shanghai"
    assert schedule.active
    assert deployment.parameters == {"config_path": str(config.resolve()), "year": "previous"}


def test_the_scheduled_run_accounts_the_year_just_ended(world):
    cfg = load_run_config(world.write())   # land cover for 2020 only
    assert cfg.resolve_year("previous", today=date(2021, 3, 1)) == 2020
    with pytest.raises(InputValidationError, match=r"\[landcover.2021\]: no land-cover raster is configured for year 2021"):
        cfg.resolve_year("previous", today=date(2022, 3, 1))   # a year without data is refused, not replaced


def test_serve_without_a_server_says_what_to_start(tmp_path, capsys, monkeypatch):
    from gep.cli import main
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["serve", "--config", str(tmp_path / "run.toml")]) == 2
    err = capsys.readouterr().err
    assert "needs a running Prefect server" in err and "prefect server start" in err and "PREFECT_API_URL=" in err
