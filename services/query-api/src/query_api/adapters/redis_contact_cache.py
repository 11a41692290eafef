"""The ``contact:{id}`` read cache in Redis, per ``contacts_domain.cache_protocol``.

Entry: hash ``{v: <version>, d: <resource JSON>}``, ``d`` empty for a tombstone. Refills run
``GUARDED_SET_LUA`` (EVALSHA, loaded on first use), the same script the worker writes with, so a
refill never replaces the same or a newer version, nor a newer tombstone.
"""

from __future__ import annotations

from contacts_domain.cache_protocol import GUARDED_SET_LUA, contact_key
from query_api.adapters.redis_calls import RedisCalls
from query_api.service_layer.ports import CacheUnavailable, ContactCache
from query_api.service_layer.records import CachedContact


class RedisContactCache(ContactCache):
    """``ContactCache`` over Redis. ``ttl_s`` is the TTL of a refilled entry in seconds."""

    def __init__(self, calls: RedisCalls, prefix: str, ttl_s: int) -> None:
        self._calls = calls
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._guarded_set = calls.client.register_script(GUARDED_SET_LUA)

    def get(self, contact_id: str) -> CachedContact | None:
        key = contact_key(self._prefix, contact_id)
        version, body = self._calls.run(lambda r: r.hmget(key, "v", "d"))
        if version is None:
            return None
        try:
            parsed = int(version)
        except ValueError:
            raise CacheUnavailable(f"malformed cache entry {key}") from None
        data = body.encode() if isinstance(body, str) else body
        return CachedContact(parsed, data or None)

    def refill(self, contact_id: str, version: int, body: bytes | None) -> bool:
        key = contact_key(self._prefix, contact_id)
        args: list[bytes | int] = [version, body or b"", self._ttl_s]
        written = self._calls.run(lambda r: self._guarded_set(keys=[key], args=args, client=r))
        return bool(written)
