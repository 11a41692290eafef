"""A bounded slow-client attack on one API, and the latency of honest requests during it.

``slow_client_attack`` opens ``slow_headers`` connections that send a request head one byte
every ``interval_s`` seconds and ``slow_bodies`` connections that send a complete head
declaring a large body and then trickle that body one byte every ``interval_s`` seconds (the
"slowloris" and "R-U-Dead-Yet" attacks). A connection the server closes is opened again, so the
pressure stays the same for ``duration_s`` seconds. Meanwhile the caller's probes (``/healthz``
and a normal authenticated request, each on a fresh connection) run one after the other, and
their latencies are reported. Everything runs on loopback and stops after ``duration_s``.

Run by hand against ``make up`` (its own ports: see ``.env``)::

    .venv/bin/python tests/support/slow_clients.py --port 18002 --path /v1/contacts/ID \\
        --key "$(cat .run/dev-api-key)"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

#: A probe that did not answer within this many seconds counts with this latency.
PROBE_TIMEOUT_S = 3.0


@dataclass
class ProbeResults:
    """Latencies (ms) of one probe, and how many of its attempts failed or timed out."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def p99_ms(self) -> float:
        """The 99th percentile (nearest rank) of every attempt, failures counted as the
        probe timeout."""
        values = sorted(self.latencies_ms)
        if not values:
            return float("inf")
        rank = max(0, min(len(values) - 1, -(-99 * len(values) // 100) - 1))
        return values[rank]

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.latencies_ms)} requests, p99 {self.p99_ms():.1f} ms, "
            f"max {max(self.latencies_ms, default=0):.1f} ms, failures {self.failures}, "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


@dataclass
class AttackReport:
    """What the attackers did and what the probes saw."""

    probes: list[ProbeResults]
    connections_opened: int
    bytes_sent: int
    closed_by_server: int

    def summary(self) -> str:
        lines = [probe.summary() for probe in self.probes]
        lines.append(
            f"attack: {self.connections_opened} connections opened, {self.bytes_sent} bytes "
            f"trickled, {self.closed_by_server} closed by the server"
        )
        return "\n".join(lines)


@dataclass
class _Counters:
    opened: int = 0
    sent: int = 0
    closed: int = 0


def slow_head(host: str, port: int) -> bytes:
    """A request head that is never finished (the trickle stops before its blank line)."""
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: slowloris\r\n"
    return (head + "X-Padding: " + "a" * 4000 + "\r\n").encode()


def slow_body_head(host: str, port: int, path: str, headers: Mapping[str, str]) -> bytes:
    """A complete POST head declaring a 1 MB body, which then comes one byte at a time."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Content-Length: 1000000",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _trickle(
    host: str,
    port: int,
    prefix: bytes,
    trickle: bytes,
    interval_s: float,
    until: float,
    counters: _Counters,
) -> None:
    """Send ``prefix`` at once, then ``trickle`` one byte per ``interval_s``; reconnect when
    the server closes, until the monotonic time ``until``."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(interval_s)
            continue
        counters.opened += 1
        try:
            writer.write(prefix)
            for index in range(len(trickle)):
                if loop.time() >= until or reader.at_eof():
                    break
                writer.write(trickle[index : index + 1])
                await writer.drain()
                counters.sent += 1
                with contextlib.suppress(TimeoutError):
                    # Reading notices a server that answered (408) or closed.
                    if await asyncio.wait_for(reader.read(4096), interval_s) == b"":
                        counters.closed += 1
                        break
        except (OSError, asyncio.IncompleteReadError):
            counters.closed += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _attack(
    host: str,
    port: int,
    *,
    slow_headers: int,
    slow_bodies: int,
    body_path: str,
    headers: Mapping[str, str],
    interval_s: float,
    duration_s: float,
    counters: _Counters,
) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration_s
    head = slow_head(host, port)
    body_head = slow_body_head(host, port, body_path, headers)
    tasks = [
        _trickle(host, port, b"", head, interval_s, until, counters) for _ in range(slow_headers)
    ]
    tasks += [
        _trickle(host, port, body_head, b"x" * 1_000_000, interval_s, until, counters)
        for _ in range(slow_bodies)
    ]
    await asyncio.gather(*tasks)


def _probe(results: ProbeResults, call: Callable[[], requests.Response]) -> None:
    start = time.perf_counter()
    try:
        response = call()
    except requests.RequestException:
        results.failures += 1
        results.latencies_ms.append(PROBE_TIMEOUT_S * 1000)
        return
    elapsed = (time.perf_counter() - start) * 1000
    results.statuses[response.status_code] = results.statuses.get(response.status_code, 0) + 1
    if response.status_code >= 500:
        results.failures += 1
    results.latencies_ms.append(elapsed)


def slow_client_attack(
    host: str,
    port: int,
    probes: Mapping[str, Callable[[], requests.Response]],
    *,
    slow_headers: int = 200,
    slow_bodies: int = 200,
    body_path: str = "/v1/contacts",
    headers: Mapping[str, str] | None = None,
    interval_s: float = 1.0,
    duration_s: float = 20.0,
    warm_up_s: float = 3.0,
    probe_interval_s: float = 0.1,
) -> AttackReport:
    """Attack ``host:port`` for ``duration_s`` seconds and time ``probes`` (name → a call that
    makes one request, each on a fresh connection, with a timeout of ``PROBE_TIMEOUT_S``)
    after the first ``warm_up_s`` seconds, when every attacking connection is open. Slow
    bodies go to ``body_path`` with ``headers`` (e.g. the API key). Returns the report; the
    attackers are gone when it returns."""
    # Its own process: the attackers must not take the probes' GIL (or CPU time on one core).
    context = multiprocessing.get_context("spawn")
    outcome: Any = context.Queue()
    attack = context.Process(
        target=_run_attack,
        args=(outcome, host, port),
        kwargs={
            "slow_headers": slow_headers,
            "slow_bodies": slow_bodies,
            "body_path": body_path,
            "headers": dict(headers or {}),
            "interval_s": interval_s,
            "duration_s": duration_s,
        },
        name="slow-clients",
        daemon=True,
    )
    results = {name: ProbeResults(name) for name in probes}
    attack.start()
    end = time.monotonic() + duration_s
    time.sleep(warm_up_s)
    while time.monotonic() < end - interval_s:
        for name, call in probes.items():
            _probe(results[name], call)
        time.sleep(probe_interval_s)
    counters: _Counters = outcome.get(timeout=duration_s + 30)
    attack.join(10)
    return AttackReport(list(results.values()), counters.opened, counters.sent, counters.closed)


def _run_attack(outcome: Any, host: str, port: int, **options: Any) -> None:
    counters = _Counters()
    asyncio.run(_attack(host, port, counters=counters, **options))
    outcome.put(counters)


def fresh_get(
    url: str, headers: Mapping[str, str] | None = None
) -> Callable[[], requests.Response]:
    """A probe: ``GET url`` on a new connection (as a kubelet probe makes it)."""

    def call() -> requests.Response:
        with requests.Session() as session:
            return session.get(url, headers=dict(headers or {}), timeout=PROBE_TIMEOUT_S)

    return call


def fresh_post(
    url: str, body: object, headers: Mapping[str, str] | None = None
) -> Callable[[], requests.Response]:
    """A probe: ``POST url`` with a JSON ``body`` on a new connection."""

    def call() -> requests.Response:
        with requests.Session() as session:
            return session.post(url, json=body, headers=dict(headers or {}), timeout=5)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="the normal request: GET path, or POST")
    parser.add_argument("--post", help="JSON body: make the normal request a POST")
    parser.add_argument("--key", required=True, help="API key")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--slow-headers", type=int, default=200)
    parser.add_argument("--slow-bodies", type=int, default=200)
    args = parser.parse_args()

    base = f"http://{args.host}:{args.port}"
    auth = {"Authorization": f"Bearer {args.key}"}
    normal = (
        fresh_post(base + args.path, json.loads(args.post), auth)
        if args.post
        else fresh_get(base + args.path, auth)
    )
    report = slow_client_attack(
        args.host,
        args.port,
        {"healthz": fresh_get(base + "/healthz"), "normal": normal},
        slow_headers=args.slow_headers,
        slow_bodies=args.slow_bodies,
        body_path=args.path if args.post else "/v1/contacts",
        headers=auth,
        duration_s=args.duration,
    )
    print(report.summary())


if __name__ == "__main__":
    main()
