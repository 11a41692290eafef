"""The charts' alerts against a real Prometheus (Debian's ``prometheus``) on loopback, scraping
the three services started as processes, with the rules the charts render: a poison message
fires the dead-letter alert, ``contact-worker-admin dlq purge`` clears it, and every metric a
rule or a dashboard panel reads is exposed by some service's ``/metrics``.

Scrape and evaluation every second, the DLQ depth polled every second and the alert's ``for``
set to 2 s through the chart's value (``metrics.prometheusRule.deadLetterFor``), so the test
takes well under a minute once the stack is up.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from support.auth import api
from support.deployment import (
    CHARTS,
    dashboard_exprs,
    metric_names,
    prometheus_binary,
    rule_exprs,
    rule_groups,
)
from support.poison import celery_shaped
from support.processes import Service, free_port, http_ok
from support.stack import Stack, isolated_stack

ADMIN = Path(sys.executable).with_name("contact-worker-admin")
DLQ_ALERT = "ContactsDeadLetterQueueNotEmpty"
FAST = {"metrics": {"prometheusRule": {"deadLetterFor": "2s"}}}


@pytest.fixture(scope="module")
def monitored(stack_env: dict[str, str], sqs_client: Any) -> Iterator[tuple[Stack, str]]:
    """The stack on queues of its own and a Prometheus scraping it with the charts' rules;
    yields the stack and Prometheus's URL."""
    name = f"t{uuid.uuid4().hex[:8]}-alerts"
    with isolated_stack(stack_env, sqs_client, name, {"QUEUE_METRICS_INTERVAL_S": "1"}) as stack:
        worker_url = stack.services[2].metrics_url
        assert worker_url is not None
        targets = {
            "command-api": stack.command_url,
            "query-api": stack.query_url,
            "contact-worker": worker_url.removesuffix("/metrics"),
        }
        with prometheus(targets) as url:
            yield stack, url


@contextlib.contextmanager
def prometheus(targets: dict[str, str]) -> Iterator[str]:
    """A Prometheus process on a free loopback port scraping ``targets`` (job → base URL)
    every second with the rendered rules of every chart (context manager yielding its URL)."""
    work = Path(tempfile.mkdtemp(prefix="prometheus-"))
    rules = work / "rules.yaml"
    groups = [
        group
        for chart in CHARTS
        for group in rule_groups(chart, FAST if chart == "contact-worker" else None)
    ]
    rules.write_text(yaml.safe_dump({"groups": groups}))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [url.removeprefix("http://")]}]}
            for job, url in targets.items()
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = Service(
        "prometheus",
        [
            prometheus_binary(),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {},
    )
    url = f"http://127.0.0.1:{port}"
    server.start()
    try:
        server.wait_until(lambda: http_ok(f"{url}/-/ready"), 60, "readiness")
        yield url
    finally:
        server.stop()


def alert_state(url: str, name: str) -> str:
    """``firing``, ``pending`` or ``inactive`` (not listed) for alert ``name``."""
    alerts = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = {a["state"] for a in alerts if a["labels"]["alertname"] == name}
    return "firing" if "firing" in states else (states.pop() if states else "inactive")


def dlq_depth(url: str) -> dict[str, float]:
    """The worker's last reading of the dead-letter queue, as Prometheus scraped it."""
    query = 'sqs_messages{queue="dlq"}'
    answer = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    return {r["metric"]["state"]: float(r["value"][1]) for r in answer["data"]["result"]}


def wait_state(url: str, name: str, wanted: str, timeout_s: float) -> float:
    started = time.monotonic()
    state = "?"
    while time.monotonic() - started < timeout_s:
        state = alert_state(url, name)
        if state == wanted:
            return time.monotonic() - started
        time.sleep(0.5)
    targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    depth = requests.get(f"{url}/api/v1/query", params={"query": "sqs_messages"}, timeout=5)
    raise AssertionError(
        f"{name} still {state} after {timeout_s} s, not {wanted}; targets "
        f"{[(t['labels']['job'], t['health'], t['lastError']) for t in targets]}; "
        f"sqs_messages {depth.json()['data']['result']}"
    )


def test_a_poison_message_fires_the_dlq_alert_and_a_purge_clears_it(
    monitored: tuple[Stack, str], sqs_client: Any
) -> None:
    stack, url = monitored
    wait_state(url, DLQ_ALERT, "inactive", 30)

    sqs_client.send_message(
        QueueUrl=stack.env["SQS_QUEUE_URL"],
        MessageBody=celery_shaped(
            "contacts.apply_event", [{"specversion": "0.3"}], stack.env["SQS_QUEUE_NAME"]
        ),
        MessageGroupId="poison",
        MessageDeduplicationId=str(uuid.uuid4()),
    )
    fired_after = wait_state(url, DLQ_ALERT, "firing", 90)
    time.sleep(3)
    assert alert_state(url, DLQ_ALERT) == "firing"  # it stays firing while the message is there
    env = {**os.environ, **stack.env}
    purged = subprocess.run(
        [str(ADMIN), "dlq", "purge", "--yes"], env=env, capture_output=True, text=True, timeout=60
    )
    assert purged.returncode == 0, purged.stderr[-2000:]
    assert purged.stdout.startswith("1 message(s) deleted")
    cleared_after = wait_state(url, DLQ_ALERT, "inactive", 60)
    for _ in range(10):  # and stays clear: the message is gone, not hidden by the scan
        time.sleep(0.5)
        assert alert_state(url, DLQ_ALERT) == "inactive"
    assert dlq_depth(url) == {"visible": 0.0, "in_flight": 0.0}

    print(f"DLQ alert firing {fired_after:.1f} s after the poison, cleared {cleared_after:.1f} s")


def test_every_metric_of_the_rules_and_dashboards_is_exposed(
    monitored: tuple[Stack, str],
) -> None:
    stack, _ = monitored
    created = api.post(f"{stack.command_url}/v1/contacts", json={"first_name": "Ada"}, timeout=5)
    assert created.status_code == 202, created.text
    stack.wait_operation(created.json()["operation_id"])
    contact = api.get(f"{stack.query_url}/v1/contacts/{created.json()['id']}", timeout=5)
    assert contact.status_code == 200
    worker_url = stack.services[2].metrics_url
    assert worker_url is not None
    exposed: set[str] = set()
    for metrics_url in (
        f"{stack.command_url}/metrics",
        f"{stack.query_url}/metrics",
        worker_url,
    ):
        text = requests.get(metrics_url, timeout=5).text
        exposed |= {
            line.split("{")[0].split(" ")[0]
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    used = {
        name
        for chart in CHARTS
        for expr in (*rule_exprs(chart), *dashboard_exprs(chart))
        for name in metric_names(expr)
    }

    assert len(used) >= 10, used
    assert not used - exposed, f"read by a rule or panel, exposed by no service: {used - exposed}"
