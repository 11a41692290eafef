"""The shared Redis client, key layout and operation-status store, on a real Redis."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from contacts_domain import OperationStatus
from contacts_domain.ports import StoreUnavailable
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import idempotency_index_key, idempotency_key, operation_key
from contacts_infra.settings import RedisSettings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client(redis_prefix: str, redis_client: redis.Redis) -> Iterator[redis.Redis]:
    shared = create_redis(RedisSettings(redis_url=REDIS_URL), client_name="infra-test")
    yield shared
    shared.close()


def _status(state: str, operation_id: str) -> OperationStatus:
    return OperationStatus(operation_id=operation_id, contact_id=str(uuid.uuid4()), status=state)


def test_the_client_names_itself_and_answers_bytes(client: redis.Redis) -> None:
    assert client.client_getname() == "infra-test"
    client.set("infra-test:k", "v", ex=5)
    assert client.get("infra-test:k") == b"v"


def test_a_silent_redis_costs_one_socket_timeout_and_no_retry() -> None:
    with socket.socket() as silent:  # the kernel accepts connections; nothing ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings = RedisSettings(redis_url=url, redis_socket_timeout_s=0.3)
        client = create_redis(settings, client_name="silent")
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("x")
        elapsed = time.monotonic() - started
    # One timeout for the handshake's reply (CLIENT SETNAME), none more: no retries.
    assert elapsed < 0.3 * 2 + 0.2


def test_operation_statuses_round_trip_and_pending_never_overwrites(
    client: redis.Redis, redis_prefix: str
) -> None:
    store = RedisOperationStore(client, prefix=redis_prefix, ttl_s=60)
    operation_id = str(uuid.uuid4())
    applied = _status("applied", operation_id)
    store.record("acme", applied)
    store.mark_pending("acme", _status("pending", operation_id))
    assert store.get("acme", operation_id) == applied
    assert 0 < client.ttl(operation_key(redis_prefix, "acme", operation_id)) <= 60
    assert store.get("acme", str(uuid.uuid4())) is None
    # Another workspace's operation is unknown, never revealed.
    assert store.get("other", operation_id) is None


def test_an_unreachable_redis_is_store_unavailable(redis_prefix: str) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = RedisSettings(redis_url=f"redis://127.0.0.1:{port}/0")
    store = RedisOperationStore(
        create_redis(settings, client_name="closed"), prefix=redis_prefix, ttl_s=60
    )
    with pytest.raises(StoreUnavailable, match="ConnectionError"):
        store.get("acme", str(uuid.uuid4()))
    with pytest.raises(StoreUnavailable):
        store.record("acme", _status("applied", str(uuid.uuid4())))


def test_an_idempotency_index_holds_only_live_records_and_forgets_them(
    client: redis.Redis, redis_prefix: str
) -> None:
    # Issue 16: bounded (expired members trimmed, the key expires with its last record) and
    # an erasure deletes the records it names, in whichever slot they live.
    index = RedisIdempotencyIndex(client, prefix=redis_prefix)
    contact, other = str(uuid.uuid4()), str(uuid.uuid4())
    key = idempotency_index_key(redis_prefix, "acme", contact)
    client.zadd(key, {"expired": int(time.time()) - 10})
    for digest in ("d1", "d2"):
        client.set(idempotency_key(redis_prefix, "acme", digest), "{}", ex=60)
    index.add("acme", contact, "d1", ttl_s=60)
    client.set(idempotency_key(redis_prefix, "acme", "d3"), "{}", ex=600)
    index.add("acme", other, "d3", ttl_s=600)
    index.merge("acme", other, contact)  # an upsert sent for ``other`` matched ``contact``
    assert sorted(client.zrange(key, 0, -1)) == [b"d1", b"d3"]
    assert 540 < client.ttl(key) <= 600

    assert index.forget("acme", contact) == 2
    assert client.exists(key) == 0
    assert [
        client.exists(idempotency_key(redis_prefix, "acme", d)) for d in ("d1", "d2", "d3")
    ] == [
        0,
        1,
        0,
    ]
