"""``handle_batch`` on real PostgreSQL and Redis (issue 13): several events in one transaction,
in delivery order, and a poison event that fails alone while the others are applied once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.handlers import handle_batch
from contact_worker.settings import Settings
from contacts_domain import (
    DEFAULT_WORKSPACE,
    ContactEvent,
    HybridLogicalClock,
    OperationStatus,
    normalize_contact,
)

CLOCK = HybridLogicalClock()


@pytest.fixture(scope="module")
def runtime(stack_env: dict[str, str]) -> Runtime:
    return Runtime(Settings.from_env(stack_env))


@pytest.fixture
def commits(runtime: Runtime) -> Iterator[list[int]]:
    """Counts the commits of the worker's engine while the test runs."""
    engine = runtime.ports().engine
    assert engine is not None
    seen: list[int] = []

    def count(_: Any) -> None:
        seen.append(1)

    sa.event.listen(engine, "commit", count)
    yield seen
    sa.event.remove(engine, "commit", count)


def event(kind: str, cid: str, data: dict[str, Any] | None = None, **kw: Any) -> ContactEvent:
    if kind in ("created", "replaced"):
        data = normalize_contact(data or {}, partial=False, default_region="US")
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=cid,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data or {},
        **kw,
    )


def apply(runtime: Runtime, events: list[ContactEvent]) -> list[OperationStatus | Exception]:
    ports = runtime.ports()
    return handle_batch(
        events, unit_of_work=ports.unit_of_work, cache=ports.cache, operations=ports.operations
    )


def inbox(runtime: Runtime, event_ids: list[str]) -> dict[str, tuple[str, int | None]]:
    """``event id -> (status, version)`` of the inbox rows of ``event_ids``."""
    engine = runtime.ports().engine
    assert engine is not None
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT event_id::text, status, version FROM processed_events"
                " WHERE workspace = :ws AND event_id::text = ANY(:ids)"
            ),
            {"ws": DEFAULT_WORKSPACE, "ids": event_ids},
        )
        return {row[0]: (row[1], row[2]) for row in rows}


def poison(cid: str) -> ContactEvent:
    """A patch that ``read_event`` accepts but PostgreSQL refuses: its expected version does
    not fit the inbox's ``bigint`` column (``NumericValueOutOfRange`` on every attempt)."""
    return event("patched", cid, {"first_name": "Never"}, expected_version=2**70)


def test_one_transaction_applies_a_contacts_events_in_delivery_order(
    runtime: Runtime, commits: list[int]
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    batch = [
        event("created", a, {"first_name": "Ada"}),
        event("patched", a, {"last_name": "Lovelace"}),
        event("created", b, {"first_name": "Bea"}),
        event("patched", a, {"first_name": "Augusta"}),
        event("deleted", b),
    ]
    results = apply(runtime, batch)

    assert [r.status for r in results if isinstance(r, OperationStatus)] == ["applied"] * 5
    assert len(commits) == 1
    # Each event saw the ones before it in the same transaction: versions 1, 2, 3 for A.
    rows = inbox(runtime, [e.id for e in batch])
    assert [rows[e.id] for e in batch] == [
        ("applied", 1),
        ("applied", 2),
        ("applied", 1),
        ("applied", 3),
        ("applied", 2),
    ]
    with runtime.ports().unit_of_work() as uow:
        stored = uow.contacts.get_for_update(DEFAULT_WORKSPACE, a)
        erased = uow.contacts.get_for_update(DEFAULT_WORKSPACE, b)
    assert stored.fields["first_name"] == "Augusta"
    assert stored.fields["last_name"] == "Lovelace"
    assert not erased.alive


def test_a_poison_event_fails_alone_and_the_others_are_applied_once(
    runtime: Runtime, commits: list[int]
) -> None:
    good = [event("created", str(uuid.uuid4()), {"first_name": f"G{i}"}) for i in range(3)]
    bad = poison(str(uuid.uuid4()))
    batch = [good[0], bad, good[1], good[2]]

    results = apply(runtime, batch)

    assert isinstance(results[1], Exception)
    assert [r.status for r in results if isinstance(r, OperationStatus)] == ["applied"] * 3
    # The batch's transaction was rolled back, then each event ran alone: three commits.
    assert len(commits) == 3
    rows = inbox(runtime, [e.id for e in batch])
    assert rows == {e.id: ("applied", 1) for e in good}

    # The whole batch redelivered (as SQS would after a lost ack): the good ones change
    # nothing, the poison fails again, alone.
    again = apply(runtime, batch)
    assert isinstance(again[1], Exception)
    assert [again[i] for i in (0, 2, 3)] == [results[i] for i in (0, 2, 3)]
    assert inbox(runtime, [e.id for e in batch]) == rows


def test_a_batch_on_a_dead_pooled_connection_reads_again_on_a_new_one(
    runtime: Runtime, commits: list[int]
) -> None:
    """No ``pool_pre_ping`` (one round trip less per batch): a batch whose pooled connections
    PostgreSQL dropped (a restart, an idle cut) is applied on a new one, not failed."""
    engine = runtime.ports().engine
    assert engine is not None
    assert not engine.pool._pre_ping
    apply(runtime, [event("created", str(uuid.uuid4()), {"first_name": "Warm"})])
    pooled = [engine.connect() for _ in range(max(engine.pool.checkedin(), 1))]
    pids = [c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in pooled]
    for connection in pooled:
        connection.close()
    admin = sa.create_engine(engine.url)
    try:
        with admin.connect() as connection:
            for pid in pids:
                connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()
    commits.clear()
    cid = str(uuid.uuid4())
    created = event("created", cid, {"first_name": "Again"})

    results = apply(runtime, [created])

    assert [(r.status, r.version) for r in results if isinstance(r, OperationStatus)] == [
        ("applied", 1)
    ]
    assert inbox(runtime, [created.id]) == {created.id: ("applied", 1)}
    assert len(commits) == 1
