"""Redis adapters of the worker: the version-guarded contact cache and operation statuses."""

from __future__ import annotations

import json

import redis

from contacts_domain import ContactState, OperationStatus
from contacts_domain.ports import ContactCache, OperationStore
from contacts_domain.resource import contact_resource, encode_resource
from contacts_infra.redis_keys import GUARDED_SET_LUA, contact_key, operation_key


def create_redis(url: str, *, socket_timeout_s: float, connect_timeout_s: float) -> redis.Redis:
    """A client whose every call is bounded: connect and socket timeouts in seconds, so a
    Redis that drops packets or is paused fails the call instead of hanging it (case C18).
    The pool connects lazily and redis-py resets it in a forked child."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        health_check_interval=30,
    )


class RedisContactCache(ContactCache):
    """Writes ``{prefix}contact:{id}`` through ``redis_keys.GUARDED_SET_LUA``."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._guarded_set = client.register_script(GUARDED_SET_LUA)

    def put(self, state: ContactState) -> bool:
        """Raises ``redis.RedisError`` when Redis is unreachable (the caller retries)."""
        body = b""
        if state.alive:
            resource = contact_resource(
                state.contact_id,
                state.fields,
                version=state.version,
                created_at=state.created_at,
                updated_at=state.updated_at,
            )
            body = encode_resource(resource)
        written = self._guarded_set(
            keys=[contact_key(self._prefix, state.contact_id)],
            args=[state.version, body, self._ttl_s],
        )
        return bool(written)


class RedisOperationStore(OperationStore):
    """``{prefix}op:{id}`` → status JSON, kept ``ttl_s`` seconds (24 h by contract)."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def mark_pending(self, status: OperationStatus) -> None:
        self._client.set(self._key(status.operation_id), _dump(status), nx=True, ex=self._ttl_s)

    def record(self, status: OperationStatus) -> None:
        self._client.set(self._key(status.operation_id), _dump(status), ex=self._ttl_s)

    def get(self, operation_id: str) -> OperationStatus | None:
        raw = self._client.get(self._key(operation_id))
        return OperationStatus.from_dict(json.loads(raw)) if raw else None

    def _key(self, operation_id: str) -> str:
        return operation_key(self._prefix, operation_id)


def _dump(status: OperationStatus) -> str:
    return json.dumps(status.to_dict(), separators=(",", ":"))
