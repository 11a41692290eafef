"""The worker's batches through real processes, SQS and PostgreSQL (issue 13; issue 16, item 5).

- A poison event received with good ones: the good ones are applied once, the poison alone is
  retried and dead-lettered.
- Deletes only after the commit: a worker killed between its commit and its
  ``DeleteMessageBatch`` leaves the message in the queue; its redelivery changes nothing.
- Events of one contact received together are applied in their order.
- A SIGTERM'd worker hands its prefetched, unstarted messages back at once
  (``ChangeMessageVisibility`` 0): a fresh worker applies them long before the visibility
  timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from support.processes import Service, worker
from support.read_model import EventSender, stored_contact
from support.resources import TEST_WORKER_ENV, isolated_queues, queue_env

SLOW_PREFIX = "slow-"


@pytest.fixture
def queue(
    sqs_client: Any, stack_env: dict[str, str], run_id: str, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """A queue pair of this test alone; ``@pytest.mark.parametrize("queue", [env], indirect=
    True)`` adds worker settings (the queue's visibility timeout among them)."""
    extra: dict[str, str] = getattr(request, "param", {})
    name = f"t{run_id}-batch{uuid.uuid4().hex[:6]}"
    with isolated_queues(sqs_client, name, {**TEST_WORKER_ENV, **extra}) as urls:
        yield {**stack_env, **TEST_WORKER_ENV, **extra, **queue_env(name, urls), "DLQ": urls.dlq}


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@contextmanager
def running(env: dict[str, str], name: str, concurrency: int = 1) -> Iterator[Service]:
    service = worker(env, concurrency=concurrency, name=name).start()
    try:
        service.wait_for_log("ready.", 60)
        yield service
    finally:
        service.stop()


def make(
    clock: HybridLogicalClock, kind: str, cid: str, data: dict[str, Any], **kw: Any
) -> ContactEvent:
    if kind == "created":
        data = normalize_contact(data, partial=False, default_region="US")
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=cid,
        sequence=clock.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data,
        **kw,
    )


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, service: Service) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout_s} s:\n{service.tail()}")


def log_lines(service: Service) -> list[dict[str, Any]]:
    lines = []
    for line in service.log().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def processed(service: Service, event_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(service)
        if line.get("event") == "event processed" and line.get("event_id") == event_id
    ]


def inbox_rows(engine: sa.Engine, event_id: str) -> list[tuple[str, int | None]]:
    with engine.connect() as connection:
        return [
            (row[0], row[1])
            for row in connection.execute(
                sa.text("SELECT status, version FROM processed_events WHERE event_id::text = :id"),
                {"id": event_id},
            )
        ]


def test_a_poison_event_in_a_batch_is_dead_lettered_alone_and_the_good_ones_apply_once(
    queue: dict[str, str], engine: sa.Engine, sqs_client: Any
) -> None:
    clock = HybridLogicalClock()
    good = [make(clock, "created", str(uuid.uuid4()), {"first_name": f"G{i}"}) for i in range(4)]
    # Accepted by read_event, refused by PostgreSQL on every attempt: the expected version
    # does not fit the inbox's bigint column.
    poison = make(clock, "patched", str(uuid.uuid4()), {"first_name": "P"}, expected_version=2**70)
    sender = EventSender(queue)
    for event in [good[0], good[1], poison, good[2], good[3]]:
        sender.send(event)

    with running(queue, "batch-poison-worker") as service:  # one pool process: one batch
        wait_for(
            lambda: all(stored_contact(engine, e.contact_id) for e in good), 30, "good", service
        )
        dead: list[dict[str, Any]] = []

        def dead_lettered() -> bool:
            answer = sqs_client.receive_message(
                QueueUrl=queue["DLQ"],
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["MessageGroupId"],
            )
            dead.extend(answer.get("Messages", []))
            return bool(dead)

        wait_for(dead_lettered, 60, "the poison in the dead-letter queue", service)
        log = log_lines(service)

    groups = [m["Attributes"]["MessageGroupId"] for m in dead]
    assert groups == [f"default/{poison.contact_id}"]
    assert any(str(line.get("event")).startswith("batch not applied together") for line in log)
    for event in good:
        assert len(processed(service, event.id)) == 1, service.tail()
        assert inbox_rows(engine, event.id) == [("applied", 1)]
    failures = [
        line
        for line in log
        if line.get("event") == "event not applied" and line.get("event_id") == poison.id
    ]
    assert len(failures) == int(TEST_WORKER_ENV["SQS_MAX_RECEIVE_COUNT"])
    assert failures[-1]["outcome"] == "dead_lettered"
    assert inbox_rows(engine, poison.id) == []


@pytest.mark.parametrize(
    "queue",
    [
        {
            "WORKER_FAULT_DELAY_PREFIX": SLOW_PREFIX,
            "WORKER_FAULT_DELAY_S": "4",
            "WORKER_FAULT_DELAY_AFTER_COMMIT": "true",
        }
    ],
    indirect=True,
)
def test_a_worker_killed_between_commit_and_delete_leaves_a_redelivery_the_inbox_absorbs(
    queue: dict[str, str], engine: sa.Engine
) -> None:
    clock = HybridLogicalClock()
    event = make(
        clock,
        "created",
        str(uuid.uuid4()),
        {"first_name": "Once"},
        correlation_id=f"{SLOW_PREFIX}{uuid.uuid4()}",
    )
    EventSender(queue).send(event)
    with running(queue, "batch-killed-worker") as first:
        wait_for(lambda: bool(stored_contact(engine, event.contact_id)), 30, "commit", first)
        first.signal(signal.SIGKILL)  # committed, sleeping before its DeleteMessageBatch
        first.process.wait(10)  # type: ignore[union-attr]
    assert processed(first, event.id) == []

    fresh_env = {k: v for k, v in queue.items() if not k.startswith("WORKER_FAULT_")}
    with running(fresh_env, "batch-fresh-worker") as fresh:
        # Redelivered once its visibility timeout (SQS_VISIBILITY_TIMEOUT_S) ran out.
        wait_for(lambda: bool(processed(fresh, event.id)), 60, "the redelivery", fresh)
        [line] = processed(fresh, event.id)
    assert line["receives"] >= 2
    assert line["status"] == "applied"
    assert inbox_rows(engine, event.id) == [("applied", 1)]
    assert stored_contact(engine, event.contact_id)["version"] == 1  # type: ignore[index]


def test_events_of_one_contact_received_together_apply_in_their_order(
    queue: dict[str, str], engine: sa.Engine
) -> None:
    # Four pool processes for two contacts: free processes are there to take a contact's later
    # events, and the dispatcher must hold them back while an earlier batch of it runs.
    clock = HybridLogicalClock()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    events = [make(clock, "created", a, {"first_name": "A0"})]
    events += [make(clock, "patched", a, {"first_name": f"A{i}"}) for i in range(1, 6)]
    events += [make(clock, "created", b, {"first_name": "B0"})]
    events += [make(clock, "patched", b, {"last_name": "Bee"})]
    sender = EventSender(queue)
    for event in events:  # all queued before the worker starts: received together
        sender.send(event)

    with running(queue, "batch-order-worker", concurrency=4) as service:
        wait_for(
            lambda: (
                (stored_contact(engine, a) or {}).get("version") == 6
                and (stored_contact(engine, b) or {}).get("version") == 2
            ),
            30,
            "every event applied",
            service,
        )
        batches = [
            line["events"] for line in log_lines(service) if line["event"] == "batch received"
        ]
    assert max(batches) > 1, batches
    assert stored_contact(engine, a)["first_name"] == "A5"  # type: ignore[index]
    # Applied in order, never replayed: each event's outcome is the next version.
    assert [inbox_rows(engine, e.id) for e in events[:6]] == [[("applied", v)] for v in range(1, 7)]
    assert [inbox_rows(engine, e.id) for e in events[6:]] == [[("applied", 1)], [("applied", 2)]]


@pytest.mark.parametrize(
    "queue",
    [
        {
            # Far longer than the test waits: only a release brings the messages back in time.
            "SQS_VISIBILITY_TIMEOUT_S": "600",
            "WORKER_FAULT_DELAY_PREFIX": SLOW_PREFIX,
            "WORKER_FAULT_DELAY_S": "12",
            "TASK_SOFT_TIME_LIMIT_S": "20",
            "TASK_TIME_LIMIT_S": "25",
            "WORKER_PREFETCH_MULTIPLIER": "10",  # room for the held events beside the slow one
        }
    ],
    indirect=True,
)
def test_a_sigterm_hands_prefetched_messages_back_at_once(
    queue: dict[str, str], engine: sa.Engine, sqs_client: Any
) -> None:
    clock = HybridLogicalClock()
    slow = make(
        clock,
        "created",
        str(uuid.uuid4()),
        {"first_name": "Slow"},
        correlation_id=f"{SLOW_PREFIX}{uuid.uuid4()}",
    )
    held = [make(clock, "created", str(uuid.uuid4()), {"first_name": f"H{i}"}) for i in range(5)]
    sender = EventSender(queue)
    with running(queue, "batch-sigterm-worker") as first:  # one pool process
        sender.send(slow)
        first.wait_for_log("batch received", 30)
        for event in held:
            sender.send(event)

        def all_received() -> bool:
            attributes = sqs_client.get_queue_attributes(
                QueueUrl=queue["SQS_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return attributes["ApproximateNumberOfMessages"] == "0"

        # The held events are received (invisible) while the slow batch runs.
        wait_for(all_received, 30, "the held events prefetched", first)
        first.signal(signal.SIGTERM, group=False)  # as Kubernetes stops a pod: PID 1 only
        first.process.wait(30)  # type: ignore[union-attr]
    assert "released prefetched messages" in first.log(), first.tail()
    assert all(processed(first, e.id) == [] for e in held)
    assert processed(first, slow.id), "the running batch finishes on a warm shutdown"

    fresh_env = {k: v for k, v in queue.items() if not k.startswith("WORKER_FAULT_")}
    with running(fresh_env, "batch-after-sigterm-worker") as fresh:
        wait_for(
            lambda: all(stored_contact(engine, e.contact_id) for e in held),
            60,
            "the held events applied by a fresh worker",
            fresh,
        )


#: Time bounds of the soft time limit test: a batch is interrupted after 2 s, killed after 5 s.
SOFT_LIMIT_ENV = {
    "DB_LOCK_TIMEOUT_MS": "500",
    "DB_STATEMENT_TIMEOUT_MS": "1000",
    "TASK_SOFT_TIME_LIMIT_S": "2",
    "TASK_TIME_LIMIT_S": "5",
    "WORKER_FAULT_DELAY_PREFIX": SLOW_PREFIX,
    "WORKER_FAULT_DELAY_S": "4",  # past the soft limit, before the hard one
    "WORKER_FAULT_HOLD_LOCK": "true",
}


@pytest.mark.parametrize("queue", [SOFT_LIMIT_ENV], indirect=True)
def test_a_pool_process_whose_batch_hit_the_soft_limit_inside_a_lock_is_replaced(
    queue: dict[str, str], engine: sa.Engine, sqs_client: Any
) -> None:
    """Case C13: the soft time limit interrupts a batch that holds a lock of its pool process
    and leaves it held (the fault hook ``WORKER_FAULT_HOLD_LOCK``, which every batch takes).
    The process logs where it was, sends its verdicts and retires: a fresh process applies the
    later batches at once (the old one failed every batch at the soft limit, for good). The
    interrupted batch's message is redelivered as before, and dead-lettered after its last
    receive (it is slow on every receive): nothing is lost."""
    clock = HybridLogicalClock()
    slow = make(
        clock,
        "created",
        str(uuid.uuid4()),
        {"first_name": "Slow"},
        correlation_id=f"{SLOW_PREFIX}{uuid.uuid4()}",
    )
    later = [make(clock, "created", str(uuid.uuid4()), {"first_name": f"L{i}"}) for i in range(5)]
    sender = EventSender(queue)
    with running(queue, "soft-limit-worker") as service:  # one pool process
        sender.send(slow)
        service.wait_for_log("batch received", 30)
        for event in later:
            sender.send(event)
        started = time.monotonic()
        wait_for(
            lambda: all(stored_contact(engine, e.contact_id) for e in later),
            20,
            "the later events applied by a fresh pool process",
            service,
        )
        applied_after = time.monotonic() - started
        dead: list[dict[str, Any]] = []

        def dead_lettered() -> bool:
            answer = sqs_client.receive_message(
                QueueUrl=queue["DLQ"],
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["MessageGroupId"],
            )
            dead.extend(answer.get("Messages", []))
            return bool(dead)

        wait_for(dead_lettered, 60, "the slow event in the dead-letter queue", service)
        log = log_lines(service)

    # The interrupted batch (2 s) and a new process, not a wait at every batch's soft limit.
    assert applied_after < 10, applied_after
    reports = [line for line in log if str(line.get("event")).startswith("batch past the soft")]
    assert len(reports) == int(TEST_WORKER_ENV["SQS_MAX_RECEIVE_COUNT"]), service.tail()
    retired = [line for line in log if line.get("event") == "pool process retired after its batch"]
    assert len(retired) == len(reports)
    assert not [line for line in log if line.get("event") == "batch job failed"]  # none lost
    innermost = reports[0]["interrupted_at"][-1]
    assert "in _pass_fault_lock" in innermost, reports[0]["interrupted_at"]
    assert any(
        "in _pass_fault_lock" in frame for s in reports[0]["threads"].values() for frame in s
    )
    failures = [
        line
        for line in log
        if line.get("event") == "event not applied" and line.get("event_id") == slow.id
    ]
    assert [line["receives"] for line in failures] == [1, 2, 3]
    assert failures[-1]["outcome"] == "dead_lettered"
    assert [m["Attributes"]["MessageGroupId"] for m in dead] == [f"default/{slow.contact_id}"]
    for event in later:
        assert inbox_rows(engine, event.id) == [("applied", 1)]
        assert len(processed(service, event.id)) == 1
