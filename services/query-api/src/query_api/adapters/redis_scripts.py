"""Lua scripts by ``EVALSHA`` on connections of our own, without redis-py's per-call layers.

A cache miss makes two script calls (the lease-and-read, the refill-and-release). Through
redis-py 8's ``Script.__call__`` each cost ~100 µs of our CPU in-process (bench/README.md,
"The cache miss"): the client's ``execute_command`` (retry wrapper, closures, operation-duration
recording), the pool's ``get_connection`` (a ``deprecated_args`` wrapper that inspects its
arguments, connection-count recording, a readiness poll of the socket) and its ``release``.
``ScriptRunner`` keeps what matters of that and drops the rest: it uses redis-py ``Connection``
objects built with the client pool's own settings (address, credentials, TLS, database, client
name, socket and connect timeouts, health-check interval: a connection idle for
``HEALTH_CHECK_INTERVAL_S`` is PINGed before reuse, by ``Connection.send_packed_command``),
kept in a free list of its own, and sends one packed ``EVALSHA`` (``EVAL`` once when the
server does not have the script: the first call after a restart or ``SCRIPT FLUSH``), packed
by hiredis in one call.

Errors are redis-py's: ``redis.ConnectionError`` / ``redis.TimeoutError`` when Redis cannot be
reached or answers too late (the connection is dropped), ``redis.ResponseError`` for an error
reply (the connection stays: the reply was read whole). Single-server clients only; a cluster
client's scripts go through redis-py (``RedisCalls.script``). A forked child (gunicorn
``--preload``) never reuses its parent's connections: the free list is forgotten when the
process id changes.

``ScriptRunner.send`` is a call whose reply nobody waits for (a miss's refill-and-release:
its reply is not needed for the response): one connection per process in ``CLIENT REPLY OFF``
mode, so Redis writes no reply and the request thread neither polls, reads nor sleeps for one.
It sends ``EVAL`` (the script's source: a server that restarted or flushed its scripts still
runs it, and no ``NOSCRIPT`` error goes unseen). Redis runs a connection's commands in order,
so the write happens as if the caller had waited, only later. Before each send the connection
is polled without waiting: a reply-less connection that turns readable was closed by the
server (a restart, ``CLIENT KILL``, an idle ``timeout``), and is replaced before sending.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

#: A key, and an argument, of a script call.
Key = str | bytes
Arg = str | bytes | int


class ScriptRunner:
    """Runs registered scripts (``redis.commands.core.Script``) of ``client``'s server on
    connections of its own (module doc). Thread-safe; a connection serves one call at a time."""

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._unanswered: Any = None
        self._unanswered_lock = threading.Lock()

    def run(self, script: Script, keys: Sequence[Key], args: Sequence[Arg]) -> Any:
        """The reply of ``script`` with ``keys`` and ``args`` (``EVALSHA``, or ``EVAL`` when
        the server lacks it). Raises ``redis.RedisError`` (module doc)."""
        connection = self._take()
        try:
            connection.send_packed_command([_pack("EVALSHA", script.sha, len(keys), *keys, *args)])
            try:
                reply = connection.read_response()
            except NoScriptError:  # a restarted or flushed server: EVAL loads it
                connection.send_packed_command(
                    [_pack("EVAL", script.script, len(keys), *keys, *args)]
                )
                reply = connection.read_response()
        except redis.ResponseError:
            self._give_back(connection)  # an error reply, read whole: the connection is fine
            raise
        except BaseException:
            connection.disconnect()  # a reply may be half read: never reuse the socket
            self._give_back(connection)
            raise
        self._give_back(connection)
        return reply

    def send(self, script: Script, keys: Sequence[Key], args: Sequence[Arg]) -> None:
        """Send ``script`` with ``keys`` and ``args`` (``EVAL``) on the process's reply-less
        connection, and return without waiting for Redis (module doc): its reply, and any
        error the script raises, are never seen. Raises ``redis.ConnectionError`` /
        ``redis.TimeoutError`` when the command cannot be handed to the socket."""
        packed = _pack("EVAL", script.script, len(keys), *keys, *args)
        with self._unanswered_lock:
            connection = self._unanswered_connection()
            try:
                connection.send_packed_command([packed], check_health=False)
            except BaseException:
                connection.disconnect()
                self._unanswered = None
                raise

    def close(self) -> None:
        """Close the idle connections and the reply-less one (the app's ``close``)."""
        with self._lock:
            idle, self._idle = self._idle, []
        with self._unanswered_lock:
            if self._unanswered is not None:
                idle.append(self._unanswered)
                self._unanswered = None
        for connection in idle:
            connection.disconnect()

    def _unanswered_connection(self) -> Any:
        """The reply-less connection (under ``_unanswered_lock``): the current one while it is
        this process's and the server has not closed it, else a new one."""
        connection = self._unanswered
        if connection is not None:
            if connection.pid == os.getpid() and not _closed_by_server(connection):
                return connection
            if connection.pid == os.getpid():
                connection.disconnect()
        kwargs = {**self._connection_kwargs, "health_check_interval": 0}  # a PING needs a reply
        connection = self._connection_class(**kwargs)
        try:
            connection.connect()
            connection.send_packed_command([_pack("CLIENT", "REPLY", "OFF")], check_health=False)
        except BaseException:
            connection.disconnect()
            raise
        self._unanswered = connection
        return connection

    def _take(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._pid, self._idle = os.getpid(), []
            if self._idle:
                return self._idle.pop()
        return self._connection_class(**self._connection_kwargs)

    def _give_back(self, connection: Any) -> None:
        with self._lock:
            if connection.pid == self._pid:
                self._idle.append(connection)


def _closed_by_server(connection: Any) -> bool:
    """Whether the reply-less ``connection`` is readable (it never gets a reply, so that is
    its end of file or an error) or failed to poll."""
    try:
        return bool(connection.can_read(timeout=0))
    except (redis.RedisError, OSError):
        return True


def _pack(*command: Any) -> bytes:
    """One command in RESP, by hiredis (its stub types a one-element tuple)."""
    return cast(bytes, hiredis.pack_command(cast(Any, command)))
