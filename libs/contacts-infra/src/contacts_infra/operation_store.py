"""Operation statuses in Redis, written by the command API (``pending``) and the worker (the
outcome), read by the query API: ``redis_keys.operation_key`` (per workspace) →
``OperationStatus.to_dict()`` as compact JSON, kept ``ttl_s`` seconds (24 h by contract,
``OPERATION_TTL_S``).

A Redis error or timeout raises ``StoreUnavailable``: the command API answers 503, the worker's
task fails and SQS redelivers its message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from contacts_domain.operations import OperationStatus
from contacts_domain.ports import OperationStore, StoreUnavailable
from contacts_infra.redis_keys import operation_key


@contextmanager
def bounded_call() -> Iterator[None]:
    """Turn any ``redis.RedisError`` raised inside the block into ``StoreUnavailable`` naming
    its class (never its text, which may quote a value)."""
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(f"Redis: {type(exc).__name__}") from exc


class RedisOperationStore(OperationStore):
    """``OperationStore`` over Redis; every method raises ``StoreUnavailable`` when Redis does
    not answer within the client's timeouts."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def mark_pending(self, workspace: str, status: OperationStatus) -> None:
        """SET NX: a fast worker may already have written the outcome, which must stay."""
        key = operation_key(self._prefix, workspace, status.operation_id)
        with bounded_call():
            self._client.set(key, _dump(status), nx=True, ex=self._ttl_s)

    def mark_all_pending(self, workspace: str, statuses: Sequence[OperationStatus]) -> None:
        """``mark_pending`` every status in one round trip (a pipeline without MULTI): a batch
        of 100 writes is one round trip, not 100."""
        if not statuses:
            return
        with bounded_call():
            pipe = self._client.pipeline(transaction=False)
            for status in statuses:
                key = operation_key(self._prefix, workspace, status.operation_id)
                pipe.set(key, _dump(status), nx=True, ex=self._ttl_s)
            pipe.execute()

    def record(self, workspace: str, status: OperationStatus) -> None:
        """SET: the outcome replaces ``pending`` (or an earlier outcome of a redelivery)."""
        key = operation_key(self._prefix, workspace, status.operation_id)
        with bounded_call():
            self._client.set(key, _dump(status), ex=self._ttl_s)

    def record_all(self, outcomes: Sequence[tuple[str, OperationStatus]]) -> None:
        """``record`` every outcome in one round trip (a pipeline without MULTI)."""
        if not outcomes:
            return
        with bounded_call():
            pipe = self._client.pipeline(transaction=False)
            self.add_records(pipe, outcomes)
            pipe.execute()

    def shares(self, client: redis.Redis) -> bool:
        """Whether this store writes through ``client``, so that a pipeline of ``client`` may
        carry its writes (``add_records``)."""
        return client is self._client

    def add_records(
        self, pipe: redis.client.Pipeline, outcomes: Sequence[tuple[str, OperationStatus]]
    ) -> None:
        """Queue ``record`` of every ``(workspace, status)`` of ``outcomes`` on ``pipe``, a
        pipeline of this store's client (``shares``) whose owner sends it: how the worker writes
        its cache entries and then the statuses in one round trip
        (``RedisContactCache.put_all_then_record``)."""
        for workspace, status in outcomes:
            key = operation_key(self._prefix, workspace, status.operation_id)
            pipe.set(key, _dump(status), ex=self._ttl_s)

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        """The status, or ``None`` when unknown, expired, or of another workspace."""
        with bounded_call():
            raw = self._client.get(operation_key(self._prefix, workspace, operation_id))
        return OperationStatus.from_dict(json.loads(raw)) if raw else None


def _dump(status: OperationStatus) -> str:
    return json.dumps(status.to_dict(), separators=(",", ":"))
