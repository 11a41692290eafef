"""Workspaces in the worker (issue 12): isolation of ids and emails, events queued before
workspaces existed, the quota of live contacts, and the admin's ``workspace list|erase``; on
the in-memory fakes and on real PostgreSQL + Redis alike (the ``backend`` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contact_worker.adapters.workspaces import erase_workspace, list_workspaces
from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.handlers import read_event
from contacts_domain import DEFAULT_WORKSPACE, QUOTA_EXCEEDED, ContactEvent, normalize_contact
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.redis_keys import idempotency_key, import_key, operation_key

from .test_handle_event import (
    Backend,
    backend,
    handle_concurrently,
    make_event,
    new_id,
    runtime,
    worker_settings,
)

__all__ = ["backend", "runtime", "worker_settings"]  # fixtures used here

ADMIN = Path(sys.executable).with_name("contact-worker-admin")


def new_workspace() -> str:
    """A workspace of its own per test: counts and erasures start from nothing."""
    return f"t-{uuid.uuid4().hex[:12]}"


def event_in(workspace: str, kind: str, cid: str, data: dict[str, Any] | None = None) -> Any:
    if kind == "upserted":
        data = normalize_contact(data or {}, partial=True, default_region="US")
    return make_event(kind, cid, data, workspace=workspace)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def test_the_same_email_lives_in_two_workspaces_and_upserts_stay_in_theirs(
    backend: Backend,
) -> None:
    a, b = new_workspace(), new_workspace()
    email = f"{new_id()}@example.com"
    in_a = backend.handle(event_in(a, "created", new_id(), {"first_name": "A", "email": email}))
    in_b = backend.handle(event_in(b, "created", new_id(), {"first_name": "B", "email": email}))
    assert (in_a.status, in_b.status) == ("applied", "applied")

    upsert = backend.handle(event_in(b, "upserted", new_id(), {"company": "Bee", "email": email}))

    assert (upsert.status, upsert.result, upsert.contact_id) == (
        "applied",
        "updated",
        in_b.contact_id,
    )
    assert backend.stored(in_b.contact_id, b).fields["company"] == "Bee"
    untouched = backend.stored(in_a.contact_id, a)
    assert (untouched.fields["company"], untouched.version) == (None, 1)
    # Upsert matching never reaches into another workspace: a new email of A creates in A.
    other = backend.handle(event_in(a, "upserted", new_id(), {"last_name": "N", "email": email}))
    assert other.contact_id == in_a.contact_id


def test_two_workspaces_writing_the_same_contact_id_are_two_contacts(backend: Backend) -> None:
    a, b = new_workspace(), new_workspace()
    cid = new_id()
    backend.handle(event_in(a, "created", cid, {"first_name": "Ada"}))
    backend.handle(event_in(b, "created", cid, {"first_name": "Bob"}))
    backend.handle(event_in(b, "patched", cid, {"company": "Bee"}))
    deleted = backend.handle(event_in(a, "deleted", cid))

    assert deleted.status == "applied"
    assert not backend.stored(cid, a).alive
    kept = backend.stored(cid, b)
    assert (kept.alive, kept.version, kept.fields["first_name"]) == (True, 2, "Bob")
    assert backend.cached(cid, a) == {"version": 2, "alive": False}
    assert backend.cached(cid, b) == {"version": 2, "alive": True}
    # The same operation id recorded in two workspaces is two statuses.
    assert backend.operations.get(b, deleted.operation_id) is None
    assert backend.operations.get(a, deleted.operation_id) == deleted


def test_an_event_queued_without_a_workspace_is_applied_to_default(backend: Backend) -> None:
    cid = new_id()
    envelope = make_event("created", cid, {"first_name": "Old"}).to_cloudevent()
    envelope.pop("workspace")

    event = read_event(envelope)
    outcome = backend.handle(event)

    assert event.workspace == DEFAULT_WORKSPACE
    assert outcome.status == "applied"
    assert backend.stored(cid, DEFAULT_WORKSPACE).fields["first_name"] == "Old"
    assert backend.operations.get(DEFAULT_WORKSPACE, outcome.operation_id) == outcome


def test_the_quota_refuses_one_more_live_contact_per_workspace(backend: Backend) -> None:
    full, other = new_workspace(), new_workspace()

    def create(ws: str, cid: str | None = None) -> Any:
        event = event_in(ws, "created", cid or new_id(), {"first_name": "Q"})
        return backend.handle(event, max_live_contacts=2)

    first, second = create(full), create(full)
    refused = create(full)
    assert [o.status for o in (first, second)] == ["applied", "applied"]
    assert (refused.status, refused.reason) == ("rejected", QUOTA_EXCEEDED)
    assert not backend.stored(refused.contact_id, full).alive
    assert backend.cached(refused.contact_id, full) is None
    assert create(other).status == "applied"  # another workspace has its own count

    upsert = event_in(full, "upserted", new_id(), {"last_name": "U", "email": "u@example.com"})
    assert backend.handle(upsert, max_live_contacts=2).reason == QUOTA_EXCEEDED
    # Updating a live contact needs no room; a delete frees one; bringing it back needs one.
    patch = event_in(full, "patched", first.contact_id, {"company": "Acme"})
    assert backend.handle(patch, max_live_contacts=2).status == "applied"
    backend.handle(event_in(full, "deleted", second.contact_id), max_live_contacts=2)
    assert create(full).status == "applied"
    back = event_in(full, "replaced", second.contact_id, {"first_name": "Back"})
    assert backend.handle(back, max_live_contacts=2).reason == QUOTA_EXCEEDED
    assert backend.handle(back, max_live_contacts=0).status == "rejected"  # recorded: final


def test_the_quota_holds_under_concurrent_creates(runtime: Runtime, engine: sa.Engine) -> None:
    ws = new_workspace()
    events = [event_in(ws, "created", new_id(), {"first_name": f"C{i}"}) for i in range(6)]

    outcomes = handle_concurrently(runtime, events, max_live_contacts=3)

    assert sorted(o.status for o in outcomes) == ["applied"] * 3 + ["rejected"] * 3
    with engine.connect() as conn:
        live = conn.execute(
            sa.text("SELECT count(*) FROM contacts WHERE workspace = :ws AND alive"), {"ws": ws}
        ).scalar_one()
    assert live == 3


def _rows(engine: sa.Engine, ws: str) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE workspace = :ws"), {"ws": ws}
            ).scalar_one()
            for table in ("contacts", "processed_events", "contact_changes", "cache_repairs")
        }


def _populate(runtime: Runtime, client: redis.Redis, ws: str, count: int) -> list[str]:
    """``count`` live contacts and one deleted in ``ws``, with an idempotency record (indexed
    under the first contact) and an import report; returns the operation ids."""
    ports = runtime.ports()
    prefix = runtime.settings.redis_prefix
    operations = []
    for i in range(count):
        event = event_in(ws, "created", new_id(), {"first_name": f"E{i}"})
        operations.append(_handle(ports, event).operation_id)
        if i == 0:
            index = RedisIdempotencyIndex(client, prefix=prefix)
            index.add(ws, event.contact_id, "d" * 64, ttl_s=600)
    gone = new_id()
    _handle(ports, event_in(ws, "created", gone, {"first_name": "Gone"}))
    _handle(ports, event_in(ws, "deleted", gone))
    client.set(idempotency_key(prefix, ws, "d" * 64), "{}")
    client.set(import_key(prefix, ws, new_id()), "{}")
    with ports.engine.begin() as conn:  # an entry the worker owes the cache (migration 0008)
        conn.execute(
            sa.text(
                "INSERT INTO cache_repairs (cache, workspace, contact_id, version)"
                " VALUES (:cache, :ws, :id, 2)"
            ),
            {"cache": prefix, "ws": ws, "id": gone},
        )
    return operations


def _handle(ports: Any, event: ContactEvent) -> Any:
    from contact_worker.service_layer.handlers import handle_event

    return handle_event(
        event, unit_of_work=ports.unit_of_work, cache=ports.cache, operations=ports.operations
    )


def test_erase_removes_one_workspace_in_batches_and_resumes(
    runtime: Runtime, redis_client: redis.Redis, engine: sa.Engine
) -> None:
    gone, kept = new_workspace(), new_workspace()
    prefix = runtime.settings.redis_prefix
    _populate(runtime, redis_client, gone, 5)
    kept_ops = _populate(runtime, redis_client, kept, 3)
    before = _rows(engine, kept)
    kept_keys = sorted(redis_client.scan_iter(match=f"{prefix}*{kept}/*"))
    # contact + op each, deleted one + 2 ops, idem, its index, import
    assert len(kept_keys) == 2 * 3 + 3 + 3
    listed = dict(list_workspaces(engine))
    assert (listed[gone], listed[kept]) == (5, 3)
    lines: list[str] = []

    report = erase_workspace(
        engine, redis_client, prefix=prefix, workspace=gone, batch=2, progress=lines.append
    )

    assert report.rows == {
        "contacts": 6,
        "contact_changes": 7,
        "processed_events": 7,
        "cache_repairs": 1,
    }
    assert report.keys == {
        "contact": 6,
        "refill": 0,
        "op": 7,
        "idem": 1,
        "idem-index": 1,
        "import": 1,
        "import-dead": 0,
    }
    assert len(lines) == 11  # four tables, seven key kinds
    assert lines[0] == "contacts: 6 rows removed"
    assert _rows(engine, gone) == dict.fromkeys(before, 0)
    assert list(redis_client.scan_iter(match=f"{prefix}*{gone}*")) == []
    # The other workspace is untouched, row for row and key for key.
    assert _rows(engine, kept) == before
    assert sorted(redis_client.scan_iter(match=f"{prefix}*{kept}/*")) == kept_keys
    assert redis_client.exists(operation_key(prefix, kept, kept_ops[0]))
    listed = dict(list_workspaces(engine))
    assert gone not in listed
    assert listed[kept] == 3

    again = erase_workspace(engine, redis_client, prefix=prefix, workspace=gone)
    assert sum(again.rows.values()) + sum(again.keys.values()) == 0


def test_erase_resumes_after_an_interruption(
    runtime: Runtime, redis_client: redis.Redis, engine: sa.Engine
) -> None:
    ws = new_workspace()
    _populate(runtime, redis_client, ws, 4)

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt(line)

    with pytest.raises(KeyboardInterrupt):  # stopped after the first table
        erase_workspace(
            engine,
            redis_client,
            prefix=runtime.settings.redis_prefix,
            workspace=ws,
            progress=interrupt,
        )
    assert _rows(engine, ws)["contacts"] == 0
    assert _rows(engine, ws)["processed_events"] == 6

    rest = erase_workspace(engine, redis_client, prefix=runtime.settings.redis_prefix, workspace=ws)

    assert rest.rows["contacts"] == 0
    assert rest.rows["processed_events"] == 6
    assert rest.keys["op"] == 6
    assert sum(_rows(engine, ws).values()) == 0


def test_the_admin_command_lists_and_erases(
    runtime: Runtime, redis_client: redis.Redis, stack_env: dict[str, str]
) -> None:
    ws = new_workspace()
    _populate(runtime, redis_client, ws, 2)
    env = {**os.environ, **stack_env}

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ADMIN), "workspace", *args], env=env, capture_output=True, text=True, timeout=60
        )

    listed = admin("list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f"{ws}\t2" in listed.stdout.splitlines()
    unconfirmed = admin("erase", ws)
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    assert f"{ws}\t2" in admin("list").stdout  # nothing was erased
    erased = admin("erase", ws, "--yes")
    assert erased.returncode == 0, erased.stderr[-2000:]
    assert erased.stdout.count("rows from contacts") == 1
    assert f"workspace {ws}: removed 3 rows from contacts" in erased.stdout
    assert f"{ws}\t" not in admin("list").stdout
    refused = admin("erase", "Not A Slug", "--yes")
    assert refused.returncode == 2
    assert "workspace id" in refused.stderr
