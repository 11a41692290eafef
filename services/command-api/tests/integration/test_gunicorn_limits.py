"""C07 against the real gunicorn process: huge and chunked bodies are refused without being
read whole, and the worker's memory does not grow by the body's size."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import requests

from support.auth import AUTH_HEADERS
from support.processes import Service, command_api, free_port, http_ok

BODY_MB = 20
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def server(command_env: dict[str, str]) -> Iterator[tuple[Service, int]]:
    port = free_port()
    service = command_api(port, command_env, workers=1, name="command-api-c07").start()
    try:
        service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "healthz")
        yield service, port
    finally:
        service.stop()


def worker_rss_kib(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def raw_post(port: int, head: dict[str, str], chunks: Iterable[bytes]) -> tuple[int, int]:
    """POST ``chunks`` (chunk-framed when ``Transfer-Encoding: chunked``) and stop sending as
    soon as the server answers. Returns (status, bytes of body sent)."""
    framed = head.get("Transfer-Encoding") == "chunked"
    lines = [
        "POST /v1/contacts HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        *(f"{k}: {v}" for k, v in {**AUTH_HEADERS, **head}.items()),
    ]
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break
                data = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if framed else chunk
                sock.sendall(data)
                sent += len(chunk)
            else:
                if framed:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = b""
        try:
            while b"\r\n" not in response:
                data = sock.recv(4096)
                if not data:
                    break
                response += data
        except ConnectionResetError:
            pass
    status_line = response.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1]), sent


def json_body_chunks(total_bytes: int) -> Iterator[bytes]:
    yield b'{"first_name": "A", "notes": "'
    for _ in range(total_bytes // CHUNK):
        yield b"n" * CHUNK
    yield b'"}'


def test_c07_20_mb_body_is_413_and_memory_does_not_grow(server) -> None:
    service, port = server
    before = worker_rss_kib(service.pid)
    total = BODY_MB * 1024 * 1024
    head_kind = "content-length"
    status, sent = raw_post(port, {"Content-Length": str(total + 32)}, json_body_chunks(total))
    after = worker_rss_kib(service.pid)
    print(
        f"C07 {head_kind}: status {status}, sent {sent} of {total} bytes, RSS {before}->{after} KiB"
    )
    assert status == 413
    assert sent < total
    assert after - before < 5 * 1024, f"worker RSS grew {after - before} KiB"


def test_c07_chunked_body_growing_past_the_limit_is_413(server) -> None:
    service, port = server
    before = worker_rss_kib(service.pid)
    total = BODY_MB * 1024 * 1024
    head_kind = "chunked"
    status, sent = raw_post(port, {"Transfer-Encoding": "chunked"}, json_body_chunks(total))
    after = worker_rss_kib(service.pid)
    print(
        f"C07 {head_kind}: status {status}, sent {sent} of {total} bytes, RSS {before}->{after} KiB"
    )
    assert status == 413
    assert sent < total
    assert after - before < 5 * 1024, f"worker RSS grew {after - before} KiB"


def test_c07_small_chunked_body_is_accepted(server, drain) -> None:
    _, port = server
    body = b'{"first_name": "Chunked", "notes": "' + b"n" * 5000 + b'"}'
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    status, _ = raw_post(port, {"Transfer-Encoding": "chunked"}, chunks)
    assert status == 202
    [message] = drain()
    assert message.envelope["data"]["first_name"] == "Chunked"


def test_readyz_through_gunicorn(server) -> None:
    _, port = server
    assert http_ok(f"http://127.0.0.1:{port}/readyz", timeout_s=3)


def test_header_fields_too_large_for_gunicorn_are_a_431_problem(server):
    """gunicorn refuses a header field over 8190 bytes before the app sees it; the answer is a
    problem like every other error of the API, not gunicorn's HTML page."""
    _, port = server
    response = requests.post(
        f"http://127.0.0.1:{port}/v1/contacts",
        json={"first_name": "Ada"},
        headers={"Idempotency-Key": "k" * 9000},
        timeout=10,
    )

    assert response.status_code == 431
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 431


@pytest.mark.parametrize("megabytes", [2, BODY_MB])
def test_a_413_says_whether_the_connection_stays_open(server, megabytes: int) -> None:
    # A 413 that announced keep-alive and then closed made clients fail their next request
    # on the same connection (RemoteDisconnected): the answer must say ``close`` when the
    # connection closes, and a kept connection must serve the next request.
    _, port = server
    body = b'{"first_name": "A", "notes": "' + b"n" * (megabytes * 1024 * 1024) + b'"}'
    with requests.Session() as session:
        refused = session.post(
            f"http://127.0.0.1:{port}/v1/contacts",
            data=body,
            headers={**AUTH_HEADERS, "Content-Type": "application/json"},
            timeout=30,
        )
        assert refused.status_code == 413
        said_close = refused.headers.get("Connection", "").lower() == "close"
        print(f"{megabytes} MB: 413 Connection={refused.headers.get('Connection')!r}")
        if not said_close:
            again = session.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert again.status_code == 200
