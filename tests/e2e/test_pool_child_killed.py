"""A prefork pool child SIGKILLed mid-task: its message is redelivered and applied, and the
worker's main process lives on and keeps consuming (docs/architecture.md §5.1, "a killed worker
means
redelivery, not loss").

With ``task_reject_on_worker_lost`` Celery rejects the lost task's message with requeue, and
kombu's SQS QoS used to apply the queue's backoff policy after its restore had stripped the SQS
message from the delivery: ``KeyError('sqs_message')``, "Unrecoverable error", and the whole
worker stopped (``contact_worker.adapters.sqs_heartbeat.RedeliveringQoS``).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from support.processes import Service, worker
from support.read_model import EventSender, stored_contact
from support.resources import isolated_queues, queue_env

SLOW_PREFIX = "slow-"
#: How long the worker sleeps in a slow task before applying it: the kill lands inside it.
SLOW_TASK_S = 4.0
#: Short long polls, so that kombu's restore (visible again after this) redelivers quickly.
WAIT_TIME_S = 2


@pytest.fixture
def one_slot_worker(
    sqs_client: Any, stack_env: dict[str, str], run_id: str
) -> Iterator[tuple[Service, dict[str, str]]]:
    """A worker with one pool child on a queue pair of its own, delaying ``slow-`` events."""
    name = f"t{run_id}-lost{uuid.uuid4().hex[:6]}"
    with isolated_queues(sqs_client, name) as urls:
        env = {
            **stack_env,
            **queue_env(name, urls),
            "SQS_WAIT_TIME_S": str(WAIT_TIME_S),
            "WORKER_FAULT_DELAY_PREFIX": SLOW_PREFIX,
            "WORKER_FAULT_DELAY_S": str(SLOW_TASK_S),
        }
        service = worker(env, concurrency=1, name="lost-child-worker", supervised=False).start()
        try:
            service.wait_for_log("ready.", 60)
            yield service, env
        finally:
            service.stop()


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def created(clock: HybridLogicalClock, first_name: str, correlation_id: str) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created",
        contact_id=str(uuid.uuid4()),
        sequence=clock.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=normalize_contact({"first_name": first_name}, partial=False, default_region="US"),
        correlation_id=correlation_id,
    )


def wait_applied(
    engine: sa.Engine, event: ContactEvent, service: Service, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stored_contact(engine, event.contact_id):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{event.data['first_name']} not applied in {timeout_s} s:\n{service.tail()}"
    )


def test_sigkill_of_a_pool_child_mid_task_redelivers_and_the_worker_keeps_consuming(
    one_slot_worker: tuple[Service, dict[str, str]], database_url: str
) -> None:
    service, env = one_slot_worker
    clock = HybridLogicalClock()
    sender = EventSender(env)
    slow = created(clock, "Slow", f"{SLOW_PREFIX}{uuid.uuid4()}")
    sender.send(slow)
    service.wait_for_log("received", 30)
    [child] = pool_children(service.pid)
    time.sleep(SLOW_TASK_S / 4)  # inside the task's sleep, before anything is written
    os.kill(child, signal.SIGKILL)
    service.wait_for_log("WorkerLostError", 30)

    after = created(clock, "After", str(uuid.uuid4()))
    sender.send(after)
    engine = sa.create_engine(database_url)
    try:
        wait_applied(engine, after, service, 30)
        # Redelivered once visible again (after WAIT_TIME_S), then slow once more.
        wait_applied(engine, slow, service, 60)
    finally:
        engine.dispose()
    assert service.alive(), service.tail()
    assert pool_children(service.pid), "the pool did not replace the killed child"
    assert child not in pool_children(service.pid)
    log = service.log()
    assert "Unrecoverable error" not in log, service.tail()
    assert "KeyError" not in log, service.tail()
