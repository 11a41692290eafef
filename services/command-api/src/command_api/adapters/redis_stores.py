"""Redis adapters: operation statuses and idempotency records (keys from
``contacts_infra.redis_keys``; both short-lived by contract, DESIGN.md §4).

Every call is bounded by the client's socket timeouts (``REDIS_SOCKET_TIMEOUT_S``,
``REDIS_CONNECT_TIMEOUT_S``); a Redis error or timeout becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from command_api.service_layer.errors import StoreUnavailable
from command_api.service_layer.ports import IdempotencyRecord, IdempotencyStore
from contacts_domain import OperationStatus
from contacts_domain.ports import OperationStore
from contacts_infra.redis_keys import idempotency_key, operation_key


def make_redis_client(
    url: str, *, socket_timeout_s: float, connect_timeout_s: float
) -> redis.Redis:
    """Return a client for ``url`` with bounded calls; it connects lazily, on first command."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        decode_responses=True,
    )


@contextmanager
def _bounded() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(f"Redis: {type(exc).__name__}") from exc


class RedisOperationStore(OperationStore):
    """Operation statuses as JSON (``OperationStatus.to_dict``) under ``{prefix}op:{id}``,
    expiring after ``ttl_s`` seconds. Raises ``StoreUnavailable`` when Redis does not answer."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def mark_pending(self, status: OperationStatus) -> None:
        """SET NX: a fast worker may already have written the outcome, which must stay."""
        key = operation_key(self._prefix, status.operation_id)
        with _bounded():
            self._client.set(key, json.dumps(status.to_dict()), nx=True, ex=self._ttl_s)

    def record(self, status: OperationStatus) -> None:
        key = operation_key(self._prefix, status.operation_id)
        with _bounded():
            self._client.set(key, json.dumps(status.to_dict()), ex=self._ttl_s)

    def get(self, operation_id: str) -> OperationStatus | None:
        with _bounded():
            raw = self._client.get(operation_key(self._prefix, operation_id))
        return OperationStatus.from_dict(json.loads(raw)) if raw else None


class RedisIdempotencyStore(IdempotencyStore):
    """Idempotency records as JSON under ``{prefix}idem:{sha256 of the key}``, expiring after
    ``ttl_s`` seconds."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def reserve(self, key_digest: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """SET NX with a TTL, then GET of the first record if another request got there first.

        Raises ``StoreUnavailable`` when Redis does not answer in time.
        """
        key = idempotency_key(self._prefix, key_digest)
        with _bounded():
            if self._client.set(key, json.dumps(record.to_dict()), nx=True, ex=self._ttl_s):
                return None
            raw = self._client.get(key)
        if raw is None:
            # Expired between SET and GET: nothing else claims the key any more.
            return None
        try:
            return IdempotencyRecord.from_dict(json.loads(raw))
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreUnavailable("Unreadable idempotency record") from exc
