"""``GET /v1/operations/{id}`` against real Redis and PostgreSQL (docs/architecture.md §5.6)."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from contacts_domain.operations import OperationStatus
from contacts_infra.redis_keys import operation_key


def _pending(redis_client, prefix, operation_id, contact_id):
    status = OperationStatus(operation_id, contact_id, "pending")
    redis_client.set(
        operation_key(prefix, "default", operation_id), json.dumps(status.to_dict()), ex=60
    )


def test_pending_from_redis(client, redis_client, prefix):
    operation_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    _pending(redis_client, prefix, operation_id, contact_id)

    response = client.get(f"/v1/operations/{operation_id}")

    assert response.status_code == 200
    assert response.get_json() == {
        "operation_id": operation_id,
        "contact_id": contact_id,
        "status": "pending",
        "reason": None,
        "version": None,
        "result": None,
    }


def test_recorded_outcome_wins_over_a_stale_pending(client, redis_client, prefix, seed):
    """The worker committed, then failed to update Redis: the client must not poll forever."""
    operation_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    _pending(redis_client, prefix, operation_id, contact_id)
    seed.outcome(operation_id, contact_id, "rejected", reason="email_conflict")

    body = client.get(f"/v1/operations/{operation_id}").get_json()

    assert (body["status"], body["reason"]) == ("rejected", "email_conflict")


def test_outcome_from_postgresql_after_redis_expired_it(client, seed):
    operation_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    seed.outcome(operation_id, contact_id, "applied", version=3)

    body = client.get(f"/v1/operations/{operation_id}").get_json()

    assert body == {
        "operation_id": operation_id,
        "contact_id": contact_id,
        "status": "applied",
        "reason": None,
        "version": 3,
        "result": None,
    }


def test_unreadable_redis_value_falls_back_to_postgresql(client, redis_client, prefix, seed):
    operation_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    redis_client.set(operation_key(prefix, "default", operation_id), b"{not json", ex=60)
    seed.outcome(operation_id, contact_id, "applied", version=1)

    assert client.get(f"/v1/operations/{operation_id}").get_json()["status"] == "applied"


def test_unknown_operation_is_404(client):
    response = client.get(f"/v1/operations/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_applied_read_from_the_inbox_is_never_followed_by_the_version_before_it(
    make_app, settings, seed, writer_engine, worker_cache_write, redis_client, prefix
):
    """The worker commits, then writes the contact's entry, then the status: in between, Redis
    says pending and still holds the old entry (here also hot in the process's local cache).
    An ``applied`` answered from the inbox must be followed by the new version (read your
    writes, docs/architecture.md §6): the status read first brings the entry up to date."""
    app = make_app(settings.model_copy(update={"local_cache_size": 100}))
    assert app.extensions["query_api"].ports.cache.listener.wait_ready(10)
    client = app.test_client()
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b'{"version": 1}')
    for _ in range(2):  # a fill, then a local hit
        assert client.get(f"/v1/contacts/{contact_id}").headers["ETag"] == '"1"'
    with writer_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE contacts SET version = 2, first_name = 'v2' WHERE id = :id"),
            {"id": contact_id},
        )
    operation_id = str(uuid.uuid4())
    _pending(redis_client, prefix, operation_id, contact_id)
    seed.outcome(operation_id, contact_id, "applied", version=2)

    assert client.get(f"/v1/operations/{operation_id}").get_json()["status"] == "applied"
    after = client.get(f"/v1/contacts/{contact_id}")

    assert (after.status_code, after.headers["ETag"]) == (200, '"2"')
    assert after.get_json()["first_name"] == "v2"
