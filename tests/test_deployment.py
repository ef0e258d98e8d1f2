"""The scheduled annual run: deployment, yearly cron and time zone."""
from flows.deployment import CRON, DEPLOYMENT_NAME, TIMEZONE, build_deployment


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
    assert deployment.parameters == {"config_path": str(config.resolve())}
