"""The Redis circuit breaker on a fake clock, and ``RedisCalls`` running the cache repair before
the half-open trial (commands are plain functions: nothing connects)."""

from __future__ import annotations

import pytest
import redis

from query_api.adapters.circuit_breaker import CircuitBreaker, Permit
from query_api.adapters.redis_calls import RedisCalls
from query_api.service_layer.ports import CacheUnavailable, ReadModelUnavailable


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


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.admit()
        assert permit is not None
        breaker.record_failure(permit)


def open_then_cool_down(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, 3)
    clock.now += 5.0


def test_opens_after_consecutive_failures_only(breaker):
    fail(breaker, 2)
    breaker.record_success(breaker.admit())
    fail(breaker, 2)
    assert breaker.admit() is not None
    fail(breaker)

    assert breaker.state == "open"
    assert breaker.admit() is None


def test_lets_one_trial_through_after_the_reset_timeout(breaker, clock):
    open_then_cool_down(breaker, clock)

    trial = breaker.admit()
    assert trial == Permit(trial=True, epoch=1)
    assert breaker.admit() is None  # only one trial at a time
    breaker.record_success(trial)

    assert breaker.state == "closed"
    assert breaker.admit() == Permit(trial=False, epoch=1)


def test_a_failed_trial_opens_it_again_for_a_full_timeout(breaker, clock):
    open_then_cool_down(breaker, clock)
    breaker.record_failure(breaker.admit())

    assert breaker.admit() is None
    clock.now += 4.9
    assert breaker.admit() is None
    clock.now += 0.1
    assert breaker.admit().trial


def test_a_released_trial_lets_the_next_caller_try(breaker, clock):
    open_then_cool_down(breaker, clock)
    breaker.release(breaker.admit())

    assert breaker.admit().trial


def test_late_results_of_calls_admitted_before_it_opened_are_ignored(breaker, clock):
    slow = [breaker.admit() for _ in range(2)]
    fail(breaker, 3)

    breaker.record_success(slow[0])  # Redis answered a call sent before the outage
    assert breaker.state == "open"

    clock.now += 5.0
    breaker.record_success(breaker.admit())
    breaker.record_failure(slow[1])
    fail(breaker, 2)
    assert breaker.state == "closed"


def test_counts_seconds_since_the_last_success_before_the_outage(breaker, clock):
    assert breaker.seconds_since_healthy() is None
    breaker.record_success(breaker.admit())
    clock.now += 2.0
    fail(breaker, 3)
    clock.now += 8.0

    assert breaker.seconds_since_healthy() == 10.0


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)])
def test_refuses_nonsense_settings(threshold, reset):
    with pytest.raises(ValueError, match="required"):
        CircuitBreaker(threshold, reset)


class Repairs:
    """Records the repair calls; ``error`` makes the next one raise it."""

    def __init__(self) -> None:
        self.calls: list[float | None] = []
        self.error: Exception | None = None

    def __call__(self, seconds: float | None) -> None:
        self.calls.append(seconds)
        if self.error is not None:
            raise self.error


@pytest.fixture
def repairs() -> Repairs:
    return Repairs()


@pytest.fixture
def calls(breaker, repairs) -> RedisCalls:
    # A client that is never used to connect: the commands below are plain functions.
    return RedisCalls(redis.Redis.from_url("redis://127.0.0.1:1/0"), breaker, repairs)


def answer(_client):
    return "answer"


def outage(_client):
    raise redis.ConnectionError("refused")


def test_outages_open_the_circuit_and_then_calls_are_refused_at_once(calls, breaker, repairs):
    for _ in range(3):
        with pytest.raises(CacheUnavailable, match="unavailable"):
            calls.run(outage)

    with pytest.raises(CacheUnavailable, match="circuit is open"):
        calls.run(answer)
    assert repairs.calls == []


def test_a_command_error_is_an_answer_not_an_outage(calls, breaker):
    def wrongtype(_client):
        raise redis.ResponseError("WRONGTYPE")

    for _ in range(5):
        with pytest.raises(CacheUnavailable, match="command failed"):
            calls.run(wrongtype)
    assert breaker.state == "closed"


def test_the_trial_repairs_the_cache_before_its_command_and_closes(calls, clock, repairs):
    assert calls.run(answer) == "answer"
    clock.now += 1.0
    for _ in range(3):
        with pytest.raises(CacheUnavailable):
            calls.run(outage)
    clock.now += 5.0

    assert calls.run(answer) == "answer"

    assert repairs.calls == [6.0]
    assert calls.run(answer) == "answer"
    assert repairs.calls == [6.0]


@pytest.mark.parametrize(
    "error", [ReadModelUnavailable("db down"), CacheUnavailable("Redis failing again")]
)
def test_a_failed_repair_keeps_the_circuit_open(calls, breaker, clock, repairs, error):
    open_then_cool_down(breaker, clock)
    repairs.error = error

    with pytest.raises(CacheUnavailable, match="repair failed"):
        calls.run(answer)

    assert breaker.state == "open"
    repairs.error = None
    clock.now += 5.0
    assert calls.run(answer) == "answer"
    assert len(repairs.calls) == 2


def test_a_bug_in_a_command_does_not_wedge_the_half_open_circuit(calls, breaker, clock):
    open_then_cool_down(breaker, clock)

    def bug(_client):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        calls.run(bug)

    assert calls.run(answer) == "answer"
    assert breaker.state == "closed"
