"""The Redis key layout of every service, and the read cache's Lua scripts.

Keys (``prefix`` configurable, e.g. ``contacts:``, never with ``{`` or ``}``); every one names
its workspace (docs/architecture.md §10), and the two keys of one contact share the Redis
Cluster hash tag ``{<workspace>/<contact id>}``, so a script may touch both in cluster mode:

- ``{prefix}contact:{<ws>/<id>}`` — a hash ``{v: <version>, d: <resource JSON>}``; ``d`` is empty
  for a tombstone (a deleted contact). TTL ``CONTACT_CACHE_TTL_S``: everything in it can be
  rebuilt from PostgreSQL.
- ``{prefix}refill:{<ws>/<id>}`` — the refill lease of a contact: a random token, set with
  ``SET NX PX`` by the one query API request that reads PostgreSQL after a miss; the others that
  missed the same contact meanwhile, in any process, wait (bounded) for the cache entry instead
  of reading PostgreSQL too. Deleted with ``RELEASE_LEASE_LUA`` once the refill is done; its TTL
  (milliseconds, the query API's longest database read) frees the key if the holder dies.
- ``{prefix}op:<ws>/<operation id>`` — operation status JSON (``OperationStatus.to_dict``), TTL
  24 h.
- ``{prefix}idem:<ws>/<sha256 of the Idempotency-Key>`` — idempotency record JSON, TTL 24 h.
- ``{prefix}idem-index:{<ws>/<contact id>}`` — the idempotency records that name a contact: a
  sorted set of key digests scored by their expiry (epoch seconds), written by the command API
  next to each record it stores, merged into the contact an upsert matched by the worker, and
  read by the worker when the contact is erased, which deletes those records with it (issue
  16; ``contacts_infra.idempotency_index``). Same hash tag as the contact's keys; expired
  members are trimmed on every write, and the key expires with its last record.
- ``{prefix}import:{<ws>/<import id>}`` — the report of an import as the command API received it
  (``imports.ImportReport.to_dict`` JSON), TTL ``IMPORT_REPORT_TTL_S`` (7 days by default): like
  operation statuses, short-lived by contract; the records' outcomes (applied, rejected) are in
  PostgreSQL (``processed_events.import_id``).
- ``{prefix}import-dead:{<ws>/<import id>}`` — a set of the ids of the import's events the
  worker gave up on (dead-lettered, ``contacts_infra.import_dead_letters``), expiring with the
  report; ``dlq redrive`` removes an id when it moves the event back to the queue.

Every write of a contact goes through ``GUARDED_SET_LUA`` (run with EVALSHA/EVAL), so an older
version never replaces a newer one or a newer tombstone, whichever process writes
(docs/architecture.md §5.5): the worker after its commit, the query API when it refills a miss
from PostgreSQL and when, after a Redis outage, it repairs the entries of the contacts changed
meanwhile.
"""

from __future__ import annotations

from typing import Final

#: KEYS[1] = contact key; ARGV[1] = version (integer); ARGV[2] = resource JSON, "" = tombstone;
#: ARGV[3] = TTL in seconds. Returns 1 when it wrote, 0 when the cache already held the same or
#: a newer version.
GUARDED_SET_LUA: Final = """
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

#: KEYS[1] = lease key; ARGV[1] = the holder's token. Deletes the lease only if the caller still
#: holds it (an expired lease may have been taken by another request). Returns 1 when deleted.
RELEASE_LEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def contact_key(prefix: str, workspace: str, contact_id: str) -> str:
    """The cached contact (hash tag: its workspace and id)."""
    return f"{prefix}contact:{{{workspace}/{contact_id}}}"


def refill_lease_key(prefix: str, workspace: str, contact_id: str) -> str:
    """The refill lease of a contact (the same hash tag as ``contact_key``)."""
    return f"{prefix}refill:{{{workspace}/{contact_id}}}"


def operation_key(prefix: str, workspace: str, operation_id: str) -> str:
    """An operation's status."""
    return f"{prefix}op:{workspace}/{operation_id}"


def idempotency_key(prefix: str, workspace: str, key_digest: str) -> str:
    """An idempotency record (``key_digest``: SHA-256 hex of the client's key)."""
    return f"{prefix}idem:{workspace}/{key_digest}"


def idempotency_index_key(prefix: str, workspace: str, contact_id: str) -> str:
    """The idempotency records naming a contact (the same hash tag as ``contact_key``)."""
    return f"{prefix}idem-index:{{{workspace}/{contact_id}}}"


def import_key(prefix: str, workspace: str, import_id: str) -> str:
    """An import's report (hash tag: its workspace and id, shared with its dead letters)."""
    return f"{prefix}import:{{{workspace}/{import_id}}}"


def import_dead_letters_key(prefix: str, workspace: str, import_id: str) -> str:
    """The dead-lettered event ids of an import (the same hash tag as its report)."""
    return f"{prefix}import-dead:{{{workspace}/{import_id}}}"
