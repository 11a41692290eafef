"""The query API's use cases: plain functions that take a query and the ports they need.

They never see HTTP. Each returns a small value the entrypoint turns into a response; the only
exceptions that leave them are ``ReadModelUnavailable`` (→ 503) and, for operation status,
``OperationStatusUnknown`` (→ 503).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from contacts_domain.operations import OperationStatus
from query_api.service_layer import cursor, representation
from query_api.service_layer.listing import ListRequest, Position, Sort
from query_api.service_layer.ports import (
    CacheUnavailable,
    ContactReadModel,
    OperationLog,
    OperationStatusCache,
    OwedEntries,
    ReadThroughContactCache,
    RefillEntry,
    WindowCounter,
)
from query_api.service_layer.records import CachedContact, ContactRecord, Tombstone
from query_api.service_layer.token_key import TokenKey

log = logging.getLogger(__name__)

#: Refills per round trip of the cache repair (``repair_cache``): a pipeline of this many
#: guarded writes stays well within one Redis socket timeout.
REPAIR_BATCH = 200

CacheOutcome = Literal["hit", "miss", "bypass", "limited"]


@dataclass(frozen=True, slots=True)
class ContactLookup:
    """The answer to ``get_contact``.

    ``body`` is the resource JSON (UTF-8 bytes) and ``version`` its ETag value, both ``None``
    when no visible contact has that id. ``cache`` says where the answer came from: ``hit``
    (Redis), ``miss`` (PostgreSQL, then refilled) or ``bypass`` (PostgreSQL; Redis unusable),
    or ``limited``: past a rate limit, nothing read. ``counts`` are the rate-limit counts of
    ``get_or_lease_counted`` (``None``: not counted in Redis).
    """

    cache: CacheOutcome
    version: int | None = None
    body: bytes | None = None
    counts: list[int] | None = None


@dataclass(frozen=True, slots=True)
class ContactPage:
    """One page of a list: resource objects in order, and the cursor of the next page
    (``None`` on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class OperationStatusUnknown(RuntimeError):
    """No durable outcome is recorded and the short-lived status store is unreachable, so the
    operation may be pending or unknown: the caller should retry later."""


def get_contact(
    workspace: str,
    contact_id: str,
    *,
    contacts: ContactReadModel,
    cache: ReadThroughContactCache,
    counters: Sequence[WindowCounter] = (),
    owed: OwedEntries | None = None,
) -> ContactLookup:
    """Read contact ``contact_id`` of ``workspace`` cache-first: Redis, then PostgreSQL, then a
    version-guarded refill. An id of another workspace is unknown here (docs/architecture.md
    §10): the cache entry, the lease and the row are all the workspace's own.

    A cached tombstone is a 404 without touching PostgreSQL. On a miss, one request (in every
    process) takes the refill lease, reads PostgreSQL and refills; the others wait for its
    entry, within the cache adapter's bound, and read PostgreSQL themselves only past it. A
    stored but invisible contact is refilled as a tombstone so repeated reads of a deleted id
    stay in Redis; an id never stored is not cached. When Redis fails, the read falls through
    to PostgreSQL and the refill is skipped. Raises ``ReadModelUnavailable``.

    ``counters`` (rate limits) are counted in the same round trip as the cache read
    (``get_or_lease_counted``); past a limit the answer is ``limited`` and nothing is read.

    A contact whose entry the worker ``owed`` (``None``: nothing owed) is read from
    PostgreSQL, whatever Redis holds, and not refilled: the worker's cache write failed after a
    commit and its repair has not run yet, so the entry may be older than the row (case C18;
    the worker's repair writes it).
    """
    token: str | None = None
    counts: list[int] | None = None
    try:
        if counters:
            counted = cache.get_or_lease_counted(workspace, contact_id, counters)
            if counted.over:
                return ContactLookup("limited", counts=counted.counts)
            cached, token, counts = counted.entry, counted.token, counted.counts
        else:
            cached, token = cache.get_or_lease(workspace, contact_id)
        if owed is not None and owed.owes(workspace, contact_id):
            _release(workspace, contact_id, token, cache)
            raise CacheUnavailable("the entry is owed by the worker")
        if cached is None and token is None:
            cached = cache.wait_for_refill(workspace, contact_id)
        if cached is not None:
            return _hit(cached, counts)
    except CacheUnavailable:
        return dataclasses.replace(
            _lookup("bypass", contacts.get(workspace, contact_id)), counts=counts
        )
    lookup = _read_and_refill(workspace, contact_id, token, contacts=contacts, cache=cache)
    return dataclasses.replace(lookup, counts=counts)


def _hit(cached: CachedContact, counts: list[int] | None = None) -> ContactLookup:
    return ContactLookup("hit", cached.version if cached.body else None, cached.body, counts)


def _read_and_refill(
    workspace: str,
    contact_id: str,
    token: str | None,
    *,
    contacts: ContactReadModel,
    cache: ReadThroughContactCache,
) -> ContactLookup:
    """Read PostgreSQL and refill, giving back the lease ``token`` (if held) in the same call,
    sent without waiting for its result (``send_refill_and_release``: the answer does not need
    it); the lease is released whatever happens."""
    try:
        stored = contacts.get(workspace, contact_id)
    except BaseException:
        _release(workspace, contact_id, token, cache)
        raise
    lookup = _lookup("miss", stored)
    try:
        if stored is None:
            _release(workspace, contact_id, token, cache)
        elif token is None:
            cache.refill(workspace, contact_id, stored.version, lookup.body)
        else:
            cache.send_refill_and_release(workspace, contact_id, stored.version, lookup.body, token)
    except CacheUnavailable:
        log.warning("contact cache refill skipped: Redis unavailable", extra={"id": contact_id})
    return lookup


def _release(
    workspace: str, contact_id: str, token: str | None, cache: ReadThroughContactCache
) -> None:
    if token is None:
        return
    try:
        cache.release_refill_lease(workspace, contact_id, token)
    except CacheUnavailable:
        log.warning("refill lease not released; it expires", extra={"id": contact_id})


def repair_cache(
    seconds_since_healthy: float | None,
    *,
    contacts: ContactReadModel,
    cache: ReadThroughContactCache,
    margin_s: float,
    max_lookback_s: float,
) -> int:
    """Bring the cache entries of every contact changed since Redis was last healthy up to the
    database's version; returns how many entries it wrote.

    Runs before the circuit breaker closes after a Redis outage. During the outage the worker
    committed changes whose cache writes failed, so an entry written before the outage may be
    older than PostgreSQL, and nothing overwrote it: the version guard only stops older writes.
    Every contact the worker changed since ``seconds_since_healthy`` seconds ago, plus
    ``margin_s`` (the worker's longest commit-to-cache-write delay), capped at
    ``max_lookback_s`` (and taking that when ``None``: never healthy), is refilled with the
    guarded write, which only replaces older versions; each in its own workspace's entry,
    ``REPAIR_BATCH`` entries per round trip (``refill_many``). Raises ``ReadModelUnavailable`` and
    ``CacheUnavailable``; the breaker then stays open and the repair runs again on the next
    trial.
    """
    lookback_s = max_lookback_s
    if seconds_since_healthy is not None:
        lookback_s = min(seconds_since_healthy + margin_s, max_lookback_s)
    written = 0
    batch: list[RefillEntry] = []
    for workspace, stored in contacts.changed_since(lookback_s):
        batch.append((workspace, stored.contact_id, stored.version, _lookup("miss", stored).body))
        if len(batch) == REPAIR_BATCH:
            written += cache.refill_many(batch)
            batch = []
    written += cache.refill_many(batch)
    log.info("contact cache repaired after a Redis outage: %d entries written", written)
    return written


def _lookup(outcome: CacheOutcome, stored: ContactRecord | Tombstone | None) -> ContactLookup:
    if isinstance(stored, ContactRecord):
        body = representation.encode(representation.resource(stored))
        return ContactLookup(outcome, stored.version, body)
    return ContactLookup(outcome)


def list_contacts(
    workspace: str, request: ListRequest, *, contacts: ContactReadModel, key: TokenKey
) -> ContactPage:
    """Return one page of the visible contacts of ``workspace`` (keyset pagination, see
    ``listing``); the next page's cursor is bound to the workspace (``cursor``).

    Reads ``limit + 1`` rows to learn whether a next page exists without a count query.
    Raises ``ReadModelUnavailable``.
    """
    rows = contacts.list(workspace, request, request.limit + 1)
    page = rows[: request.limit]
    next_cursor = None
    if len(rows) > request.limit:
        last = page[-1]
        position = _position(request.sort, last)
        next_cursor = cursor.encode(workspace, request.sort, request.filters, position, key=key)
    return ContactPage([representation.resource(r) for r in page], next_cursor)


def _position(sort: Sort, record: ContactRecord) -> Position:
    key = record.created_at if sort.key == "created_at" else record.last_name_key
    return Position(key, record.contact_id)


def get_operation(
    workspace: str,
    operation_id: str,
    *,
    statuses: OperationStatusCache,
    outcomes: OperationLog,
    contacts: ContactReadModel,
    cache: ReadThroughContactCache,
) -> OperationStatus | None:
    """Return the status of operation ``operation_id`` of ``workspace``, or ``None`` when
    nobody knows it there (an operation of another workspace included).

    Redis first: a final status there is the answer. A pending or missing one is checked
    against ``processed_events``, because the worker commits there before it updates Redis and
    that update can fail; so a client never polls "pending" forever for an applied operation.
    An outcome read there is answered only once the contact's cache entry has been brought up
    to the database (``_catch_up_entry``): the worker writes the entry after its commit, so
    without it a client could see ``applied`` and then read the version before it
    (docs/architecture.md §6, read your writes).
    Raises ``ReadModelUnavailable`` when PostgreSQL must be asked and cannot answer, and
    ``OperationStatusUnknown`` when Redis is unreachable and PostgreSQL has no outcome.
    """
    try:
        cached = statuses.get(workspace, operation_id)
    except CacheUnavailable:
        outcome = outcomes.get(workspace, operation_id)
        if outcome is None:
            raise OperationStatusUnknown(operation_id) from None
        return outcome  # reads bypass Redis while it is down: no entry to catch up
    if cached is not None and cached.status != "pending":
        return cached
    outcome = outcomes.get(workspace, operation_id)
    if outcome is None:
        return cached
    _catch_up_entry(workspace, outcome.contact_id, contacts=contacts, cache=cache)
    return outcome


def _catch_up_entry(
    workspace: str,
    contact_id: str,
    *,
    contacts: ContactReadModel,
    cache: ReadThroughContactCache,
) -> None:
    """Write the contact's committed state (or its tombstone) to its cache entry through the
    version guard, which only replaces an older version; the write's invalidation reaches every
    process's local contact cache before it returns (§5.5). Redis down: nothing to catch up,
    reads bypass the cache. Raises ``ReadModelUnavailable``."""
    stored = contacts.get(workspace, contact_id)
    if stored is None:
        return
    try:
        cache.refill(workspace, contact_id, stored.version, _lookup("miss", stored).body)
    except CacheUnavailable:
        log.warning("contact cache catch-up skipped: Redis unavailable", extra={"id": contact_id})
