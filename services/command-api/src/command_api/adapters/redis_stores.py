"""Redis adapter of idempotency records (keys from ``contacts_infra.redis_keys``; short-lived
by contract, docs/architecture.md §4). Operation statuses are
``contacts_infra.operation_store``.

Every call is bounded by the client's socket timeouts (``REDIS_SOCKET_TIMEOUT_S``,
``REDIS_CONNECT_TIMEOUT_S``); a Redis error or timeout becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import json

import redis

from command_api.service_layer.ports import IdempotencyRecord, IdempotencyStore
from contacts_domain.ports import StoreUnavailable
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.operation_store import bounded_call
from contacts_infra.redis_keys import idempotency_key


class RedisIdempotencyStore(IdempotencyStore):
    """Idempotency records as JSON under ``{prefix}idem:<workspace>/<sha256 of the key>``
    (``redis_keys.idempotency_key``), expiring after ``ttl_s`` seconds, each indexed under the
    contact id it answered (``contacts_infra.idempotency_index``) so that the worker deletes it
    when that contact is erased (issue 16). A batch's or an import's record names an id no
    contact has (it covers many): its index entry expires with it, unused."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._index = RedisIdempotencyIndex(client, prefix=prefix)

    def reserve(
        self, workspace: str, key_digest: str, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """Index the record under its contact id first (so no stored record is ever missing
        from the index; indexing a key twice is harmless: its ids derive from it), then SET NX
        with a TTL, then GET of the first record if another request got there first.

        Raises ``StoreUnavailable`` when Redis does not answer in time.
        """
        key = idempotency_key(self._prefix, workspace, key_digest)
        self._index.add(workspace, record.contact_id, key_digest, ttl_s=self._ttl_s)
        with bounded_call():
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
