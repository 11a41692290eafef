"""The protocol floor of the cache miss: a trivial Flask app that makes only a miss's round trips.

Not part of the product. Served like ``ceiling_app`` (the query API's own gunicorn config
module), each ``GET /v1/contacts/<id>`` makes the two round trips a cache miss must wait for
(docs/architecture.md §5.5) and nothing else: one ``EVALSHA`` of a lease-read script (``GET``
the entry, else ``SET NX PX`` a lease), sent as raw RESP bytes on a socket of the thread's own
(no client library: the floor must not charge redis-py's own cost to the protocol), then
``EXECUTE`` of the query API's own prepared by-id lookup on a psycopg2 (libpq) connection of
the thread's own (autocommit). It sends no refill, builds no resource, authenticates no one,
counts no rate limit, records no metric and answers ``ceiling_app``'s constant document: a
lower bound on any implementation of the miss on this stack (gunicorn, Flask, CPython),
measured beside the miss by ``make bench`` (``miss_floor_rps``).

Environment: ``REDIS_URL``, ``QUERY_DATABASE_URL`` (a SQLAlchemy URL of ``contacts_bench``),
``FLOOR_WORKSPACE`` (the workspace of the ids requested).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Final
from urllib.parse import urlsplit

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


def _connections() -> tuple[socket.socket, Any, bytes]:
    """This thread's Redis socket, psycopg2 connection and the script's ``EVALSHA`` prefix
    (RESP bytes up to the key), made on first use."""
    if not hasattr(_local, "pg"):
        url = urlsplit(os.environ["REDIS_URL"])
        sha = redis.Redis.from_url(os.environ["REDIS_URL"]).script_load(LEASE_READ_LUA)
        sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dsn = os.environ["QUERY_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        pg = psycopg2.connect(dsn)
        pg.autocommit = True
        with pg.cursor() as cursor:
            cursor.execute(PREPARE_LOOKUP)
        _local.sock, _local.pg = sock, pg
        _local.head = b"*5\r\n$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n$1\r\n1\r\n"
    return _local.sock, _local.pg, _local.head


def _lease_read(sock: socket.socket, head: bytes, key: bytes) -> bytes:
    """One ``EVALSHA`` of ``LEASE_READ_LUA`` on ``sock``; its raw RESP reply (a miss: the null
    bulk string ``$-1``)."""
    sock.sendall(b"%s$%d\r\n%s\r\n$5\r\ntoken\r\n" % (head, len(key), key))
    reply = sock.recv(65536)
    while not reply.endswith(b"\r\n"):
        reply += sock.recv(65536)
    return reply


@app.get("/v1/contacts/<contact_id>")
def lookup(contact_id: str) -> Response:
    """Lease-read in Redis, then the prepared lookup; the constant document either way."""
    sock, pg, head = _connections()
    _lease_read(sock, head, (PREFIX + contact_id).encode())
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
