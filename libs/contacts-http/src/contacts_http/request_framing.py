"""Where an HTTP/1.x request ends, found incrementally from the bytes of a connection.

``RequestFramer`` is fed what ``recv`` returns and answers one question: is a whole request
(head and body) buffered yet? It keeps the request's bytes as received (in memory up to
``spool_bytes``, then in a temporary file) so that a server can hand a complete request to a
thread that re-parses it without ever waiting on the client
(``contacts_http.request_buffering``). The framing itself (RFC 9112 §2.2 the head, §6.3 the body
length, §7.1 chunks and trailers) is read by h11, fed the same bytes; every other judgement is
left to the server's own parser. When h11 refuses the bytes (two lengths, a bad chunk size, a
transfer coding other than ``chunked`` alone, a head too large) the framing is ``UNFRAMED``:
the bytes are handed on as they are, and the server's parser answers them as it would have.

Two rules of h11 that are not framing are kept away from it, because gunicorn serves what they
refuse: one empty line before the request line is skipped (RFC 9112 §2.2; gunicorn ignores one),
and an HTTP/1.1 head without ``Host`` (RFC 9112 §3.2) is framed again with a ``Host`` field
added to h11's copy only. A head with both ``Transfer-Encoding`` and ``Content-Length`` is
``UNFRAMED`` (h11 follows the first; gunicorn refuses it with 400).

h11 frames ``Transfer-Encoding: chunked`` alone; gunicorn would also take codings stacked before
it (``gzip, chunked``) and hand the app a body it cannot read. Our APIs decode no transfer
coding but chunked, so a head whose codings end with one ``chunked`` after others is
``REFUSED`` (``refusal`` says why): the server answers 501 (RFC 9112 §6.1) without reading the
body. Before, it was ``UNFRAMED``, and the connection closed without any answer. Other codings
h11 refuses (``gzip`` alone: 400, RFC 9112 §6.3; ``xchunked``: 501) stay ``UNFRAMED`` and get
gunicorn's answer.
"""

from __future__ import annotations

import enum
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Final

import h11

_CHUNK: Final = 64 * 1024
_EMPTY_LINE: Final = b"\r\n"
#: The status h11 hints for a transfer coding it does not decode (h11 0.16, ``_headers.py``).
_NOT_IMPLEMENTED: Final = 501
#: h11's refusal of an HTTP/1.1 head without ``Host`` (h11 0.16, ``Request.__post_init__``).
_NO_HOST: Final = "Missing mandatory Host: header"
_HOST_FIELD: Final = b"Host: \r\n"
_TRANSFER_ENCODING: Final = re.compile(rb"(?im)^transfer-encoding[ \t]*:([^\r\n]*)")


class Framing(enum.Enum):
    """What a framer knows after the bytes fed so far."""

    NEED_MORE = "need more bytes"
    COMPLETE = "a whole request is buffered"
    UNFRAMED = "the framing cannot be read: hand the bytes on as they are"
    TOO_LARGE = "the body is larger than the buffer: hand it on as a stream"
    REFUSED = "a transfer coding this server does not decode: answer 501, read nothing more"


class RequestFramer:
    """Buffers one HTTP/1.x request and finds where it ends, with h11.

    ``max_head_bytes`` bounds the head (request line and header fields, bytes) and any later
    incomplete line (chunk size, trailers): past it without its end, the framing is
    ``UNFRAMED``. ``max_body_bytes`` bounds the body as it comes on the wire (chunk framing
    included): a declared or received body past it is ``TOO_LARGE``. Memory: up to
    ``spool_bytes`` of the request, the rest in a temporary file (``TMPDIR``), plus h11's
    buffer of one incomplete line or head. Not thread-safe; one framer per request.
    """

    def __init__(self, *, max_head_bytes: int, max_body_bytes: int, spool_bytes: int) -> None:
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        #: Bytes of this request fed so far, as received.
        self._received = 0
        #: The optional empty line before the request line: still possible, and what of it came.
        self._skipping = True
        self._skipped = b""
        #: The length of the head as received (0 until it is complete).
        self._head_bytes = 0
        self._host_added = False
        self.state = Framing.NEED_MORE
        #: The request target of the request line (``b""`` until the head is complete).
        self.target = b""
        #: The head carries ``Expect: 100-continue`` (the client waits before its body).
        self.expects_continue = False
        #: Body bytes received so far (chunk framing included).
        self.body_bytes = 0
        #: Why the request is ``REFUSED`` (h11's words), else ``""``.
        self.refusal = ""

    @property
    def head_started(self) -> bool:
        """At least one byte of the request has arrived."""
        return self._received > 0

    @property
    def head_complete(self) -> bool:
        """The empty line ending the head has arrived."""
        return self._head_bytes > 0

    def feed(self, data: bytes) -> bytes:
        """Take ``data`` from the connection; returns what comes after this request's end
        (the next pipelined request) once ``state`` is ``COMPLETE`` (all of ``data`` when it already
        was), else ``b""``. After
        ``UNFRAMED`` and ``TOO_LARGE`` every byte is kept and ``b""`` returned (after
        ``REFUSED`` too; the server answers it without the bytes)."""
        if self.state is Framing.COMPLETE:
            return data
        if self.state is Framing.NEED_MORE:
            self._received += len(data)
            self._frame(data)
        leftover = self._http.trailing_data[0] if self.state is Framing.COMPLETE else b""
        self._spool.write(data[: len(data) - len(leftover)])
        if self.head_complete and self.state is Framing.NEED_MORE:
            self.body_bytes = self._received - self._head_bytes
            if self.body_bytes > self.max_body_bytes:
                self.state = Framing.TOO_LARGE
        elif self.state is Framing.COMPLETE:
            self.body_bytes = self._received - len(leftover) - self._head_bytes
        return leftover

    def chunks(self) -> Iterator[bytes]:
        """The buffered bytes, from the start of the request, in pieces of at most 64 KiB;
        the temporary file is closed after the last one."""
        self._spool.seek(0)
        try:
            while piece := self._spool.read(_CHUNK):
                yield piece
        finally:
            self._spool.close()

    def close(self) -> None:
        """Drop the buffered bytes (the request will never be handed on)."""
        self._spool.close()

    def _frame(self, data: bytes) -> None:
        """Give h11 the bytes of ``data`` that are its to read (not yet in the spool)."""
        fresh = self._skip_empty_line(data) if self._skipping else data
        if fresh:
            self._give(fresh, data)

    def _give(self, fresh: bytes, data: bytes) -> None:
        self._http.receive_data(fresh)
        try:
            self._read_events()
        except h11.RemoteProtocolError as refusal:
            if str(refusal) == _NO_HOST and not self._host_added:
                self._frame_with_host(data)
            elif refusal.error_status_hint == _NOT_IMPLEMENTED and self._stacked_codings(data):
                self.state, self.refusal = Framing.REFUSED, str(refusal)
            else:
                self.state = Framing.UNFRAMED

    def _stacked_codings(self, data: bytes) -> bool:
        """The head (buffered bytes and ``data``) names transfer codings ending with a single
        ``chunked`` after others (``gzip, chunked``), which gunicorn would take."""
        self._spool.seek(0)
        head = self._spool.read() + data
        self._spool.seek(0, 2)
        codings = [
            coding.strip(b" \t").lower()
            for value in _TRANSFER_ENCODING.findall(head.split(b"\r\n\r\n", 1)[0])
            for coding in value.split(b",")
        ]
        return len(codings) > 1 and codings[-1] == b"chunked" and b"chunked" not in codings[:-1]

    def _skip_empty_line(self, data: bytes) -> bytes:
        """Drop the bytes of one CRLF before the request line (RFC 9112 §2.2), which h11
        refuses and gunicorn ignores; anything else goes to h11 with the bytes dropped so far."""
        wanted = _EMPTY_LINE[len(self._skipped) :]
        taken = 0
        while taken < min(len(wanted), len(data)) and data[taken] == wanted[taken]:
            taken += 1
        if taken in (len(wanted), len(data)):
            self._skipped += data[:taken]
            self._skipping = len(self._skipped) < len(_EMPTY_LINE)
            return data[taken:]
        given_back, self._skipped, self._skipping = self._skipped + data, b"", False
        return given_back

    def _frame_with_host(self, data: bytes) -> None:
        """Frame the head again, ``data`` included, with a ``Host`` field added to h11's copy
        only (see the module doc); the spool keeps the bytes as received."""
        self._spool.seek(0)
        received = (self._spool.read() + data)[len(self._skipped) :]
        line_end = received.find(b"\n") + 1
        self._host_added = True
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head_bytes)
        self._give(received[:line_end] + _HOST_FIELD + received[line_end:], data)

    def _read_events(self) -> None:
        """Read h11's events until it needs more bytes, the body is too large or the request
        has ended. Raises ``h11.RemoteProtocolError`` when h11 refuses the bytes."""
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._read_head(event)
                if self.state is not Framing.NEED_MORE:
                    return
            elif isinstance(event, h11.EndOfMessage):
                self.state = Framing.COMPLETE
                return

    def _read_head(self, request: h11.Request) -> None:
        # What h11 read of its copy is the head as received: the skipped empty line and the
        # added Host field (if any) are the same length in both counts, with opposite signs.
        self._head_bytes = self._received - len(self._http.trailing_data[0])
        self.target = request.target
        # Read before the first byte of the body, after which h11 no longer says it.
        self.expects_continue = self._http.they_are_waiting_for_100_continue
        fields = dict(request.headers)
        if b"transfer-encoding" in fields and b"content-length" in fields:
            # h11 follows Transfer-Encoding; gunicorn refuses both (RFC 9112 §6.1: MAY).
            self.state = Framing.UNFRAMED
        elif int(fields.get(b"content-length", 0)) > self.max_body_bytes:
            self.state = Framing.TOO_LARGE
