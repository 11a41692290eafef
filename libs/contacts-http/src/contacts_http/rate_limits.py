"""Rate limits per caller with flask-limiter, counted in Redis so every process shares them.

Settings (each API reads its own; names in docs/contracts.md):

- ``RATE_LIMIT_ENABLED`` (``true``): ``false`` turns rate limiting off.
- ``RATE_LIMIT_DEFAULT`` (``600/minute``): the limit of every route (each route counts
  separately), in flask-limiter's notation (``100/second``, ``600 per minute;20/second``).
- ``RATE_LIMIT_ROUTES`` (empty): a JSON object, Flask endpoint → limit, replacing the default
  for those routes, e.g. ``{"contacts.list_contacts": "120/minute"}``. An endpoint the app does
  not have stops the start-up.
- ``RATE_LIMIT_WORKSPACE_DEFAULT`` (``6000/minute``): the limit of a workspace
  (docs/architecture.md §10), counted across every API key, token and route of the API, on top
  of the per-caller limits; empty or ``none`` turns it off.

A caller is the API key (its hash) or the JWT's issuer and subject; a request without an
accepted token counts for its remote address (``rate_limit_identity``); a workspace is the one
the guard decided for the request (``rate_limit_workspace``). Every limited response
has ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the
window resets), the fields of the IETF draft "RateLimit header fields for HTTP"; past the limit
the answer is a 429 problem with ``Retry-After`` (seconds) whose ``detail`` says which limit
was reached: the caller's on the route, or the workspace's.

Counters live in the services' Redis (``RateLimitStorage.on_redis``); in cluster mode
(``REDIS_CLUSTER_MODE``) through the ``limits`` library's ``redis+cluster://`` storage: each
counter is one key, so any slot will do. Redis down: the limiter fails open onto per-process
in-memory counters (so a limit still holds per process, never an error or a hang: Redis calls
are bounded by the Redis socket timeouts and not retried), logs a warning, and tries Redis
again with exponential backoff (up to 32 s). A cluster that does not answer at start-up stops
the start (``limits`` reads its slot map then), like ``create_redis``.
flask-limiter logs a traceback for every request that was already talking to Redis when it
failed (issue 16: one per concurrent request); ``StorageErrorLog`` folds every such message
into at most one warning, without traceback, per ``STORAGE_WARNING_INTERVAL_S`` per process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

import limits
import redis
from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, HeaderNames, Limit, Limiter
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from contacts_http.problems import ProblemError
from contacts_infra.redis_client import limits_storage
from contacts_infra.redis_keys import COUNT_WINDOWS_LUA
from contacts_infra.settings import BLANK_IS_EMPTY, EnvSettings, RedisSettings

LIMIT_HEADER: Final = "RateLimit-Limit"
REMAINING_HEADER: Final = "RateLimit-Remaining"
RESET_HEADER: Final = "RateLimit-Reset"
# flask-limiter writes the reset as an epoch timestamp and sets Retry-After on every limited
# response (and raises a 503's Retry-After to the window's reset); it writes both under these
# internal names, turned into the public fields by ``_public_headers``.
_RESET_AT: Final = "X-Internal-RateLimit-Reset-At"
_RETRY_AFTER: Final = "X-Internal-RateLimit-Retry-After"

#: The limit of every route unless configured: 10 requests a second on average per caller.
DEFAULT_LIMIT: Final = "600/minute"
#: The limit of a workspace across every caller and route: ten callers at their full default.
DEFAULT_WORKSPACE_LIMIT: Final = "6000/minute"
#: Values of ``RATE_LIMIT_WORKSPACE_DEFAULT`` that turn the workspace limit off.
_OFF: Final = frozenset({"", "none"})

logger = logging.getLogger("contacts_http.rate_limits")
#: Seconds between two warnings about the counters' storage (Redis) per process.
STORAGE_WARNING_INTERVAL_S: Final = 60.0
#: How flask-limiter's messages about its storage begin (flask-limiter 4.1: the fallback
#: warning, and "Failed to rate limit", "... deduct rate limit", "... update rate limit
#: headers" with a traceback).
_STORAGE_MESSAGES: Final = ("Rate limit storage unreachable", "Failed to ")


class StorageErrorLog(logging.Filter):
    """A filter of flask-limiter's logger: its messages about the storage (``_STORAGE_MESSAGES``)
    become at most one WARNING per ``interval_s`` seconds (a monotonic clock), without a
    traceback, naming the error type and how many were folded into it; others pass unchanged.
    Thread-safe (gthread workers log from many threads)."""

    def __init__(self, interval_s: float = STORAGE_WARNING_INTERVAL_S) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._folded = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_STORAGE_MESSAGES):
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_at:
                self._folded += 1
                return False
            folded, self._folded = self._folded, 0
            self._next_at = now + self._interval_s
        error = record.exc_info[1] if record.exc_info else None
        record.msg = (
            "Rate limit storage unreachable (Redis): counting in memory per process "
            "(%s; %d similar messages folded; next warning in %.0f s at the earliest)"
        )
        record.args = (type(error).__name__ if error else "no answer", folded, self._interval_s)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


def _fold_storage_errors(limiter: Limiter) -> None:
    """Install a fresh ``StorageErrorLog`` on the logger of ``limiter``, which every Limiter of
    the process shares: it replaces the one of an earlier app (one app per process in a
    service; tests build many)."""
    for old in [f for f in limiter.logger.filters if isinstance(f, StorageErrorLog)]:
        limiter.logger.removeFilter(old)
    limiter.logger.addFilter(StorageErrorLog())


class RateLimitSettings(EnvSettings):
    """``enabled``; ``default``: the limit of every route; ``routes``: (endpoint, limit) pairs
    replacing it; ``workspace``: the limit of each workspace across every caller and route
    (``""``: none). ``from_env`` raises ``SettingsError`` naming a malformed variable (a limit
    flask-limiter cannot parse, routes that are not a JSON object of strings)."""

    enabled: bool = Field(True, validation_alias="RATE_LIMIT_ENABLED")
    default: str = Field(DEFAULT_LIMIT, validation_alias="RATE_LIMIT_DEFAULT")
    routes: Annotated[tuple[tuple[str, str], ...], NoDecode] = Field(
        (), validation_alias="RATE_LIMIT_ROUTES"
    )
    workspace: str = Field(
        DEFAULT_WORKSPACE_LIMIT,
        validation_alias="RATE_LIMIT_WORKSPACE_DEFAULT",
        json_schema_extra=BLANK_IS_EMPTY,
    )

    @field_validator("default")
    @classmethod
    def _parses(cls, value: str) -> str:
        _check_limit("RATE_LIMIT_DEFAULT", value)
        return value

    @field_validator("workspace")
    @classmethod
    def _workspace_parses(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in _OFF:
            return ""
        _check_limit("RATE_LIMIT_WORKSPACE_DEFAULT", value)
        return value

    @field_validator("routes", mode="before")
    @classmethod
    def _parse_routes(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            routes = json.loads(raw)
        except ValueError:
            raise ValueError("RATE_LIMIT_ROUTES must be a JSON object.") from None
        if not isinstance(routes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in routes.items()
        ):
            raise ValueError("RATE_LIMIT_ROUTES must map endpoint names to limit strings.")
        for endpoint, limit in routes.items():
            _check_limit(f"RATE_LIMIT_ROUTES[{endpoint}]", limit)
        return tuple(sorted(routes.items()))


@dataclass(frozen=True, slots=True)
class RateLimitStorage:
    """Where counters live: the ``limits`` storage ``uri`` and its ``options`` (a Redis server
    or a Redis Cluster, with bounded calls and no retries), and the key prefix of this API's
    counters. Build it with ``on_redis``."""

    uri: str
    options: Mapping[str, Any]
    key_prefix: str
    #: A client on the same pool, for the counters a route counts in its own script
    #: (``InlineRateLimits``); ``None`` on a cluster, where those counters and the route's keys
    #: are in different slots, so every route counts through flask-limiter.
    client: redis.Redis | None = None

    @classmethod
    def on_redis(
        cls, settings: RedisSettings, *, client_name: str, key_prefix: str
    ) -> RateLimitStorage:
        """Counters in the Redis of ``settings`` (``REDIS_CLUSTER_MODE`` included), through a
        client of their own named ``client_name``, built by
        ``contacts_infra.redis_client.limits_storage`` with the timeouts of every client.
        Connects to nothing yet."""
        uri, options = limits_storage(settings, client_name=client_name)
        pool = options.get("connection_pool")
        client = None if pool is None else redis.Redis(connection_pool=pool)
        return cls(uri, options, key_prefix, client)


def init_rate_limits(
    app: Flask,
    settings: RateLimitSettings,
    storage: RateLimitStorage,
    *,
    identity: Callable[[], str],
    exempt: Callable[[], bool],
    workspace: Callable[[], str] | None = None,
    inline_endpoints: frozenset[str] = frozenset(),
    counted_first: frozenset[str] = frozenset(),
) -> Limiter | None:
    """Rate-limit every route of ``app`` (``None`` and nothing installed when disabled).

    ``inline_endpoints`` count their own limits in their own Redis script
    (``InlineRateLimits``); ``counted_first`` endpoints count them in one round trip
    (``InlineRateLimits.count``) in a ``before_request`` hook of their own, where flask-limiter
    would (after authentication, before the body is read), instead of its three or four. On a
    Redis Cluster (``storage.client`` is ``None``) both count through flask-limiter.

    ``identity()`` names the caller of the current request; ``workspace()`` its workspace, whose
    requests ``settings.workspace`` limits across every caller and route (``None``, or that
    setting empty: no workspace limit); ``exempt()`` is true for a request never limited
    (health, metrics, docs, CORS preflights). Neither function may raise. Call it after every
    blueprint is registered; raises ``ValueError`` for a route override naming no endpoint of
    ``app``. Connects to nothing until the first limited request.
    """
    if not settings.enabled:
        logger.warning("rate limiting is off (RATE_LIMIT_ENABLED=false)")
        return None
    limiter = _limiter(
        identity, _route_limits(app, settings), _workspace_limits(settings, workspace), storage
    )
    if storage.client is None:  # a cluster: the routes of ``inline_endpoints`` count here too
        inline_endpoints = frozenset()
    else:
        inline = InlineRateLimits(settings, storage.client, storage.key_prefix, identity, workspace)
        app.extensions[INLINE_EXTENSION] = inline
        app.after_request(_inline_headers)
        inline_endpoints |= counted_first
        if counted_first:
            app.before_request(_count_first(inline, counted_first, exempt))
    limiter.request_filter(lambda: exempt() or request.endpoint in inline_endpoints)
    _fold_storage_errors(limiter)
    # Registered before the limiter's own after_request hook, so it runs after it (Flask runs
    # after_request hooks in reverse order of registration).
    app.after_request(_public_headers)
    limiter.init_app(app)
    return limiter


def _limiter(
    identity: Callable[[], str],
    route_limits: list[str | Callable[[], str] | Limit],
    workspace_limits: list[str | Callable[[], str] | ApplicationLimit],
    storage: RateLimitStorage,
) -> Limiter:
    """flask-limiter's ``Limiter`` of ``route_limits`` per caller and ``workspace_limits`` per
    application, counting in ``storage`` in fixed windows, with the IETF draft's headers; not
    yet bound to an app."""
    # Bounded calls and no retries (the in-memory fallback, not retries, rides out an outage).
    options: dict[str, Any] = {**storage.options, "key_prefix": storage.key_prefix}
    return Limiter(
        identity,
        default_limits=route_limits,
        application_limits=workspace_limits,
        storage_uri=storage.uri,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=True,
        header_name_mapping={
            HeaderNames.LIMIT: LIMIT_HEADER,
            HeaderNames.REMAINING: REMAINING_HEADER,
            HeaderNames.RESET: _RESET_AT,
            HeaderNames.RETRY_AFTER: _RETRY_AFTER,
        },
        retry_after="delta-seconds",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )


def _count_first(
    inline: InlineRateLimits, endpoints: frozenset[str], exempt: Callable[[], bool]
) -> Callable[[], None]:
    """The ``before_request`` hook counting the requests of ``endpoints`` (not ``exempt``) in
    one Redis round trip; raises ``ProblemError`` 429 past a limit."""

    def count_first() -> None:
        if request.endpoint in endpoints and not exempt():
            precounted = request.environ.pop(PRECOUNTED, None)
            if precounted is not None:  # counted by a WSGI fast path that handed it on
                inline.settle(*precounted)
            else:
                inline.count(inline.counters())

    return count_first


def _route_limits(app: Flask, settings: RateLimitSettings) -> list[str | Callable[[], str] | Limit]:
    """The limit of each caller on each route: ``settings.default``, or the route's override.
    Raises ``ValueError`` for an override naming no endpoint of ``app``."""
    overrides = dict(settings.routes)
    unknown = sorted(set(overrides) - set(app.view_functions))
    if unknown:
        raise ValueError(f"RATE_LIMIT_ROUTES names unknown endpoints: {', '.join(unknown)}")

    def limit_for_route() -> str:
        return overrides.get(request.endpoint or "", settings.default)

    def caller_breached() -> str:
        return f"Too many requests from this caller to this route (at most {limit_for_route()})."

    return [Limit(limit_for_route, error_message=caller_breached, finalized=False)]


def _workspace_limits(
    settings: RateLimitSettings, workspace: Callable[[], str] | None
) -> list[str | Callable[[], str] | ApplicationLimit]:
    """The limit of each workspace: one counter per workspace (``workspace()``) shared by every
    route and caller of the API (flask-limiter's application limits, scope ``workspace``)."""
    if workspace is None or not settings.workspace:
        return []
    detail = (
        "Too many requests in this workspace, counted across all its API keys, tokens and "
        f"routes (at most {settings.workspace})."
    )
    return [
        ApplicationLimit(
            settings.workspace, key_function=workspace, scope="workspace", error_message=detail
        )
    ]


def _public_headers(response: Response) -> Response:
    reset_at = response.headers.pop(_RESET_AT, None)
    retry_after = response.headers.pop(_RETRY_AFTER, None)
    if reset_at is not None:
        seconds = max(0, int(float(reset_at) - time.time()))
        response.headers[RESET_HEADER] = str(seconds)
    if response.status_code == 429 and retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def _check_limit(name: str, value: str) -> None:
    try:
        limits.parse_many(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a rate limit (e.g. 600/minute).") from None


@dataclass(frozen=True, slots=True)
class RateCounter:
    """One fixed-window counter a request counts in: the Redis ``key`` (flask-limiter's layout,
    so an inline endpoint and the others share a workspace's counter), the ``amount`` allowed
    per ``window_s`` seconds, whether it is ``shared`` by every route (the workspace's), and the
    ``detail`` of its 429."""

    key: str
    amount: int
    window_s: int
    shared: bool
    detail: str
    item: limits.RateLimitItem


INLINE_EXTENSION: Final = "contacts_http.inline_rate_limits"
#: The WSGI environ key of a request a fast path counted (``InlineRateLimits.count_now``) and
#: then handed to Flask: ``(counters, counts)``, settled by the ``counted_first`` hook instead
#: of counting the request twice.
PRECOUNTED: Final = "contacts_http.rate_limits.precounted"
#: Most request shapes (endpoint, caller, workspace) whose counters ``InlineRateLimits``
#: remembers; past it the memo starts again empty.
COUNTERS_MEMO_SIZE: Final = 4096
_STANDALONE_COUNT_LUA: Final = (
    """
local n = #KEYS
local COUNTERS, WINDOWS, AMOUNTS = KEYS, {}, {}
for i = 1, n do WINDOWS[i] = ARGV[i]; AMOUNTS[i] = ARGV[n + i] end
"""
    + COUNT_WINDOWS_LUA
    + "return counts\n"
)


class InlineRateLimits:
    """The rate limits of endpoints that count them in their own Redis round trip.

    flask-limiter spends four round trips a request (a hit per limit, then a ``GET`` and a
    ``TTL`` for the headers). An endpoint listed here is exempt from it; it runs ``COUNT_LUA``
    at the top of its own script with ``counters()`` and hands the counts to ``settle``, which
    answers exactly as flask-limiter does: the ``RateLimit-*`` headers of the smallest window
    (of a breached limit first, else of the caller's), and a 429 problem with ``Retry-After``
    past a limit. When Redis cannot count (``settle(None)``) the request counts in
    per-process memory, as flask-limiter's fallback does. An endpoint with no Redis call of its
    own to fold the count into counts with ``count`` in its own round trip before its view
    (``init_rate_limits``' ``counted_first``: the command API's writes).
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        client: redis.Redis,
        key_prefix: str,
        identity: Callable[[], str],
        workspace: Callable[[], str] | None,
    ) -> None:
        self._settings = settings
        self._key_prefix = key_prefix
        self._count_script = client.register_script(_STANDALONE_COUNT_LUA)
        self._identity = identity
        self._workspace = workspace
        self._overrides = dict(settings.routes)
        self._workspace_items = limits.parse_many(settings.workspace) if settings.workspace else []
        self._memory = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        self._memo: dict[tuple[str, str, str | None], list[RateCounter]] = {}
        self._warn_lock = threading.Lock()
        self._warn_next_at = 0.0
        self._warn_folded = 0

    def counters(self) -> list[RateCounter]:
        """The counters of the current request, smallest window first (none when disabled).
        Remembered per (endpoint, caller, workspace), at most ``COUNTERS_MEMO_SIZE`` of them
        (they depend on nothing else: the settings are fixed for the process's life)."""
        if not self._settings.enabled:
            return []
        workspace = self._workspace() if self._workspace is not None else None
        return self.counters_for(request.endpoint or "", self._identity(), workspace)

    def counters_for(self, endpoint: str, caller: str, workspace: str | None) -> list[RateCounter]:
        """``counters()`` of a request of ``endpoint`` by ``caller`` (``rate_limit_identity``)
        in ``workspace`` (``ws:<id>``, ``rate_limit_workspace``), outside a Flask request (the
        query API's WSGI fast path). ``workspace`` is ignored when the app has no workspace
        limit, as ``counters()`` does."""
        if not self._settings.enabled:
            return []
        if self._workspace is None:
            workspace = None
        memo_key = (endpoint, caller, workspace)
        found = self._memo.get(memo_key)
        if found is None:
            if len(self._memo) >= COUNTERS_MEMO_SIZE:
                self._memo.clear()
            found = self._memo[memo_key] = self._build(endpoint, caller, workspace)
        return found

    def _build(self, endpoint: str, caller: str, workspace: str | None) -> list[RateCounter]:
        route = self._overrides.get(endpoint, self._settings.default)
        detail = f"Too many requests from this caller to this route (at most {route})."
        found = [
            self._counter(item, (caller, endpoint), False, detail)
            for item in limits.parse_many(route)
        ]
        if workspace is not None and self._workspace_items:
            shared = (
                "Too many requests in this workspace, counted across all its API keys, tokens "
                f"and routes (at most {self._settings.workspace})."
            )
            found += [
                self._counter(item, (workspace, "workspace"), True, shared)
                for item in self._workspace_items
            ]
        return sorted(found, key=lambda c: c.item)

    def _counter(
        self, item: limits.RateLimitItem, args: tuple[str, str], shared: bool, detail: str
    ) -> RateCounter:
        key = f"{self._key_prefix}:{item.key_for(*args)}"
        return RateCounter(key, item.amount, item.get_expiry(), shared, detail, item)

    def count(self, counters: list[RateCounter]) -> None:
        """Count the current request in ``counters`` in a round trip of its own and ``settle``:
        for a request of an inline endpoint that ends before its own Redis call."""
        if not counters:
            return
        self.settle(counters, self.count_now(counters))

    def count_now(self, counters: list[RateCounter]) -> list[int] | None:
        """Count a request in ``counters`` (non-empty) in one Redis round trip, outside a Flask
        request; returns ``[count, ttl, ...]`` for ``answer``/``settle``, or ``None`` (logged,
        at most once per ``STORAGE_WARNING_INTERVAL_S``) when Redis could not count."""
        keys = [c.key for c in counters]
        args = [*(c.window_s for c in counters), *(c.amount for c in counters)]
        try:
            return [int(n) for n in self._count_script(keys=keys, args=args)]
        except (redis.RedisError, OSError) as exc:
            self._warn_unreachable(exc)
            return None

    def _warn_unreachable(self, error: BaseException) -> None:
        """Log that Redis did not count: at most one WARNING per ``STORAGE_WARNING_INTERVAL_S``
        per process (like flask-limiter's messages, ``StorageErrorLog``), naming how many
        failures were folded into it."""
        with self._warn_lock:
            now = time.monotonic()
            if now < self._warn_next_at:
                self._warn_folded += 1
                return
            folded, self._warn_folded = self._warn_folded, 0
            self._warn_next_at = now + STORAGE_WARNING_INTERVAL_S
        logger.warning(
            "Rate limit storage unreachable (Redis): counting in memory per process "
            "(%s; %d similar messages folded; next warning in %.0f s at the earliest)",
            type(error).__name__,
            folded,
            STORAGE_WARNING_INTERVAL_S,
        )

    def settle(self, counters: list[RateCounter], counts: list[int] | None) -> None:
        """Answer for ``counters`` given ``counts`` (``[count, ttl, ...]`` from ``COUNT_LUA``;
        ``None``: Redis did not count, so count in memory). Raises ``ProblemError`` 429 past a
        limit; otherwise leaves the headers for the response (``init_inline_rate_limits``)."""
        if not counters:
            return
        if counts is None:
            counts = self._count_in_memory(counters)
        headers, breached = self.answer(counters, counts)
        if breached is not None:
            raise ProblemError(429, breached.detail, headers=headers)
        g._contacts_rate_limit_headers = headers

    @staticmethod
    def answer(
        counters: list[RateCounter], counts: list[int]
    ) -> tuple[dict[str, str], RateCounter | None]:
        """The ``RateLimit-*`` headers for ``counters`` given Redis's ``counts`` (non-empty
        ``counters``; ``Retry-After`` too past a limit), and the breached counter whose
        ``detail`` the 429 says (``None``: within every limit). Pure: ``settle`` without its
        side effects."""
        states = [
            (counter, counts[2 * i], max(counts[2 * i + 1], 0))
            for i, counter in enumerate(counters)
        ]
        breached = [s for s in states if s[1] > s[0].amount]
        unshared = [s for s in states if not s[0].shared]
        counter, count, ttl = breached[-1] if breached else (unshared or states)[0]
        headers = {
            LIMIT_HEADER: str(counter.amount),
            REMAINING_HEADER: str(max(0, counter.amount - count)),
            RESET_HEADER: str(ttl),
        }
        if breached:
            headers["Retry-After"] = str(max(1, ttl))
            return headers, counter
        return headers, None

    def _count_in_memory(self, counters: list[RateCounter]) -> list[int]:
        counts: list[int] = []
        for counter in counters:
            allowed = self._memory.hit(counter.item, counter.key)
            reset_at, remaining = self._memory.get_window_stats(counter.item, counter.key)
            count = counter.amount - remaining if allowed else counter.amount + 1
            counts += [count, int(reset_at - time.time())]
        return counts


def inline_rate_limits() -> InlineRateLimits | None:
    """The app's ``InlineRateLimits`` (``None`` when rate limiting is off)."""
    found: InlineRateLimits | None = current_app.extensions.get(INLINE_EXTENSION)
    return found


def _inline_headers(response: Response) -> Response:
    headers = g.pop("_contacts_rate_limit_headers", None)
    if headers:
        response.headers.update(headers)
    return response
