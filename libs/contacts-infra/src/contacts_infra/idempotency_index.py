"""Which idempotency records name which contact (``redis_keys.idempotency_index_key``), so a
contact's erasure takes its idempotency records along (issue 16, item 4).

An idempotency record (``redis_keys.idempotency_key``, 24 h) holds the ids a request answered
and a digest of its body; its key holds a digest of the client's key, from which nothing leads
back to the contact. So the command API, when it stores a record, also adds the key's digest to
the index of the contact the record names (``add``); the worker, when an upsert sent for a new
contact matched an existing one, merges the new id's index into the existing contact's
(``merge``); and when it erases a contact, it deletes every record of the index, then the index
(``forget``).

Bounded: each member is scored by the expiry of its record (epoch seconds); every write trims
the members already expired and sets the key to expire with its last record, so an index holds
only the records that still exist. Cluster-safe: an index is one key (one slot, the contact's
hash tag), each record is deleted by its own command (records live in other slots).
"""

from __future__ import annotations

import time
from typing import Final

import redis

from contacts_domain.ports import IdempotencyIndex
from contacts_infra.operation_store import bounded_call
from contacts_infra.redis_keys import idempotency_index_key, idempotency_key

#: The index rule on KEYS[1] for the (expiry, digest) pairs in ARGV[2 .. pairs_end]
#: (ARGV[1] = now, epoch seconds): trims the expired members, adds the new ones (a member keeps
#: its latest expiry) and makes the key expire with its last member. A fragment: a script
#: defines ``pairs_end`` before it.
INDEX_MEMBERS_LUA: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 2, pairs_end, 2 do
  local current = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])
  if not current or tonumber(current) < tonumber(ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('EXPIREAT', KEYS[1], last[2])
end
"""
#: KEYS[1] = an index; ARGV[1] = now (epoch seconds), then (expiry, digest) pairs
#: (``INDEX_MEMBERS_LUA``). One key: atomic, and one slot in cluster mode.
INDEX_LUA: Final = "local pairs_end = #ARGV\n" + INDEX_MEMBERS_LUA + "return 1\n"


class RedisIdempotencyIndex(IdempotencyIndex):
    """``IdempotencyIndex`` over Redis under ``prefix``; every method raises
    ``StoreUnavailable`` when Redis does not answer within the client's timeouts."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def add(self, workspace: str, contact_id: str, key_digest: str, *, ttl_s: int) -> None:
        """Index the record ``key_digest`` (expiring in ``ttl_s`` seconds) under ``contact_id``."""
        now = int(time.time())
        self._write(workspace, contact_id, {key_digest: now + ttl_s}, now)

    def discard(self, workspace: str, contact_id: str, key_digest: str) -> None:
        """Take ``key_digest`` out of ``contact_id``'s index (a record that was not stored)."""
        index = idempotency_index_key(self._prefix, workspace, contact_id)
        with bounded_call():
            self._client.zrem(index, key_digest)

    def merge(self, workspace: str, source_id: str, contact_id: str) -> None:
        """Add the live members of ``source_id``'s index to ``contact_id``'s (two keys in two
        slots: a read, then a write)."""
        now = int(time.time())
        source = idempotency_index_key(self._prefix, workspace, source_id)
        with bounded_call():
            members: list[tuple[bytes, float]] = self._client.zrangebyscore(  # type: ignore[assignment]
                source, now + 1, "+inf", withscores=True
            )
        if members:
            self._write(workspace, contact_id, {_text(m): int(s) for m, s in members}, now)

    def forget(self, workspace: str, contact_id: str) -> int:
        """Delete every record indexed under ``contact_id``, then the index; returns how many
        records were deleted (expired ones are already gone)."""
        index = idempotency_index_key(self._prefix, workspace, contact_id)
        with bounded_call():
            digests: list[bytes] = self._client.zrange(index, 0, -1)  # type: ignore[assignment]
            pipeline = self._client.pipeline(transaction=False)
            for digest in digests:
                pipeline.unlink(idempotency_key(self._prefix, workspace, _text(digest)))
            pipeline.unlink(index)
            removed = pipeline.execute()
        return sum(int(n) for n in removed[:-1])

    def _write(self, workspace: str, contact_id: str, members: dict[str, int], now: int) -> None:
        index = idempotency_index_key(self._prefix, workspace, contact_id)
        flat = [item for member, score in members.items() for item in (score, member)]
        with bounded_call():
            self._client.eval(INDEX_LUA, 1, index, now, *flat)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
