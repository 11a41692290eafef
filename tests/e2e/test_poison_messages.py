"""Case C14: poison messages reach the dead-letter queue; the worker never crashes or stalls."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from support.poison import celery_shaped
from support.processes import Service, worker
from support.read_model import EventSender, stored_contact
from support.resources import isolated_queues, queue_env


@pytest.fixture
def own_queue(sqs_client: Any, stack_env: dict[str, str], run_id: str) -> Iterator[dict[str, str]]:
    """A queue pair and a worker of this test alone, so the DLQ holds only its messages."""
    name = f"t{run_id}-poison"
    with isolated_queues(sqs_client, name) as urls:
        env = {
            **stack_env,
            **queue_env(name, urls),
            "DLQ_URL": urls.dlq,
        }
        service: Service = worker(env, concurrency=2, name="poison-worker").start()
        try:
            service.wait_for_log("ready.", 60)
            env["WORKER_PID"] = str(service.pid)
            env["WORKER_METRICS_URL"] = str(service.metrics_url)
            yield env
            assert service.alive(), service.tail()
        finally:
            service.stop()


def test_c14_poison_messages_go_to_the_dlq_and_valid_ones_still_apply(
    own_queue: dict[str, str], sqs_client: Any, database_url: str
) -> None:
    main, dlq = own_queue["SQS_QUEUE_URL"], own_queue["DLQ_URL"]
    clock = HybridLogicalClock()

    def envelope(kind: str, data: dict[str, Any]) -> ContactEvent:
        return ContactEvent(
            id=str(uuid.uuid4()),
            kind=kind,  # type: ignore[arg-type]
            contact_id=str(uuid.uuid4()),
            sequence=clock.next(),
            time=dt.datetime.now(dt.UTC),
            operation_id=str(uuid.uuid4()),
            data=data,
        )

    invalid = envelope("patched", {"emails": "not a list"}).to_cloudevent()
    poison = {
        "raw": "hello",
        "unknown-task": celery_shaped("contacts.no_such_task", [{}]),
        "invalid-data": celery_shaped("contacts.apply_event", [invalid]),
    }
    for group, body in poison.items():
        sqs_client.send_message(
            QueueUrl=main, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=group
        )
    valid = [
        envelope(
            "created",
            normalize_contact({"first_name": f"V{i}"}, partial=False, default_region="US"),
        )
        for i in range(5)
    ]
    sender = EventSender(own_queue)
    started = time.monotonic()
    for event in valid:
        sender.send(event)

    engine = sa.create_engine(database_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(stored_contact(engine, e.contact_id) for e in valid):
                break
            time.sleep(0.1)
        applied_after = time.monotonic() - started
        assert all(stored_contact(engine, e.contact_id) for e in valid)
        assert applied_after < 10, f"valid events took {applied_after:.1f} s behind poison"
    finally:
        engine.dispose()

    dead: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while len(dead) < len(poison) and time.monotonic() < deadline:
        answer = sqs_client.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=2, AttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            dead[message["Attributes"]["MessageGroupId"]] = message["Body"]
            sqs_client.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert dead == poison

    # The invalid event ran once per receive: retried, then dead-lettered on the last receive
    # SQS allows (its receive count from the message, in a pool child; summed by the parent).
    metrics = requests.get(own_queue["WORKER_METRICS_URL"], timeout=5).text
    outcomes = {
        outcome: sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(f'worker_tasks_total{{outcome="{outcome}"}}')
        )
        for outcome in ("applied", "retried", "dead_lettered")
    }
    assert outcomes["applied"] >= len(valid)
    assert outcomes["retried"] >= 1
    assert outcomes["dead_lettered"] >= 1
