"""The one guarded way the query API's adapters call Redis.

The client (``contacts_infra.redis_client.create_redis``) bounds every command by the settings'
socket and connect timeouts, with no retry; here every command also goes through a circuit
breaker, and every failure surfaces as ``CacheUnavailable``, so a Redis outage is never an API
outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
from redis.commands.core import Script

from query_api.adapters.circuit_breaker import Breaker, Permit
from query_api.adapters.redis_scripts import Arg, Key, ScriptRunner
from query_api.service_layer.ports import CacheUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Errors that say Redis itself is unwell; they count towards opening the circuit.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


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

    ``scripts`` (a ``ScriptRunner`` of ``client``'s server; ``None`` for a cluster client)
    runs ``script`` calls without redis-py's per-call layers.
    """

    def __init__(
        self,
        client: redis.Redis,
        breaker: Breaker,
        before_trial: Callable[[float | None], object] = lambda _seconds: None,
        scripts: ScriptRunner | None = None,
    ) -> None:
        self.client = client
        self._breaker = breaker
        self._before_trial = before_trial
        self._scripts = scripts

    def script(self, script: Script, keys: Sequence[Key], args: Sequence[Arg]) -> Any:
        """``run`` of one call of ``script`` (registered on ``client``) with ``keys`` and
        ``args``: by the ``ScriptRunner`` when there is one, else redis-py's ``EVALSHA``."""
        scripts = self._scripts
        if scripts is None:
            return self.run(lambda r: script(keys=keys, args=args, client=r))
        return self.run(lambda _r: scripts.run(script, keys, args))

    def send_script(self, script: Script, keys: Sequence[Key], args: Sequence[Arg]) -> None:
        """``script`` like ``script``, without waiting for its reply: sent on the
        ``ScriptRunner``'s reply-less connection (``ScriptRunner.send``), so its result and its
        errors are never seen; without a ``ScriptRunner`` (a cluster client) it is ``script``,
        reply awaited and dropped. Raises ``CacheUnavailable`` when it cannot be sent."""
        scripts = self._scripts
        if scripts is None:
            self.script(script, keys, args)
            return
        self.run(lambda _r: scripts.send(script, keys, args))

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
