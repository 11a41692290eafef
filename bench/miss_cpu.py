"""CPU per cache miss of the query API in-process, with an optional profile.

``.venv/bin/python bench/miss_cpu.py N [THREADS] [--profile FILE]``: builds the real app (WSGI
fast path, authentication, rate limits of 10,000,000/minute, metrics, the local contact cache
and its invalidation listener) against ``contacts_bench`` (``QUERY_DATABASE_URL`` with the
bench's database) and the Redis of ``REDIS_URL``, under a key prefix of its own, so every read
is a miss: the lease-and-read script, the prepared lookup, the refill-and-release script. Reads
``N`` live contacts of the large workspace once each (raw WSGI calls, no HTTP server) from
``THREADS`` threads (default 1), and prints the process's CPU and wall time per miss. With
``--profile FILE``, cProfile of the calling thread (one thread only) is written to ``FILE``.
Deletes its keys at the end. Not a test; see bench/README.md, "The cache miss".
"""

from __future__ import annotations

import cProfile
import os
import sys
import threading
import time
import uuid

import dataset  # bench/ (the script's directory): the loaded set's workspace and cut-off
import psycopg2
import redis
import stack
from hit_cpu import profile_option, wsgi_get

from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from query_api.adapters.local_contact_cache import LocalContactCache
from query_api.entrypoints.app import create_app
from query_api.settings import Settings


def _ids(dsn: str, n: int) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id::text FROM contacts TABLESAMPLE SYSTEM (2) WHERE workspace = %s AND alive"
            " AND created_at < %s LIMIT %s",
            (dataset.LARGE_WORKSPACE, dataset.LOADED_BEFORE, n),
        )
        return [row[0] for row in cur.fetchall()]


def main(n: int, threads: int, profile: str | None) -> None:
    key = new_api_key()
    prefix = f"misscpu{uuid.uuid4().hex[:6]}:"
    base = Settings.from_env(os.environ)
    url = stack.with_database(base.database_url, stack.BENCH_DATABASE)
    settings = base.model_copy(
        update={
            "database_url": url,
            "redis_prefix": prefix,
            "auth": AuthSettings(api_keys=(ApiKeyEntry(hash_api_key(key), scopes.ALL),)),
            "rate_limits": RateLimitSettings(
                default="10000000/minute", workspace="10000000/minute"
            ),
        }
    )
    admin_url = stack.with_database(os.environ["DATABASE_URL"], stack.BENCH_DATABASE)
    ids = _ids(stack.libpq_url(admin_url), n)
    app = create_app(settings)
    ports = app.extensions["query_api"].ports
    client = redis.Redis.from_url(settings.redis_url)
    if isinstance(ports.cache, LocalContactCache):
        ports.cache.listener.wait_ready(5)
    try:
        for contact_id in ids[:20]:  # warm: pool connections, prepared statements
            wsgi_get(app, key, contact_id)
        todo = ids[20:]
        chunks = [todo[i::threads] for i in range(threads)]
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if threads == 1:
            if profiler:
                profiler.enable()
            for contact_id in chunks[0]:
                wsgi_get(app, key, contact_id)
            if profiler:
                profiler.disable()
        else:
            workers = [
                threading.Thread(target=lambda c=c: [wsgi_get(app, key, i) for i in c])
                for c in chunks
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"{len(todo)} misses, {threads} thread(s): {1e6 * cpu / len(todo):.1f} µs CPU per miss,"
            f" {1e6 * wall / len(todo):.1f} µs wall"
        )
        if profiler and profile:
            profiler.dump_stats(profile)
    finally:
        for stale in client.scan_iter(f"{prefix}*"):
            client.delete(stale)
        ports.close()


if __name__ == "__main__":
    ARGS, OUT = profile_option(sys.argv[1:])
    main(int(ARGS[0]), int(ARGS[1]) if len(ARGS) > 1 else 1, OUT)
