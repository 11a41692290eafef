"""Ports of the query API: what the use cases need from storage, implemented by ``adapters``
(PostgreSQL, Redis) and by fakes in the unit tests.

Every read names its workspace (docs/architecture.md §10), a slug of
``contacts_domain.workspaces``, first: data of another workspace is never returned, so an id of
workspace A read for workspace B is unknown (``None``), exactly as an id never stored.

Two failures cross every port, and only these: ``ReadModelUnavailable`` (the database did not
answer in time, or refused the connection: the API answers 503 with ``Retry-After``) and
``CacheUnavailable`` (Redis failed or its circuit is open: the use case carries on without it).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from contacts_domain.imports import ImportReport
from contacts_domain.operations import OperationStatus
from query_api.service_layer.listing import ListRequest
from query_api.service_layer.records import (
    CachedContact,
    ChangeBatch,
    ContactRecord,
    FeedPosition,
    ImportOutcomes,
    Tombstone,
)


class ReadModelUnavailable(RuntimeError):
    """PostgreSQL could not answer within the configured time bounds (connect, pool, statement)."""


class CacheUnavailable(RuntimeError):
    """Redis failed, timed out, or is skipped while its circuit breaker is open."""


class OwedEntries(Protocol):
    """The contacts whose cache entry the worker failed to write after a commit and has not
    repaired yet (the worker's ``cache_repairs``, docs/architecture.md §5.5): their entry in
    Redis may be older than PostgreSQL, so none is served from it."""

    def owes(self, workspace: str, contact_id: str) -> bool:
        """Whether the entry of ``contact_id`` (canonical) in ``workspace`` is owed. Never
        raises: an unreadable list counts as the last one read."""


class ContactReadModel(abc.ABC):
    """The contacts table, read only."""

    @abc.abstractmethod
    def get(self, workspace: str, contact_id: str) -> ContactRecord | Tombstone | None:
        """Return the visible contact ``contact_id`` of ``workspace``, a ``Tombstone`` for a
        stored but invisible one, or ``None`` when the id was never stored in that workspace.
        ``contact_id`` is a canonical lower-case UUID. Raises ``ReadModelUnavailable``."""

    @abc.abstractmethod
    def list(self, workspace: str, request: ListRequest, limit: int) -> list[ContactRecord]:
        """Return up to ``limit`` visible contacts of ``workspace`` matching ``request.filters``, in
        ``request.sort`` order (id as tie-breaker), strictly after ``request.after``.
        Raises ``ReadModelUnavailable``."""

    @abc.abstractmethod
    def changed_since(self, seconds: float) -> Iterator[tuple[str, ContactRecord | Tombstone]]:
        """Yield ``(workspace, current state)`` of every contact the worker changed in the last
        ``seconds`` seconds (by the database's clock), in every workspace, each once, in no
        particular order. Raises ``ReadModelUnavailable``."""


class WindowCounter(Protocol):
    """A rate-limit counter a read counts the request in (``contacts_http.rate_limits.
    RateCounter``): its Redis ``key``, ``amount`` allowed per ``window_s`` seconds."""

    @property
    def key(self) -> str: ...

    @property
    def amount(self) -> int: ...

    @property
    def window_s(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CountedRead:
    """``get_or_lease`` with the request counted: ``entry`` and ``token`` as it returns them,
    ``counts`` (``[count, seconds to the window's end]`` per counter, in order) and ``over``:
    the request is past a limit, and the cache was not read."""

    entry: CachedContact | None
    token: str | None
    counts: list[int]
    over: bool


#: One refill: ``(workspace, contact_id, version, body)``; a ``None`` body is a tombstone.
RefillEntry = tuple[str, str, int, bytes | None]


class ReadThroughContactCache(abc.ABC):
    """The ``contact:{<workspace>/<id>}`` read-through cache with refill leases, as the query
    API sees it: read, and refill on a miss under a refill lease, so one request in all
    processes reads the database per miss. (Not ``contacts_domain.ports.ContactCache``, the
    worker's write side.)"""

    @abc.abstractmethod
    def get(self, workspace: str, contact_id: str) -> CachedContact | None:
        """Return the cached entry of ``contact_id`` in ``workspace`` (maybe a tombstone), or
        ``None`` on a miss. Raises ``CacheUnavailable``."""

    @abc.abstractmethod
    def refill(self, workspace: str, contact_id: str, version: int, body: bytes | None) -> bool:
        """Cache ``body`` (``None`` = tombstone) at ``version`` unless the cache already holds
        that version or a newer one, or a newer tombstone (docs/architecture.md §5.5), in the
        entry of ``contact_id`` in ``workspace``. Returns whether it wrote. Raises
        ``CacheUnavailable``."""

    def refill_many(self, entries: Sequence[RefillEntry]) -> int:
        """``refill`` of each ``(workspace, contact_id, version, body)`` in ``entries`` (same
        rule); returns how many it wrote. An adapter overrides it to make it one round trip.
        Raises ``CacheUnavailable`` (some entries may have been written)."""
        return sum(self.refill(*entry) for entry in entries)

    @abc.abstractmethod
    def take_refill_lease(self, workspace: str, contact_id: str) -> str | None:
        """Take the refill lease of ``contact_id`` in ``workspace``: returns a token when the
        caller now holds it (it reads the database and refills, then releases), ``None`` when
        another request holds it. Raises ``CacheUnavailable``."""

    @abc.abstractmethod
    def release_refill_lease(self, workspace: str, contact_id: str, token: str) -> None:
        """Give the lease back, if ``token`` still holds it. Raises ``CacheUnavailable``."""

    def get_or_lease(
        self, workspace: str, contact_id: str
    ) -> tuple[CachedContact | None, str | None]:
        """``get``, and on a miss ``take_refill_lease``: ``(entry, None)`` on a hit, ``(None,
        token)`` when the caller now holds the lease, ``(None, None)`` when another request
        does. An adapter overrides it to make it one round trip. Raises
        ``CacheUnavailable``."""
        cached = self.get(workspace, contact_id)
        if cached is not None:
            return cached, None
        return None, self.take_refill_lease(workspace, contact_id)

    def get_or_lease_counted(
        self, workspace: str, contact_id: str, counters: Sequence[WindowCounter]
    ) -> CountedRead:
        """Count the request in ``counters`` (fixed windows), then ``get_or_lease`` unless it
        is past a limit, in one round trip. Raises ``CacheUnavailable`` (the caller then counts
        elsewhere); an adapter that cannot count always does."""
        raise CacheUnavailable("this cache does not count rate limits")

    def refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> bool:
        """``refill`` then ``release_refill_lease`` (same rules, same result); an adapter
        overrides it to make it one round trip. Raises ``CacheUnavailable``."""
        try:
            return self.refill(workspace, contact_id, version, body)
        finally:
            self.release_refill_lease(workspace, contact_id, token)

    def send_refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> None:
        """``refill_and_release``, without its result: an adapter may return before the cache
        has applied it (the write and the release still happen, in that order, under the same
        rules; a later call of the same caller may run first). Raises ``CacheUnavailable``
        when it cannot be sent."""
        self.refill_and_release(workspace, contact_id, version, body, token)

    @abc.abstractmethod
    def wait_for_refill(self, workspace: str, contact_id: str) -> CachedContact | None:
        """Wait, within the adapter's bound, for the lease holder's refill. Returns the entry
        once cached; ``None`` when the lease ends without one (nothing to cache, or the refill
        failed) or the bound passes: the caller then reads the database itself.
        Raises ``CacheUnavailable``."""


class OperationStatusCache(abc.ABC):
    """The short-lived ``op:<workspace>/<id>`` statuses the command API and the worker write."""

    @abc.abstractmethod
    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        """Return the status of ``operation_id`` in ``workspace``, or ``None`` when unknown,
        expired or of another workspace. Raises ``CacheUnavailable``."""


class OperationLog(abc.ABC):
    """The durable outcomes in ``processed_events`` (applied or rejected, never pending)."""

    @abc.abstractmethod
    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        """Return the recorded outcome of ``operation_id`` in ``workspace``, or ``None`` when
        the worker has not processed it there. Raises ``ReadModelUnavailable``."""


class ChangeFeed(abc.ABC):
    """The change feed (``service_layer.change_feed``), read only."""

    @abc.abstractmethod
    def bound(self) -> FeedPosition:
        """The feed's current end: a position before every change not yet readable (one
        transaction order for every workspace). Raises ``ReadModelUnavailable``."""

    @abc.abstractmethod
    def read(self, workspace: str, after: FeedPosition, limit: int) -> ChangeBatch:
        """Up to ``limit`` changes of ``workspace`` strictly after ``after``, in feed order,
        with the bound they were read under and the purge horizon read after them.
        Raises ``ReadModelUnavailable``."""


class ImportReportReader(abc.ABC):
    """The ``import:<workspace>/<id>`` reports, read only: the command API writes them when it
    reads an upload (kept ``IMPORT_REPORT_TTL_S``, 7 days by default)."""

    @abc.abstractmethod
    def get(self, workspace: str, import_id: str) -> ImportReport | None:
        """Return the report of ``import_id`` in ``workspace``, or ``None`` when unknown,
        expired or of another workspace. Raises ``CacheUnavailable``."""

    @abc.abstractmethod
    def dead_lettered(self, workspace: str, import_id: str) -> int:
        """How many of the import's events the worker gave up on (moved to the dead-letter
        queue and not redriven since; ``contacts_infra.import_dead_letters``). Raises
        ``CacheUnavailable``."""

    @abc.abstractmethod
    def queuing(self, workspace: str, import_id: str) -> bool:
        """Whether a command API process still holds the import's queuing lease
        (``redis_keys.import_queuing_key``: it is queuing the import's records after its
        ``202``). Raises ``CacheUnavailable``."""


class ImportOutcomeLog(abc.ABC):
    """The outcomes the worker recorded in ``processed_events`` for an import's records."""

    @abc.abstractmethod
    def counts(self, workspace: str, import_id: str) -> ImportOutcomes:
        """Count the records of import ``import_id`` of ``workspace`` applied and rejected so
        far, and the rejections per reason (all zero when none was processed yet).
        Raises ``ReadModelUnavailable``."""
