"""Workspaces end to end up to the queue (docs/architecture.md §10): the real app with its
SQS publisher and Redis stores, the real SQS message body and attributes as the worker reads
them, and the Redis keys the query API reads."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from command_api.entrypoints.app import create_app
from command_api.service_layer.idempotency import derive_ids
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, OperationStatus
from contacts_http.auth import (
    WORKSPACE_HEADER,
    ApiKeyEntry,
    AuthSettings,
    hash_api_key,
    new_api_key,
)
from contacts_http.auth import scopes as scope_names
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.redis_keys import idempotency_key, operation_key

OURS, ACME, OPERATOR = new_api_key(), new_api_key(), new_api_key()
ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}


@pytest.fixture
def client(command_settings) -> FlaskClient:
    auth = AuthSettings(
        api_keys=(
            ApiKeyEntry(hash_api_key(OURS), scope_names.ALL),
            ApiKeyEntry(hash_api_key(ACME), scope_names.ALL, "acme"),
            ApiKeyEntry(hash_api_key(OPERATOR), scope_names.ALL | {scope_names.ADMIN}),
        )
    )
    return create_app(command_settings.model_copy(update={"auth": auth})).test_client()


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def pending(redis_client: Any, prefix: str, workspace: str, operation_id: str) -> Any:
    raw = redis_client.get(operation_key(prefix, workspace, operation_id))
    return OperationStatus.from_dict(json.loads(raw)) if raw else None


def test_a_key_of_acme_queues_events_of_acme(client, drain, redis_client, command_settings) -> None:
    prefix = command_settings.redis_prefix
    response = client.post("/v1/contacts", json=ROSA, headers=bearer(ACME))
    assert response.status_code == 202
    body = response.get_json()

    [message] = drain()
    assert message.envelope["workspace"] == "acme"
    assert message.group_id == f"acme/{body['id']}"
    event = ContactEvent.from_cloudevent(message.envelope)
    assert (event.workspace, event.contact_id) == ("acme", body["id"])
    assert message.dedup_id == event.id
    assert pending(redis_client, prefix, "acme", body["operation_id"]).status == "pending"
    assert pending(redis_client, prefix, DEFAULT_WORKSPACE, body["operation_id"]) is None


def test_the_same_idempotency_key_in_two_workspaces_queues_two_events(
    client, drain, redis_client, command_settings
) -> None:
    prefix = command_settings.redis_prefix
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    ours = client.post("/v1/contacts", json=ROSA, headers=bearer(OURS, **key))
    acme = client.post("/v1/contacts", json=ROSA, headers=bearer(ACME, **key))
    assert ours.status_code == acme.status_code == 202
    assert ours.get_json()["id"] != acme.get_json()["id"]

    messages = drain()
    assert sorted((m.envelope["workspace"], m.envelope["subject"]) for m in messages) == sorted(
        [(DEFAULT_WORKSPACE, ours.get_json()["id"]), ("acme", acme.get_json()["id"])]
    )
    # Two deduplication ids: SQS did not drop the second workspace's event as a duplicate.
    assert len({m.dedup_id for m in messages}) == 2
    for workspace, answer in ((DEFAULT_WORKSPACE, ours), ("acme", acme)):
        digest = derive_ids(workspace, key["Idempotency-Key"]).key_digest
        record = json.loads(redis_client.get(idempotency_key(prefix, workspace, digest)))
        assert (record["id"], record["operation_id"]) == (
            answer.get_json()["id"],
            answer.get_json()["operation_id"],
        )


def test_an_operator_queues_into_the_workspace_it_names(client, drain) -> None:
    response = client.post(
        "/v1/contacts", json=ROSA, headers=bearer(OPERATOR, **{WORKSPACE_HEADER: "acme"})
    )
    assert response.status_code == 202
    [message] = drain()
    assert message.envelope["workspace"] == "acme"
    assert message.group_id == f"acme/{response.get_json()['id']}"


def test_the_workspace_rate_limit_counts_every_key_of_the_workspace(
    command_settings, drain
) -> None:
    acme_2 = new_api_key()
    auth = AuthSettings(
        api_keys=(
            ApiKeyEntry(hash_api_key(OURS), scope_names.ALL),
            ApiKeyEntry(hash_api_key(ACME), scope_names.ALL, "acme"),
            ApiKeyEntry(hash_api_key(acme_2), scope_names.ALL, "acme"),
        )
    )
    # A prefix of this test's own: the counters start at zero in the run's real Redis.
    settings = command_settings.model_copy(
        update={
            "auth": auth,
            "redis_prefix": f"{command_settings.redis_prefix}{uuid.uuid4().hex[:8]}:",
            "rate_limits": RateLimitSettings(default="10/minute", workspace="2/minute"),
        }
    )
    client = create_app(settings).test_client()
    assert client.post("/v1/contacts", json=ROSA, headers=bearer(ACME)).status_code == 202
    assert client.delete(f"/v1/contacts/{uuid.uuid4()}", headers=bearer(acme_2)).status_code == 202

    refused = client.post("/v1/contacts", json=ROSA, headers=bearer(ACME))
    assert refused.status_code == 429
    assert "workspace" in refused.get_json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.post("/v1/contacts", json=ROSA, headers=bearer(OURS)).status_code == 202
    assert sorted(m.envelope["workspace"] for m in drain()) == ["acme", "acme", DEFAULT_WORKSPACE]
