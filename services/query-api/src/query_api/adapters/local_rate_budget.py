"""Rate-limit counts for the hits the process serves from its local contact cache, without a
Redis call per request: a token bucket per counter, filled from the shared Redis counter in
batches (docs/architecture.md §5.5, "Local contact cache").

A request served from Redis counts itself in the cache read's script (``COUNT_WINDOWS_LUA``,
``INCR``). A request served locally takes one token of each of its counters here; when a
counter has none left, one ``RESERVE_LUA`` call adds ``batch`` to the shared Redis counter (the
same key, window and expiry rule) and the process hands those counts out one per request.

What that changes, and its bound: Redis's count is always at least the number of requests
admitted, so the limit is never exceeded (no overshoot); but tokens a process reserved and has
not used yet count in the window, so other callers of the same counter (other processes) may be
refused up to ``batch - 1`` requests per process and counter early in a window. ``batch`` is
capped at 1% of the counter's amount (``MAX_SHARE``), at least 1, so a small limit is reserved
one request at a time (exact), and the early refusals stay under 1% of the limit per process.
The ``RateLimit-*`` headers and the 429's ``Retry-After`` keep their meaning: the count a local
request reports is the one its reserved token stands for in the shared window, and the reset is
the window's end as Redis reported it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from query_api.service_layer.ports import WindowCounter

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


class LocalRateBudget:
    """Token buckets of the locally served requests, reserved from Redis ``batch`` at a time
    (module doc). Thread-safe; one per process."""

    def __init__(
        self, batch: int, reserve: Reserve, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._batch = batch
        self._reserve = reserve
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        # Held across a reservation: the other threads of the process wait for its tokens
        # instead of reserving a batch each (bounded by the Redis socket timeout).
        self._lock = threading.Lock()

    def batch_for(self, counter: WindowCounter) -> int:
        """How many counts one reservation of ``counter`` takes (module doc)."""
        return max(1, min(self._batch, int(counter.amount * MAX_SHARE)))

    def take(self, counters: Sequence[WindowCounter]) -> list[int]:
        """Count one request in ``counters``: ``[count, seconds to the window's end]`` per
        counter, as ``COUNT_WINDOWS_LUA`` returns them (a count above the amount: past the
        limit, as Redis would have counted it). Reserves from Redis first for the counters
        whose tokens ran out or whose window ended. Raises ``CacheUnavailable`` (nothing
        counted locally: the caller counts the request another way)."""
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
            return counts

    def _needs_reservation(self, key: str, now: float) -> bool:
        grant = self._grants.get(key)
        return grant is None or now >= grant.ends_at or grant.exhausted()

    def _reserve_for(self, counters: Sequence[WindowCounter], now: float) -> None:
        batches = [self.batch_for(c) for c in counters]
        reply = self._reserve(counters, batches)
        for i, counter in enumerate(counters):
            total, left_ms = int(reply[2 * i]), int(reply[2 * i + 1])
            first = total - batches[i] + 1
            self._grants[counter.key] = _Grant(
                next=first,
                last=min(total, counter.amount) if first <= counter.amount else first - 1,
                amount=counter.amount,
                ends_at=now + left_ms / 1000,
            )
        if len(self._grants) > 4 * 4096:  # forget ended windows (many callers over time)
            self._grants = {k: g for k, g in self._grants.items() if g.ends_at > now}
