"""The real app (SQS publisher, Redis stores) end to end up to the queue."""

from __future__ import annotations

import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from command_api.entrypoints.app import create_app
from command_api.service_layer.idempotency import derive_ids
from contacts_domain import DEFAULT_WORKSPACE, OperationStatus, normalize_contact
from contacts_infra.messaging import APPLY_EVENT_TASK
from contacts_infra.redis_keys import idempotency_key, operation_key
from support.auth import authorized

ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}


def largest_contact(char: str) -> dict:
    return {
        "first_name": char * 100,
        "last_name": char * 100,
        "company": char * 200,
        "job_title": char * 200,
        "notes": char * 5_000,
        "tags": [f"{i:02d}" + char * 48 for i in range(50)],
        "addresses": [
            {"street": char * 200, "city": char * 100, "region": char * 100,
             "postal_code": char * 20, "country": "FR"}
            for _ in range(5)
        ],
        "emails": [{"value": f"{i}{'x' * 60}@{'d' * 60}.example.com"} for i in range(10)],
        "phones": [{"value": f"+1202555{i:04d}"} for i in range(10)],
    }  # fmt: skip


def test_post_lands_on_the_queue_and_is_pending(
    real_app, drain, redis_client, command_settings
) -> None:
    response = real_app.test_client().post(
        "/v1/contacts", json=ROSA, headers={"X-Request-ID": "req-int-1"}
    )
    assert response.status_code == 202
    body = response.get_json()
    [message] = drain()
    assert message.task == APPLY_EVENT_TASK
    assert message.group_id == f"{DEFAULT_WORKSPACE}/{body['id']}"
    assert message.envelope["workspace"] == DEFAULT_WORKSPACE
    assert message.dedup_id == message.envelope["id"]
    assert message.envelope["type"] == "contacts.contact.created.v1"
    assert message.envelope["subject"] == body["id"]
    assert message.envelope["operationid"] == body["operation_id"]
    assert message.envelope["correlationid"] == "req-int-1"
    raw = redis_client.get(
        operation_key(command_settings.redis_prefix, DEFAULT_WORKSPACE, body["operation_id"])
    )
    assert OperationStatus.from_dict(json.loads(raw)).status == "pending"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/v1/contacts", {"json": {}}, 400),
        ("post", "/v1/contacts", {"json": {"first_name": "A", "x": 1}}, 400),
        ("post", "/v1/contacts", {"data": "{", "content_type": "application/json"}, 400),
        ("post", "/v1/contacts", {"data": "a", "content_type": "text/plain"}, 415),
        ("post", "/v1/contacts", {"json": {"first_name": "A", "notes": "n" * 300_000}}, 400),
        ("patch", f"/v1/contacts/{uuid.uuid4()}", {"json": {}}, 400),
        ("patch", "/v1/contacts/nope", {"json": {"company": "A"}}, 404),
        ("put", f"/v1/contacts/{uuid.uuid4()}", {"json": {"company": "A"}}, 400),
        ("delete", f"/v1/contacts/{uuid.uuid4()}", {"headers": {"If-Match": "3"}}, 400),
        ("delete", f"/v1/contacts/{uuid.uuid4()}", {"headers": {"If-Match": 'W/"3"'}}, 412),
    ],
    ids=[
        "post-empty",
        "post-unknown-field",
        "post-broken-json",
        "post-text-plain",
        "post-too-long",
        "patch-empty",
        "patch-not-a-uuid",
        "put",
        "delete-strong-if-match",
        "delete-weak-if-match",
    ],
)
def test_4xx_enqueue_nothing(real_app, drain, method, path, kwargs, status) -> None:
    response = getattr(real_app.test_client(), method)(path, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert drain() == []


def test_c10_if_match_travels_as_expectedversion_on_the_queue(real_app, drain) -> None:
    contact_id = str(uuid.uuid4())
    client = real_app.test_client()
    assert client.put(f"/v1/contacts/{contact_id}", json=ROSA).status_code == 202
    for phone in ("+12025550101", "+12025550102"):
        response = client.patch(
            f"/v1/contacts/{contact_id}", json={"phone": phone}, headers={"If-Match": '"1"'}
        )
        assert response.status_code == 202
    messages = drain()
    assert [m.envelope["expectedversion"] for m in messages] == [None, 1, 1]
    assert {m.group_id for m in messages} == {f"{DEFAULT_WORKSPACE}/{contact_id}"}
    sequences = [m.envelope["sequence"] for m in messages]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 3


def test_c07_largest_allowed_contact_is_enqueued_unchanged(real_app, drain) -> None:
    body = largest_contact("a")
    response = real_app.test_client().post("/v1/contacts", json=body)
    assert response.status_code == 202
    [message] = drain()
    assert message.envelope["data"] == normalize_contact(body, partial=False, default_region="US")


def test_twenty_concurrent_identical_posts_create_one_contact(
    real_app, drain, redis_client
) -> None:
    key = f"retry-{uuid.uuid4()}"

    def send(_: int):
        response = real_app.test_client().post(
            "/v1/contacts", json=ROSA, headers={"Idempotency-Key": key}
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(send, range(20)))
    assert {status for status, _ in results} == {202}
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1
    assert results[0][1]["id"] == derive_ids(DEFAULT_WORKSPACE, key).contact_id
    messages = drain()
    assert len(messages) == 1
    assert messages[0].dedup_id == derive_ids(DEFAULT_WORKSPACE, key).event_id


def test_same_key_other_body_is_422_and_enqueues_nothing(real_app, drain) -> None:
    client = real_app.test_client()
    key = f"k-{uuid.uuid4()}"
    assert client.post("/v1/contacts", json=ROSA, headers={"Idempotency-Key": key}).status_code
    drain()
    response = client.post(
        "/v1/contacts", json={**ROSA, "company": "X"}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422
    assert drain() == []


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_down_still_accepts_and_keeps_idempotency_ids(
    command_settings, drain, closed_port
) -> None:
    settings = command_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{closed_port}/0"}
    )
    client = authorized(create_app(settings)).test_client()
    key = f"k-{uuid.uuid4()}"
    response = client.post("/v1/contacts", json=ROSA, headers={"Idempotency-Key": key})
    assert response.status_code == 202
    assert response.get_json()["id"] == derive_ids(DEFAULT_WORKSPACE, key).contact_id
    assert len(drain()) == 1
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"sqs": "ok", "redis": "ConnectionError"}


def test_sqs_down_is_503_with_retry_after(command_settings, redis_client, closed_port) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    settings = command_settings.model_copy(
        update={
            "sqs_endpoint_url": endpoint,
            "sqs_queue_url": f"{endpoint}/000000000000/{command_settings.sqs_queue_name}",
        }
    )
    client = authorized(create_app(settings)).test_client()
    key = f"k-{uuid.uuid4()}"
    response = client.post("/v1/contacts", json=ROSA, headers={"Idempotency-Key": key})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    ids = derive_ids(DEFAULT_WORKSPACE, key)
    op_key = operation_key(settings.redis_prefix, DEFAULT_WORKSPACE, ids.operation_id)
    assert redis_client.get(op_key) is None
    # The key stays bound to its body, so a retry with the same body goes through later.
    assert redis_client.get(
        idempotency_key(settings.redis_prefix, DEFAULT_WORKSPACE, ids.key_digest)
    )
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["sqs"] != "ok"


def test_readyz_is_ok_with_both_dependencies(real_app) -> None:
    response = real_app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"sqs": "ok", "redis": "ok"}
