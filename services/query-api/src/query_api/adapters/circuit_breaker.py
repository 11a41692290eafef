"""A small, thread-safe circuit breaker guarding Redis calls (DESIGN.md §5.5).

Closed: calls pass. After ``failure_threshold`` consecutive failures it opens: calls are refused
at once (no socket timeout paid) for ``reset_timeout_s`` seconds. Then it lets exactly one trial
call through (half-open): success closes it, failure opens it again.

This is the seam issue #4 hardens: anything with ``allow``, ``record_success`` and
``record_failure`` can replace it in ``redis_calls.RedisCalls``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

BreakerState = Literal["closed", "open", "half_open"]


class Breaker(Protocol):
    """What a Redis adapter needs from a circuit breaker."""

    def allow(self) -> bool: ...
    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...


class CircuitBreaker:
    """Consecutive-failure circuit breaker. ``clock`` returns seconds (monotonic)."""

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout_s <= 0:
            raise ValueError("failure_threshold >= 1 and reset_timeout_s > 0 are required")
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_running or self._cooled_down():
                return "half_open"
            return "open"

    def allow(self) -> bool:
        """Whether a call may go to Redis now. In half-open state only one caller gets True
        until it reports its result."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_running or not self._cooled_down():
                return False
            self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._clock()

    def _cooled_down(self) -> bool:
        assert self._opened_at is not None
        return self._clock() - self._opened_at >= self._reset_timeout_s
