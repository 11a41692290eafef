"""Clients that break off a body, against the real gunicorn process: a body shorter than its
``Content-Length`` is a 400 with nothing queued (not half an import taken for the whole), and
a stalled body is a 408 that frees its thread (stalled uploads once stopped the API, health
check included)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from support.auth import AUTH_HEADERS
from support.processes import command_api, free_port, http_ok

IDLE_TIMEOUT_S = 1
THREADS = 4  # gunicorn_conf's default per worker
CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Example;Rosa;;;\r\nFN:Rosa Example\r\nEND:VCARD\r\n"


@pytest.fixture(scope="module")
def port(command_env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    env = {**command_env, "REQUEST_BODY_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    service = command_api(port, env, workers=1, name="command-api-bodies").start()
    try:
        service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "healthz")
        yield port
    finally:
        service.stop()


def open_post(port: int, path: str, content_type: str, length: int, body: bytes) -> socket.socket:
    """Send a POST's head declaring ``length`` bytes, then ``body`` (maybe fewer)."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in AUTH_HEADERS.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return sock


def status_of(sock: socket.socket) -> int:
    response = b""
    while b"\r\n" not in response:
        data = sock.recv(4096)
        if not data:
            break
        response += data
    sock.close()
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "/v1/contacts/batch",
            "application/json",
            b'{"operations": [{"op": "delete", "id": "4d3c8f0e-1f0a-4c55-9d0e-5d2f5f9a1b11"}]}',
        ),
        ("/v1/imports", "text/vcard", CARD * 10),
    ],
)
def test_a_body_cut_before_its_content_length_is_a_400_and_queues_nothing(
    port, drain, path, content_type, body
) -> None:
    sock = open_post(port, path, content_type, len(body) * 2, body)
    sock.shutdown(socket.SHUT_WR)  # the client is gone after half the body
    assert status_of(sock) == 400
    assert drain() == []


def test_stalled_bodies_are_408s_and_free_the_threads(port) -> None:
    stalled = [
        open_post(port, "/v1/imports", "text/vcard", 100_000, CARD) for _ in range(THREADS + 2)
    ]
    # Every thread is taken by a stalled upload for IDLE_TIMEOUT_S; then each gets a 408 and
    # the health check is answered (a generous bound: not a hang).
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=IDLE_TIMEOUT_S * 15)
    assert health.status_code == 200
    assert [status_of(sock) for sock in stalled] == [408] * len(stalled)


def open_chunked_post(port: int, path: str, content_type: str, raw: bytes) -> socket.socket:
    """Send a chunked POST's head, then ``raw`` as it is (chunk framing included)."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: {content_type}",
        "Transfer-Encoding: chunked",
        *(f"{k}: {v}" for k, v in AUTH_HEADERS.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + raw)
    return sock


def answer_of(sock: socket.socket) -> bytes:
    response = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        response += data
        if b"\r\n\r\n" in response and response.rstrip().endswith(b"}"):
            break
    sock.close()
    return response


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/v1/contacts", "application/json", b'{"first_name": "ChunkCut"}'),
        ("/v1/imports", "text/vcard", CARD),
    ],
)
@pytest.mark.parametrize(
    "framing",
    [
        b"%x\r\n%s\r\n0\r\n",  # the last chunk's terminating CRLF never comes
        b"%x\r\n%s\r\n",  # the zero-size last chunk never comes
        b"%x\r\n%s",  # cut inside the framing of the first chunk
    ],
    ids=["no-final-crlf", "no-last-chunk", "no-chunk-terminator"],
)
def test_a_cut_chunked_body_is_a_400_problem_and_queues_nothing(
    port, drain, path, content_type, body, framing
) -> None:
    sock = open_chunked_post(port, path, content_type, framing % (len(body), body))
    sock.shutdown(socket.SHUT_WR)
    response = answer_of(sock)
    status = int(response.split(b" ", 2)[1])
    assert status == 400, response
    assert b"application/problem+json" in response
    assert b"nothing was accepted" in response
    assert drain() == []
