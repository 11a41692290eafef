"""A gthread worker whose event loop reads whole requests before a thread runs them.

gunicorn's gthread worker gives a connection to a thread as soon as its first byte arrives; the
thread then blocks reading the head and the body. A few clients that send one byte a second
(slow heads, "slowloris"; slow bodies, "R-U-Dead-Yet") held every thread of both APIs, and
``/healthz`` with them, so Kubernetes restarted healthy pods (issue 14). Kubernetes Services
are reached without a buffering proxy in front, so the server must protect itself.

``BufferingThreadWorker`` keeps the gthread worker (threads, keep-alive, graceful shutdown) but
reads every request in its main loop, non-blocking, with a ``RequestFramer``, under deadlines:

- the head within ``head_timeout_s`` seconds of the connection (or of a kept-alive request's
  first byte);
- the body at ``body_min_rate_bps`` bytes per second at least, after a grace of
  ``body_timeout_s`` seconds (the deadline is start + grace + received / rate: Apache's
  ``mod_reqtimeout`` rule), and never ``body_idle_timeout_s`` seconds without a byte.

A client past a deadline gets a 408 problem from the loop itself and the connection is
closed; no thread ever waited for it. A head with transfer codings stacked before
``chunked`` is answered 501 by the loop (``Framing.REFUSED``). A complete request (bodies over
``spool_bytes`` in a temporary file) goes to the thread pool; ``GET /healthz`` goes to a pool
of its own, so liveness never queues behind clients. A body larger than ``max_body_bytes``
(past every limit of the APIs) is handed on as a stream after its head, as gunicorn does, and
the app refuses it (413) without reading it; the connection is then closed rather than drained,
and the answer says ``Connection: close``. What the app leaves unread of a buffered body is
drained from the buffer, so that connection stays open as its answer said.

The worker also tells the app which header fields came on more than one field line (the
environ's ``repeated_fields.REPEATED_FIELDS``): gunicorn joins their values with ``","``, so the
app alone cannot tell two ``Idempotency-Key`` lines from one key holding a comma.

A thread writing a response holds the client to the mirror of the body rule
(``ResponseSocket``, the socket gunicorn writes every response to): the client must take a
byte at least every ``response_idle_timeout_s`` seconds, and ``response_min_rate_bps`` bytes
per second after a grace of ``response_timeout_s`` seconds, counted over the time the thread
waits for it (not the time the app takes to produce the bytes). A client past that, e.g. one
that asked for a large export and reads none of it, has its connection reset (nothing more
can be answered in the middle of a response; the unsent bytes are dropped rather than left
to the kernel), a warning is logged, and the thread is free again.

Not supported: TLS and HTTP/2 (the APIs serve plain HTTP/1.1 behind the cluster's network).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker
from pydantic import Field, PositiveFloat, PositiveInt

from contacts_http.gunicorn_workers import ProblemRefusals, problem_bytes
from contacts_http.repeated_fields import REPEATED_FIELDS, repeated_names
from contacts_http.request_framing import Framing, RequestFramer
from contacts_infra.settings import EnvSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: Paths served by the liveness pool (their own thread): only what never touches a dependency.
LIVENESS_PATHS: Final = frozenset({b"/healthz"})
_RECV: Final = 64 * 1024
#: How long a closed connection's unread bytes are drained, and how many at most (RFC 9112
#: §9.6: closing with unread bytes would reset the connection and lose the response).
_LINGER_S: Final = 2.0
_LINGER_BYTES: Final = 64 * 1024
#: Seconds between two of the loop's housekeeping passes (the arbiter's heartbeat, a ``utime``;
#: the deadlines of buffered requests and lingering closes), which gunicorn runs every turn of
#: the loop, i.e. several times per request under load. Deadlines are seconds long.
_HOUSEKEEPING_EVERY_S: Final = 0.1


class RequestBufferingSettings(EnvSettings):
    """Deadlines and sizes of ``BufferingThreadWorker`` (seconds, bytes, bytes per second).

    Environment: ``REQUEST_HEAD_TIMEOUT_S`` (10), ``REQUEST_BODY_TIMEOUT_S`` (10),
    ``REQUEST_BODY_MIN_RATE_BPS`` (500), ``REQUEST_BODY_IDLE_TIMEOUT_S`` (10, the app's own
    setting for streamed bodies), ``REQUEST_BUFFER_MAX_BYTES`` (11 MiB: the largest import,
    ``IMPORT_MAX_BYTES``, with room for chunk framing) and ``REQUEST_BUFFER_MEMORY_BYTES``
    (256 KiB kept in memory per request; the rest in ``TMPDIR``); for responses
    ``RESPONSE_TIMEOUT_S`` (10), ``RESPONSE_MIN_RATE_BPS`` (500) and
    ``RESPONSE_IDLE_TIMEOUT_S`` (10). ``from_env`` raises ``SettingsError`` naming a bad
    variable.
    """

    head_timeout_s: PositiveFloat = Field(10.0, validation_alias="REQUEST_HEAD_TIMEOUT_S")
    body_timeout_s: PositiveFloat = Field(10.0, validation_alias="REQUEST_BODY_TIMEOUT_S")
    body_min_rate_bps: PositiveFloat = Field(500.0, validation_alias="REQUEST_BODY_MIN_RATE_BPS")
    body_idle_timeout_s: PositiveFloat = Field(10.0, validation_alias="REQUEST_BODY_IDLE_TIMEOUT_S")
    max_body_bytes: PositiveInt = Field(
        11 * 1024 * 1024, validation_alias="REQUEST_BUFFER_MAX_BYTES"
    )
    spool_bytes: PositiveInt = Field(256 * 1024, validation_alias="REQUEST_BUFFER_MEMORY_BYTES")
    response_timeout_s: PositiveFloat = Field(10.0, validation_alias="RESPONSE_TIMEOUT_S")
    response_min_rate_bps: PositiveFloat = Field(500.0, validation_alias="RESPONSE_MIN_RATE_BPS")
    response_idle_timeout_s: PositiveFloat = Field(10.0, validation_alias="RESPONSE_IDLE_TIMEOUT_S")


class ResponseTooSlow(TimeoutError):
    """The client stopped taking a response within its deadlines (``ResponseSocket``)."""


class ResponseSocket(socket.socket):
    """A client connection whose ``sendall`` keeps the response deadlines of ``settings``
    while ``hold_to`` has armed them (seconds, bytes per second; see the module doc).

    ``sendall`` is how gunicorn writes every part of a response (head, body, chunks, 103s;
    file bodies too, as the worker turns ``sendfile`` off). Armed, what does not fit in the
    kernel's buffer at once waits for the client, each ``send`` with a socket timeout: the
    idle timeout, or less when the client's allowance (``response_timeout_s + sent /
    response_min_rate_bps`` seconds of waiting for it, over the whole response) runs out
    first; past either it raises ``ResponseTooSlow`` (what was sent before may have reached
    the client). Disarmed, and on a non-blocking socket, it is ``socket.sendall``.
    """

    _deadlines: RequestBufferingSettings | None = None

    def hold_to(self, settings: RequestBufferingSettings | None) -> None:
        """Apply ``settings``' response deadlines to the writes of a new response (``None``:
        no deadline)."""
        self._deadlines = settings
        self._sent = 0
        self._waited = 0.0

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        settings = self._deadlines
        previous = self.gettimeout()
        if settings is None or previous == 0.0:
            super().sendall(data, flags)
            return
        view = memoryview(data).cast("B")
        if previous is None:
            # Most writes fit in the kernel's buffer: one send that does not wait, without a
            # timeout to set and restore (two system calls and a poll).
            try:
                sent = self.send(view, flags | socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            self._sent += sent
            view = view[sent:]
            if not view:
                return
        try:
            while view:
                allowance = (
                    settings.response_timeout_s
                    + self._sent / settings.response_min_rate_bps
                    - self._waited
                )
                idle = settings.response_idle_timeout_s <= allowance
                wait = settings.response_idle_timeout_s if idle else allowance
                if wait <= 0:
                    raise ResponseTooSlow(_too_slow(settings, idle=False))
                self.settimeout(wait)
                started = time.monotonic()
                try:
                    sent = self.send(view, flags)
                except TimeoutError:
                    raise ResponseTooSlow(_too_slow(settings, idle=idle)) from None
                finally:
                    self._waited += time.monotonic() - started
                self._sent += sent
                view = view[sent:]
        finally:
            self.settimeout(previous)


def _too_slow(settings: RequestBufferingSettings, *, idle: bool) -> str:
    if idle:
        return f"the client took no byte of the response for {settings.response_idle_timeout_s:g} s"
    return (
        f"the client took the response slower than {settings.response_min_rate_bps:g} bytes "
        "per second"
    )


class BufferedConn(TConn):  # type: ignore[misc]
    """gunicorn's connection, with what the loop learnt about its current request."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: Bytes received after the current request (a pipelined next request).
        self.leftover = b""
        #: The body is read from the socket by the thread (too large to buffer).
        self.streamed = False
        #: The buffered bytes end where the request ends, so the connection can serve another.
        self.reusable = False
        #: The client stopped taking the response: reset the connection (``ResponseSocket``).
        self.cut = False


@dataclass
class _Reading:
    """A connection whose request is being buffered by the loop (monotonic seconds)."""

    framer: RequestFramer
    head_deadline: float
    last_byte: float
    body_started: float = 0.0


class RequestBuffering:
    """Mixin for gunicorn's ``ThreadWorker``: see the module doc. Needs gunicorn 27's
    gthread worker (``accept``, ``finish_request``, ``murder_pending``, ``handle_request``)."""

    cfg: Any
    log: Any
    poller: selectors.BaseSelector
    tpool: futures.ThreadPoolExecutor
    nr_conns: int
    wsgi: Any
    alive: bool
    keepalived_conns: Any
    method_queue: Any

    def init_process(self) -> None:
        if self.cfg.is_ssl:
            raise RuntimeError("BufferingThreadWorker serves plain HTTP/1.x only (no TLS).")
        self.buffering = RequestBufferingSettings.from_env(os.environ)
        self.reading: dict[BufferedConn, _Reading] = {}
        self.lingering: dict[socket.socket, float] = {}
        self.liveness_pool = futures.ThreadPoolExecutor(1, thread_name_prefix="liveness")
        # A file body then goes through ``sendall`` too, under the response deadlines
        # (``socket.sendfile`` would wait for the client without one).
        self.cfg.set("sendfile", False)
        self._notify_after = 0.0
        self._sweep_after = 0.0
        super().init_process()  # type: ignore[misc]  # runs the worker's loop

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client = ResponseSocket(client.family, client.type, client.proto, fileno=client.detach())
        self._start_reading(BufferedConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: BufferedConn, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: buffer it like a new one, reading
        what is there now (the socket stays registered; no second turn of the loop)."""
        self.keepalived_conns.remove(conn)
        self._start_reading(conn, registered=True)
        self._on_readable(conn, client)

    def _start_reading(
        self, conn: BufferedConn, pending: bytes = b"", *, registered: bool = False
    ) -> None:
        """Buffer ``conn``'s next request: ``pending`` bytes first, then what the socket
        brings. ``registered``: the (non-blocking) socket is in the poller already."""
        now = time.monotonic()
        settings = self.buffering
        framer = RequestFramer(
            max_head_bytes=_max_head_bytes(self.cfg),
            max_body_bytes=settings.max_body_bytes,
            spool_bytes=settings.spool_bytes,
        )
        self.reading[conn] = _Reading(framer, now + settings.head_timeout_s, now)
        callback = partial(self._on_readable, conn)
        if registered:
            self.poller.modify(conn.sock, selectors.EVENT_READ, callback)
            return
        conn.sock.setblocking(False)
        if pending and self._feed(conn, pending):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, callback)

    def _on_readable(self, conn: BufferedConn, _sock: socket.socket) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset: as if closed
        if data:
            self._feed(conn, data)
        elif self.reading[conn].framer.head_complete:
            self._dispatch(conn)  # the client closed its side: the app sees the cut body
        else:
            self._forget(conn).framer.close()
            self.nr_conns -= 1
            conn.close()

    def _feed(self, conn: BufferedConn, data: bytes) -> bool:
        """Buffer ``data``; dispatch the request when it is whole. Returns True if dispatched."""
        reading = self.reading[conn]
        framer = reading.framer
        had_head = framer.head_complete
        leftover = framer.feed(data)
        reading.last_byte = time.monotonic()
        if framer.head_complete and not had_head:
            reading.body_started = reading.last_byte
            if framer.expects_continue and framer.state is Framing.NEED_MORE:
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if framer.state is Framing.NEED_MORE:
            return False
        if framer.state is Framing.REFUSED:
            self._refuse(conn, framer.refusal)
            return True
        self._dispatch(conn, leftover)
        return True

    def _refuse(self, conn: BufferedConn, refusal: str) -> None:
        """Answer a head the framer refused (a transfer coding other than ``chunked`` alone)
        with a 501 problem from the loop, and close the connection unread."""
        self._forget(conn).framer.close()
        self.nr_conns -= 1
        self.log.info("refused before the app: 501 %s", refusal)
        with contextlib.suppress(OSError):
            conn.sock.send(
                problem_bytes(
                    501,
                    "Not Implemented",
                    "The request's Transfer-Encoding is not supported: send the body with "
                    "Content-Length, or with Transfer-Encoding: chunked alone.",
                )
            )
        self._linger(conn.sock)

    def _dispatch(self, conn: BufferedConn, leftover: bytes = b"") -> None:
        """Hand the buffered request (and, when too large, the rest of the socket) to a thread."""
        framer = self._forget(conn).framer
        conn.streamed = framer.state is Framing.TOO_LARGE
        conn.reusable = framer.state is Framing.COMPLETE
        conn.leftover = leftover
        source: Iterator[bytes] = framer.chunks()
        if conn.streamed:
            source = itertools.chain(source, _socket_chunks(conn.sock))
        conn.parser = http.get_parser(self.cfg, source, conn.client)
        conn.data_ready = True
        path = framer.target.split(b"?", 1)[0]
        pool = self.liveness_pool if conn.reusable and path in LIVENESS_PATHS else self.tpool
        future = pool.submit(self.handle, conn)  # type: ignore[attr-defined]
        future.add_done_callback(
            lambda done: self.method_queue.defer(self.finish_request, conn, done)
        )

    def _forget(self, conn: BufferedConn) -> _Reading:
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        return self.reading.pop(conn)

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        self.wsgi = _WithRepeatedFields(self.wsgi)

    def handle_request(self, req: Any, conn: BufferedConn) -> Any:
        """gunicorn's, with the response deadlines on the socket. A client past them gets
        its connection reset (``finish_request``) and one warning, without personal data
        (the path, as in the access line, never the query string or the client's address);
        gunicorn's own handling would log a traceback per connection."""
        if conn.streamed:
            # The connection closes after the answer (``_keepalive_after``): say so in it, or
            # a client sends its next request on a connection about to close.
            req.must_close = True
        else:
            # The loop answered ``Expect: 100-continue`` when the head arrived (the body is here).
            req._expected_100_continue = False
        conn.sock.hold_to(self.buffering)
        # gunicorn builds the environ from ``req`` and calls the app on this thread, inside
        # this call; the app's wrapper reads the names from here (``_WithRepeatedFields``).
        _this_request.repeated = repeated_names(req.headers)
        try:
            return super().handle_request(req, conn)  # type: ignore[misc]
        except ResponseTooSlow as exc:
            self.log.warning("response cut: %s %s: %s", req.method, req.path, exc)
            conn.cut = True
            return False
        finally:
            _this_request.repeated = _NONE
            conn.sock.hold_to(None)

    def _keepalive_after(self, conn: BufferedConn, keepalive: bool) -> bool:
        # A streamed body left unread is not drained by a thread (a trickling client would
        # hold it): the connection closes instead, as its answer said (``handle_request``).
        # A buffered body is all in memory or its spool file, so what the app left unread is
        # drained whole: gunicorn's own drain gives up past 64 KiB, and the connection then
        # closed after an answer that said keep-alive (a 413 for a 2 MB body, say).
        if conn.streamed or not keepalive:
            return False
        try:
            return bool(
                conn.parser.finish_body(
                    deadline=time.monotonic() + _LINGER_S, max_bytes=self.buffering.max_body_bytes
                )
            )
        except http.errors.ParseException as exc:
            # The unread body of a request already answered is malformed (a broken chunk):
            # close, rather than let gunicorn answer that one request a second time.
            self.log.warning(
                "Connection closed: %s in the unread body of a request already answered",
                type(exc).__name__,
            )
            return False

    def finish_request(self, conn: BufferedConn, done: futures.Future[Any]) -> None:
        """Back on the loop: buffer the next request of a kept-alive connection, or close it."""
        try:
            keepalive = bool(done.result()) if not done.cancelled() else False
        except Exception:
            keepalive = False
        if conn.cut:
            self.nr_conns -= 1
            _reset(conn.sock)
            return
        if not keepalive or not conn.reusable or conn.parser.unreader.take_buffered():
            self.nr_conns -= 1
            self._linger(conn.sock)
            return
        if conn.leftover:
            self._start_reading(conn, conn.leftover)
            return
        conn.sock.setblocking(False)
        conn.set_timeout()
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + _LINGER_S)
        self.keepalived_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
        )

    def notify(self) -> None:
        """The arbiter's heartbeat (gunicorn's ``notify``), at most every
        ``_HOUSEKEEPING_EVERY_S`` seconds instead of every turn of the loop."""
        now = time.monotonic()
        if now >= self._notify_after:
            self._notify_after = now + _HOUSEKEEPING_EVERY_S
            super().notify()  # type: ignore[misc]

    def murder_pending(self) -> None:
        """At most every ``_HOUSEKEEPING_EVERY_S`` seconds (gunicorn calls it every turn of
        the loop, which waits a second at most): past a deadline, a 408; stop lingering
        closes."""
        now = time.monotonic()
        if now < self._sweep_after:
            return
        self._sweep_after = now + _HOUSEKEEPING_EVERY_S
        super().murder_pending()  # type: ignore[misc]
        for conn, reading in list(self.reading.items()):
            late = self._late(reading, now)
            if late:
                self._forget(conn).framer.close()
                self.nr_conns -= 1
                if reading.framer.head_started:
                    self.log.debug("refused before the app: 408 %s", late)
                    with contextlib.suppress(OSError):
                        conn.sock.send(_request_timeout(late))
                self._linger(conn.sock)
        for sock, deadline in list(self.lingering.items()):
            if now >= deadline:
                self._end_linger(sock)

    def _late(self, reading: _Reading, now: float) -> str:
        """Why the request is past its deadline, or ``""``."""
        settings = self.buffering
        if not reading.framer.head_complete:
            return "The request head did not arrive in time." if now > reading.head_deadline else ""
        if now - reading.last_byte > settings.body_idle_timeout_s:
            return f"No byte of the request body arrived for {settings.body_idle_timeout_s:g} s."
        allowed = reading.framer.body_bytes / settings.body_min_rate_bps
        if now > reading.body_started + settings.body_timeout_s + allowed:
            return (
                f"The request body arrived slower than {settings.body_min_rate_bps:g} bytes "
                "per second."
            )
        return ""

    def _linger(self, sock: socket.socket) -> None:
        """Close after the response: FIN now, then read and drop what the client still sends
        for up to ``_LINGER_S`` seconds in the loop (gunicorn's own drain blocks the loop)."""
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.lingering[sock] = time.monotonic() + _LINGER_S
        self.poller.register(sock, selectors.EVENT_READ, self._drain_linger)

    def _drain_linger(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(_LINGER_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(sock)
        sock.close()

    def handle_quit(self, sig: Any, frame: Any) -> None:
        self.liveness_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)  # type: ignore[misc]


_NONE: Final[frozenset[str]] = frozenset()
#: The request a thread of the worker is running: ``repeated``, the upper-case names of its
#: header fields sent on more than one line.
_this_request = threading.local()


class _WithRepeatedFields:
    """The app, called with ``REPEATED_FIELDS`` in its environ: the names
    ``RequestBuffering.handle_request`` found in the request this thread runs. Other attributes
    are the app's (``worker.wsgi.extensions`` in the APIs' ``worker_exit`` hooks)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ[REPEATED_FIELDS] = getattr(_this_request, "repeated", _NONE)
        return self.app(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def _socket_chunks(sock: socket.socket) -> Iterator[bytes]:
    """The rest of a body too large to buffer, read by the thread (blocking, with the
    app's idle timeout on the socket: ``contacts_http.bodies``)."""
    while data := sock.recv(_RECV):
        yield data


def _reset(sock: socket.socket) -> None:
    """Close at once with a reset, dropping the bytes the client did not take (``SO_LINGER``
    0: otherwise the kernel keeps them, up to the send buffer, for a client that reads none)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _max_head_bytes(cfg: Any) -> int:
    """The largest head gunicorn would read: its request line and header field limits
    (0 means unlimited in gunicorn; then 1 MiB)."""
    line = cfg.limit_request_line or 1024 * 1024
    fields = (cfg.limit_request_fields or 100) * (cfg.limit_request_field_size or 8190)
    return min(line + fields + 4, 4 * 1024 * 1024)


def _request_timeout(detail: str) -> bytes:
    return problem_bytes(408, "Request Timeout", detail)


class BufferingThreadWorker(RequestBuffering, ProblemRefusals, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that buffers whole requests under deadlines (module doc)
    and answers gunicorn's own refusals as problems. Use with
    ``worker_class = "contacts_http.request_buffering.BufferingThreadWorker"``."""
