"""Owed cache entries (case C18) on fakes of our ports: a failed cache write after a commit is
recorded as owed, and the repair writes the committed state once the cache answers, then
settles only what it wrote."""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
import uuid
from collections.abc import Sequence

import pytest

from contact_worker.entrypoints.repair_loop import RepairLoop
from contact_worker.service_layer.cache_repair import (
    CacheRepairs,
    OwedEntry,
    RecordingContactCache,
    repair_owed_entries,
)
from contacts_domain import ContactState
from contacts_domain.contact import empty_fields
from support.domain_fakes import InMemoryCache, InMemoryOperationStore

WS = "acme"


class InMemoryCacheRepairs(CacheRepairs):
    """Owed versions by ``(workspace, id)``; ``committed`` plays the contacts table."""

    def __init__(self) -> None:
        self.owed: dict[tuple[str, str], int] = {}
        self.committed: dict[tuple[str, str], ContactState] = {}
        self.unavailable = False

    def record(self, states: Sequence[ContactState]) -> None:
        if self.unavailable:
            raise ConnectionError("database unavailable")
        for state in states:
            key = (state.workspace, state.contact_id)
            self.owed[key] = max(self.owed.get(key, 0), state.version)

    def owed_states(self, limit: int) -> list[tuple[OwedEntry, ContactState]]:
        owed = list(self.owed.items())[:limit]
        return [
            ((ws, cid, version), self.committed.get((ws, cid), ContactState(cid, workspace=ws)))
            for (ws, cid), version in owed
        ]

    def settle(self, entries: Sequence[OwedEntry]) -> int:
        settled = 0
        for ws, cid, version in entries:
            if self.owed.get((ws, cid), version + 1) <= version:
                del self.owed[(ws, cid)]
                settled += 1
        return settled


def state(version: int, name: str = "Ada", contact_id: str | None = None) -> ContactState:
    now = dt.datetime.now(dt.UTC)
    return ContactState(
        contact_id or str(uuid.uuid4()),
        fields={**empty_fields(), "first_name": name},
        alive=True,
        version=version,
        created_at=now,
        updated_at=now,
        workspace=WS,
    )


def test_a_failed_cache_write_is_recorded_as_owed_and_still_raised() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    cache = RecordingContactCache(redis, repairs)
    first, second = state(2), state(5)
    redis.unavailable = True

    with pytest.raises(ConnectionError):
        cache.put_all_then_record([first, second], [], InMemoryOperationStore())

    assert repairs.owed == {(WS, first.contact_id): 2, (WS, second.contact_id): 5}


def test_a_written_entry_is_not_owed() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    cache = RecordingContactCache(redis, repairs)

    cache.put_all_then_record([state(1)], [], InMemoryOperationStore())
    cache.put(state(1))

    assert repairs.owed == {}
    assert len(redis.entries) == 2


def test_a_debt_that_cannot_be_recorded_leaves_the_cache_failure_to_the_redelivery() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    redis.unavailable = repairs.unavailable = True

    with pytest.raises(ConnectionError, match="cache unavailable"):
        RecordingContactCache(redis, repairs).put(state(1))


def test_the_repair_writes_the_committed_state_over_the_stale_entry_and_settles_it() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    stale = state(1, "Ada")
    redis.put(stale)
    current = dataclasses.replace(stale, version=2, fields={**stale.fields, "first_name": "Ada2"})
    repairs.committed[(WS, stale.contact_id)] = current
    repairs.record([current])

    assert repair_owed_entries(repairs, redis) == 1

    assert redis.entries[(WS, stale.contact_id)] == current
    assert repairs.owed == {}
    assert repair_owed_entries(repairs, redis) == 0


def test_while_the_cache_is_down_the_repair_settles_nothing() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    current = state(2)
    repairs.committed[(WS, current.contact_id)] = current
    repairs.record([current])
    redis.unavailable = True

    with pytest.raises(ConnectionError):
        repair_owed_entries(repairs, redis)

    assert repairs.owed == {(WS, current.contact_id): 2}


def test_an_owed_contact_whose_row_is_gone_is_settled_without_a_write() -> None:
    redis, repairs = InMemoryCache(), InMemoryCacheRepairs()
    repairs.record([state(3)])

    assert repair_owed_entries(repairs, redis) == 1

    assert repairs.owed == {}
    assert redis.entries == {}


def test_the_loop_keeps_going_through_failures_and_reports_what_was_owed() -> None:
    passes: list[int] = []

    def repair() -> int:
        passes.append(1)
        if len(passes) == 1:
            raise ConnectionError("Redis down")
        return 7

    loop = RepairLoop(repair, interval_s=60, wake=threading.Event())

    assert loop.run_once() is None
    assert loop.run_once() == 7


def test_the_loop_runs_at_start_then_only_when_woken_and_until_nothing_is_owed() -> None:
    owed = [0, 2, 1, 0]  # at start nothing; woken: two passes find entries, the third none
    passes: queue.Queue[int] = queue.Queue()

    def repair() -> int:
        count = owed.pop(0) if owed else 0
        passes.put(count)
        return count

    wake = threading.Event()
    loop = RepairLoop(repair, interval_s=0.01, wake=wake, sweep_s=3600)
    loop.start()
    try:
        assert passes.get(timeout=5) == 0
        with pytest.raises(queue.Empty):
            passes.get(timeout=0.3)  # idle: no pass without a debt
        wake.set()
        assert [passes.get(timeout=5) for _ in range(3)] == [2, 1, 0]
        with pytest.raises(queue.Empty):
            passes.get(timeout=0.3)
    finally:
        loop.stop()
