"""A per-process cache of hot contact entries in front of the Redis read cache, kept coherent
by Redis's invalidations (``client_tracking``), so a hot hit costs no Redis round trip
(docs/architecture.md §5.5, "Local contact cache").

The rules that keep §5.5's guarantee (never serve what the database has overwritten, and read
your writes once an operation is ``applied``):

- An entry is stored only from a Redis read made on a tracked connection, so Redis sends an
  invalidation for any later write of that key.
- Before every local answer, the invalidations already delivered are applied
  (``InvalidationListener.poll_locked``), not only by the background thread.
- A fill racing an invalidation is dropped: each key being filled has a generation that every
  invalidation of the key (and every flush) bumps; the fill stores its value only if the
  generation and the listener's ``epoch`` are those it saw before its Redis read.
- Nothing is served locally while the invalidation connection is down; losing it flushes.
- Entries are keyed by their Redis key, which names the workspace; at most ``max_entries``
  are kept (least recently used out).

The local hits count their rate limits in a ``LocalRateBudget`` (tokens reserved from the same
Redis counters in batches); everything else is the Redis adapter's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from contacts_infra.redis_keys import contact_key
from query_api.adapters.client_tracking import InvalidationListener
from query_api.adapters.local_rate_budget import LocalRateBudget
from query_api.service_layer.ports import (
    CountedRead,
    ReadThroughContactCache,
    RefillEntry,
    WindowCounter,
)
from query_api.service_layer.records import CachedContact


@dataclass(frozen=True, slots=True)
class _Ticket:
    epoch: int
    generation: int


class LocalContactCache(ReadThroughContactCache):
    """``ReadThroughContactCache``: ``inner`` (Redis) behind a local LRU of at most
    ``max_entries`` entries (module doc). ``local_hits`` and ``fills`` count what it served
    and stored, ``listener`` is its invalidation connection (for tests and profiles)."""

    def __init__(
        self,
        inner: ReadThroughContactCache,
        listener: InvalidationListener,
        budget: LocalRateBudget,
        *,
        prefix: str,
        max_entries: int,
    ) -> None:
        self._inner = inner
        self.listener = listener
        self._budget = budget
        self._prefix = prefix
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CachedContact] = OrderedDict()
        # Keys being filled: [fills in flight, generation].
        self._filling: dict[str, list[int]] = {}
        self._stats_lock = threading.Lock()
        self.local_hits = 0
        self.fills = 0
        listener.subscribe(self._invalidate_locked)

    def get_or_lease_counted(
        self, workspace: str, contact_id: str, counters: Sequence[WindowCounter]
    ) -> CountedRead:
        key = contact_key(self._prefix, workspace, contact_id)
        local = self._local(key)
        if local is not None:
            counts = self._budget.take(counters)
            over = any(counts[2 * i] > c.amount for i, c in enumerate(counters))
            return CountedRead(None if over else local, None, counts, over)
        ticket = self._begin_fill(key)
        read: CountedRead | None = None
        try:
            read = self._inner.get_or_lease_counted(workspace, contact_id, counters)
        finally:
            self._end_fill(key, ticket, read.entry if read is not None else None)
        return read

    def get_or_lease(
        self, workspace: str, contact_id: str
    ) -> tuple[CachedContact | None, str | None]:
        key = contact_key(self._prefix, workspace, contact_id)
        local = self._local(key)
        if local is not None:
            return local, None
        ticket = self._begin_fill(key)
        read: tuple[CachedContact | None, str | None] | None = None
        try:
            read = self._inner.get_or_lease(workspace, contact_id)
        finally:
            self._end_fill(key, ticket, read[0] if read is not None else None)
        return read

    def get(self, workspace: str, contact_id: str) -> CachedContact | None:
        return self._inner.get(workspace, contact_id)

    def refill(self, workspace: str, contact_id: str, version: int, body: bytes | None) -> bool:
        return self._inner.refill(workspace, contact_id, version, body)

    def refill_many(self, entries: Sequence[RefillEntry]) -> int:
        return self._inner.refill_many(entries)

    def refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> bool:
        return self._inner.refill_and_release(workspace, contact_id, version, body, token)

    def send_refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> None:
        self._inner.send_refill_and_release(workspace, contact_id, version, body, token)

    def take_refill_lease(self, workspace: str, contact_id: str) -> str | None:
        return self._inner.take_refill_lease(workspace, contact_id)

    def release_refill_lease(self, workspace: str, contact_id: str, token: str) -> None:
        self._inner.release_refill_lease(workspace, contact_id, token)

    def wait_for_refill(self, workspace: str, contact_id: str) -> CachedContact | None:
        return self._inner.wait_for_refill(workspace, contact_id)

    def _local(self, key: str) -> CachedContact | None:
        """The local entry of ``key``, after applying the delivered invalidations; ``None``
        when there is none or tracking is down."""
        listener = self.listener
        listener.ensure_running()
        with listener.lock:
            # Invalidations only remove entries: a key absent before they are applied stays
            # absent, and ``_begin_fill`` applies them before its read.
            if key not in self._entries:
                return None
            listener.poll_locked()
            if not listener.healthy_locked():
                return None
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        with self._stats_lock:
            self.local_hits += 1
        return entry

    def _begin_fill(self, key: str) -> _Ticket | None:
        """Register a Redis read of ``key`` about to be made; ``None`` when tracking is down
        (the read will not be stored)."""
        listener = self.listener
        with listener.lock:
            # Invalidations of writes made before this read would otherwise count as racing it
            # (the fill would be dropped); a lost connection is found here too.
            listener.poll_locked()
            if listener.redirect_id is None:
                return None
            filling = self._filling.setdefault(key, [0, 0])
            filling[0] += 1
            return _Ticket(listener.epoch, filling[1])

    def _end_fill(self, key: str, ticket: _Ticket | None, entry: CachedContact | None) -> None:
        """Store ``entry`` (read from Redis after ``_begin_fill``) unless an invalidation of
        ``key``, a flush or a new invalidation connection came in between."""
        if ticket is None:
            return
        listener = self.listener
        with listener.lock:
            if entry is not None:  # nothing to store (a miss): no invalidation to apply
                listener.poll_locked()
            filling = self._filling[key]
            filling[0] -= 1
            if filling[0] == 0:
                del self._filling[key]
            if (
                entry is None
                or filling[1] != ticket.generation
                or listener.epoch != ticket.epoch
                or not listener.healthy_locked()
            ):
                return
            self._entries[key] = entry
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        with self._stats_lock:
            self.fills += 1

    def _invalidate_locked(self, keys: list[bytes] | None) -> None:
        """The listener's subscriber (under its lock): forget ``keys`` (``None``: all)."""
        if keys is None:
            self._entries.clear()
            for filling in self._filling.values():
                filling[1] += 1
            return
        for raw in keys:
            key = raw.decode(errors="replace")
            self._entries.pop(key, None)
            pending = self._filling.get(key)
            if pending is not None:
                pending[1] += 1
