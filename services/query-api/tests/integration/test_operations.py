"""``GET /v1/operations/{id}`` against real Redis and PostgreSQL (docs/architecture.md §5.6)."""

from __future__ import annotations

import json
import uuid

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
