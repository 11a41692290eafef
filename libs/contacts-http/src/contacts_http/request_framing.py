"""Where an HTTP/1.x request ends, found incrementally from the bytes of a connection.

``RequestFramer`` is fed what ``recv`` returns and answers one question: is a whole request
(head and body) buffered yet? It keeps the request's bytes (in memory up to ``spool_bytes``,
then in a temporary file) so that a server can hand a complete request to a thread that reads
it without ever waiting on the client (``contacts_http.gunicorn_workers``). It is no parser:
it reads only the framing of RFC 9112 (§2.2 the head ends with an empty line, §6.3 the body
length from ``Transfer-Encoding: chunked`` or ``Content-Length``, §7.1 chunks and trailers)
and leaves every other judgement to the server's own parser. When the framing cannot be read
(two lengths, a bad chunk size, a head too large) it says ``UNFRAMED``: the bytes are handed
on as they are, and the server's parser refuses them as it would have anyway.
"""

from __future__ import annotations

import enum
import re
import tempfile
from collections.abc import Iterator
from typing import IO, Final

_CHUNK: Final = 64 * 1024
_LENGTH: Final = re.compile(rb"[0-9]{1,18}")
_CHUNK_SIZE: Final = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(;.*)?")
#: Longest chunk-size line or trailer line the framer waits for (bytes).
MAX_LINE_BYTES: Final = 8192


class Framing(enum.Enum):
    """What a framer knows after the bytes fed so far."""

    NEED_MORE = "need more bytes"
    COMPLETE = "a whole request is buffered"
    UNFRAMED = "the framing cannot be read: hand the bytes on as they are"
    TOO_LARGE = "the body is larger than the buffer: hand it on as a stream"


class _Phase(enum.Enum):
    HEAD = 0
    LENGTH = 1
    SIZE_LINE = 2
    DATA = 3
    DATA_END = 4
    TRAILER = 5
    DONE = 6


class RequestFramer:
    """Buffers one HTTP/1.x request and finds where it ends.

    ``max_head_bytes`` bounds the head (request line and header fields, bytes): past it
    without the empty line, the framing is ``UNFRAMED``. ``max_body_bytes`` bounds the body as
    it comes on the wire (chunk framing included): a declared or received body past it is
    ``TOO_LARGE``. Memory: up to ``spool_bytes`` of the request, the rest in a temporary file
    (``TMPDIR``). Not thread-safe; one framer per request.
    """

    def __init__(self, *, max_head_bytes: int, max_body_bytes: int, spool_bytes: int) -> None:
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115
        self._head = bytearray()
        self._phase = _Phase.HEAD
        self._line = bytearray()
        self._remaining = 0
        self.state = Framing.NEED_MORE
        #: The request target of the request line (``b""`` until the head is complete).
        self.target = b""
        #: The head carries ``Expect: 100-continue`` (the client waits before its body).
        self.expects_continue = False
        #: Body bytes received so far (chunk framing included).
        self.body_bytes = 0

    @property
    def head_started(self) -> bool:
        """At least one byte of the request has arrived."""
        return bool(self._head) or self._phase is not _Phase.HEAD

    @property
    def head_complete(self) -> bool:
        """The empty line ending the head has arrived."""
        return self._phase is not _Phase.HEAD

    def feed(self, data: bytes) -> bytes:
        """Take ``data`` from the connection; returns what comes after this request's end
        (the next pipelined request) once ``state`` is ``COMPLETE`` (all of ``data`` when it already
        was), else ``b""``. After
        ``UNFRAMED`` and ``TOO_LARGE`` every byte is kept and ``b""`` returned."""
        if self.state is Framing.COMPLETE:
            return data
        if self.state is not Framing.NEED_MORE:
            self._spool.write(data)
            return b""
        view = memoryview(data)
        while view and self.state is Framing.NEED_MORE:
            in_head = self._phase is _Phase.HEAD
            used = self._step(view)
            self._spool.write(view[:used])
            view = view[used:]
            if not in_head:
                self.body_bytes += used
                if self.body_bytes > self.max_body_bytes and self.state is Framing.NEED_MORE:
                    self.state = Framing.TOO_LARGE
            if self._phase is _Phase.DONE and self.state is Framing.NEED_MORE:
                self.state = Framing.COMPLETE
        if self.state is not Framing.COMPLETE:
            self._spool.write(view)
            return b""
        return bytes(view)

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

    def _step(self, view: memoryview) -> int:
        """Consume from ``view`` within the current phase; returns the bytes used."""
        if self._phase is _Phase.HEAD:
            return self._step_head(view)
        if self._phase is _Phase.LENGTH or self._phase is _Phase.DATA:
            used = min(self._remaining, len(view))
            self._remaining -= used
            if self._remaining == 0:
                self._phase = _Phase.DONE if self._phase is _Phase.LENGTH else _Phase.DATA_END
            return used
        return self._step_line(view)

    def _step_head(self, view: memoryview) -> int:
        start = max(0, len(self._head) - 3)
        self._head += view
        end = self._head.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self._head) > self.max_head_bytes:
                self.state = Framing.UNFRAMED
            return len(view)
        head_length = end + 4
        used = len(view) - (len(self._head) - head_length)
        del self._head[head_length:]
        self._read_head(bytes(self._head))
        return used

    def _read_head(self, head: bytes) -> None:
        request_line, *fields = head[:-4].split(b"\r\n")
        parts = request_line.split(b" ")
        self.target = parts[1] if len(parts) == 3 else b""
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for field in fields:
            name, colon, value = field.partition(b":")
            if not colon or name != name.strip() or not name:
                self.state = Framing.UNFRAMED
                return
            name, value = name.lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif name == b"expect":
                self.expects_continue = value.lower() == b"100-continue"
        self._choose_body(lengths, codings)

    def _choose_body(self, lengths: list[bytes], codings: list[bytes]) -> None:
        if codings:
            if lengths or codings[-1] != b"chunked":
                self.state = Framing.UNFRAMED
            else:
                self._phase = _Phase.SIZE_LINE
            return
        if not lengths:
            self._phase = _Phase.DONE
            return
        if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
            self.state = Framing.UNFRAMED
            return
        self._remaining = int(lengths[0])
        self._phase = _Phase.LENGTH if self._remaining else _Phase.DONE
        if self._remaining > self.max_body_bytes:
            self.state = Framing.TOO_LARGE

    def _step_line(self, view: memoryview) -> int:
        """Chunk-size lines, the CRLF after a chunk's data and trailer lines."""
        newline = bytes(view[: MAX_LINE_BYTES + 2]).find(b"\n")
        used = len(view) if newline < 0 else newline + 1
        self._line += view[:used]
        if newline < 0:
            if len(self._line) > MAX_LINE_BYTES:
                self.state = Framing.UNFRAMED
            return used
        line = bytes(self._line)
        self._line.clear()
        if not line.endswith(b"\r\n"):
            self.state = Framing.UNFRAMED
        elif self._phase is _Phase.DATA_END:
            self._phase = _Phase.SIZE_LINE if line == b"\r\n" else self._unframed()
        elif self._phase is _Phase.TRAILER:
            self._phase = _Phase.DONE if line == b"\r\n" else _Phase.TRAILER
        else:
            self._read_size(line[:-2])
        return used

    def _read_size(self, line: bytes) -> None:
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            self.state = Framing.UNFRAMED
            return
        self._remaining = int(match.group(1), 16)
        self._phase = _Phase.DATA if self._remaining else _Phase.TRAILER

    def _unframed(self) -> _Phase:
        self.state = Framing.UNFRAMED
        return self._phase
