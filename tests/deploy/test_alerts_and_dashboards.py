"""Each chart's PrometheusRule and Grafana dashboard: off by default, valid for Prometheus
(``promtool check rules`` on the rendered rules), scoped to the release's job, and every alert
with its runbook in the chart's README ("Operating"). That the metrics they read exist and the
DLQ alert really fires is tests/e2e/test_alerts.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from support.deployment import (
    CHARTS,
    HELM,
    dashboard,
    dashboard_exprs,
    kinds,
    promtool,
    render,
    rule_exprs,
    rule_groups,
)

#: What the issue asks the alerts to watch, and the chart whose rules watch it.
WATCHED = {
    "contact-worker": {
        "sqs_messages",
        "sqs_oldest_message_age_seconds",
        "worker_tasks_total",
        "worker_event_commit_age_seconds_bucket",
    },
    "command-api": {"http_requests_total", "http_request_duration_seconds_bucket"},
    "query-api": {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "contact_cache_lookups_total",
    },
}


@pytest.mark.parametrize("chart", CHARTS)
def test_rules_and_dashboard_are_off_by_default(chart: str) -> None:
    manifests = render(chart)
    assert not kinds(manifests, "PrometheusRule")
    assert not [m for m in kinds(manifests, "ConfigMap") if "dashboard" in m["metadata"]["name"]]


@pytest.mark.parametrize("chart", CHARTS)
def test_promtool_accepts_the_rendered_rules(chart: str, tmp_path: Path) -> None:
    rules = tmp_path / f"{chart}.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(chart)}))

    checked = subprocess.run(
        [promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize("chart", CHARTS)
def test_every_alert_reads_its_release_and_has_a_runbook(chart: str) -> None:
    readme = (HELM / chart / "README.md").read_text()
    operating = readme.split("\n## Operating\n", 1)[1]
    headings = set(re.findall(r"^### (\w+)$", operating, flags=re.MULTILINE))
    rules = [rule for group in rule_groups(chart) for rule in group["rules"]]
    assert rules
    for rule in rules:
        assert f'job="{chart}"' in rule["expr"], rule["alert"]
        assert rule["alert"] in headings, f"{chart}/README.md: no runbook for {rule['alert']}"
        assert rule["annotations"]["runbook_url"].endswith(f"#{rule['alert'].lower()}")
        section = operating.split(f"### {rule['alert']}\n", 1)[1].split("\n### ", 1)[0]
        for part in ("**Means**", "**Confirm**", "**Do**"):
            assert part in section, f"{rule['alert']}: runbook lacks {part}"
    names = " ".join(rule_exprs(chart))
    assert all(metric in names for metric in WATCHED[chart])


@pytest.mark.parametrize("chart", CHARTS)
def test_the_dashboard_shows_the_golden_signals_of_its_release(chart: str) -> None:
    board = dashboard(chart)
    titles = " ".join(panel["title"] for panel in board["panels"])

    for signal in ("Traffic", "Errors", "Latency", "Saturation"):
        assert signal in titles, f"{chart}: no {signal} panel"
    if chart == "contact-worker":
        assert "Freshness" in titles
    assert all(f'job="{chart}"' in expr for expr in dashboard_exprs(chart))
    assert board["uid"] == chart
