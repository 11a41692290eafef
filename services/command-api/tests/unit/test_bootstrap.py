"""The composition root: which adapters ``build_ports`` builds, and what injected ports replace.

Nothing here connects to a server: building the real adapters connects to nothing (the Redis
client connects on its first command; the SQS publisher only builds its clients).
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from command_api.adapters.instrumented_publisher import InstrumentedPublisher
from command_api.adapters.process_clock import ProcessClock
from command_api.adapters.redis_import_report_writer import RedisImportReportWriter
from command_api.adapters.redis_stores import RedisIdempotencyStore
from command_api.adapters.sqs_publisher import SqsEventPublisher
from command_api.bootstrap import build_ports, sqs_target
from command_api.entrypoints.app import create_app
from command_api.settings import Settings
from contacts_domain import CreateContact, to_event
from contacts_infra.operation_store import RedisOperationStore
from contacts_telemetry.metrics import MetricsRegistry


def test_every_injected_port_replaces_its_adapter_and_builds_nothing(
    settings, publisher, operations, idempotency
) -> None:
    reports = object()
    ports = build_ports(
        settings,
        metrics=MetricsRegistry(),
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        import_reports=reports,
    )
    assert isinstance(ports.publisher, InstrumentedPublisher)
    assert ports.publisher.inner is publisher
    assert ports.operations is operations
    assert ports.idempotency is idempotency
    assert ports.import_reports is reports
    # A fake publisher and injected stores: nothing of the real world to check or prepare.
    assert dict(ports.readiness_checks) == {}
    assert list(ports.prepare) == []
    assert isinstance(ports.clock, ProcessClock)


def test_the_stores_not_injected_are_the_redis_adapters_on_one_client(
    settings, publisher, operations
) -> None:
    ports = build_ports(settings, metrics=MetricsRegistry(), publisher=publisher)
    assert isinstance(ports.operations, RedisOperationStore)
    assert isinstance(ports.idempotency, RedisIdempotencyStore)
    assert isinstance(ports.import_reports, RedisImportReportWriter)
    assert set(ports.readiness_checks) == {"redis"}
    # One injected store keeps the others real.
    partial = build_ports(
        settings, metrics=MetricsRegistry(), publisher=publisher, operations=operations
    )
    assert partial.operations is operations
    assert isinstance(partial.idempotency, RedisIdempotencyStore)


def test_the_real_publisher_is_sqs_warmed_and_checked(settings) -> None:
    ports = build_ports(settings, metrics=MetricsRegistry())
    assert isinstance(ports.publisher, InstrumentedPublisher)
    inner = ports.publisher.inner
    assert isinstance(inner, SqsEventPublisher)
    assert set(ports.readiness_checks) == {"sqs", "redis"}
    assert ports.readiness_checks["sqs"] == inner.check_ready
    # /readyz warms a process forked since (a no-op in this one: warmed already).
    assert list(ports.prepare) == [inner.warm]


def test_injected_readiness_checks_replace_the_checks_and_what_they_prepare(settings) -> None:
    checks = {"custom": lambda: None}
    ports = build_ports(settings, metrics=MetricsRegistry(), readiness_checks=checks)
    assert ports.readiness_checks is checks
    assert list(ports.prepare) == []


def test_a_name_that_is_no_port_is_refused(settings, publisher) -> None:
    with pytest.raises(TypeError, match="unknown ports: publishr"):
        build_ports(settings, metrics=MetricsRegistry(), publishr=publisher)
    with pytest.raises(TypeError, match="unknown ports"):
        create_app(settings, publishr=publisher)


def test_the_publisher_is_instrumented_in_the_app_s_registry(
    settings, publisher, operations, idempotency
) -> None:
    metrics = MetricsRegistry()
    ports = build_ports(
        settings,
        metrics=metrics,
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        import_reports=object(),
    )
    event = to_event(
        CreateContact("c1", {"first_name": "Rosa"}),
        event_id="e1",
        operation_id="o1",
        sequence=ports.clock.next(),
        time=ports.now(),
        correlation_id=None,
    )
    ports.publisher.publish(event)
    assert publisher.events == [event]
    assert (
        'commands_accepted_total{kind="created"} 1.0' in generate_latest(metrics.registry).decode()
    )


def test_the_sqs_target_is_what_the_settings_name() -> None:
    settings = Settings(
        sqs_queue_name="q.fifo",
        sqs_queue_url="http://127.0.0.1:9/000000000000/q.fifo",
        sqs_endpoint_url="http://127.0.0.1:9",
        sqs_send_timeout_s=1.5,
    )
    target = sqs_target(settings)
    assert (target.queue_name, target.queue_url, target.endpoint_url, target.send_timeout_s) == (
        "q.fifo",
        "http://127.0.0.1:9/000000000000/q.fifo",
        "http://127.0.0.1:9",
        1.5,
    )
    assert target.region == settings.aws_region
