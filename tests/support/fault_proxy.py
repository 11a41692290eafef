"""A TCP proxy that injects network faults in front of one dependency (PostgreSQL, Redis, SQS).

Tests point a service at the proxy instead of the shared server, so a fault never disturbs
anything else on the machine and never outlives the test. Modes:

- ``pass``: bytes flow both ways.
- ``refuse``: new connections are reset at once and open ones are closed (a stopped server).
- ``blackhole``: connections are accepted, nothing is forwarded either way (a paused server,
  SIGSTOP, or dropped packets): clients only notice through their own timeouts.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole"]


class FaultProxy:
    """Listens on 127.0.0.1:<port> and forwards to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode: Mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        #: HTTP requests seen going upstream (counted by their request line), for rate checks.
        self.http_requests = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def set_mode(self, mode: Mode) -> None:
        """Switch mode; ``refuse`` also closes every open connection."""
        with self._lock:  # atomic with the accept loop's check and registration
            self.mode = mode
            pairs, self._pairs = (self._pairs, set()) if mode == "refuse" else (set(), self._pairs)
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    # shutdown first: close() alone sends the FIN only once the pump thread's
                    # select() lets go of the socket (up to its 0.1 s timeout), while a stopped
                    # server's peers hear of it at once.
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    @contextlib.contextmanager
    def fault(self, mode: Mode, seconds: float) -> Iterator[None]:
        """Hold ``mode`` for ``seconds`` (the body runs meanwhile), then pass traffic again."""
        self.set_mode(mode)
        started = time.monotonic()
        try:
            yield
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        finally:
            self.set_mode("pass")

    def stop(self) -> None:
        self._stopped.set()
        self.set_mode("refuse")
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self._lock:
                # Switched to refuse while connecting: this pair was not closed with the others.
                escaped = self.mode == "refuse"
                if not escaped:
                    self._pairs.add(pair)
            if escaped:
                client.close()
                upstream.close()
                continue
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopped.is_set():
                if self.mode == "refuse":
                    return  # set_mode closed this pair (or is closing it)
                if self.mode == "blackhole":
                    time.sleep(0.05)  # hold everything: neither side hears from the other
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    # Under the mode's lock: once set_mode returns, no chunk is forwarded in
                    # a mode that no longer passes (select may have waited up to 0.1 s; a
                    # sent-script test saw a command reach Redis after the blackhole began).
                    with self._lock:
                        if self.mode != "pass":
                            break
                        data = sock.recv(65536)
                        if not data:
                            return
                        if sock is client:
                            self.http_requests += data.count(b" HTTP/1.1\r\n")
                        peers[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket closed by stop()
            return
        finally:
            with self._lock:
                self._pairs.discard(pair)
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()
