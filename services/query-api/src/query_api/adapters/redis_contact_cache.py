"""The ``contact:{<workspace>/<id>}`` read cache in Redis, per ``contacts_infra.redis_keys``:
every entry and lease is its workspace's own (the key names it).

Entry: hash ``{v: <version>, d: <resource JSON>}``, ``d`` empty for a tombstone. Refills run
``GUARDED_SET_LUA`` (EVALSHA, loaded on first use), the same script the worker writes with, so a
refill never replaces the same or a newer version, nor a newer tombstone.

Refill lease (``refill:{<workspace>/<id>}``, ``SET NX PX``): the request that takes it reads
PostgreSQL and refills; a miss costs two round trips and a send: the read that takes the
lease (``GET_OR_LEASE_LUA``), the database read, and the refill that releases it
(``REFILL_AND_RELEASE_LUA``, sent without waiting for its reply by
``send_refill_and_release``); the others poll the entry and the lease in one round trip,
every 2 ms at first and at most every ``MAX_POLL_INTERVAL_S``, until the entry appears, the
lease is gone or ``wait_s`` seconds have passed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from redis.cluster import RedisCluster

from contacts_infra.redis_keys import (
    COUNTED_GET_OR_LEASE_LUA,
    GET_OR_LEASE_LUA,
    GUARDED_SET_LUA,
    REFILL_AND_RELEASE_LUA,
    RELEASE_LEASE_LUA,
    contact_key,
    refill_lease_key,
)
from query_api.adapters.redis_calls import RedisCalls
from query_api.service_layer.ports import (
    CacheUnavailable,
    CountedRead,
    ReadThroughContactCache,
    RefillEntry,
    WindowCounter,
)
from query_api.service_layer.records import CachedContact

#: First and longest pause, in seconds, between two polls of a waiting request.
FIRST_POLL_INTERVAL_S: Final = 0.002
MAX_POLL_INTERVAL_S: Final = 0.02


class RedisReadThroughContactCache(ReadThroughContactCache):
    """``ReadThroughContactCache`` over Redis.

    ``ttl_s`` is the TTL of a refilled entry in seconds; ``lease_ms`` the TTL of a refill lease
    in milliseconds (the longest a database read may take); ``wait_s`` how long, in seconds, a
    request that missed waits for another's refill (0: not at all).
    """

    def __init__(
        self,
        calls: RedisCalls,
        prefix: str,
        ttl_s: int,
        *,
        lease_ms: int = 4000,
        wait_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._calls = calls
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._lease_ms = lease_ms
        self._wait_s = wait_s
        self._clock = clock
        self._sleep = sleep
        self._guarded_set = calls.client.register_script(GUARDED_SET_LUA)
        self._release = calls.client.register_script(RELEASE_LEASE_LUA)
        self._get_or_lease = calls.client.register_script(GET_OR_LEASE_LUA)
        self._refill_and_release = calls.client.register_script(REFILL_AND_RELEASE_LUA)
        self._counted = calls.client.register_script(COUNTED_GET_OR_LEASE_LUA)

    def get(self, workspace: str, contact_id: str) -> CachedContact | None:
        key = contact_key(self._prefix, workspace, contact_id)
        version, body = self._calls.run(lambda r: r.hmget(key, "v", "d"))
        return _entry(key, version, body)

    def refill(self, workspace: str, contact_id: str, version: int, body: bytes | None) -> bool:
        key = contact_key(self._prefix, workspace, contact_id)
        args: list[bytes | int] = [version, body or b"", self._ttl_s]
        written = self._calls.script(self._guarded_set, [key], args)
        return bool(written)

    def refill_many(self, entries: Sequence[RefillEntry]) -> int:
        """One pipeline (one round trip, and a ``SCRIPT EXISTS`` check) of ``GUARDED_SET_LUA``
        per entry: the cache repair's many refills (``handlers.repair_cache``). On a Redis
        Cluster the entries' keys are in many slots: one ``refill`` each."""
        if isinstance(self._calls.client, RedisCluster):
            return super().refill_many(entries)
        if not entries:
            return 0

        def run(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for workspace, contact_id, version, body in entries:
                key = contact_key(self._prefix, workspace, contact_id)
                self._guarded_set(keys=[key], args=[version, body or b"", self._ttl_s], client=pipe)
            return list(pipe.execute())

        return sum(bool(written) for written in self._calls.run(run))

    def get_or_lease(
        self, workspace: str, contact_id: str
    ) -> tuple[CachedContact | None, str | None]:
        """One ``EVALSHA`` of ``GET_OR_LEASE_LUA``."""
        key = contact_key(self._prefix, workspace, contact_id)
        lease = refill_lease_key(self._prefix, workspace, contact_id)
        token = secrets.token_hex(8)
        args: list[str | int] = [token, self._lease_ms]
        version, body_or_taken = self._calls.script(self._get_or_lease, [key, lease], args)
        if version is not None:
            return _entry(key, version, body_or_taken), None
        return None, token if body_or_taken == 1 else None

    def get_or_lease_counted(
        self, workspace: str, contact_id: str, counters: Sequence[WindowCounter]
    ) -> CountedRead:
        """One ``EVALSHA`` of ``COUNTED_GET_OR_LEASE_LUA``."""
        key = contact_key(self._prefix, workspace, contact_id)
        lease = refill_lease_key(self._prefix, workspace, contact_id)
        token = secrets.token_hex(8)
        keys = [key, lease, *(c.key for c in counters)]
        args: list[str | int] = [token, self._lease_ms]
        args += [c.window_s for c in counters] + [c.amount for c in counters]
        first, second, counts = self._calls.script(self._counted, keys, args)
        counted = [int(n) for n in counts]
        if first is not None:
            return CountedRead(_entry(key, first, second), None, counted, over=False)
        return CountedRead(None, token if second == 1 else None, counted, over=second == 2)

    def refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> bool:
        """One ``EVALSHA`` of ``REFILL_AND_RELEASE_LUA``."""
        key = contact_key(self._prefix, workspace, contact_id)
        lease = refill_lease_key(self._prefix, workspace, contact_id)
        args: list[bytes | int | str] = [version, body or b"", self._ttl_s, token]
        written = self._calls.script(self._refill_and_release, [key, lease], args)
        return bool(written)

    def send_refill_and_release(
        self, workspace: str, contact_id: str, version: int, body: bytes | None, token: str
    ) -> None:
        """``REFILL_AND_RELEASE_LUA`` sent without waiting for its reply
        (``RedisCalls.send_script``)."""
        key = contact_key(self._prefix, workspace, contact_id)
        lease = refill_lease_key(self._prefix, workspace, contact_id)
        args: list[bytes | int | str] = [version, body or b"", self._ttl_s, token]
        self._calls.send_script(self._refill_and_release, [key, lease], args)

    def take_refill_lease(self, workspace: str, contact_id: str) -> str | None:
        key = refill_lease_key(self._prefix, workspace, contact_id)
        token = secrets.token_hex(8)
        taken = self._calls.run(lambda r: r.set(key, token, nx=True, px=self._lease_ms))
        return token if taken else None

    def release_refill_lease(self, workspace: str, contact_id: str, token: str) -> None:
        key = refill_lease_key(self._prefix, workspace, contact_id)
        self._calls.script(self._release, [key], [token])

    def wait_for_refill(self, workspace: str, contact_id: str) -> CachedContact | None:
        key = contact_key(self._prefix, workspace, contact_id)
        lease = refill_lease_key(self._prefix, workspace, contact_id)

        def poll(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.hmget(key, "v", "d")
            pipe.exists(lease)
            return list(pipe.execute())

        deadline = self._clock() + self._wait_s
        interval = FIRST_POLL_INTERVAL_S
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._sleep(min(interval, remaining))
            interval = min(2 * interval, MAX_POLL_INTERVAL_S)
            (version, body), leased = self._calls.run(poll)
            entry = _entry(key, version, body)
            if entry is not None or not leased:
                return entry


def _entry(key: str, version: bytes | str | None, body: bytes | str | None) -> CachedContact | None:
    if version is None:
        return None
    try:
        parsed = int(version)
    except ValueError:
        raise CacheUnavailable(f"malformed cache entry {key}") from None
    data = body.encode() if isinstance(body, str) else body
    return CachedContact(parsed, data or None)
