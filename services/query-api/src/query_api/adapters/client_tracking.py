"""Redis server-assisted client-side caching (``CLIENT TRACKING``) through one dedicated
invalidation connection per process (docs/architecture.md §5.5, "Local contact cache").

``InvalidationListener`` owns one RESP2 connection that turns on ``CLIENT TRACKING ON REDIRECT
<its own id> BCAST PREFIX <prefix>contact:`` and subscribes to ``__redis__:invalidate``: Redis
then sends it the name of every contact key written (``HSET``/``DEL``/expiry, inside scripts
too: the worker's and the refills' ``GUARDED_SET_LUA``), whichever client wrote it.

Why broadcast mode, and not tracking on the pooled connections that read the keys (or
redis-py's own client-side cache, which does that per connection): Redis remembers a tracked
key by the id of the connection that read it, and when that connection is gone (closed by an
error, a fork, an idle ``timeout`` on the server, ``CLIENT KILL``) a later write of the key
sends no invalidation at all, to the redirect target either (measured on Redis 7.0: a key read
on a connection that then disconnects is invalidated to nobody). A server-side close goes
unnoticed until the connection is used again, so a local entry filled through it could be
served stale. In broadcast mode the only connection that matters is the listener's own, whose
loss is detected (below). redis-py's cache also handles a connection's invalidations only when
that connection is next used, and caches plain commands only, not our ``EVALSHA`` reads. The
cost: every contact write reaches every query API process (one short message each).

- ``poll_locked`` reads what has been delivered to the socket without blocking; the local cache
  calls it before it serves an entry, so an invalidation already on the socket is applied
  first. Redis writes a key's invalidation before it processes the writer's next command, so
  once the worker's status write (after its cache write) is visible, the invalidation has been
  sent (on one host, it is on this socket).
- A background thread drains the socket between requests, at most once per ``DRAIN_PAUSE_S``
  (a wake of that thread, and its GIL hand-off, cost more than the keys it applies, and a
  cache miss's refill is a write: woken per message, the thread of each process took ~14% of
  the miss's CPU; nothing waits for it, every local answer polls first), sends a ``PING`` every
  ``heartbeat_s`` seconds and declares the connection lost when a PONG is ``reply_timeout_s``
  overdue, or the socket closes or errs. A lost connection (and every new one) bumps ``epoch``,
  sets ``redirect_id`` to ``None`` and calls the subscribers with ``None`` (flush); the cache
  serves nothing locally until a new connection is up (``healthy_locked``), and a fill begun
  under another epoch is not stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import hiredis
import redis

log = logging.getLogger(__name__)

INVALIDATE_CHANNEL: Final = b"__redis__:invalidate"
_PING: Final = b"*1\r\n$4\r\nPING\r\n"
_READ_SIZE: Final = 65536
#: Seconds the background thread pauses after each drain, so invalidations gather on the socket
#: (the request threads poll it themselves before every local answer).
DRAIN_PAUSE_S: Final = 0.02

#: ``connect()`` → ``(connection, client id)``: a RESP2 connection subscribed to the channel.
Connect = Callable[[], tuple[Any, int]]
#: Called with the invalidated keys, or ``None``: forget everything.
OnInvalidate = Callable[[list[bytes] | None], None]


class InvalidationListener:
    """The process's invalidation connection (module doc). ``lock`` guards it and is held
    while ``on_invalidate`` runs; the local cache holds it around its own state too."""

    def __init__(
        self,
        connect: Connect,
        *,
        heartbeat_s: float,
        reply_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.Lock()
        self.redirect_id: int | None = None
        self.epoch = 0
        self._connect = connect
        self._heartbeat_s = heartbeat_s
        self._reply_timeout_s = reply_timeout_s
        self._clock = clock
        self._subscribers: list[OnInvalidate] = []
        self._connection: Any = None
        self._sock: Any = None
        self._reader: Any = None
        self._ping_sent_at: float | None = None
        self._last_ping_at = 0.0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closed = False
        self._failing = False
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def subscribe(self, on_invalidate: OnInvalidate) -> None:
        """Call ``on_invalidate`` (under ``lock``) for every invalidation and every flush."""
        self._subscribers.append(on_invalidate)

    def ensure_running(self) -> None:
        """Start the background thread of this process if it is not running (it connects)."""
        if self._thread is None and not self._closed:
            with self.lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="redis-invalidations", daemon=True
                    )
                    self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Start, and wait up to ``timeout_s`` seconds for tracking to be up; returns whether
        it is (for tests and start-up checks)."""
        self.ensure_running()
        return self._ready.wait(timeout_s)

    def healthy_locked(self) -> bool:
        """Whether invalidations are being received (the caller holds ``lock``): connected,
        and no PONG overdue. An overdue PONG marks the connection lost here."""
        if self._sock is None:
            return False
        sent = self._ping_sent_at
        if sent is not None and self._clock() - sent > self._reply_timeout_s:
            self._lost_locked("no PONG within the Redis socket timeout")
            return False
        return True

    def poll_locked(self) -> None:
        """Apply every invalidation already delivered to the socket, without blocking (the
        caller holds ``lock``)."""
        sock = self._sock
        if sock is None:
            return
        try:
            while True:
                try:
                    data = sock.recv(_READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    break
                if not data:
                    self._lost_locked("connection closed by Redis")
                    return
                self._reader.feed(data)
                if len(data) < _READ_SIZE:
                    break
            while (message := self._reader.gets()) is not False:
                self._handle_locked(message)
        except (OSError, hiredis.ProtocolError, hiredis.ReplyError) as exc:
            self._lost_locked(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop the thread and close the connection (the app's ``close``)."""
        with self.lock:
            self._closed = True
            self._drop_locked()

    def _handle_locked(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            return
        kind = message[0]
        if kind == b"message" and len(message) == 3 and message[1] == INVALIDATE_CHANNEL:
            keys = message[2]
            self._notify_locked(keys if isinstance(keys, list) else None)
        elif kind == b"pong":
            self._ping_sent_at = None

    def _notify_locked(self, keys: list[bytes] | None) -> None:
        for subscriber in self._subscribers:
            subscriber(keys)

    def _lost_locked(self, reason: str) -> None:
        log.warning("Redis invalidation connection lost (%s): local contact cache off", reason)
        self._drop_locked()

    def _drop_locked(self) -> None:
        connection, self._connection = self._connection, None
        self._sock = self._reader = None
        self._ping_sent_at = None
        self.redirect_id = None
        self.epoch += 1
        self._ready.clear()
        self._notify_locked(None)
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                connection.disconnect()

    def _run(self) -> None:
        while not self._closed:
            if self._sock is None and not self._connect_once():
                time.sleep(self._heartbeat_s)
                continue
            sock = self._sock
            with contextlib.suppress(OSError, ValueError, TypeError):  # closed meanwhile
                select.select([sock], [], [], self._heartbeat_s)
            with self.lock:
                if self._sock is sock and sock is not None:
                    self.poll_locked()
                    self._heartbeat_locked()
            time.sleep(DRAIN_PAUSE_S)

    def _connect_once(self) -> bool:
        try:
            connection, client_id = self._connect()
        except (redis.RedisError, OSError) as exc:
            if not self._failing:  # once per outage, not once per heartbeat
                log.warning("Redis invalidation connection failed (%s): local cache off", exc)
            self._failing = True
            return False
        self._failing = False
        sock = connection._sock
        sock.setblocking(False)
        with self.lock:
            if self._closed:
                connection.disconnect()
                return False
            self._connection, self._sock = connection, sock
            self._reader = hiredis.Reader()
            self._ping_sent_at, self._last_ping_at = None, self._clock()
            self.redirect_id = client_id
            self.epoch += 1
            self._ready.set()
        log.info("Redis invalidation connection up (client id %s)", client_id)
        return True

    def _heartbeat_locked(self) -> None:
        if not self.healthy_locked():
            return
        now = self._clock()
        if self._ping_sent_at is None and now - self._last_ping_at >= self._heartbeat_s:
            try:
                self._sock.send(_PING)
            except (BlockingIOError, ssl.SSLWantWriteError):
                return  # the socket's buffer is full: try at the next beat
            except OSError as exc:
                self._lost_locked(f"{type(exc).__name__}: {exc}")
                return
            self._ping_sent_at = self._last_ping_at = now

    def _forget_after_fork(self) -> None:
        # The parent's socket and thread are not this process's: start afresh on first use.
        self.lock = threading.Lock()
        self._connection = self._sock = self._reader = None
        self._thread = None
        self._ready = threading.Event()
        self.redirect_id = None
        self.epoch += 1


def listener_connect(client: redis.Redis, key_prefix: str) -> Connect:
    """``Connect`` for ``client``'s server, with its pool's settings (address, credentials,
    TLS, timeouts) but RESP2: ``CLIENT ID``, ``CLIENT TRACKING ON REDIRECT <itself> BCAST
    PREFIX <key_prefix>``, then ``SUBSCRIBE __redis__:invalidate``. Single-server clients only
    (a cluster client has a pool per node, and each node would need a listener)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "protocol": 2}

    def connect() -> tuple[Any, int]:
        connection = pool.connection_class(**kwargs)
        connection.connect()
        connection.send_command("CLIENT", "ID")
        client_id = int(connection.read_response())
        connection.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", key_prefix
        )
        connection.read_response()
        connection.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        connection.read_response()
        return connection, client_id

    return connect
