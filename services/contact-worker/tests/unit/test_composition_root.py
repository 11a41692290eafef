"""The composition root wires the Celery task: fakes of our ports go in through
``bootstrap.Runtime(settings, build=...)``, the task is the module-level
``apply_contact_event``, the fault delay is injected only when its setting is on, and the ports
are rebuilt in a forked child (case C21)."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import pytest

from contact_worker.bootstrap import Ports, Runtime, apply_step
from contact_worker.entrypoints.celery_app import apply_contact_event, create_celery
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.settings import Settings
from contacts_domain import (
    DEFAULT_WORKSPACE,
    ContactEvent,
    HybridLogicalClock,
    MalformedEvent,
    normalize_contact,
)
from contacts_infra.messaging import APPLY_EVENT_TASK
from contacts_telemetry.metrics import MetricsRegistry
from support.domain_fakes import (
    InMemoryCache,
    InMemoryDatabase,
    InMemoryOperationStore,
    InMemoryUnitOfWork,
)

CLOCK = HybridLogicalClock()
DELAY_S = 0.4


class FakePorts:
    """Builds in-memory ports and remembers, per build, the pid that asked."""

    def __init__(self) -> None:
        self.built_in: list[int] = []
        self.cache = InMemoryCache()
        self.operations = InMemoryOperationStore()

    def __call__(self, settings: Settings) -> Ports:
        self.built_in.append(os.getpid())
        db = InMemoryDatabase()
        return Ports(
            unit_of_work=lambda: InMemoryUnitOfWork(db),
            cache=self.cache,
            operations=self.operations,
        )


def created(correlation_id: str | None = None) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created",
        contact_id=str(uuid.uuid4()),
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=normalize_contact({"first_name": "Ada"}, partial=False, default_region="US"),
        correlation_id=correlation_id,
    )


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(heartbeat_file=str(tmp_path / "heartbeat"), **overrides)  # type: ignore[arg-type]


def count(metrics: WorkerMetrics, outcome: str) -> float | None:
    return metrics.registry.registry.get_sample_value("worker_tasks_total", {"outcome": outcome})


def test_the_registered_task_is_the_module_function_and_applies_on_injected_ports(
    tmp_path: Path,
) -> None:
    fakes = FakePorts()
    settings = settings_for(tmp_path)
    metrics = WorkerMetrics(MetricsRegistry())
    app = create_celery(settings, Runtime(settings, build=fakes), metrics)
    task = app.tasks[APPLY_EVENT_TASK]
    event = created()

    result = task.apply(args=[event.to_cloudevent()])

    assert task.run.__func__ is apply_contact_event
    assert result.get()["status"] == "applied"
    stored = fakes.operations.get(DEFAULT_WORKSPACE, event.operation_id)
    assert stored is not None
    assert stored.status == "applied"
    assert fakes.cache.entries[(DEFAULT_WORKSPACE, event.contact_id)].version == 1
    assert count(metrics, "applied") == 1
    assert app.conf.broker_url == settings.broker_url
    assert app.conf.broker_transport == "contact_worker.adapters.sqs_heartbeat:Transport"


def test_a_malformed_envelope_fails_the_task_and_is_counted_as_retried(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    metrics = WorkerMetrics(MetricsRegistry())
    app = create_celery(settings, Runtime(settings, build=FakePorts()), metrics)

    result = app.tasks[APPLY_EVENT_TASK].apply(args=["hello"])

    assert result.failed()
    assert isinstance(result.result, MalformedEvent)
    assert count(metrics, "retried") == 1
    assert count(metrics, "applied") == 0


def test_the_fault_delay_holds_only_events_with_its_prefix(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fault_delay_prefix="slow-", fault_delay_s=DELAY_S)
    app = create_celery(settings, Runtime(settings, build=FakePorts()))
    task = app.tasks[APPLY_EVENT_TASK]

    timings = {}
    for correlation in ("slow-1", "fast-1"):
        started = time.perf_counter()
        assert task.apply(args=[created(correlation).to_cloudevent()]).get()["status"] == "applied"
        timings[correlation] = time.perf_counter() - started

    assert timings["slow-1"] >= DELAY_S
    assert timings["fast-1"] < DELAY_S


def test_without_a_prefix_no_event_is_delayed(tmp_path: Path) -> None:
    """A delay alone (no prefix) injects nothing: the prefix "" would match every event."""
    settings = settings_for(tmp_path, fault_delay_s=DELAY_S)
    apply = apply_step(settings, Runtime(settings, build=FakePorts()))

    started = time.perf_counter()
    outcome = apply(created("anything"))

    assert outcome.status == "applied"
    assert time.perf_counter() - started < DELAY_S


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_c21_a_forked_child_builds_ports_of_its_own(tmp_path: Path) -> None:
    fakes = FakePorts()
    runtime = Runtime(settings_for(tmp_path), build=fakes)
    parent_ports = runtime.ports()
    assert runtime.ports() is parent_ports  # built once per process

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        os.close(read_end)
        own = runtime.ports() is not parent_ports and fakes.built_in[-1] == os.getpid()
        os.write(write_end, b"own" if own else b"inherited")
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        reported = answer.read()
    os.waitpid(pid, 0)

    assert reported == b"own"
    assert runtime.ports() is parent_ports
    assert fakes.built_in == [os.getpid()]
