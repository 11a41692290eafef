"""A limit on FAILED authentications per client address, so bad tokens cannot burn our CPU.

Every bearer token the guard checks costs a SHA-256 and a comparison per configured key, or a
JWT parse and a signature check (and, for an unknown ``kid``, a JWKS fetch). Once an address
has had ``AUTH_FAILURE_LIMIT`` (default ``20/minute``, a moving window) tokens refused, its
requests that carry a bearer token are answered 429 with ``Retry-After`` *before* the token is
looked at, until the oldest failure leaves the window. Requests without a token cost nothing
and are not counted; valid tokens are not counted either.

Where the counters live: in this process's memory (``limits``' ``MemoryStorage``, the library
flask-limiter is built on), never in Redis, because

- the resource protected is this process's CPU, so a count per process matches it;
- a valid caller must not be slowed: the check is a dictionary lookup under a lock, with no
  network round trip, and a Redis outage neither blocks nor opens it;
- the cost is a looser bound across a deployment: an address may fail ``limit`` times in each
  process (gunicorn workers × replicas) per window, still a few hundred cheap refusals a
  minute at most.

Memory is bounded by the window: an address's failures (at most ``limit`` timestamps) are
dropped when they leave it. An IPv6 client usually holds a whole /64, so IPv6 addresses are
counted per /64 prefix; IPv4 addresses one by one.

The client address is the TCP peer (``REMOTE_ADDR``). ``X-Forwarded-For`` is believed only
when the peer is one of ``AUTH_TRUSTED_PROXIES`` (addresses or CIDR networks): then the client
is the right-most forwarded address that is not itself a trusted proxy (the one entry a
trusted proxy appended, which a client cannot forge).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable
from typing import Final

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from contacts_telemetry.logs import get_logger
from contacts_telemetry.metrics import MetricsRegistry

#: The default ``AUTH_FAILURE_LIMIT``: 20 refused tokens per client address per minute.
DEFAULT_FAILURE_LIMIT: Final = "20/minute"
#: Prefix length under which IPv6 addresses are counted together (one subscriber's network).
IPV6_PREFIX: Final = 64

log = get_logger("contacts_http.auth")


#: Most (peer, ``X-Forwarded-For``) pairs whose client address ``client_address`` remembers;
#: past it the memo starts again empty.
ADDRESS_MEMO_SIZE: Final = 4096


class AuthFailureMetrics:
    """``auth_failure_limit_events_total{event}``, registered on ``registry.registry``:
    ``event="failure"``, a bearer token refused (counted against the limit); ``"throttled"``,
    a request answered 429 without its token being checked; ``"limit_reached"``, an address
    went over the limit (once per address per window). No label names an address: the log
    line does.

    One labelled counter, its series created on first use: a series created in gunicorn's
    master before the workers fork (``--preload``) would not be written to the multi-process
    files, so it would never be exposed.
    """

    def __init__(self, registry: MetricsRegistry) -> None:
        self.events = Counter(
            "auth_failure_limit_events_total",
            "Refused bearer tokens (failure), requests refused unchecked past "
            "AUTH_FAILURE_LIMIT (throttled), addresses going over it (limit_reached).",
            ("event",),
            registry=registry.registry,
        )

    def count(self, event: str) -> None:
        """Count one ``event`` (``failure``, ``throttled`` or ``limit_reached``)."""
        self.events.labels(event).inc()


class AuthFailureLimiter:
    """Counts refused tokens per client address in memory and says when to stop checking.

    ``limit``: flask-limiter notation (``20/minute``, ``5/second;20/minute``; raises
    ``ValueError`` when it does not parse); ``trusted_proxies``: networks whose
    ``X-Forwarded-For`` is believed (see the module). Thread-safe (``MemoryStorage`` locks each
    key); builds its storage here, so build it in the composition root, never at import.
    """

    def __init__(
        self,
        limit: str,
        metrics: AuthFailureMetrics,
        *,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self._items = limits.parse_many(limit)
        self._text = limit
        self._metrics = metrics
        self._proxies = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._addresses: dict[tuple[str | None, str | None], str] = {}

    def client_address(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        """The address a request counts for: ``remote_addr`` (the TCP peer), or the client
        named in ``forwarded_for`` (an ``X-Forwarded-For`` value) when the peer is a trusted
        proxy; an IPv6 address becomes its /64 network (``2001:db8::/64``). Remembered per
        (``remote_addr``, ``forwarded_for``), at most ``ADDRESS_MEMO_SIZE`` of them (the
        parse costs ~10 µs, a tenth of a cache hit's CPU; the answer depends on nothing else)."""
        memo_key = (remote_addr, forwarded_for)
        found = self._addresses.get(memo_key)
        if found is None:
            if len(self._addresses) >= ADDRESS_MEMO_SIZE:
                self._addresses.clear()
            found = self._addresses[memo_key] = self._client_address(remote_addr, forwarded_for)
        return found

    def _client_address(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        peer = _parse(remote_addr)
        if peer is None:
            return remote_addr or "unknown"
        if forwarded_for and self._trusted(peer):
            for hop in reversed(forwarded_for.split(",")):
                parsed = _parse(hop.strip())
                if parsed is None:
                    break  # a hop no trusted proxy wrote: count the last proxy we trust
                peer = parsed
                if not self._trusted(parsed):
                    break
        if peer.version == 6:
            return str(ipaddress.ip_network(f"{peer}/{IPV6_PREFIX}", strict=False))
        return str(peer)

    def retry_after(self, address: str) -> int | None:
        """``None`` when ``address`` may have a token checked; else the seconds (≥ 1) until
        it may again, and the refusal is counted (``event="throttled"``)."""
        wait = self._wait(address)
        if wait is None:
            return None
        self._metrics.count("throttled")
        return wait

    def throttled(self, address: str) -> bool:
        """Whether ``address`` is over the limit now (``retry_after`` would refuse it), without
        counting anything: for a caller that leaves the refusal to ``retry_after``."""
        return self._wait(address) is not None

    def record_failure(self, address: str) -> None:
        """Count one refused token for ``address``. The failure that takes the address to
        the limit logs one warning (``auth failure limit reached``, with the address, the
        limit and the wait, never the token) and counts ``event="limit_reached"``: once per
        address per window."""
        self._metrics.count("failure")
        counted = [self._window.hit(item, address) for item in self._items]
        wait = self._wait(address)
        if all(counted) and wait is not None:
            self._metrics.count("limit_reached")
            log.warning(
                "auth failure limit reached: tokens from this client are refused unchecked",
                client_ip=address,
                limit=self._text,
                retry_after_s=wait,
            )

    def _wait(self, address: str) -> int | None:
        """Seconds (≥ 1) until ``address`` is under every limit again, ``None`` if it is."""
        now = time.time()
        resets = [
            self._window.get_window_stats(item, address).reset_time
            for item in self._items
            if not self._window.test(item, address)
        ]
        if not resets:
            return None
        return max(1, math.ceil(max(resets) - now))

    def _trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self._proxies)


def _parse(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address
