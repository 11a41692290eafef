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
- ``{prefix}import-queuing:{<ws>/<import id>}`` — the queuing lease of an import: set by the
  command API process that sends the import's records in the background after its ``202``,
  renewed after each chunk, expiring ``IMPORT_QUEUING_LEASE_S`` (60) seconds after the last
  renewal. A report still ``queuing`` without it was interrupted (the query API says so).
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

#: KEYS[1] = contact key, KEYS[2] = its lease key; ARGV[1] = a fresh token, ARGV[2] = the lease
#: TTL in milliseconds. A cache read that takes the refill lease on a miss, in one round trip:
#: returns ``{version, body}`` when the entry exists (``body`` "" for a tombstone), else
#: ``{false, 1}`` when the caller now holds the lease, ``{false, 0}`` when another request does.
GET_OR_LEASE_LUA: Final = """
local entry = redis.call('HMGET', KEYS[1], 'v', 'd')
if entry[1] then
  return entry
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {false, 1}
end
return {false, 0}
"""

#: KEYS[1] = contact key, KEYS[2] = its lease key; ARGV[1..3] as ``GUARDED_SET_LUA``; ARGV[4] =
#: the lease holder's token. ``GUARDED_SET_LUA`` then ``RELEASE_LEASE_LUA`` in one round trip
#: (the same rules: never an older version over a newer one, only the holder releases).
#: Returns 1 when it wrote the entry, 0 when the cache held the same or a newer version.
REFILL_AND_RELEASE_LUA: Final = """
local written = 0
local current = redis.call('HGET', KEYS[1], 'v')
if not (current and tonumber(current) >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  written = 1
end
if redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return written
"""

#: A fragment, not a script: counts one request in each rate-limit counter ``COUNTERS[i]``, a
#: fixed window of ``WINDOWS[i]`` seconds (as ``limits``' ``incr_expire.lua``: the first hit of
#: a window sets its expiry), and leaves ``counts`` (``{count, ttl}`` per counter) and ``over``
#: (a count exceeds its ``AMOUNTS[i]``). A script starts with it so that counting rides on its
#: own Redis call (``contacts_http.rate_limits.InlineRateLimits``).
COUNT_WINDOWS_LUA: Final = """
local counts, over = {}, false
for i = 1, #COUNTERS do
  local n = redis.call('INCR', COUNTERS[i])
  if n == 1 then redis.call('EXPIRE', COUNTERS[i], tonumber(WINDOWS[i])) end
  counts[2 * i - 1] = n
  counts[2 * i] = redis.call('TTL', COUNTERS[i])
  if n > tonumber(AMOUNTS[i]) then over = true end
end
"""


#: KEYS[1] = contact key, KEYS[2] = its lease key, KEYS[3..] = rate-limit counters; ARGV[1],
#: ARGV[2] as ``GET_OR_LEASE_LUA``, then the counters' windows, then their amounts.
#: ``COUNT_WINDOWS_LUA`` then ``GET_OR_LEASE_LUA`` in one round trip: returns ``{version,
#: body, counts}`` or ``{false, 1 or 0, counts}`` like it, and ``{false, 2, counts}`` without
#: touching the cache when the request is past a limit. The counters have hash tags of their
#: own: this script needs a single Redis node, not Redis Cluster.
COUNTED_GET_OR_LEASE_LUA: Final = (
    """
local n = #KEYS - 2
local COUNTERS, WINDOWS, AMOUNTS = {}, {}, {}
for i = 1, n do
  COUNTERS[i] = KEYS[2 + i]; WINDOWS[i] = ARGV[2 + i]; AMOUNTS[i] = ARGV[2 + n + i]
end
"""
    + COUNT_WINDOWS_LUA
    + """
if over then
  return {false, 2, counts}
end
local entry = redis.call('HMGET', KEYS[1], 'v', 'd')
if entry[1] then
  return {entry[1], entry[2], counts}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {false, 1, counts}
end
return {false, 0, counts}
"""
)


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


def import_queuing_key(prefix: str, workspace: str, import_id: str) -> str:
    """An import's queuing lease (the same hash tag as its report)."""
    return f"{prefix}import-queuing:{{{workspace}/{import_id}}}"


def import_dead_letters_key(prefix: str, workspace: str, import_id: str) -> str:
    """The dead-lettered event ids of an import (the same hash tag as its report)."""
    return f"{prefix}import-dead:{{{workspace}/{import_id}}}"
