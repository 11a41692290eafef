"""The first ``/readyz`` of a new process passes within its budget against the real SQS and
Redis, however long building the SQS clients takes: they are built with the app, or, in a
process forked since, before the probe's clock starts.

Building a boto3 client loads botocore's service models (~0.1 s idle, over 1 s on a loaded
machine); ``SlowlyBuiltPublisher`` is the real publisher whose client takes longer than the
whole ``READINESS_TIMEOUT_S`` to build, so a probe that paid for it inside its budget fails.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from command_api.adapters.sqs_publisher import SqsEventPublisher, SqsTarget
from command_api.bootstrap import sqs_target
from command_api.entrypoints.app import READINESS_TIMEOUT_S, create_app
from command_api.settings import Settings
from support.processes import Service, command_api, free_port, http_ok

#: Seconds the slow publisher takes to build its boto3 client: more than the probe's budget.
BUILD_S = READINESS_TIMEOUT_S * 1.5


class SlowlyBuiltPublisher(SqsEventPublisher):
    """The real SQS publisher, but its boto3 client takes ``BUILD_S`` seconds to build."""

    def __init__(self, target: SqsTarget) -> None:
        super().__init__(target)
        self.builds = 0

    def _make_sqs_client(self) -> Any:
        time.sleep(BUILD_S)
        self.builds += 1
        return super()._make_sqs_client()


def slow_publisher(settings: Settings) -> SlowlyBuiltPublisher:
    return SlowlyBuiltPublisher(sqs_target(settings))


def test_first_readyz_passes_though_building_the_sqs_client_outlasts_its_budget(
    command_settings: Settings,
) -> None:
    publisher = slow_publisher(command_settings)
    app = create_app(command_settings, publisher=publisher)
    assert publisher.builds == 1
    response = app.test_client().get("/readyz")
    # A 200 means every check finished within READINESS_TIMEOUT_S; the probe built nothing.
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"sqs": "ok", "redis": "ok"}
    assert publisher.builds == 1


def _probe_in_child(app: Any, publisher: SlowlyBuiltPublisher, results: Any) -> None:
    response = app.test_client().get("/readyz")
    results.put((response.status_code, response.get_json(), publisher.builds))


def test_first_readyz_after_a_fork_rebuilds_the_sqs_client_outside_its_budget(
    command_settings: Settings,
) -> None:
    # gunicorn --preload: the app (and its clients) are built in the master, then the worker
    # is forked and must build clients of its own before its first probe.
    publisher = slow_publisher(command_settings)
    app = create_app(command_settings, publisher=publisher)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_probe_in_child, args=(app, publisher, results))
    child.start()
    try:
        status, body, builds = results.get(timeout=30)
    finally:
        child.join(10)
    # The child rebuilt its clients (BUILD_S > READINESS_TIMEOUT_S) and still passed: the
    # rebuild ran before the checks' clock started. No wall-clock assertion: the whole probe's
    # duration depends on the machine's load, not on this rule.
    assert status == 200, body
    assert body["checks"] == {"sqs": "ok", "redis": "ok"}
    assert builds == 2


@pytest.fixture
def fresh_server(command_env: dict[str, str]) -> Iterator[tuple[Service, int]]:
    port = free_port()
    service = command_api(port, command_env, workers=1, name="command-api-readyz").start()
    try:
        yield service, port
    finally:
        service.stop()


def test_first_readyz_of_a_fresh_gunicorn_worker_passes(
    fresh_server: tuple[Service, int],
) -> None:
    # As the chart probes it: /readyz once the startup probe (/healthz) has passed.
    service, port = fresh_server
    service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "healthz")
    response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"sqs": "ok", "redis": "ok"}
