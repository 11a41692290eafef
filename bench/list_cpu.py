"""CPU per list page and per prefix search of the query API in-process, with an optional profile.

``.venv/bin/python bench/list_cpu.py N [--profile FILE]``: builds the real app (authentication,
rate limits of 10,000,000/minute, metrics) against ``contacts_bench`` (``QUERY_DATABASE_URL``
with the bench's database) and the Redis of ``REDIS_URL``, under a key prefix of its own, and
makes the requests of the bench's list and search figures (``run.py``, ``measure_lists``): first
pages in two sort orders and cursor pages in the four, and ``q=<3 letters>`` searches, taken
from a sample of the large workspace's rows. Makes ``N`` of each kind (raw WSGI calls, no HTTP
server, one thread) after a warm-up and prints the process's CPU and wall time per request and
a digest of the response bodies (equal digests: the same bytes, for an A/B of a change). With
``--profile FILE``, cProfile of both loads is written to ``FILE``. Not a test; see
bench/README.md, "Session 16: list page CPU".
"""

from __future__ import annotations

import cProfile
import hashlib
import os
import sys
import time
import uuid
from typing import Any

import dataset  # bench/ (the script's directory): the loaded set's workspace and cut-off
import psycopg2
import redis
import stack
from hit_cpu import profile_option, wsgi_environ

from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from query_api.entrypoints.app import create_app
from query_api.service_layer import cursor
from query_api.service_layer.listing import ListFilters, Position, Sort
from query_api.service_layer.token_key import TokenKey
from query_api.settings import Settings

SORTS = ("created_at", "-created_at", "last_name", "-last_name")
#: Headers whose values change from one run to the next (digested by name only).
VOLATILE = frozenset({"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset"})


def _rows(dsn: str, n: int) -> list[tuple[str, Any, str]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id::text, created_at, last_name_key FROM contacts TABLESAMPLE SYSTEM (1)"
            " REPEATABLE (16) WHERE workspace = %s AND alive AND created_at < %s LIMIT %s",
            (dataset.LARGE_WORKSPACE, dataset.LOADED_BEFORE, n),
        )
        return list(cur.fetchall())


def paths(rows: list[tuple[str, Any, str]], token_key: TokenKey) -> tuple[list[str], list[str]]:
    """The list and search paths of ``run.py``'s ``measure_lists`` for ``rows``, with cursors
    signed with ``token_key`` (the app's)."""
    lists = ["/v1/contacts?limit=20", "/v1/contacts?limit=20&sort=last_name"]
    for n, (contact_id, created_at, last_name_key) in enumerate(rows):
        sort = Sort.parse(SORTS[n % 4])
        key = created_at if sort.key == "created_at" else last_name_key
        token = cursor.encode(
            dataset.LARGE_WORKSPACE, sort, ListFilters(), Position(key, contact_id), key=token_key
        )
        lists.append(f"/v1/contacts?limit=20&cursor={token}")
    prefixes = sorted({r[2][:3] for r in rows if len(r[2]) >= 3})
    return lists, [f"/v1/contacts?limit=20&q={p}" for p in prefixes]


def wsgi_get(app: Any, api_key: str, path: str) -> bytes:
    """The headers (in order; ``VOLATILE`` ones without their values) and body of ``GET path``
    through ``app``'s WSGI stack; raises unless it answers 200."""
    environ = wsgi_environ(path, api_key)
    status: list[str] = []
    headers: list[Any] = []
    body = b"".join(app.wsgi_app(environ, lambda s, h: (status.append(s), headers.append(h))))
    if not status[0].startswith("200"):
        raise RuntimeError(f"{path}: {status[0]} {body[:200]!r}")
    kept = [(k, v if k not in VOLATILE else "") for k, v in headers[0]]
    return repr(kept).encode() + body


def main(n: int, profile: str | None) -> None:
    key = new_api_key()
    prefix = f"listcpu{uuid.uuid4().hex[:6]}:"
    base = Settings.from_env(os.environ)
    settings = base.model_copy(
        update={
            "database_url": stack.with_database(base.database_url, stack.BENCH_DATABASE),
            "redis_prefix": prefix,
            "auth": AuthSettings(api_keys=(ApiKeyEntry(hash_api_key(key), scopes.ALL),)),
            "rate_limits": RateLimitSettings(
                default="10000000/minute", workspace="10000000/minute"
            ),
        }
    )
    admin_url = stack.with_database(os.environ["DATABASE_URL"], stack.BENCH_DATABASE)
    lists, searches = paths(
        _rows(stack.libpq_url(admin_url), 500), TokenKey.of(settings.token_secret)
    )
    app = create_app(settings)
    ports = app.extensions["query_api"].ports
    client = redis.Redis.from_url(settings.redis_url)
    profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU, not waits
    try:
        for label, todo in (("list", lists), ("search", searches)):
            for path in todo[:20]:  # warm: pool connections, compiled statements
                wsgi_get(app, key, path)
            digest = hashlib.sha256()
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for i in range(n):
                digest.update(wsgi_get(app, key, todo[i % len(todo)]))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{label}: {n} requests ({len(todo)} paths): {1e3 * cpu / n:.2f} ms CPU per"
                f" request, {1e3 * wall / n:.2f} ms wall; bodies {digest.hexdigest()[:16]}"
            )
        if profiler and profile:
            profiler.dump_stats(profile)
    finally:
        for stale in client.scan_iter(f"{prefix}*"):
            client.delete(stale)
        ports.close()


if __name__ == "__main__":
    ARGS, OUT = profile_option(sys.argv[1:])
    main(int(ARGS[0]), OUT)
