"""``POST /v1/contacts/batch`` with the real app (SQS publisher, Redis stores) up to the queue:
per-contact order and message attributes on a real FIFO queue, and SQS failures per item."""

from __future__ import annotations

import json
import socket
import uuid
from collections import defaultdict

import pytest

from command_api.entrypoints.app import create_app
from command_api.service_layer.idempotency import derive_item_ids
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, OperationStatus
from contacts_infra.messaging import message_group_id
from contacts_infra.redis_keys import operation_key
from support.auth import authorized

BATCH = "/v1/contacts/batch"
ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}


def test_a_batch_lands_on_the_queue_in_per_contact_order(
    real_app, drain, redis_client, command_settings
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    operations = [
        {"op": "replace", "id": a, "data": ROSA},
        {"op": "replace", "id": b, "data": {"first_name": "Bo"}},
        {"op": "create", "data": {"first_name": "Cy"}},
        {"op": "patch", "id": a, "data": {"company": "Acme"}},
        {"op": "patch", "id": b, "data": {"email": "not an email"}},
        {"op": "upsert", "data": {"first_name": "Di", "email": f"di-{a}@example.com"}},
        {"op": "patch", "id": b, "data": {"company": "Bolt"}},
        {"op": "delete", "id": a},
        *[{"op": "delete", "id": str(uuid.uuid4())} for _ in range(8)],
        {"op": "patch", "id": a, "data": {"company": "After"}},
    ]
    response = real_app.test_client().post(
        BATCH, json={"operations": operations}, headers={"X-Request-ID": "req-batch-int"}
    )

    assert response.status_code == 202, response.get_json()
    results = response.get_json()["results"]
    assert [r["status"] for r in results].count("invalid") == 1
    assert results[4]["status"] == "invalid"
    messages = drain()
    assert len(messages) == len(operations) - 1
    by_group: dict[str, list[ContactEvent]] = defaultdict(list)
    for message in messages:
        event = ContactEvent.from_cloudevent(message.envelope)
        assert message.group_id == message_group_id(event)
        assert message.dedup_id == event.id
        assert event.correlation_id == "req-batch-int"
        assert event.workspace == DEFAULT_WORKSPACE
        by_group[message.group_id].append(event)
    a, b = f"{DEFAULT_WORKSPACE}/{a}", f"{DEFAULT_WORKSPACE}/{b}"
    assert [e.kind for e in by_group[a]] == ["replaced", "patched", "deleted", "patched"]
    assert [e.data.get("company") for e in by_group[a]] == [None, "Acme", None, "After"]
    assert [e.kind for e in by_group[b]] == ["replaced", "patched"]
    for events in by_group.values():
        sequences = [e.sequence for e in events]
        assert sequences == sorted(sequences)
    [[upserted]] = [events for events in by_group.values() if events[0].kind == "upserted"]
    assert message_group_id(upserted).startswith("email-")
    operation_ids = {e.operation_id for events in by_group.values() for e in events}
    assert operation_ids == {r["operation_id"] for r in results if r["status"] == "accepted"}
    for operation_id in operation_ids:
        raw = redis_client.get(
            operation_key(command_settings.redis_prefix, DEFAULT_WORKSPACE, operation_id)
        )
        assert OperationStatus.from_dict(json.loads(raw)).status == "pending"


def test_a_replayed_batch_is_deduplicated_by_sqs(real_app, drain) -> None:
    key = f"batch-{uuid.uuid4()}"
    body = {
        "operations": [{"op": "create", "data": ROSA}, {"op": "delete", "id": str(uuid.uuid4())}]
    }
    client = real_app.test_client()

    first = client.post(BATCH, json=body, headers={"Idempotency-Key": key})
    again = client.post(BATCH, json=body, headers={"Idempotency-Key": key})

    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    messages = drain()
    assert sorted(m.dedup_id for m in messages) == sorted(
        derive_item_ids(DEFAULT_WORKSPACE, key, i).event_id for i in range(2)
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sqs_unreachable_is_a_503_with_every_item_failed(
    command_settings, redis_client, closed_port
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    settings = command_settings.model_copy(
        update={
            "sqs_endpoint_url": endpoint,
            "sqs_queue_url": f"{endpoint}/000000000000/{command_settings.sqs_queue_name}",
        }
    )
    client = authorized(create_app(settings)).test_client()
    a = str(uuid.uuid4())
    key = f"batch-{uuid.uuid4()}"
    response = client.post(
        BATCH,
        json={
            "operations": [
                {"op": "replace", "id": a, "data": ROSA},
                {"op": "create", "data": {"company": "no name"}},
                {"op": "patch", "id": a, "data": {"company": "Acme"}},
                {"op": "create", "data": ROSA},
            ]
        },
        headers={"Idempotency-Key": key},
    )

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["failed", "invalid", "failed", "failed"]
    # A dead queue fails every event still to send (one time bound), the contact's later
    # patch included: it is never queued without the replace before it.
    assert all(
        r["errors"]["_queue"][0].startswith("Not queued")
        for r in (results[0], results[2], results[3])
    )
    for index in (0, 2, 3):
        ids = derive_item_ids(DEFAULT_WORKSPACE, key, index)
        op_key = operation_key(settings.redis_prefix, DEFAULT_WORKSPACE, ids.operation_id)
        assert redis_client.get(op_key) is None
