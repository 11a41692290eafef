"""Issue 16, item 4: the command API's idempotency records of an erased contact go with it,
on real PostgreSQL and Redis: the records indexed under the contact (a create sent with an
Idempotency-Key) and those of upserts that matched it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
import redis

from contact_worker.bootstrap import Runtime, apply_step
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.redis_keys import idempotency_index_key, idempotency_key

CLOCK = HybridLogicalClock()
WS = "default"


@pytest.fixture(scope="module")
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings.from_env(stack_env)


def event(kind: str, cid: str, data: dict[str, Any] | None = None) -> ContactEvent:
    if kind == "created":
        data = normalize_contact(data or {}, partial=False, default_region="US")
    elif kind == "upserted":
        data = normalize_contact(data or {}, partial=True, default_region="US")
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=cid,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data or {},
    )


def remember(client: redis.Redis, prefix: str, contact_id: str) -> str:
    """What the command API stores for a request with an Idempotency-Key naming
    ``contact_id``: the record and its index entry; returns the record's key."""
    digest = uuid.uuid4().hex * 2
    RedisIdempotencyIndex(client, prefix=prefix).add(WS, contact_id, digest, ttl_s=600)
    key = idempotency_key(prefix, WS, digest)
    record = {"fingerprint": "f", "id": contact_id, "operation_id": "o"}
    client.set(key, json.dumps(record), ex=600)
    return key


def test_a_delete_takes_the_contacts_idempotency_records_along(
    settings: Settings, redis_client: redis.Redis
) -> None:
    apply = apply_step(settings, Runtime(settings))
    prefix = settings.redis_prefix
    email = f"{uuid.uuid4()}@example.com"
    created, other = str(uuid.uuid4()), str(uuid.uuid4())
    create_key = remember(redis_client, prefix, created)
    apply(event("created", created, {"first_name": "Rosa", "email": email}))
    # An upsert sent (with its own key) for a new id matched the contact by its email.
    sent_for = str(uuid.uuid4())
    upsert_key = remember(redis_client, prefix, sent_for)
    upsert = event("upserted", sent_for, {"first_name": "Rosa", "email": email})
    assert apply(upsert).contact_id == created
    unrelated_key = remember(redis_client, prefix, other)
    assert redis_client.exists(create_key, upsert_key) == 2

    assert apply(event("deleted", created)).status == "applied"

    assert redis_client.exists(create_key, upsert_key) == 0
    assert redis_client.exists(idempotency_index_key(prefix, WS, created)) == 0
    assert redis_client.exists(unrelated_key) == 1  # another contact's record stays


def test_a_delete_of_a_rejected_create_takes_its_record_along(
    settings: Settings, redis_client: redis.Redis
) -> None:
    apply = apply_step(settings, Runtime(settings))
    refused = str(uuid.uuid4())
    key = remember(redis_client, settings.redis_prefix, refused)
    assert apply(event("patched", refused, {"notes": "x"})).reason == "not_found"
    assert apply(event("deleted", refused)).reason == "not_found"
    assert redis_client.exists(key) == 0
