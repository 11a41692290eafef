"""The local hits' rate-limit token bucket (``adapters.local_rate_budget``): reserved from the
shared counter in batches, never admitting past the limit, and reporting counts and window
ends as the Redis count would."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import pytest

from query_api.adapters.local_rate_budget import LocalRateBudget
from query_api.service_layer.ports import CacheUnavailable


@dataclass(frozen=True)
class Counter:
    key: str
    amount: int
    window_s: int


class SharedCounters:
    """What ``RESERVE_LUA`` does to the shared fixed-window counters, on a fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.counts: dict[str, tuple[int, float]] = {}  # key -> (count, window end)
        self.calls = 0
        self.attempts = 0
        self.down = False

    def reserve(self, counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        self.attempts += 1
        if self.down:
            raise CacheUnavailable("Redis unavailable")
        self.calls += 1
        reply: list[int] = []
        now = self.clock[0]
        for counter, batch in zip(counters, batches, strict=True):
            count, ends = self.counts.get(counter.key, (0, now + counter.window_s))
            if now >= ends:
                count, ends = 0, now + counter.window_s
            self.counts[counter.key] = (count + batch, ends)
            reply += [count + batch, int((ends - now) * 1000)]
        return reply

    def incr(self, counter: Counter) -> int:
        """Another process counting one request in Redis (the cache read's script)."""
        now = self.clock[0]
        count, ends = self.counts.get(counter.key, (0, now + counter.window_s))
        self.counts[counter.key] = (count + 1, ends)
        return count + 1


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def shared(clock: list[float]) -> SharedCounters:
    return SharedCounters(clock)


def budget(shared: SharedCounters, clock: list[float], batch: int = 10) -> LocalRateBudget:
    """A budget whose reservations ahead run at once, in the request's own call (the default
    runs them on a thread of the budget's own: see the test that no request waits)."""
    return LocalRateBudget(batch, shared.reserve, clock=lambda: clock[0], submit=lambda job: job())


def test_one_reservation_serves_a_batch_with_the_counts_redis_would_report(shared, clock):
    caller = Counter("c", 100_000, 60)
    local = budget(shared, clock)

    answers = [local.take([caller]) for _ in range(4)]

    assert shared.calls == 1
    assert [a[0] for a in answers] == [1, 2, 3, 4]
    assert all(a[1] == 60 for a in answers)
    assert shared.counts["c"][0] == 10


def test_the_next_batch_is_reserved_while_half_of_one_is_left(shared, clock):
    caller = Counter("c", 100_000, 60)
    local = budget(shared, clock)

    answers = [local.take([caller])[0] for _ in range(5)]
    assert shared.calls == 2  # the fifth request left 5 of 10: the next batch reserved
    answers += [local.take([caller])[0] for _ in range(10)]

    assert answers == list(range(1, 16))
    assert shared.calls == 3  # 11..20 taken up at the 11th, 21..30 reserved at the 15th
    assert shared.counts["c"][0] == 30


def test_no_request_waits_for_a_reservation_ahead(shared, clock):
    """The next batch is reserved on the budget's own thread: while Redis is slow to answer
    it, every request takes a token of what is left, and then of the batch reserved."""
    caller = Counter("c", 100_000, 60)
    entered, release = threading.Event(), threading.Event()

    def slow_reserve(counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        if shared.calls == 1:  # the reservation ahead
            entered.set()
            assert release.wait(5)
        return shared.reserve(counters, batches)

    pool, jobs = ThreadPoolExecutor(max_workers=1), []  # as the default, with its jobs kept
    local = LocalRateBudget(
        10, slow_reserve, clock=lambda: clock[0], submit=lambda job: jobs.append(pool.submit(job))
    )
    counts = [local.take([caller])[0] for _ in range(5)]  # the fifth leaves 5: reserve ahead
    assert entered.wait(5)
    counts += [local.take([caller])[0] for _ in range(5)]  # served while Redis is slow
    assert counts == list(range(1, 11))
    release.set()
    wait(jobs, timeout=5)
    pool.shutdown()

    assert local.take([caller])[0] == 11  # the batch reserved ahead, no call of its own
    assert shared.calls == 2


def test_a_defect_in_a_reservation_ahead_is_logged_and_not_tried_again(shared, clock, caplog):
    caller = Counter("c", 100_000, 60)

    def broken(counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        if shared.calls >= 1:
            shared.attempts += 1
            raise ValueError("a defect")
        return shared.reserve(counters, batches)

    local = LocalRateBudget(10, broken, clock=lambda: clock[0], submit=lambda job: job())
    counts = [local.take([caller])[0] for _ in range(10)]

    assert counts == list(range(1, 11))
    assert shared.attempts == 2  # the first reservation, then one ahead
    assert "rate-limit reservation ahead failed" in caplog.text


def test_a_failed_reservation_ahead_only_leaves_the_next_request_to_reserve(shared, clock):
    caller = Counter("c", 100_000, 60)
    local = budget(shared, clock)
    for _ in range(4):
        local.take([caller])
    shared.down = True
    assert local.take([caller])[0] == 5  # counted; its reservation ahead failed
    attempts = shared.attempts
    for _ in range(5):
        local.take([caller])
    assert shared.attempts == attempts  # not tried again ahead: each try may wait long
    with pytest.raises(CacheUnavailable):
        local.take([caller])
    shared.down = False
    assert local.take([caller])[0] == 11


def test_a_batch_is_at_most_one_percent_of_the_limit(shared, clock):
    local = budget(shared, clock, batch=64)
    assert local.batch_for(Counter("a", 600, 60)) == 6
    assert local.batch_for(Counter("b", 50, 60)) == 1
    assert local.batch_for(Counter("c", 10_000_000, 60)) == 64


def test_never_admits_past_the_limit_even_across_processes(shared, clock):
    caller = Counter("c", 200, 60)  # batch 2
    first, second = budget(shared, clock), budget(shared, clock)
    admitted = 0
    for _ in range(150):
        for process in (first, second):
            count = process.take([caller])[0]
            admitted += count <= caller.amount
        admitted += shared.incr(caller) <= caller.amount  # a third, counting in Redis
    assert admitted == caller.amount
    assert shared.counts["c"][0] >= admitted


def test_past_the_limit_every_request_is_over_until_the_window_ends(shared, clock):
    caller = Counter("c", 100, 60)  # batch 1
    local = budget(shared, clock)
    for _ in range(100):
        assert local.take([caller])[0] <= 100
    calls = shared.calls

    clock[0] += 20
    over = local.take([caller])
    assert over[0] > 100
    assert over[1] == 40  # Retry-After: the window's end
    assert shared.calls == calls  # no Redis call while the window is used up

    clock[0] += 40
    assert local.take([caller]) == [1, 60]


def test_a_reservation_straddling_the_limit_admits_only_up_to_it(shared, clock):
    caller = Counter("c", 1000, 60)  # batch 10
    for _ in range(995):
        shared.incr(caller)
    local = budget(shared, clock)
    counts = [local.take([caller])[0] for _ in range(8)]
    assert counts == [996, 997, 998, 999, 1000, 1001, 1001, 1001]
    assert shared.calls == 1


def test_each_counter_of_a_request_has_its_own_tokens(shared, clock):
    caller, workspace = Counter("c", 100_000, 60), Counter("ws", 1_000_000, 3600)
    local = budget(shared, clock)
    for _ in range(25):
        counts = local.take([caller, workspace])
    assert counts == [25, 60, 25, 3600]
    assert shared.counts["c"][0] == 40  # 31..40 reserved ahead at the 25th
    assert shared.counts["ws"][0] == 40


def test_redis_down_counts_nothing_locally(shared, clock):
    caller = Counter("c", 100_000, 60)
    local = budget(shared, clock)
    shared.down = True
    with pytest.raises(CacheUnavailable):
        local.take([caller])
    shared.down = False
    assert local.take([caller]) == [1, 60]


def test_a_budget_used_before_a_fork_shares_no_tokens_and_reserves_ahead_in_the_child(clock):
    """gunicorn ``--preload``: a budget used in the master is used again in its forked workers.
    The child's copies of the parent's tokens are the parent's (admitting them twice would go
    past the limit), and the parent's reservation thread does not exist in the child."""
    caller = Counter("c", 100_000, 60)
    reserved = [0]

    def reserve(counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        reserved[0] += batches[0]
        return [reserved[0], 60_000]

    local = LocalRateBudget(10, reserve, clock=lambda: clock[0])
    parent = [local.take([caller])[0] for _ in range(5)]  # 1..5, 11..20 reserved ahead
    deadline = time.monotonic() + 5
    while reserved[0] < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its counts and whether it reserved ahead, then leave
        try:
            counts = [local.take([caller])[0] for _ in range(5)]
            deadline = time.monotonic() + 2
            while reserved[0] < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(write, json.dumps([counts, reserved[0]]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        counts, child_reserved = json.loads(pipe.read() or "[[], 0]")
    os.waitpid(pid, 0)

    assert parent == [1, 2, 3, 4, 5]
    assert counts == [21, 22, 23, 24, 25]  # none of the parent's 6..20
    assert child_reserved == 40  # 21..30 reserved by its first request, 31..40 ahead


def test_a_reservation_ahead_that_cannot_be_submitted_leaves_the_request_counted(shared, clock):
    """``submit`` may refuse (no thread can be started, or the interpreter is exiting): the
    request has its tokens already, and the counter is reserved ahead again later."""
    caller = Counter("c", 100_000, 60)
    refuse = [True]

    def submit(job: Callable[[], None]) -> None:
        if refuse[0]:
            raise RuntimeError("can't start new thread")
        job()

    local = LocalRateBudget(10, shared.reserve, clock=lambda: clock[0], submit=submit)
    assert [local.take([caller])[0] for _ in range(10)] == list(range(1, 11))
    refuse[0] = False
    assert [local.take([caller])[0] for _ in range(5)] == list(range(11, 16))
    assert shared.counts["c"][0] == 30  # 21..30 reserved ahead again at the 15th


def test_a_batch_ahead_answered_after_its_window_ended_does_not_stop_the_next_one(shared, clock):
    """A reservation ahead counted by Redis just before the window's end, whose answer comes
    after the next window's first request reserved for itself: the new grant is still
    reserved ahead when it runs low (no request of the new window waits for Redis)."""
    caller = Counter("c", 100_000, 60)
    answered, landed = threading.Event(), threading.Event()

    def late_reserve(counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        reply = shared.reserve(counters, batches)
        if shared.calls == 2:  # the reservation ahead: counted in the old window
            answered.set()
            assert landed.wait(5)
        return reply

    jobs: list[Callable[[], None]] = []
    local = LocalRateBudget(10, late_reserve, clock=lambda: clock[0], submit=jobs.append)
    for _ in range(5):
        local.take([caller])
    clock[0] += 59.99
    late = threading.Thread(target=jobs.pop())
    late.start()
    assert answered.wait(5)
    clock[0] += 1  # the window ended before the answer came
    assert local.take([caller]) == [1, 60]  # the new window's first request reserves
    landed.set()
    late.join(5)
    for _ in range(4):
        local.take([caller])

    assert len(jobs) == 1  # the new grant's next batch is reserved ahead


def test_a_grant_whose_window_ends_this_millisecond_survives_forgetting_ended_ones(clock):
    """Redis may answer ``PTTL`` 0 (the key expires within the millisecond) when the budget
    holds enough counters to forget the ended ones: the request still gets its count."""
    left_ms = [60_000]

    def reserve(counters: Sequence[Counter], batches: Sequence[int]) -> list[int]:
        return [x for batch in batches for x in (batch, left_ms[0])]

    local = LocalRateBudget(10, reserve, clock=lambda: clock[0], submit=lambda job: job())
    for i in range(4 * 4096):
        local.take([Counter(f"c{i}", 100, 60)])
    left_ms[0] = 0

    assert local.take([Counter("last", 100, 60)]) == [1, 0]


def test_close_stops_the_budgets_own_thread_and_requests_still_count(shared, clock):
    """``close`` (the app's teardown) ends the reservation thread; a request after it reserves
    for itself, so nothing is admitted past the limit nor refused."""
    caller = Counter("c", 100_000, 60)
    local = LocalRateBudget(10, shared.reserve, clock=lambda: clock[0])
    assert [local.take([caller])[0] for _ in range(5)] == [1, 2, 3, 4, 5]  # 11..20 ahead
    threads = [t for t in threading.enumerate() if t.name.startswith("rate-budget")]
    assert threads

    local.close()

    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    counts = [local.take([caller])[0] for _ in range(20)]
    assert counts == sorted(counts)
    assert len(set(counts)) == 20
    assert max(counts) <= shared.counts["c"][0]
