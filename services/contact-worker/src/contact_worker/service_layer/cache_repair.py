"""Cache entries the worker owes Redis, and their repair (docs/architecture.md §5.5, case C18).

After a commit the worker writes each changed contact's cache entry. When that write fails,
Redis keeps an entry older than PostgreSQL. The message is redelivered and its next receive
writes the entry again, but an outage longer than the message's receives dead-letters it, and
nothing else would ever overwrite the stale entry (only a newer version replaces an entry).

So a failed write is recorded as owed, in PostgreSQL, which the worker just committed to
(``RecordingContactCache``); ``repair_owed_entries`` (run by the pool process that recorded it,
every ``cache_repair_interval_s`` until nothing is owed; by every pool process when it starts,
and every ``repair_loop.SWEEP_S``) writes the owed entries from the committed state once Redis
answers, and settles them. Meanwhile the query API serves none of the owed contacts from Redis.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from contacts_domain import ContactState, OperationStatus
from contacts_domain.ports import ContactCache, OperationStore
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")

#: ``(workspace, contact id, version)``: the version a contact's cache entry must reach.
OwedEntry = tuple[str, str, int]

#: Owed entries repaired per pass (one PostgreSQL read, one Redis round trip, one delete).
REPAIR_BATCH: Final = 500


class CacheRepairs(abc.ABC):
    """The owed cache entries, one per contact of a workspace (PostgreSQL's ``cache_repairs``,
    migration 0008). Every method raises the store's error when it is unreachable."""

    @abc.abstractmethod
    def record(self, states: Sequence[ContactState]) -> None:
        """Owe the entries of ``states`` (committed; version > 0); a contact already owed keeps
        the greater version."""

    @abc.abstractmethod
    def owed_states(self, limit: int) -> list[tuple[OwedEntry, ContactState]]:
        """Up to ``limit`` owed entries, oldest first, each with its contact's committed state
        now (an empty state of version 0 if the contact's row is gone)."""

    @abc.abstractmethod
    def settle(self, entries: Sequence[OwedEntry]) -> int:
        """Forget each owed entry whose version is at most the one given (a newer debt recorded
        meanwhile stays); returns how many were forgotten."""


class RecordingContactCache(ContactCache):
    """``cache`` (the Redis adapter), which on a failed write owes the entries to
    ``repairs``, calls ``on_recorded`` (it wakes this process's repair loop) and then raises
    the failure as before (the message is redelivered). A failure to record is logged: the
    redelivery records again."""

    def __init__(
        self,
        cache: ContactCache,
        repairs: CacheRepairs,
        on_recorded: Callable[[], object] = lambda: None,
    ) -> None:
        self._cache = cache
        self._repairs = repairs
        self._on_recorded = on_recorded

    def put(self, state: ContactState) -> bool:
        with self._owing([state]):
            return self._cache.put(state)

    def put_all(self, states: Sequence[ContactState]) -> None:
        with self._owing(states):
            self._cache.put_all(states)

    def put_all_then_record(
        self,
        states: Sequence[ContactState],
        outcomes: Sequence[tuple[str, OperationStatus]],
        operations: OperationStore,
    ) -> None:
        with self._owing(states):
            self._cache.put_all_then_record(states, outcomes, operations)

    @contextlib.contextmanager
    def _owing(self, states: Sequence[ContactState]) -> Iterator[None]:
        """Owe ``states`` if the write in the block fails, then let its failure through."""
        try:
            yield
        except Exception:
            self._owe(states)
            raise

    def _owe(self, states: Sequence[ContactState]) -> None:
        owed = [state for state in states if state.version > 0]
        if not owed:
            return
        try:
            self._repairs.record(owed)
        except Exception as exc:
            log.error("owed cache entries not recorded", entries=len(owed), error=str(exc))
        else:
            self._on_recorded()
            log.warning("cache write failed; entries owed until Redis answers", entries=len(owed))


def repair_owed_entries(
    repairs: CacheRepairs, cache: ContactCache, *, limit: int = REPAIR_BATCH
) -> int:
    """Write up to ``limit`` owed entries from the committed state (version-guarded: an entry
    already newer stays) and settle them; returns how many were owed (``limit``: call again).

    Raises what ``repairs`` or ``cache`` raise (Redis still down: nothing is settled, the next
    pass tries again). An entry whose contact row is gone is settled without a write."""
    owed = repairs.owed_states(limit)
    if not owed:
        return 0
    cache.put_all([state for _, state in owed if state.version > 0])
    repairs.settle(
        [
            (workspace, contact_id, max(version, state.version))
            for (workspace, contact_id, version), state in owed
        ]
    )
    log.info("owed cache entries repaired", entries=len(owed))
    return len(owed)


class CacheRepairer:
    """The owed entries of one process: ``recording()`` wraps the Redis ``cache`` so that its
    failed writes are owed to ``repairs`` and set ``recorded``; ``repair()`` is one pass of
    ``repair_owed_entries`` on ``cache`` (the raw adapter: a failed repair owes nothing more)."""

    def __init__(self, repairs: CacheRepairs, cache: ContactCache) -> None:
        self.repairs = repairs
        self.cache = cache
        self.recorded = threading.Event()

    def recording(self) -> RecordingContactCache:
        """The cache the handlers write through."""
        return RecordingContactCache(self.cache, self.repairs, on_recorded=self.recorded.set)

    def repair(self) -> int:
        """One repair pass; returns how many entries were owed. Raises what it raises."""
        return repair_owed_entries(self.repairs, self.cache)
