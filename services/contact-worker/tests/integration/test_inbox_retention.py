"""Payload retention of the inbox (issue 16, item 4) against real PostgreSQL and Redis: old
payloads go, ids, sequences and outcomes stay, so redeliveries stay no-ops; a late event that
would need a purged payload is rejected ``expired``; the admin command keeps at least 7 days."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from contact_worker.adapters.inbox_retention import purge_payloads
from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.handlers import handle_event
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, HybridLogicalClock, OperationStatus, normalize_contact

CLOCK = HybridLogicalClock()


@pytest.fixture(scope="module")
def runtime(stack_env: dict[str, str]) -> Runtime:
    return Runtime(Settings.from_env(stack_env))


def event(kind: str, cid: str, data: dict[str, Any] | None = None) -> ContactEvent:
    if kind == "created":
        data = normalize_contact(data or {}, partial=False, default_region="US")
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=cid,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data or {},
    )


def handle(runtime: Runtime, e: ContactEvent) -> OperationStatus:
    ports = runtime.ports()
    return handle_event(
        e, unit_of_work=ports.unit_of_work, cache=ports.cache, operations=ports.operations
    )


def rows(engine: sa.Engine, cid: str) -> list[tuple[str, str, str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT event_type, sequence, status, data FROM processed_events"
                " WHERE contact_id = :id ORDER BY sequence"
            ),
            {"id": cid},
        ).all()
    return [tuple(row) for row in found]  # type: ignore[misc]


def age(engine: sa.Engine, cid: str, days: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE processed_events SET processed_at = now() - make_interval(days => :d)"
                " WHERE contact_id = :id"
            ),
            {"d": days, "id": cid},
        )


def test_old_payloads_go_in_batches_and_what_dedup_and_order_need_stays(
    runtime: Runtime, database_url: str
) -> None:
    engine = sa.create_engine(database_url)
    old, young = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        create = event("created", old, {"first_name": "Oldname"})
        patch = event("patched", old, {"notes": "Old secret"})
        for e in (create, patch):
            handle(runtime, e)
        handle(runtime, event("created", young, {"first_name": "Youngname"}))
        age(engine, old, 8)
        before = rows(engine, old)

        assert purge_payloads(engine, dt.timedelta(days=7), batch=1) >= 2

        after = rows(engine, old)
        assert [r[:3] for r in after] == [r[:3] for r in before]  # kinds, sequences, outcomes
        assert [r[3] for r in after] == [None, None]
        assert rows(engine, young)[0][3]["first_name"] == "Youngname"
        # A redelivery of a purged event is still recognised: nothing changes.
        assert handle(runtime, patch).status == "applied"
        assert rows(engine, old) == after
        assert purge_payloads(engine, dt.timedelta(days=7)) == 0  # nothing left to purge
    finally:
        engine.dispose()


def test_a_late_event_that_needs_a_purged_payload_is_rejected_expired(
    runtime: Runtime, database_url: str
) -> None:
    engine = sa.create_engine(database_url)
    cid = str(uuid.uuid4())
    try:
        create = event("created", cid, {"first_name": "Rosa"})
        late = event("patched", cid, {"company": "Late"})  # ordered before the next patch
        handle(runtime, create)
        handle(runtime, event("patched", cid, {"notes": "Newer"}))
        age(engine, cid, 8)
        purge_payloads(engine, dt.timedelta(days=7))

        outcome = handle(runtime, late)

        assert (outcome.status, outcome.reason) == ("rejected", "expired")
        with runtime.ports().unit_of_work() as uow:
            state = uow.contacts.get_for_update("default", cid)
        assert (state.version, state.fields["first_name"], state.fields["company"]) == (
            2,
            "Rosa",
            None,
        )
    finally:
        engine.dispose()


def test_the_admin_command_keeps_at_least_seven_days(
    stack_env: dict[str, str], database_url: str
) -> None:
    def admin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "contact_worker.entrypoints.admin", "purge-inbox", *args],
            env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    refused = admin("--older-than-days", "6")
    assert refused.returncode == 2
    assert "at least 7 days" in refused.stderr
    done = admin(INBOX_PAYLOAD_RETENTION_DAYS="30")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "older than 30 days purged" in done.stdout
    bad = admin(INBOX_PAYLOAD_RETENTION_DAYS="3")
    assert bad.returncode == 2
    assert "INBOX_PAYLOAD_RETENTION_DAYS" in bad.stderr
