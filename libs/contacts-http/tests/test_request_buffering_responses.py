"""Clients that stop reading a response hold no thread of ``BufferingThreadWorker``: a real
gunicorn (1 process, 2 threads) streams ``buffering_echo_app``'s ``/stream`` responses, far
larger than the kernel's socket buffers, to clients that read none of it, or too slowly.

Before the response deadlines, every thread stayed blocked in ``sendall`` for as long as such
a client kept its connection open, and no other request was answered (issue: "slow readers of
the export"). The deadlines here are seconds; the waits of the tests are far longer, so a busy
machine only makes them slower."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.echo_server import echo_server

pytestmark = pytest.mark.processes

THREADS = 2
#: Far more than the kernel buffers between the thread and a client that reads nothing
#: (the server's send buffer grows to 4 MiB by default on Linux).
LARGE = 64 * 1024 * 1024
#: How long a test waits for what must happen within a few deadlines.
PATIENCE_S = 60.0


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[tuple[int, Path]]:
    """gunicorn with ``BufferingThreadWorker`` and ``env`` on a free port; yields the port and
    its log file."""
    log = tmp_path / "gunicorn.log"
    with echo_server(log, threads=THREADS, env=env, merge_stdout=True) as port:
        yield port, log


def ask_for_stream(port: int, size: int = LARGE, *, small_buffer: bool = True) -> socket.socket:
    """A connection that asked for ``size`` bytes of stream, with a receive buffer of 4 KiB
    (``small_buffer``: the server's send buffer fills at once) or the kernel's."""
    sock = socket.socket()
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(PATIENCE_S)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream?%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % size)
    return sock


def read_until_closed(sock: socket.socket, *, chunk: int = 65536, pause_s: float = 0.0) -> bytes:
    """What arrives until the server closes or resets the connection (or ``PATIENCE_S``)."""
    received = bytearray()
    deadline = time.monotonic() + PATIENCE_S
    try:
        while time.monotonic() < deadline:
            data = sock.recv(chunk)
            if not data:
                break
            received += data
            if pause_s:
                time.sleep(pause_s)
    except (ConnectionResetError, TimeoutError):
        pass
    return bytes(received)


def echo_answered(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        response = b""
        while data := sock.recv(65536):
            response += data
    return response


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def cut_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "response cut" in line]


def test_clients_that_read_nothing_lose_their_response_and_free_the_threads(tmp_path) -> None:
    with serving(tmp_path, RESPONSE_IDLE_TIMEOUT_S="1", RESPONSE_TIMEOUT_S="1") as (port, log):
        stuck = [ask_for_stream(port) for _ in range(THREADS + 2)]
        try:
            time.sleep(0.5)  # every thread is writing a stream now, or waiting for one

            answer = echo_answered(port)
            # Reading a connection before it is cut would make its client a reader.
            wait_for(lambda: len(cut_lines(log)) >= len(stuck))
            received = [read_until_closed(sock) for sock in stuck]
        finally:
            for sock in stuck:
                sock.close()

        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert answer.endswith(b"GET /echo 0 e3b0c44298fc"), answer
        # Each one was cut (a reset, or the end of the kernel's buffers), not served whole.
        assert all(0 < len(data) < LARGE for data in received), [len(d) for d in received]
        lines = cut_lines(log)
        assert len(lines) == len(stuck), log.read_text()
        assert all("GET /stream: the client took no byte" in line for line in lines), lines
        assert str(LARGE) not in "\n".join(lines)  # the query string is never logged
        assert "Traceback" not in log.read_text()


def test_a_client_reading_slower_than_the_minimum_rate_loses_its_response(tmp_path) -> None:
    env = {
        "RESPONSE_TIMEOUT_S": "1",
        "RESPONSE_MIN_RATE_BPS": "1000000",
        "RESPONSE_IDLE_TIMEOUT_S": "600",
    }
    with serving(tmp_path, **env) as (port, log), ask_for_stream(port) as sock:
        received = read_until_closed(sock, chunk=4096, pause_s=0.1)  # ~40 KB/s

        assert 0 < len(received) < LARGE
        [line] = cut_lines(log)
        assert "slower than 1e+06 bytes per second" in line, line


def test_a_client_that_keeps_reading_gets_the_whole_response(tmp_path) -> None:
    size = 8 * 1024 * 1024
    with (
        serving(tmp_path, RESPONSE_IDLE_TIMEOUT_S="2", RESPONSE_TIMEOUT_S="2") as (port, log),
        ask_for_stream(port, size, small_buffer=False) as sock,
    ):
        # Pauses well within the idle timeout, ~2 MB/s: far above the minimum rate.
        received = read_until_closed(sock, chunk=256 * 1024, pause_s=0.1)

        assert received.startswith(b"HTTP/1.1 200 ")
        assert received.endswith(b"\r\n0\r\n\r\n")  # the last chunk: the stream is whole
        assert received.count(b"x") == size
        assert not cut_lines(log)
