"""The Redis circuit breaker, on a fake clock."""

from __future__ import annotations

import pytest

from query_api.adapters.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout_s=5.0, clock=clock)


def test_opens_after_consecutive_failures_only(breaker):
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()

    assert breaker.state == "open"
    assert not breaker.allow()


def test_lets_one_trial_through_after_the_reset_timeout(breaker, clock):
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0

    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.record_success()

    assert breaker.state == "closed"
    assert breaker.allow()


def test_a_failed_trial_opens_it_again_for_a_full_timeout(breaker, clock):
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5.0
    assert breaker.allow()

    breaker.record_failure()

    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)])
def test_refuses_nonsense_settings(threshold, reset):
    with pytest.raises(ValueError, match="required"):
        CircuitBreaker(threshold, reset)
