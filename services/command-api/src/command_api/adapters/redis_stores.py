"""Redis adapter of idempotency records (keys from ``contacts_infra.redis_keys``; short-lived
by contract, docs/architecture.md §4). Operation statuses are
``contacts_infra.operation_store``.

Every call is bounded by the client's socket timeouts (``REDIS_SOCKET_TIMEOUT_S``,
``REDIS_CONNECT_TIMEOUT_S``); a Redis error or timeout becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import json
import time
from typing import Final

import redis
from redis.cluster import RedisCluster

from command_api.service_layer.ports import IdempotencyRecord, IdempotencyStore
from contacts_domain.ports import StoreUnavailable
from contacts_infra.idempotency_index import INDEX_MEMBERS_LUA, RedisIdempotencyIndex
from contacts_infra.operation_store import bounded_call
from contacts_infra.redis_keys import idempotency_index_key, idempotency_key

#: KEYS[1] = the contact's index, KEYS[2] = the record; ARGV[1] = now, ARGV[2] = the record's
#: expiry (epoch seconds), ARGV[3] = the key's digest, ARGV[4] = the record (JSON), ARGV[5] =
#: its TTL (s). Indexes the record (``INDEX_MEMBERS_LUA``), then SET NX; returns nil when this
#: record was stored, else the first one. One round trip instead of two or three; two keys in
#: two slots, so a single Redis server only (a cluster takes the command-by-command path).
RESERVE_LUA: Final = (
    """
if not redis.call('SET', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[5]) then
  return redis.call('GET', KEYS[2])
end
local pairs_end = 3
"""
    + INDEX_MEMBERS_LUA
    + "return false\n"
)


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
        self._reserve_script = client.register_script(RESERVE_LUA)

    def reserve(
        self, workspace: str, key_digest: str, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """SET NX the record with a TTL and index it under its contact id; return ``None``
        when this record was stored, else the first record. Only a stored record is indexed:
        a refused one (the key bound to another write, maybe of another contact) must not be,
        or erasing its contact would delete the first write's record.

        On one Redis server this is one script (``RESERVE_LUA``: one round trip, atomic). On a
        cluster, where the index and the record are in different slots, the index comes first
        (so no stored record is ever missing from it, whatever fails between), then the SET NX,
        and a refused record's index entry is taken out again unless the first record names
        the same contact.

        Raises ``StoreUnavailable`` when Redis does not answer in time.
        """
        key = idempotency_key(self._prefix, workspace, key_digest)
        if isinstance(self._client, RedisCluster):
            raw = self._reserve_step_by_step(workspace, key, key_digest, record)
        else:
            raw = self._reserve_in_one_script(workspace, key, key_digest, record)
        return _record_of(raw)

    def find(self, workspace: str, key_digest: str) -> IdempotencyRecord | None:
        """GET the record (one round trip). Raises ``StoreUnavailable`` when Redis does not
        answer in time or the record is unreadable."""
        with bounded_call():
            raw: bytes | str | None = self._client.get(  # type: ignore[assignment]
                idempotency_key(self._prefix, workspace, key_digest)
            )
        return _record_of(raw)

    def _reserve_in_one_script(
        self, workspace: str, key: str, key_digest: str, record: IdempotencyRecord
    ) -> bytes | str | None:
        index = idempotency_index_key(self._prefix, workspace, record.contact_id)
        now = int(time.time())
        args = (now, now + self._ttl_s, key_digest, json.dumps(record.to_dict()), self._ttl_s)
        with bounded_call():
            return self._reserve_script(keys=[index, key], args=args)  # type: ignore[no-any-return]

    def _reserve_step_by_step(
        self, workspace: str, key: str, key_digest: str, record: IdempotencyRecord
    ) -> bytes | str | None:
        self._index.add(workspace, record.contact_id, key_digest, ttl_s=self._ttl_s)
        with bounded_call():
            if self._client.set(key, json.dumps(record.to_dict()), nx=True, ex=self._ttl_s):
                return None
            # None when it expired between SET and GET: nothing else claims the key any more.
            first: bytes | str | None = self._client.get(key)  # type: ignore[assignment]
        if first is not None and _contact_of(first) != record.contact_id:
            self._index.discard(workspace, record.contact_id, key_digest)
        return first


def _record_of(raw: bytes | str | None) -> IdempotencyRecord | None:
    if raw is None:
        return None
    try:
        return IdempotencyRecord.from_dict(json.loads(raw))
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreUnavailable("Unreadable idempotency record") from exc


def _contact_of(raw: bytes | str) -> str | None:
    """The contact id a stored record names (``None`` when it is unreadable)."""
    try:
        return str(json.loads(raw)["id"])
    except (KeyError, ValueError, TypeError):
        return None
