"""A small, thread-safe circuit breaker guarding Redis calls (docs/architecture.md §5.5, cases C18).

Closed: calls pass. After ``failure_threshold`` consecutive outage failures it opens: calls are
refused at once (no socket timeout paid) for ``reset_timeout_s`` seconds. Then it admits exactly
one trial call (half-open): the trial's success closes it, its failure opens it again for a full
``reset_timeout_s``.

Every admitted call carries a ``Permit``. Results of calls admitted before the circuit last
opened are ignored: a slow call that started while Redis was healthy proves nothing about now,
and only the trial may close the circuit, because the caller (``redis_calls.RedisCalls``) runs
the cache repair before a trial and the cache must not be trusted before that repair.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Permit:
    """One admitted call. ``trial`` marks the half-open probe; ``epoch`` counts how many times
    the circuit had opened when the call was admitted."""

    trial: bool
    epoch: int


class Breaker(Protocol):
    """What a Redis adapter needs from a circuit breaker."""

    def admit(self) -> Permit | None:
        """A permit for one call, or ``None`` when the call must not go to Redis now."""

    def record_success(self, permit: Permit) -> None:
        """Redis answered the call."""

    def record_failure(self, permit: Permit) -> None:
        """The call failed because Redis is unreachable, refused or too slow."""

    def release(self, permit: Permit) -> None:
        """The call ended without saying anything about Redis's health (e.g. a bug)."""

    def seconds_since_healthy(self) -> float | None:
        """Seconds since the last success before the current outage; ``None`` if never."""


class CircuitBreaker:
    """Consecutive-failure circuit breaker. ``clock`` returns seconds (monotonic).

    Raises ``ValueError`` unless ``failure_threshold >= 1`` and ``reset_timeout_s > 0``.
    """

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
        self._epoch = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._healthy_at: float | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_running or self._cooled_down():
                return "half_open"
            return "open"

    def admit(self) -> Permit | None:
        """A permit, or ``None`` while open. In half-open state only one caller at a time gets
        a (trial) permit, until it reports its result."""
        with self._lock:
            if self._opened_at is None:
                return Permit(trial=False, epoch=self._epoch)
            if self._trial_running or not self._cooled_down():
                return None
            self._trial_running = True
            return Permit(trial=True, epoch=self._epoch)

    def record_success(self, permit: Permit) -> None:
        with self._lock:
            if permit.trial:
                self._opened_at = None
                self._trial_running = False
            elif permit.epoch != self._epoch or self._opened_at is not None:
                return
            self._failures = 0
            self._healthy_at = self._clock()

    def record_failure(self, permit: Permit) -> None:
        with self._lock:
            if permit.trial:
                self._trial_running = False
                self._opened_at = self._clock()
                return
            if permit.epoch != self._epoch or self._opened_at is not None:
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._clock()
                self._epoch += 1

    def release(self, permit: Permit) -> None:
        with self._lock:
            if permit.trial:
                self._trial_running = False

    def seconds_since_healthy(self) -> float | None:
        with self._lock:
            return None if self._healthy_at is None else self._clock() - self._healthy_at

    def _cooled_down(self) -> bool:
        assert self._opened_at is not None
        return self._clock() - self._opened_at >= self._reset_timeout_s


class NoBreaker:
    """A breaker that admits every call and never opens: for calls that must reach Redis even
    while the circuit is open, such as the cache repair the trial call runs."""

    def admit(self) -> Permit:
        return Permit(trial=False, epoch=0)

    def record_success(self, permit: Permit) -> None:
        pass

    def record_failure(self, permit: Permit) -> None:
        pass

    def release(self, permit: Permit) -> None:
        pass

    def seconds_since_healthy(self) -> float | None:
        return None
