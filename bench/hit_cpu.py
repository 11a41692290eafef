"""CPU per cache hit of the query API in-process, local contact cache on or off.

``.venv/bin/python bench/hit_cpu.py SIZE N``: builds the real app (WSGI fast path,
authentication, rate limits of 10,000,000/minute, metrics) with ``QUERY_LOCAL_CACHE_SIZE=SIZE``
against the Redis of ``REDIS_URL`` (default local), writes 100 contacts into its cache under a
prefix of its own, reads each once, then times ``N`` reads (raw WSGI calls, no HTTP server)
and prints the CPU and wall time per hit, and the local cache's hits and fills. PostgreSQL is
not read (every read is a hit). Deletes its keys at the end. Not a test; see bench/README.md.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from typing import Any

import redis

from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.redis_keys import GUARDED_SET_LUA, contact_key
from query_api.adapters.local_contact_cache import LocalContactCache
from query_api.entrypoints.app import create_app
from query_api.settings import Settings

IDS = 100


def main(size: int, n: int) -> None:
    key = new_api_key()
    prefix = f"hitcpu{uuid.uuid4().hex[:6]}:"
    unlimited = RateLimitSettings(default="10000000/minute", workspace="10000000/minute")
    settings = Settings(
        redis_prefix=prefix,
        local_cache_size=size,
        auth=AuthSettings(api_keys=(ApiKeyEntry(hash_api_key(key), scopes.ALL),)),
        rate_limits=unlimited,
    )
    app = create_app(settings)
    ports = app.extensions["query_api"].ports
    client = redis.Redis.from_url(settings.redis_url)
    ids = [str(uuid.uuid4()) for _ in range(IDS)]
    body = b'{"x":"' + b"a" * 400 + b'"}'
    for contact_id in ids:
        client.eval(GUARDED_SET_LUA, 1, contact_key(prefix, "default", contact_id), 1, body, 600)
    if isinstance(ports.cache, LocalContactCache):
        ports.cache.listener.wait_ready(5)
    try:
        for contact_id in ids:
            wsgi_get(app, key, contact_id)
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            wsgi_get(app, key, ids[i % IDS])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"QUERY_LOCAL_CACHE_SIZE={size}: {1e6 * cpu / n:.1f} µs CPU per hit, "
            f"{1e6 * wall / n:.1f} µs wall"
        )
        if isinstance(ports.cache, LocalContactCache):
            print(f"local hits {ports.cache.local_hits}, fills {ports.cache.fills}")
    finally:
        for stale in client.scan_iter(f"{prefix}*"):
            client.delete(stale)
        ports.close()


def wsgi_environ(path: str, api_key: str) -> dict[str, Any]:
    """The WSGI environ of an authenticated ``GET path`` (a query string after ``?``) from
    127.0.0.1, as the bench's in-process profiles send it (bench/miss_cpu.py, list_cpu.py)."""
    route, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
        "REMOTE_ADDR": "127.0.0.1",
    }


def profile_option(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` without ``--profile FILE``, and ``FILE`` (or ``None``)."""
    args = list(argv)
    if "--profile" not in args:
        return args, None
    i = args.index("--profile")
    out = args[i + 1]
    del args[i : i + 2]
    return args, out


def wsgi_get(app: Any, api_key: str, contact_id: str) -> None:
    """``GET /v1/contacts/{contact_id}`` through ``app``'s WSGI stack in this process; raises
    ``RuntimeError`` unless it answers 200 (bench/miss_cpu.py uses it too)."""
    status: list[str] = []
    environ = wsgi_environ(f"/v1/contacts/{contact_id}", api_key)
    b"".join(app.wsgi_app(environ, lambda s, _h: status.append(s)))
    if not status[0].startswith("200"):
        raise RuntimeError(f"{contact_id}: {status[0]}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
