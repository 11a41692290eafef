"""Redis client construction and the one guarded way the adapters call Redis.

redis-py's defaults would turn a Redis outage into an API outage: ``redis.Redis()`` waits 5 s
on a socket and retries a failed command up to 10 times with backoff. Here every command is
bounded by the settings' socket and connect timeouts, with no retry, behind a circuit breaker,
and every failure surfaces as ``CacheUnavailable``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from query_api.adapters.circuit_breaker import Breaker, Permit
from query_api.service_layer.ports import CacheUnavailable
from query_api.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Errors that say Redis itself is unwell; they count towards opening the circuit.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def build_client(settings: Settings) -> redis.Redis:
    """A client with bounded, non-retried commands. It connects lazily; its pool notices a
    fork (it compares the process id) and opens fresh connections in the child."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        client_name="query-api",
    )


class RedisCalls:
    """Runs Redis commands through a circuit breaker.

    ``run`` raises ``CacheUnavailable`` at once while the circuit is open, and for any
    ``redis.RedisError`` or socket error (only outages count as breaker failures; a command
    error such as WRONGTYPE means Redis answered).

    ``before_trial(seconds)`` runs before the half-open trial call, with the seconds since Redis
    last answered before the outage (``None``: it never did in this process). It is the cache
    repair (``handlers.repair_cache``): the circuit closes only when it returns, so no entry
    that went stale during the outage is served after it. When it raises, the trial counts as
    failed and the circuit stays open.
    """

    def __init__(
        self,
        client: redis.Redis,
        breaker: Breaker,
        before_trial: Callable[[float | None], object] = lambda _seconds: None,
    ) -> None:
        self.client = client
        self._breaker = breaker
        self._before_trial = before_trial

    def run(self, command: Callable[[redis.Redis], T]) -> T:
        permit = self._breaker.admit()
        if permit is None:
            raise CacheUnavailable("Redis circuit is open")
        if permit.trial:
            self._repair_before_trial(permit)
        try:
            result = command(self.client)
        except OUTAGE_ERRORS as exc:
            self._breaker.record_failure(permit)
            raise CacheUnavailable(f"Redis unavailable: {exc}") from exc
        except redis.RedisError as exc:
            self._breaker.record_success(permit)
            raise CacheUnavailable(f"Redis command failed: {exc}") from exc
        except BaseException:
            self._breaker.release(permit)
            raise
        self._breaker.record_success(permit)
        return result

    def _repair_before_trial(self, permit: Permit) -> None:
        try:
            self._before_trial(self._breaker.seconds_since_healthy())
        except Exception as exc:
            # PostgreSQL or Redis failed during the repair: keep bypassing the cache.
            log.warning("cache repair before closing the Redis circuit failed: %s", exc)
            self._breaker.record_failure(permit)
            raise CacheUnavailable(f"cache repair failed: {exc}") from exc
        except BaseException:
            self._breaker.release(permit)
            raise
