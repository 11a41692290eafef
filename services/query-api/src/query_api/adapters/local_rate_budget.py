"""Rate-limit counts for the hits the process serves from its local contact cache, without a
Redis call per request: a token bucket per counter, filled from the shared Redis counter in
batches (docs/architecture.md §5.5, "Local contact cache").

A request served from Redis counts itself in the cache read's script (``COUNT_WINDOWS_LUA``,
``INCR``). A request served locally takes one token of each of its counters here; when a
counter has none left, one ``RESERVE_LUA`` call adds ``batch`` to the shared Redis counter (the
same key, window and expiry rule) and the process hands those counts out one per request.

The next batch is reserved while half of the current one is left, on a thread of the budget's
own (``submit``), so no request waits for Redis but one that finds no token at all: the first
of a window, or one after a reservation ahead failed. A lock held across every reservation had
made all of a process's requests wait for one round trip each 64 requests, and for the GIL
after it; the request that found the tokens low and reserved them itself still put a round
trip on one request in 32 (bench/README.md, "Session 18": the hit's p99 at half rate).

What that changes, and its bound: Redis's count is always at least the number of requests
admitted, so the limit is never exceeded (no overshoot); but tokens a process reserved and has
not used yet count in the window, so other callers of the same counter (other processes) may be
refused up to ``2 × batch - 1`` requests per process and counter early in a window (what is left
of a batch, and the next one). ``batch`` is capped at 1% of the counter's amount
(``MAX_SHARE``), at least 1; a batch of 1 (a limit under 200) is never reserved ahead, so a
small limit is counted one request at a time (exact), and the early refusals stay under 2% of
the limit per process. The ``RateLimit-*`` headers and the 429's ``Retry-After`` keep their
meaning: the count a local request reports is the one its reserved token stands for in the
shared window, and the reset is the window's end as Redis reported it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from query_api.service_layer.ports import CacheUnavailable, WindowCounter

#: KEYS = counters; ARGV[i] = how many to add to KEYS[i], ARGV[#KEYS + i] = its window in
#: seconds. Adds the batch to each fixed-window counter (a counter that had no expiry, i.e. one
#: this call created, gets its window as expiry, like ``COUNT_WINDOWS_LUA``'s first hit), and
#: returns ``{count, milliseconds to the window's end}`` per counter.
RESERVE_LUA: Final = """
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCRBY', KEYS[i], tonumber(ARGV[i]))
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = 1000 * tonumber(ARGV[#KEYS + i])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out
"""
#: The largest share of a counter's amount one reservation takes.
MAX_SHARE: Final = 0.01

#: Runs a reservation ahead off the request's path: ``submit(job)`` calls ``job()`` later.
Submit = Callable[[Callable[[], None]], object]

log = logging.getLogger(__name__)

#: ``reserve(counters, batches)`` → ``[count, milliseconds left, ...]`` per counter
#: (``RESERVE_LUA``); raises ``CacheUnavailable`` when Redis does not answer.
Reserve = Callable[[Sequence[WindowCounter], Sequence[int]], list[int]]


@dataclass(slots=True)
class _Grant:
    """The counts ``next``..``last`` of a counter's window reserved by this process (the
    window's ``amount`` caps what may be admitted), valid until ``ends_at`` (monotonic)."""

    next: int
    last: int
    amount: int
    ends_at: float

    def exhausted(self) -> bool:
        return self.next > self.last and self.last < self.amount


#: Kept in place of a batch ahead whose reservation failed: already ended, so never taken up.
_FAILED: Final = _Grant(next=1, last=0, amount=0, ends_at=float("-inf"))


class LocalRateBudget:
    """Token buckets of the locally served requests, reserved from Redis ``batch`` at a time
    (module doc). Thread-safe; one per process."""

    def __init__(
        self,
        batch: int,
        reserve: Reserve,
        *,
        clock: Callable[[], float] = time.monotonic,
        submit: Submit | None = None,
    ) -> None:
        """``submit`` runs reservations ahead (default: one thread of the budget's own, started
        at the first). A forked child starts with no tokens (the parent's are the parent's:
        admitting them twice would go past the limit) and a thread of its own."""
        self._batch = batch
        self._reserve = reserve
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        if submit is None:
            self._executor = _own_executor()
            submit = self._executor.submit
        self._submit: Submit = submit
        self._grants: dict[str, _Grant] = {}
        #: Batches reserved ahead, each taken up when its counter's grant is used up or ends.
        self._ahead: dict[str, _Grant] = {}
        #: Counters whose batch ahead is being reserved (by ``submit``'s thread, without the lock).
        self._reserving: set[str] = set()
        # Held across a reservation only when a request has no token at all (the first of a
        # window, or after a failed reservation ahead): the other threads then wait for its
        # tokens instead of reserving a batch each (bounded by the Redis socket timeout).
        self._lock = threading.Lock()
        budget = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _start_afresh_in_child(budget))

    def _start_afresh_in_child(self) -> None:
        """After a fork, in the child (its only thread): forget the parent's tokens, its
        reservations in flight and its lock, which another thread of the parent may have held."""
        self._lock = threading.Lock()
        self._grants, self._ahead, self._reserving = {}, {}, set()
        if self._executor is not None:
            self._executor = _own_executor()
            self._submit = self._executor.submit

    def close(self) -> None:
        """Stop the budget's own reservation thread once its jobs are done, without waiting
        for them. Reservations ahead submitted afterwards are refused and kept as failed
        (``_submit_ahead``): a request that finds no token then reserves for itself."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def batch_for(self, counter: WindowCounter) -> int:
        """How many counts one reservation of ``counter`` takes (module doc)."""
        return max(1, min(self._batch, int(counter.amount * MAX_SHARE)))

    def take(self, counters: Sequence[WindowCounter]) -> list[int]:
        """Count one request in ``counters``: ``[count, seconds to the window's end]`` per
        counter, as ``COUNT_WINDOWS_LUA`` returns them (a count above the amount: past the
        limit, as Redis would have counted it). Reserves from Redis first for the counters
        whose tokens ran out or whose window ended, and hands the next batch of those down to
        half a batch to ``submit``. Raises ``CacheUnavailable`` (nothing counted
        locally: the caller counts the request another way); a failed reservation ahead is
        only dropped (this request is counted)."""
        with self._lock:
            now = self._clock()
            stale = [c for c in counters if self._needs_reservation(c.key, now)]
            if stale:
                self._reserve_for(stale, now)
            counts: list[int] = []
            for counter in counters:
                grant = self._grants[counter.key]
                if grant.next <= grant.last:
                    count = grant.next
                    grant.next += 1
                else:  # the window is used up: past the limit until it ends
                    count = max(grant.last, grant.amount) + 1
                counts += [count, max(0, int(grant.ends_at - now))]
            low = [c for c in counters if self._runs_low(c)]
            self._reserving.update(c.key for c in low)
        if low:
            self._submit_ahead(low)
        return counts

    def _submit_ahead(self, counters: Sequence[WindowCounter]) -> None:
        """Hand the reservation ahead of ``counters`` to ``submit``; when it refuses (no thread
        can be started, the interpreter is exiting), drop it as a failed one: the request is
        counted already."""
        try:
            self._submit(functools.partial(self._reserve_ahead, counters))
        except RuntimeError:
            log.exception("rate-limit reservation ahead not submitted")
            with self._lock:
                self._reserving.difference_update(c.key for c in counters)
                self._ahead.update((c.key, _FAILED) for c in counters)

    def _needs_reservation(self, key: str, now: float) -> bool:
        """Whether ``key`` has no token to give now, once a batch reserved ahead (if any, and
        its window not ended) has replaced a used-up or ended grant."""
        grant = self._grants.get(key)
        if grant is not None and now < grant.ends_at and not grant.exhausted():
            return False
        ahead = self._ahead.pop(key, None)
        if ahead is not None and now < ahead.ends_at:
            self._grants[key] = ahead
            return False
        return True

    def _runs_low(self, counter: WindowCounter) -> bool:
        """Whether ``counter``'s next batch should be reserved now: half a batch or less left,
        the window not used up, a batch above 1, none reserved or being reserved already."""
        batch = self.batch_for(counter)
        grant = self._grants[counter.key]
        return (
            batch > 1
            and grant.last < grant.amount
            and grant.last - grant.next + 1 <= batch // 2
            and counter.key not in self._ahead
            and counter.key not in self._reserving
        )

    def _reserve_ahead(self, counters: Sequence[WindowCounter]) -> None:
        """Reserve the next batch of ``counters`` (``submit``'s job, without the lock); kept in
        ``_ahead``. Never raises: a failure is kept as ``_FAILED``."""
        now = self._clock()
        batches = [self.batch_for(c) for c in counters]
        try:
            reply: list[int] | None = self._reserve(counters, batches)
        except CacheUnavailable:
            reply = None
        except Exception:  # a defect: on the budget's own thread, nobody else would see it
            log.exception("rate-limit reservation ahead failed")
            reply = None
        with self._lock:
            self._reserving.difference_update(c.key for c in counters)
            landed = self._clock()
            for i, counter in enumerate(counters):
                # Failed: not tried again ahead for this grant (each try could wait for the
                # socket timeout); the request that finds no token reserves, or fails, itself.
                ahead = _FAILED if reply is None else _grant(counter, batches[i], reply, i, now)
                # A batch of a window that ended while it was reserved is of no use, and kept
                # it would stop the next window's grant from being reserved ahead.
                if ahead is _FAILED or ahead.ends_at > landed:
                    self._ahead[counter.key] = ahead

    def _reserve_for(self, counters: Sequence[WindowCounter], now: float) -> None:
        batches = [self.batch_for(c) for c in counters]
        reply = self._reserve(counters, batches)
        # Forget ended windows (many callers over time) before adding these grants: one whose
        # window ends now (``PTTL`` 0) still serves the request that reserved it.
        if len(self._grants) >= 4 * 4096:
            self._grants = {k: g for k, g in self._grants.items() if g.ends_at > now}
            self._ahead = {k: g for k, g in self._ahead.items() if g.ends_at > now}
        for i, counter in enumerate(counters):
            self._grants[counter.key] = _grant(counter, batches[i], reply, i, now)


def _own_executor() -> ThreadPoolExecutor:
    """A budget's own reservation thread (started at the first job)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rate-budget")


def _start_afresh_in_child(budget: weakref.ref[LocalRateBudget]) -> None:
    """The at-fork hook of a budget (a weak reference: a budget's hook does not keep it)."""
    alive = budget()
    if alive is not None:
        alive._start_afresh_in_child()


def _grant(counter: WindowCounter, batch: int, reply: list[int], i: int, now: float) -> _Grant:
    """The grant of ``counter`` from ``RESERVE_LUA``'s ``reply`` (its ``i``-th pair) for a
    reservation of ``batch`` made at ``now``."""
    total, left_ms = int(reply[2 * i]), int(reply[2 * i + 1])
    first = total - batch + 1
    return _Grant(
        next=first,
        last=min(total, counter.amount) if first <= counter.amount else first - 1,
        amount=counter.amount,
        ends_at=now + left_ms / 1000,
    )
