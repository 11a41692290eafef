"""The worker's behaviours, run on the in-memory fakes and on real PostgreSQL + Redis alike."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contact_worker.bootstrap import Runtime, build_ports
from contact_worker.service_layer.handlers import handle_event, read_event
from contact_worker.settings import Settings
from contacts_domain import (
    DEFAULT_WORKSPACE,
    ContactEvent,
    ContactState,
    HybridLogicalClock,
    MalformedEvent,
    empty_fields,
    normalize_contact,
)
from contacts_domain.ports import ContactCache, OperationStore, UnitOfWork
from contacts_infra.redis_keys import contact_key
from support.domain_fakes import (
    InMemoryCache,
    InMemoryDatabase,
    InMemoryOperationStore,
    InMemoryUnitOfWork,
)

CLOCK = HybridLogicalClock()


@dataclass
class Backend:
    name: str
    unit_of_work: Callable[[], UnitOfWork]
    cache: ContactCache
    operations: OperationStore
    cached: Callable[..., dict[str, Any] | None]
    broken_cache: ContactCache

    def handle(self, event: ContactEvent, *, max_live_contacts: int = 0) -> Any:
        return handle_event(
            event,
            unit_of_work=self.unit_of_work,
            cache=self.cache,
            operations=self.operations,
            max_live_contacts=max_live_contacts,
        )

    def stored(self, contact_id: str, workspace: str = DEFAULT_WORKSPACE) -> ContactState:
        with self.unit_of_work() as uow:
            return uow.contacts.get_for_update(workspace, contact_id)


@pytest.fixture(scope="session")
def worker_settings(stack_env: dict[str, str]) -> Settings:
    return Settings.from_env(stack_env)


@pytest.fixture(scope="session")
def runtime(worker_settings: Settings) -> Runtime:
    return Runtime(worker_settings)


@pytest.fixture(params=["fake", "real"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        db, cache = InMemoryDatabase(), InMemoryCache()

        def cached_fake(cid: str, ws: str = DEFAULT_WORKSPACE) -> dict[str, Any] | None:
            state = cache.entries.get((ws, cid))
            return None if state is None else {"version": state.version, "alive": state.alive}

        broken = InMemoryCache()
        broken.unavailable = True
        return Backend(
            "fake",
            lambda: InMemoryUnitOfWork(db),
            cache,
            InMemoryOperationStore(),
            cached_fake,
            broken,
        )
    runtime: Runtime = request.getfixturevalue("runtime")
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix = runtime.settings.redis_prefix
    ports = runtime.ports()

    def cached_real(cid: str, ws: str = DEFAULT_WORKSPACE) -> dict[str, Any] | None:
        entry = client.hgetall(contact_key(prefix, ws, cid))
        if not entry:
            return None
        return {"version": int(entry[b"v"]), "alive": bool(entry[b"d"])}

    unreachable = runtime.settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:1/0",
            "redis_socket_timeout_s": 0.2,
            "redis_connect_timeout_s": 0.2,
        }
    )
    broken = build_ports(unreachable).cache
    return Backend("real", ports.unit_of_work, ports.cache, ports.operations, cached_real, broken)


def make_event(kind: str, cid: str, data: dict[str, Any] | None = None, **kw: Any) -> ContactEvent:
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


def new_id() -> str:
    return str(uuid.uuid4())


def handle_concurrently(
    runtime: Runtime, events: list[ContactEvent], *, max_live_contacts: int = 0
) -> list[Any]:
    """Handle ``events`` on real PostgreSQL + Redis, one thread each, released together;
    returns their outcomes in the order they finished."""
    ports = runtime.ports()
    outcomes: list[Any] = []
    barrier = threading.Barrier(len(events))

    def run(event: ContactEvent) -> None:
        barrier.wait()
        outcomes.append(
            handle_event(
                event,
                unit_of_work=ports.unit_of_work,
                cache=ports.cache,
                operations=ports.operations,
                max_live_contacts=max_live_contacts,
            )
        )

    threads = [threading.Thread(target=run, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_create_is_stored_cached_and_reported(backend: Backend) -> None:
    cid = new_id()
    event = make_event("created", cid, {"first_name": "Rosa", "email": f"{cid}@example.com"})
    outcome = backend.handle(event)
    assert (outcome.status, outcome.version) == ("applied", 1)
    assert backend.stored(cid).fields["first_name"] == "Rosa"
    assert backend.cached(cid) == {"version": 1, "alive": True}
    assert backend.operations.get(DEFAULT_WORKSPACE, event.operation_id) == outcome


def test_a_phone_extension_passes_the_event_check_and_is_stored_whole(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """The stored form (E.164, then ``;ext=`` and digits) is what the worker's own check of
    the event (region ``ZZ``) gives back; the longest one fits the ``phone`` column."""
    cid = new_id()
    longest = "+498001234567890;ext=" + "1" * 19  # limits.PHONE_MAX characters
    phones = [{"value": longest}, {"value": "+1 202 555 0100 ext 5"}, {"value": "+12025550123"}]
    event = make_event("created", cid, {"first_name": "Ph", "phones": phones})
    read = read_event(json.loads(json.dumps(event.to_cloudevent())))
    stored = [longest, "+12025550100;ext=5", "+12025550123"]
    assert [entry["value"] for entry in read.data["phones"]] == stored
    assert backend.handle(read).status == "applied"
    assert [entry["value"] for entry in backend.stored(cid).fields["phones"]] == stored
    if backend.name == "real":
        engine = sa.create_engine(request.getfixturevalue("database_url"))
        with engine.connect() as conn:
            phone = conn.execute(
                sa.text("SELECT phone FROM contacts WHERE id = :id"), {"id": cid}
            ).scalar_one()
        engine.dispose()
        assert phone == longest


def test_redelivered_event_changes_nothing(backend: Backend) -> None:
    cid = new_id()
    create = make_event("created", cid, {"first_name": "Rosa"})
    patch = make_event("patched", cid, {"company": "Acme"})
    for event in (create, patch, patch, create, patch):
        backend.handle(event)
    state = backend.stored(cid)
    assert (state.version, state.fields["company"]) == (2, "Acme")


def test_late_patch_after_delete_keeps_the_contact_deleted(backend: Backend) -> None:
    cid = new_id()
    create = make_event("created", cid, {"first_name": "Rosa"})
    patch = make_event("patched", cid, {"company": "Acme"})
    delete = make_event("deleted", cid)
    for event in (create, delete, patch):
        backend.handle(event)
    state = backend.stored(cid)
    assert state.view() is None
    assert state.fields == empty_fields()
    assert backend.cached(cid) == {"version": 2, "alive": False}


def test_a_patch_revised_to_applied_reports_the_version_that_shows_it(backend: Backend) -> None:
    # The patch arrives first (not_found, version 0), then its contact's create: the replay
    # applies both, the contact shows them at version 1 (one visible change from the stored,
    # absent contact) and the patch's status is revised to applied AT that version, never
    # "applied, version 0" (found by the fresh-clone review after a worker kill -9).
    cid = new_id()
    create = make_event("created", cid, {"first_name": "Rosa"})
    patch = make_event("patched", cid, {"company": "K"})
    first = backend.handle(patch)
    assert (first.status, first.reason, first.version) == ("rejected", "not_found", 0)
    created = backend.handle(create)
    state = backend.stored(cid)
    assert (state.version, state.fields["company"]) == (1, "K")
    assert (created.status, created.version) == ("applied", 1)
    revised = backend.operations.get(DEFAULT_WORKSPACE, first.operation_id)
    assert revised is not None
    assert (revised.status, revised.reason, revised.version) == ("applied", None, 1)
    with backend.unit_of_work() as uow:  # what is answered once the status in Redis expires
        assert uow.inbox.outcome_of(DEFAULT_WORKSPACE, patch.id) == revised


def test_business_rejections_are_recorded_not_raised(backend: Backend) -> None:
    cid = new_id()
    backend.handle(make_event("created", cid, {"first_name": "Rosa"}))
    stale = make_event("patched", cid, {"company": "X"}, expected_version=7)
    unknown = make_event("patched", new_id(), {"company": "X"})
    assert backend.handle(stale).reason == "version_mismatch"
    assert backend.handle(unknown).reason == "not_found"
    assert backend.stored(cid).version == 1


def test_if_none_match_put_creates_once_and_never_replaces(backend: Backend) -> None:
    # PUT with If-None-Match: * (expected version 0): created when absent (an erased contact
    # included), rejected version_mismatch while a contact is visible, late or not.
    cid = new_id()
    first = make_event("replaced", cid, {"first_name": "Ada"}, expected_version=0)
    second = make_event("replaced", cid, {"first_name": "Bob"}, expected_version=0)
    assert backend.handle(first).status == "applied"
    assert (backend.handle(second).status, backend.handle(second).reason) == (
        "rejected",
        "version_mismatch",
    )
    assert backend.stored(cid).fields["first_name"] == "Ada"
    late = make_event("replaced", cid, {"first_name": "Eve"}, expected_version=0)
    backend.handle(make_event("deleted", cid))
    # A late conditional write is compared with the present, as If-Match is: none is visible
    # now, so it applies in its place, before the delete, which still erases the contact.
    assert backend.handle(late).status == "applied"
    assert backend.stored(cid).view() is None
    again = make_event("replaced", cid, {"first_name": "Cy"}, expected_version=0)
    assert backend.handle(again).status == "applied"
    assert backend.stored(cid).fields["first_name"] == "Cy"


def test_duplicate_primary_email_is_rejected_email_conflict(backend: Backend) -> None:
    email = f"{new_id()}@Example.com"
    first, second = new_id(), new_id()
    assert (
        backend.handle(make_event("created", first, {"first_name": "A", "email": email})).status
        == "applied"
    )
    outcome = backend.handle(
        make_event("created", second, {"first_name": "B", "email": email.upper()})
    )
    assert (outcome.status, outcome.reason) == ("rejected", "email_conflict")
    assert backend.stored(second).view() is None
    # Once the first contact is gone, its email is free again.
    backend.handle(make_event("deleted", first))
    again = backend.handle(make_event("replaced", second, {"first_name": "B", "email": email}))
    assert again.status == "applied"


def test_cache_outage_is_raised_and_repaired_by_redelivery(backend: Backend) -> None:
    cid = new_id()
    event = make_event("created", cid, {"first_name": "Rosa"})
    with pytest.raises((ConnectionError, redis.RedisError)):
        handle_event(
            event,
            unit_of_work=backend.unit_of_work,
            cache=backend.broken_cache,
            operations=backend.operations,
        )
    assert backend.stored(cid).version == 1  # committed before the cache write
    assert backend.cached(cid) is None
    assert backend.handle(event).status == "applied"  # the redelivery repairs the cache
    assert backend.cached(cid) == {"version": 1, "alive": True}


def test_c23_same_create_twice_one_row_both_succeed(backend: Backend) -> None:
    cid = new_id()
    event = make_event("created", cid, {"first_name": "Rosa"})
    first = backend.handle(event)
    second = backend.handle(event)
    assert first == second
    assert backend.stored(cid).version == 1


def test_c23_concurrent_creates_with_one_email_apply_once(
    runtime: Runtime, redis_client: redis.Redis
) -> None:
    """Two different contacts with the same email, applied at the same time on real PostgreSQL:
    one applied, the other rejected ``email_conflict``; neither raises (so neither is retried)."""
    email = f"{new_id()}@example.com"
    events = [make_event("created", new_id(), {"first_name": n, "email": email}) for n in "AB"]
    outcomes = handle_concurrently(runtime, events)
    assert sorted((o.status, o.reason) for o in outcomes) == [
        ("applied", None),
        ("rejected", "email_conflict"),
    ]


def test_c12_row_lock_longer_than_lock_timeout_fails_then_applies_once(
    runtime: Runtime, database_url: str
) -> None:
    """A row lock held elsewhere makes the task fail within ``lock_timeout`` (well below the
    visibility timeout), and the redelivered event applies exactly once."""
    ports = runtime.ports()
    cid = new_id()
    handle = lambda e: handle_event(  # noqa: E731
        e, unit_of_work=ports.unit_of_work, cache=ports.cache, operations=ports.operations
    )
    handle(make_event("created", cid, {"first_name": "Rosa"}))
    patch = make_event("patched", cid, {"company": "Acme"})
    engine = sa.create_engine(database_url)
    with engine.connect() as locker:
        locker.execute(sa.text("SELECT 1 FROM contacts WHERE id = :id FOR UPDATE"), {"id": cid})
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            handle(patch)
        locker.rollback()
    engine.dispose()
    assert handle(patch).version == 2
    assert handle(patch).version == 2
    with ports.unit_of_work() as uow:
        assert uow.contacts.get_for_update(DEFAULT_WORKSPACE, cid).fields["company"] == "Acme"


def test_poison_events_are_refused_before_any_write() -> None:
    good = make_event("patched", new_id(), {"company": "Acme"}).to_cloudevent()
    for bad in (
        "hello",
        {**good, "type": "contacts.contact.exploded.v1"},
        {**good, "data": {"emails": "not-a-list"}},
        {**good, "data": {"phones": [{"value": "202 555 0100"}]}},  # no "+": not as stored
        {**good, "type": "contacts.contact.deleted.v1"},  # a delete carries no data
        {**good, "type": "contacts.contact.created.v1", "data": {"company": "No name"}},
    ):
        with pytest.raises(MalformedEvent):
            read_event(bad)
    assert read_event(json.loads(json.dumps(good))).data == {"company": "Acme"}


def payloads(backend: Backend, contact_id: str) -> list[dict[str, Any]]:
    """The payloads the inbox still holds for ``contact_id`` (the empty ones left out)."""
    with backend.unit_of_work() as uow:
        history = uow.inbox.history(DEFAULT_WORKSPACE, contact_id)
    return [dict(p.data) for p in history if p.data]


def test_a_delete_erases_the_payload_of_a_rejected_create(backend: Backend) -> None:
    # Issue 16: the client got an id for a create that was then rejected; its DELETE finds no
    # contact (not_found) but must still erase what the rejected event carried.
    email = f"{new_id()}@example.com"
    backend.handle(make_event("created", new_id(), {"first_name": "A", "email": email}))
    refused = new_id()
    create = make_event("created", refused, {"first_name": "Secret", "email": email})
    assert backend.handle(create).reason == "email_conflict"
    assert payloads(backend, refused) != []

    assert backend.handle(make_event("deleted", refused)).reason == "not_found"
    assert payloads(backend, refused) == []


def test_a_delete_erases_the_payload_of_a_write_rejected_after_an_erasure(
    backend: Backend,
) -> None:
    cid = new_id()
    backend.handle(make_event("created", cid, {"first_name": "Rosa"}))
    backend.handle(make_event("deleted", cid))
    late_write = make_event("patched", cid, {"notes": "Secret"})
    assert backend.handle(late_write).reason == "not_found"
    assert payloads(backend, cid) == [{"notes": "Secret"}]

    assert backend.handle(make_event("deleted", cid)).reason == "not_found"
    assert payloads(backend, cid) == []
    # A delete refused by If-Match is no erasure: the contact and its history stay.
    kept = new_id()
    backend.handle(make_event("created", kept, {"first_name": "Kept"}))
    assert backend.handle(make_event("deleted", kept, expected_version=9)).reason == (
        "version_mismatch"
    )
    assert payloads(backend, kept) != []
