"""The protocol floor of the cache miss: a trivial Flask app that makes only a miss's round trips.

Not part of the product. Served like ``ceiling_app`` (the query API's own gunicorn config module),
each ``GET /v1/contacts/<id>`` makes the two round trips a cache miss must wait for
(docs/architecture.md §5.5) and nothing else: one ``EVALSHA`` of a lease-read script (``GET``
the entry, else ``SET NX PX`` a lease) on a redis-py connection of the thread's own (hiredis),
then ``EXECUTE`` of the same prepared by-id lookup as the query API on a psycopg2 connection of
the thread's own (autocommit). It sends no refill, builds no resource, authenticates no one,
counts no rate limit, records no metric and answers ``ceiling_app``'s constant document: a
lower bound on any implementation of the miss in this process model, measured by
``bench/floor.py``.

Environment: ``REDIS_URL``, ``QUERY_DATABASE_URL`` (a SQLAlchemy URL of ``contacts_bench``),
``FLOOR_WORKSPACE`` (the workspace of the ids requested).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

import psycopg2
import redis
from ceiling_app import BODY
from flask import Flask, Response

from query_api.adapters.sql_read_model import LOOKUP_NAME, PREPARE_LOOKUP

#: Lease-read: the entry if cached, else a lease taken (the shape of the query API's script).
LEASE_READ_LUA: Final = """
local entry = redis.call('GET', KEYS[1])
if entry then return entry end
redis.call('SET', KEYS[1] .. ':lease', ARGV[1], 'NX', 'PX', 5000)
return false
"""

app = Flask("floor_app")
_local = threading.local()
#: Key prefix of the floor's entries, never written: every read is a miss, and its lease
#: expires in 5 s.
PREFIX: Final = "bench-floor:"


def _connections() -> tuple[Any, Any, str]:
    """This thread's Redis client, psycopg2 connection and script sha, made on first use."""
    if not hasattr(_local, "pg"):
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        dsn = os.environ["QUERY_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        pg = psycopg2.connect(dsn)
        pg.autocommit = True
        with pg.cursor() as cursor:
            cursor.execute(PREPARE_LOOKUP)
        _local.client, _local.pg = client, pg
        _local.sha = client.script_load(LEASE_READ_LUA)
    return _local.client, _local.pg, _local.sha


@app.get("/v1/contacts/<contact_id>")
def lookup(contact_id: str) -> Response:
    """Lease-read in Redis, then the prepared lookup; the constant document either way."""
    client, pg, sha = _connections()
    client.evalsha(sha, 1, PREFIX + contact_id, "token")
    with pg.cursor() as cursor:
        cursor.execute(
            f"EXECUTE {LOOKUP_NAME}(%s, %s)", (os.environ["FLOOR_WORKSPACE"], contact_id)
        )
        cursor.fetchone()
    return Response(BODY, status=200, mimetype="application/json")


@app.get("/readyz")
def ready() -> Response:
    """Always ready."""
    return Response(b'{"status":"ready"}', status=200, mimetype="application/json")
