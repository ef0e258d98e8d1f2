"""Prefect flow of the green-loan assessment: a thin layer over gep.assess.

``assessment_flow`` compares two accounted years of an output directory under a loan policy,
publishes the assessment's tables, and leaves the loan summary as a table artifact and the list
of files written as a markdown artifact.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from gep.assess import assess
from gep.config import load_run_config
from gep.policy import DEFAULT_POLICY, load_policy


def assessment_artifact_key(baseline: int, year: int) -> str:
    return f"gep-assessment-{baseline}-{year}"


@flow(name="gep-assessment")
def assessment_flow(config_path: str, baseline: int, year: int, policy_path: str | None = None,
                    output_dir: str | None = None) -> list[dict]:
    """ΔGEP at constant prices between ``baseline`` and ``year`` and the policy's discounts."""
    cfg = load_run_config(config_path, output_dir=output_dir)
    policy_file = Path(policy_path) if policy_path else DEFAULT_POLICY
    policy = load_policy(policy_file)
    summary, files = assess(cfg, baseline, year, policy, str(policy_file))
    get_run_logger().info("assessment %s-%s: %d units, %d files under %s", baseline, year, len(summary), len(files),
                          files[0].parent)
    key = assessment_artifact_key(baseline, year)
    create_table_artifact(key=key, table=summary.round(4).to_dict(orient="records"),
                          description=f"Loan summary {baseline} -> {year} under {policy_file} ({policy.title})")
    create_markdown_artifact(key=f"{key}-files", markdown="\n".join(
        [f"# GEP assessment {baseline} → {year}", "", f"Policy: `{policy_file}` ({policy.title})", ""]
        + [f"- `{p}`" for p in files]))
    return summary.to_dict(orient="records")
