"""``GET /v1/imports/{id}`` against real Redis and PostgreSQL: the report the command API
stored (``import:{id}``) plus the outcomes the worker's real handler recorded.

The import's events go through ``contact_worker``'s ``handle_event`` with its PostgreSQL unit
of work and Redis stores, exactly as the worker applies them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contact_worker.adapters.redis_store import RedisContactCache
from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.bootstrap import writer_engine
from contact_worker.service_layer.dead_letters import record_dead_letter
from contact_worker.service_layer.handlers import handle_event
from contact_worker.settings import Settings as WorkerSettings
from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from contacts_domain.imports import ImportProblem, ImportReport, record_ids
from contacts_domain.operations import OperationStatus
from contacts_http.auth import AuthSettings, hash_api_key, new_api_key, scopes
from contacts_infra.import_dead_letters import RedisImportDeadLetters
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_keys import import_dead_letters_key, import_key, import_queuing_key

CLOCK = HybridLogicalClock()
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
ERRORS = (
    ImportProblem(3, 9, "emails.0.value", "Not a valid email address."),
    ImportProblem(6, 21, "_card", "A contact needs a first or last name."),
)


class Worker:
    """The worker's use case on real PostgreSQL (writer role) and Redis, under ``prefix``."""

    def __init__(self, engine: sa.Engine, client: redis.Redis, prefix: str) -> None:
        self._engine = engine
        self._cache = RedisContactCache(client, prefix=prefix, ttl_s=60)
        self._operations = RedisOperationStore(client, prefix=prefix, ttl_s=60)

    def handle(self, event: ContactEvent) -> OperationStatus:
        return handle_event(
            event,
            unit_of_work=lambda: SqlUnitOfWork(self._engine),
            cache=self._cache,
            operations=self._operations,
        )


@pytest.fixture(scope="module")
def worker_engine(database_url: str) -> Iterator[sa.Engine]:
    engine = writer_engine(WorkerSettings(database_url=database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def worker(worker_engine: sa.Engine, redis_client: redis.Redis, prefix: str) -> Worker:
    return Worker(worker_engine, redis_client, prefix)


def record_event(
    import_id: str, position: int, kind: str, data: dict[str, Any] | None
) -> ContactEvent:
    """The event the command API queues for the record at ``position`` (ids derived from it)."""
    ids = record_ids(import_id, position)
    fields = normalize_contact(data or {}, partial=kind == "upserted", default_region="US")
    return ContactEvent(
        id=ids.event_id,
        kind=kind,  # type: ignore[arg-type]
        contact_id=ids.contact_id,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=ids.operation_id,
        data=fields,
        import_id=import_id,
    )


def other_event(data: dict[str, Any] | None, contact_id: str | None = None) -> ContactEvent:
    """A ``created`` event of no import, or the deletion of ``contact_id`` (``data=None``)."""
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created" if data is not None else "deleted",
        contact_id=contact_id or str(uuid.uuid4()),
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=normalize_contact(data, partial=False, default_region="US") if data else {},
    )


def store_report(client: redis.Redis, prefix: str, import_id: str, **overrides: Any) -> None:
    """Write the report as the command API's ``POST /v1/imports`` does."""
    values: dict[str, Any] = {
        "import_id": import_id,
        "format": "csv",
        "state": "queued",
        "received": 6,
        "accepted": 4,
        "invalid": 2,
        "failed": 0,
        "created_at": T0,
        "errors": ERRORS,
    }
    report = ImportReport(**{**values, **overrides})
    client.set(import_key(prefix, "default", import_id), json.dumps(report.to_dict()), ex=60)


def test_the_counts_follow_the_workers_outcomes_until_completed(
    client, worker, redis_client, prefix
):
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id)
    taken = f"{uuid.uuid4()}@example.com"
    worker.handle(other_event({"first_name": "Holder", "email": taken}))  # not of the import
    events = [
        record_event(
            import_id, 1, "upserted", {"first_name": "Ada", "email": f"{uuid.uuid4()}@x.org"}
        ),
        record_event(import_id, 2, "created", {"first_name": "Bea"}),
        record_event(import_id, 4, "created", {"first_name": "Cy", "email": taken}),
        record_event(
            import_id, 5, "upserted", {"first_name": "Di", "email": f"{uuid.uuid4()}@x.org"}
        ),
    ]
    url = f"/v1/imports/{import_id}"

    before = client.get(url)
    assert before.status_code == 200
    assert before.headers["Cache-Control"] == "no-store"
    assert before.get_json() == {
        "id": import_id,
        "format": "csv",
        "state": "queued",
        "status": "pending",
        "received": 6,
        "accepted": 4,
        "invalid": 2,
        "failed": 0,
        "applied": 0,
        "rejected": 0,
        "dead_lettered": 0,
        "pending": 4,
        "rejected_reasons": {},
        "created_at": "2026-05-01T12:00:00+00:00",
        "errors": [problem.to_dict() for problem in ERRORS],
        "errors_truncated": False,
        "repaired": 0,
        "warnings": [],
        "warnings_truncated": False,
    }

    outcomes = [worker.handle(event) for event in events[:3]]
    assert [o.status for o in outcomes] == ["applied", "applied", "rejected"]
    midway = client.get(url).get_json()
    assert (midway["status"], midway["applied"], midway["rejected"], midway["pending"]) == (
        "pending",
        2,
        1,
        1,
    )
    assert midway["rejected_reasons"] == {"email_conflict": 1}

    worker.handle(events[3])
    worker.handle(events[0])  # a redelivery changes nothing
    done = client.get(url).get_json()
    assert (done["status"], done["applied"], done["rejected"], done["pending"]) == (
        "completed",
        3,
        1,
        0,
    )
    assert done["rejected_reasons"] == {"email_conflict": 1}


def test_dead_lettered_events_complete_the_report_until_redriven(
    client, worker, redis_client, prefix
):
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id, received=2, accepted=2, invalid=0, errors=())
    applied = record_event(import_id, 1, "created", {"first_name": "Ada"})
    dead = record_event(import_id, 2, "created", {"first_name": "Bo"})
    worker.handle(applied)
    dead_letters = RedisImportDeadLetters(redis_client, prefix=prefix)
    url = f"/v1/imports/{import_id}"

    # What the worker does on the last receive of a failing event, from its raw envelope,
    # twice (a repeated record counts once).
    assert record_dead_letter(dead.to_cloudevent(), dead_letters)
    assert record_dead_letter(dead.to_cloudevent(), dead_letters)
    body = client.get(url).get_json()
    assert (body["status"], body["applied"], body["dead_lettered"], body["pending"]) == (
        "completed",
        1,
        1,
        0,
    )
    # The set expires with the report.
    ttl = redis_client.ttl(import_dead_letters_key(prefix, "default", import_id))
    assert 0 < ttl <= redis_client.ttl(import_key(prefix, "default", import_id))

    # dlq redrive forgets it: pending until the worker applies it.
    assert dead_letters.forget("default", import_id, dead.id)
    assert client.get(url).get_json()["pending"] == 1
    worker.handle(dead)
    body = client.get(url).get_json()
    assert (body["status"], body["applied"], body["dead_lettered"]) == ("completed", 2, 0)


def test_no_dead_letter_is_recorded_without_a_report_or_an_import(redis_client, prefix):
    dead_letters = RedisImportDeadLetters(redis_client, prefix=prefix)
    unknown = record_event(str(uuid.uuid4()), 1, "created", {"first_name": "Ada"})

    assert not record_dead_letter(unknown.to_cloudevent(), dead_letters)
    assert not record_dead_letter(other_event({"first_name": "Bo"}).to_cloudevent(), dead_letters)
    assert not record_dead_letter("not an envelope", dead_letters)
    assert dead_letters.count("default", unknown.import_id or "") == 0


def test_an_erased_contact_still_counts_for_its_import(client, worker, redis_client, prefix):
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id, received=1, accepted=1, invalid=0, errors=())
    event = record_event(import_id, 1, "created", {"first_name": "Ada", "notes": "private"})
    worker.handle(event)
    worker.handle(other_event(None, event.contact_id))  # erases the contact

    body = client.get(f"/v1/imports/{import_id}").get_json()

    assert (body["status"], body["applied"], body["pending"]) == ("completed", 1, 0)


def test_a_failed_import_counts_only_what_was_queued(client, worker, redis_client, prefix):
    import_id = str(uuid.uuid4())
    store_report(
        redis_client,
        prefix,
        import_id,
        state="failed",
        received=3,
        accepted=1,
        invalid=0,
        failed=2,
        errors=(),
        errors_truncated=True,
    )
    worker.handle(record_event(import_id, 1, "created", {"first_name": "Ada"}))

    body = client.get(f"/v1/imports/{import_id}").get_json()

    assert (body["state"], body["status"], body["failed"], body["applied"]) == (
        "failed",
        "completed",
        2,
        1,
    )
    assert body["errors_truncated"] is True


def test_the_warnings_of_imported_records_are_served(client, redis_client, prefix):
    import_id = str(uuid.uuid4())
    warnings = (
        ImportProblem(2, 2, "emails.0.value", "Not a valid email. Dropped the email address."),
        ImportProblem(
            2, 2, "birthday", "Not a valid date (expected YYYY-MM-DD). Dropped the field."
        ),
    )
    store_report(
        redis_client,
        prefix,
        import_id,
        repaired=1,
        warnings=warnings,
        warnings_truncated=True,
    )

    body = client.get(f"/v1/imports/{import_id}").get_json()

    assert body["repaired"] == 1
    assert body["warnings"] == [problem.to_dict() for problem in warnings]
    assert body["warnings_truncated"] is True


def test_a_report_stored_before_warnings_existed_is_served_without_them(
    client, redis_client, prefix
):
    import_id = str(uuid.uuid4())
    stored = {
        "import_id": import_id,
        "format": "vcard",
        "state": "queued",
        "received": 1,
        "accepted": 0,
        "invalid": 1,
        "failed": 0,
        "created_at": "2026-05-01T12:00:00+00:00",
        "errors": [ERRORS[1].to_dict()],
        "errors_truncated": False,
    }
    redis_client.set(import_key(prefix, "default", import_id), json.dumps(stored), ex=60)

    response = client.get(f"/v1/imports/{import_id}")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["repaired"], body["warnings"], body["warnings_truncated"]) == (0, [], False)
    assert body["errors"] == [ERRORS[1].to_dict()]
    assert body["status"] == "completed"


def test_a_queuing_import_is_interrupted_once_its_lease_expires(client, redis_client, prefix):
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id, state="queuing")
    lease = import_queuing_key(prefix, "default", import_id)
    redis_client.set(lease, b"1", ex=60)  # as the command API queuing it after its 202

    queuing = client.get(f"/v1/imports/{import_id}")
    redis_client.delete(lease)  # its process stopped: the lease expired
    interrupted = client.get(f"/v1/imports/{import_id}")

    assert queuing.status_code == interrupted.status_code == 200
    assert (queuing.get_json()["state"], queuing.get_json()["status"]) == ("queuing", "pending")
    assert interrupted.get_json()["state"] == "interrupted"
    assert interrupted.get_json()["status"] == "pending"


def test_unknown_or_expired_import_is_404(client, redis_client, prefix):
    response = client.get(f"/v1/imports/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "7 days" in response.get_json()["detail"]


def test_the_import_scope_is_needed(make_app, settings, redis_client, prefix):
    reader, importer = new_api_key(), new_api_key()
    auth = AuthSettings(
        api_keys=(
            (hash_api_key(reader), frozenset({scopes.READ, scopes.WRITE})),
            (hash_api_key(importer), frozenset({scopes.IMPORT})),
        )
    )
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id)
    client = make_app(settings.model_copy(update={"auth": auth})).test_client()
    url = f"/v1/imports/{import_id}"

    client.environ_base.pop("HTTP_AUTHORIZATION", None)
    assert client.get(url).status_code == 401
    forbidden = client.get(url, headers={"Authorization": f"Bearer {reader}"})
    assert forbidden.status_code == 403
    assert 'scope="contacts:import"' in forbidden.headers["WWW-Authenticate"]
    assert client.get(url, headers={"Authorization": f"Bearer {importer}"}).status_code == 200


@pytest.fixture(params=["refused", "silent"])
def redis_down_url(request, stand_in, refused_port):
    if request.param == "refused":
        return f"redis://127.0.0.1:{refused_port}/0"
    return stand_in.url


def test_redis_down_is_503_with_retry_after(make_app, settings, redis_down_url):
    client = make_app(settings.model_copy(update={"redis_url": redis_down_url})).test_client()

    # Past the breaker's threshold too: an open circuit answers the same.
    for _ in range(settings.redis_breaker_failures + 1):
        response = client.get(f"/v1/imports/{uuid.uuid4()}")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"] == str(settings.retry_after_s)


@pytest.fixture(params=["refused", "silent"])
def database_down_url(request, stand_in, refused_port, reader_database_url):
    port = refused_port if request.param == "refused" else stand_in.port
    return sa.make_url(reader_database_url).set(port=port).render_as_string(hide_password=False)


def test_postgresql_down_is_503_with_retry_after(
    make_app, settings, database_down_url, redis_client, prefix
):
    import_id = str(uuid.uuid4())
    store_report(redis_client, prefix, import_id)
    client = make_app(settings.model_copy(update={"database_url": database_down_url})).test_client()

    response = client.get(f"/v1/imports/{import_id}")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == str(settings.retry_after_s)
