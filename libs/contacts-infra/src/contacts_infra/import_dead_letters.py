"""Which events of an import were dead-lettered: ``redis_keys.import_dead_letters_key`` holds
the set of their event ids, next to the import's report (docs/architecture.md, "Dead-lettered
events").

Writers: the worker, when an event of an import fails on the last receive SQS allows
(``SQS_MAX_RECEIVE_COUNT``), so SQS moves it to the dead-letter queue; ``contact-worker-admin
dlq redrive`` removes an id when it sends the event back. Reader: the query API's
``GET /v1/imports/{id}`` counts them as ``dead_lettered``. A set of ids keeps the count exact
when the same event is recorded twice. The set expires with the report (``redis_keys.
import_key``, whose remaining TTL it copies), so it never outlives what it is counted against.

Every method raises ``redis.RedisError`` when Redis does not answer within the client's
timeouts; the callers decide what that means.
"""

from __future__ import annotations

from typing import Final

import redis

from contacts_infra.redis_keys import import_dead_letters_key, import_key

#: KEYS[1] = the import's report key, KEYS[2] = its dead-letter set; ARGV[1] = the event id.
#: Adds the id only while the report exists, with the report's remaining TTL (none if it has
#: none). Returns 1 when the report exists, 0 otherwise.
RECORD_LUA: Final = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
"""


class RedisImportDeadLetters:
    """The dead-lettered event ids of each import, in Redis under ``prefix``."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def record(self, workspace: str, import_id: str, event_id: str) -> bool:
        """Add ``event_id`` to the dead letters of ``import_id`` in ``workspace``; returns
        ``False`` (and records nothing) when the import has no report (never made, expired,
        or of another workspace). The two keys share a hash tag (one cluster slot)."""
        keys = (import_key(self._prefix, workspace, import_id), self._key(workspace, import_id))
        return bool(self._client.eval(RECORD_LUA, 2, *keys, event_id))

    def forget(self, workspace: str, import_id: str, event_id: str) -> bool:
        """Remove ``event_id`` (it was sent back to the queue); returns whether it was there."""
        return bool(self._client.srem(self._key(workspace, import_id), event_id))

    def count(self, workspace: str, import_id: str) -> int:
        """How many of the import's events are dead-lettered now (0 when none or unknown)."""
        return int(self._client.scard(self._key(workspace, import_id)))  # type: ignore[arg-type]

    def _key(self, workspace: str, import_id: str) -> str:
        return import_dead_letters_key(self._prefix, workspace, import_id)
