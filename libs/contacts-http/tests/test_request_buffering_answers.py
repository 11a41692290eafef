"""What clients get from a real gunicorn running ``BufferingThreadWorker``, for requests whose
framing is odd, refused or arrives in pieces: the statuses are gunicorn's own (the framer only
decides when a request is whole), answered as problems with the APIs' security headers, and a
body sent after its head reaches the app whole. Transfer codings stacked before ``chunked``,
which gunicorn would take, are refused by the loop with 501."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.echo_server import echo_server

pytestmark = pytest.mark.processes

HEAD_TIMEOUT_S = 2
BODY = b'{"first_name": "Ada", "notes": "' + b"n" * 3000 + b'"}'


def echo(method: str, path: str, body: bytes) -> bytes:
    """What ``buffering_echo_app`` answers for a request that reached it whole."""
    return f"{method} {path} {len(body)} {hashlib.sha256(body).hexdigest()[:12]}".encode()


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gunicorn's stderr (its warnings and errors) for the module's server."""
    return tmp_path_factory.mktemp("gunicorn") / "stderr.log"


@pytest.fixture(scope="module")
def port(server_log: Path) -> Iterator[int]:
    env = {"REQUEST_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S)}
    with echo_server(server_log, threads=2, env=env) as port:
        yield port


def exchange(port: int, *parts: bytes, pause_s: float = 0.3) -> bytes:
    """Send ``parts`` with a pause between them (a body after its head arrives in a later
    ``recv``), then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=HEAD_TIMEOUT_S + 10) as sock:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause_s)
            sock.sendall(part)
        response = b""
        while data := sock.recv(65536):
            response += data
    return response


def statuses(response: bytes) -> list[int]:
    """The status codes of the responses in ``response``, in order (informational ones too)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.[01] ([0-9]{3}) ", response)]


def post(head_fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /echo " + version + b"\r\nConnection: close\r\n" + head_fields + b"\r\n"


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (post(b"Host: a\r\nContent-Length: %d\r\n" % len(BODY)), BODY),
        (post(b"Host: a\r\nTransfer-Encoding: chunked\r\n"), chunked(BODY)),
        # An HTTP/1.1 request without Host (RFC 9112 §3.2 says 400; gunicorn serves it).
        (post(b"Content-Length: %d\r\n" % len(BODY)), BODY),
        (post(b"Transfer-Encoding: chunked\r\n"), chunked(BODY)),
        # One empty line before the request line (RFC 9112 §2.2: a server SHOULD ignore it).
        (b"\r\n" + post(b"Host: a\r\nContent-Length: %d\r\n" % len(BODY)), BODY),
        (post(b"Host: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n" % len(BODY)), BODY),
    ],
    ids=["length", "chunked", "no-host", "no-host-chunked", "leading-crlf", "expect-100"],
)
def test_a_body_sent_after_its_head_reaches_the_app_whole(port, head, body) -> None:
    response = exchange(port, head, body)
    assert statuses(response)[-1] == 200, response
    assert response.endswith(echo("POST", "/echo", BODY)), response


def test_pipelined_requests_are_each_answered(port) -> None:
    first = b"POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    second = b"GET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    response = exchange(port, first + second[:10], second[10:])
    assert statuses(response) == [200, 200]
    assert echo("POST", "/one", b"hello") in response
    assert response.endswith(echo("GET", "/two", b""))


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (post(b"Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n") + b"hello", 400),
        (post(b"Host: a\r\nContent-Length: -1\r\n"), 400),
        (post(b"Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n") + b"hello", 400),
        (post(b"Host: a\r\nTransfer-Encoding: xchunked\r\n"), 501),
        (post(b"Host: a\r\nTransfer-Encoding: gzip\r\n"), 400),
        (post(b"Host: a\r\nTransfer-Encoding: chunked\r\n") + b"zz\r\nhello\r\n0\r\n\r\n", 400),
        (post(b"Host: a\r\nBad Name : x\r\n"), 400),
        (post(b"Host: a\r\nHost: b\r\n"), 400),
        (post(b"Host: a\r\nX-Folded: a\r\n b\r\n"), 400),
        (b"GET /echo HTTP/1.1\nHost: a\n\n", 400),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (post(b"Host: a\r\nX-Big: " + b"b" * 9000 + b"\r\n"), 431),
        (post(b"Host: a\r\n", version=b"HTTP/2.0"), 400),
    ],
    ids=[
        "two-lengths",
        "bad-length",
        "length-and-chunked",
        "xchunked",
        "not-chunked",
        "bad-chunk-size",
        "bad-field-name",
        "two-hosts",
        "obs-fold",
        "bare-lf",
        "long-uri",
        "big-field",
        "http-2",
    ],
)
def test_requests_gunicorn_refuses_get_its_answer_as_a_problem(port, request_bytes, status):
    response = exchange(port, request_bytes)
    assert statuses(response) == [status]
    assert_problem(response, status)


def assert_problem(response: bytes, status: int) -> None:
    """``response`` is one problem of ``status`` with the headers every API answer carries."""
    head, _, body = response.partition(b"\r\n\r\n")
    fields = head.lower().split(b"\r\n")
    assert b"content-type: application/problem+json" in fields, response
    assert b"x-content-type-options: nosniff" in fields, response
    assert b"cache-control: no-store" in fields, response
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]


@pytest.mark.parametrize(
    "head",
    [
        post(b"Host: a\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n"),
        post(b"Host: a\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\n"),
    ],
    ids=["soh", "del"],
)
def test_a_control_character_in_a_header_is_a_400_problem(port, head) -> None:
    response = exchange(port, head + b"{}")
    assert statuses(response) == [400]
    assert_problem(response, 400)


@pytest.mark.parametrize("split", [False, True], ids=["body-with-head", "body-after-head"])
def test_codings_stacked_before_chunked_are_a_501_problem(port, split) -> None:
    # gunicorn takes ``gzip, chunked``; without an answer here the client got none at all.
    head = post(b"Host: a\r\nTransfer-Encoding: gzip, chunked\r\n")
    body = chunked(b"\x1f\x8b" + b"z" * 100)
    response = exchange(port, head, body) if split else exchange(port, head + body)
    assert statuses(response) == [501]
    assert_problem(response, 501)


def fields_seen(port: int, head_fields: bytes) -> dict:
    """What ``buffering_echo_app`` saw of a ``GET /fields`` with ``head_fields``."""
    request = b"GET /fields HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + head_fields + b"\r\n"
    response = exchange(port, request)
    assert statuses(response) == [200], response
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def test_a_field_sent_twice_is_joined_by_gunicorn_and_named_in_the_environ(port) -> None:
    seen = fields_seen(port, b"Idempotency-Key: k1\r\nX-Other: x\r\nidempotency-key: k2\r\n")
    # gunicorn's own joining: the value alone is the same as one line "k1,k2".
    assert seen["fields"]["HTTP_IDEMPOTENCY_KEY"] == "k1,k2"
    assert seen["repeated"] == ["IDEMPOTENCY-KEY"]


def test_a_value_holding_a_comma_is_one_field(port) -> None:
    seen = fields_seen(port, b"Idempotency-Key: k1,k2\r\n")
    assert seen["fields"]["HTTP_IDEMPOTENCY_KEY"] == "k1,k2"
    assert seen["repeated"] == []


def problem_of(response: bytes) -> dict[str, object]:
    return dict(json.loads(response.partition(b"\r\n\r\n")[2]))


@pytest.mark.parametrize(
    ("request_bytes", "detail"),
    [
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "The request line is not valid"),
        (b"GET /echo?q=a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", "The request line is not valid"),
        (b"get /echo HTTP/1.1\r\nHost: a\r\n\r\n", "The request method is not valid"),
        (post(b"Host: a\r\n", version=b"HTTP/2.0"), "The HTTP version is not supported"),
        (post(b"Host: a\r\nContent-Length: -1\r\n"), "The Content-Length header is not valid"),
        (
            post(b"Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n") + b"hello",
            "The Content-Length header is not valid",
        ),
        (post(b"Host: a\r\nTransfer-Encoding: gzip\r\n"), "The Transfer-Encoding header"),
        (
            post(b"Host: a\r\nX-Bad: a\x01b\r\n"),
            "The value of the header field X-BAD holds a control",
        ),
        (post(b"Host: a\r\nHost: b\r\n"), "The header field HOST may appear only once"),
        (post(b"Host: a\r\nBad Name : x\r\n"), "A header field name is not valid"),
        (post(b"Host: a\r\nAuthorization Bearer k3y\r\n"), "A header line is not a field"),
        (post(b"Host: a\r\nX-Folded: a\r\n b\r\n"), "obsolete line folding"),
        (b"GET /echo HTTP/1.1\nHost: a\n\n", "The request line is not valid"),
        (
            post(b"Host: a\r\nTransfer-Encoding: chunked\r\n") + b"zz\r\nhello\r\n0\r\n\r\n",
            "The chunked body is malformed",
        ),
    ],
    ids=[
        "asterisk",
        "control-in-target",
        "lower-case-method",
        "http-2",
        "negative-length",
        "two-lengths",
        "not-chunked",
        "control-in-value",
        "two-hosts",
        "bad-field-name",
        "no-colon",
        "obs-fold",
        "bare-lf",
        "bad-chunk-size",
    ],
)
def test_each_kind_of_malformed_request_gets_its_own_detail(port, request_bytes, detail) -> None:
    response = exchange(port, request_bytes)
    assert statuses(response) == [400], response
    problem = problem_of(response)
    assert detail in str(problem["detail"]), problem
    if b"\x01" not in request_bytes:
        assert "control character" not in str(problem["detail"]), problem
    assert b"k3y" not in response


def test_an_unknown_parse_error_is_a_400_with_a_generic_detail() -> None:
    from gunicorn.http.errors import ParseException

    from contacts_http.gunicorn_workers import MALFORMED, refusal_of

    class NewInGunicorn(ParseException):
        pass

    assert refusal_of(NewInGunicorn()) == (400, "Bad Request", MALFORMED)
    assert refusal_of(RuntimeError("boom"))[0] == 500


def test_the_warning_of_a_refusal_holds_no_query_string_nor_header_line(port, server_log) -> None:
    secret = b"Quorbelvantrexi"
    exchange(port, b"GET /echo?q=" + secret + b"\x01 HTTP/1.1\r\nHost: a\r\n\r\n")
    exchange(port, b"GET /echo?q=" + secret + b" HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n")
    exchange(port, post(b"Host: a\r\nAuthorization Bearer " + secret + b"\r\n"))
    deadline = time.monotonic() + 5
    while server_log.read_bytes().count(b"Invalid request from") < 3:
        assert time.monotonic() < deadline, server_log.read_text()
        time.sleep(0.05)
    log = server_log.read_bytes()
    assert secret not in log, log
    assert b"InvalidRequestLine, request -\n" in log, log
    assert b"InvalidHeader, request GET /echo\n" in log, log


def test_a_malformed_body_left_unread_after_the_answer_closes_without_a_second_answer(
    port,
) -> None:
    # Fresh-clone review: an app that answers without reading the body (a 401, here a stream)
    # got its answer, then gunicorn read the broken chunked body to reuse the connection and
    # sent a 400 too: two answers to one request.
    request = b"POST /stream?10 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"
    response = exchange(port, request)
    assert statuses(response) == [200], response
