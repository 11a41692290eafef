"""Where a request ends (RFC 9112 framing), fed one byte or one read at a time."""

from __future__ import annotations

import pytest

from contacts_http.request_framing import Framing, RequestFramer


def framer(max_body: int = 1000) -> RequestFramer:
    return RequestFramer(max_head_bytes=2000, max_body_bytes=max_body, spool_bytes=64)


def feed_bytewise(f: RequestFramer, data: bytes) -> bytes:
    rest = b""
    for index in range(len(data)):
        rest += f.feed(data[index : index + 1])
    return rest


GET = b"GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST /v1/contacts HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"POST /v1/imports HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"
)


# No Host field (h11 refuses it; gunicorn serves it) and one empty line before the request line
# (RFC 9112 §2.2; h11 refuses it, gunicorn ignores it): framed all the same, kept as received.
NO_HOST = b"POST /v1/contacts HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
LEADING_CRLF = b"\r\n" + POST


@pytest.mark.parametrize(
    "request_bytes",
    [GET, POST, CHUNKED, NO_HOST, LEADING_CRLF],
    ids=["get", "length", "chunked", "no-host", "leading-crlf"],
)
@pytest.mark.parametrize("bytewise", [True, False])
def test_a_whole_request_is_complete_and_kept_whole(request_bytes: bytes, bytewise: bool) -> None:
    f = framer()
    pipelined = b"GET /next HTTP/1.1\r\n"
    data = request_bytes + pipelined
    rest = feed_bytewise(f, data) if bytewise else f.feed(data)
    assert f.state is Framing.COMPLETE
    assert b"".join(f.chunks()) == request_bytes
    assert rest == pipelined


def test_a_request_without_its_last_byte_needs_more() -> None:
    for request_bytes in (GET, POST, CHUNKED, NO_HOST, LEADING_CRLF):
        f = framer()
        f.feed(request_bytes[:-1])
        assert f.state is Framing.NEED_MORE


@pytest.mark.parametrize("request_bytes", [POST, NO_HOST, LEADING_CRLF, CHUNKED])
def test_body_bytes_count_the_body_as_received(request_bytes: bytes) -> None:
    f = framer()
    f.feed(request_bytes + GET)
    head_end = request_bytes.index(b"\r\n\r\n", 2) + 4
    assert f.body_bytes == len(request_bytes) - head_end


def test_head_facts_are_read() -> None:
    f = framer()
    f.feed(b"POST /v1/imports HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\nab")
    assert f.head_complete
    assert f.target == b"/v1/imports"
    assert f.expects_continue
    assert f.body_bytes == 2


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nBad Name : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 3000,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"a" * 3000,
        b"\rGET / HTTP/1.1\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ],
    ids=[
        "two-lengths",
        "bad-length",
        "both",
        "not-chunked",
        "bad-chunk-size",
        "bad-field",
        "huge",
        "huge-chunk-size",
        "lone-cr",
        "two-empty-lines",
        "two-hosts",
    ],
)
def test_framing_that_cannot_be_read_is_handed_on_as_it_is(head: bytes) -> None:
    f = framer()
    f.feed(head)
    assert f.state is Framing.UNFRAMED
    assert b"".join(f.chunks()) == head


@pytest.mark.parametrize(
    "codings",
    [b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"],
    ids=["one-field", "two-fields"],
)
def test_codings_stacked_before_chunked_are_refused(codings: bytes) -> None:
    # gunicorn would hand the app a gzip body it cannot read: the server answers 501 instead.
    f = framer()
    f.feed(b"POST / HTTP/1.1\r\nHost: a\r\n" + codings + b"\r\n\r\n")
    assert f.state is Framing.REFUSED
    assert f.refusal


def test_a_declared_body_over_the_buffer_is_too_large_at_once() -> None:
    f = framer(max_body=10)
    f.feed(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nab")
    assert f.state is Framing.TOO_LARGE
    assert b"".join(f.chunks()).endswith(b"\r\n\r\nab")


def test_a_chunked_body_growing_over_the_buffer_is_too_large() -> None:
    f = framer(max_body=20)
    f.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert f.state is Framing.NEED_MORE
    f.feed(b"10\r\n" + b"x" * 16 + b"\r\n10\r\n")
    assert f.state is Framing.TOO_LARGE


def test_a_large_body_is_kept_whole_past_the_memory_part() -> None:
    body = bytes(range(256)) * 40
    f = framer(max_body=20_000)
    request_bytes = b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    for start in range(0, len(request_bytes), 1000):
        f.feed(request_bytes[start : start + 1000])
    assert f.state is Framing.COMPLETE
    assert b"".join(f.chunks()) == request_bytes
