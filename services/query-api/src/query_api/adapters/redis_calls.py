"""Redis client construction and the one guarded way the adapters call Redis.

redis-py's defaults would turn a Redis outage into an API outage: a 5 s socket timeout and
three retries with exponential backoff per command. Here every command is bounded by the
settings' socket and connect timeouts, with no retry, behind a circuit breaker, and every
failure surfaces as ``CacheUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from query_api.adapters.circuit_breaker import Breaker
from query_api.service_layer.ports import CacheUnavailable
from query_api.settings import Settings

T = TypeVar("T")

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
    error such as WRONGTYPE does not).
    """

    def __init__(self, client: redis.Redis, breaker: Breaker) -> None:
        self.client = client
        self._breaker = breaker

    def run(self, command: Callable[[redis.Redis], T]) -> T:
        if not self._breaker.allow():
            raise CacheUnavailable("Redis circuit is open")
        try:
            result = command(self.client)
        except OUTAGE_ERRORS as exc:
            self._breaker.record_failure()
            raise CacheUnavailable(f"Redis unavailable: {exc}") from exc
        except redis.RedisError as exc:
            self._breaker.record_success()
            raise CacheUnavailable(f"Redis command failed: {exc}") from exc
        self._breaker.record_success()
        return result
