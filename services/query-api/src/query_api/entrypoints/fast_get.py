"""A WSGI fast path for the hot read, ``GET|HEAD /v1/contacts/<uuid>`` without a query string.

Flask's request context, its before/after hooks (request id, metrics, authentication, rate
limits, security headers, cache metrics) and its response object cost about three quarters of
a cache hit's CPU (bench/README.md, "Query API, read path"). ``FastContactGet`` sits in front
of the Flask app (``app.wsgi_app``) and answers the plain case itself, with the same
observable behaviour: the same authentication (the app's ``Authenticator`` and failure limit
per address), workspace, rate-limit counters (``InlineRateLimits``, counted in the cache
read's one Redis call), ``handlers.get_contact``, ``If-None-Match`` (304), the same headers in
the same order, the same ``http_requests_total`` / ``http_request_duration_seconds`` /
``contact_cache_lookups_total`` samples, and the same log context (``request_id``,
``traceparent``, ``workspace``) for gunicorn's access line.

Anything else goes to the Flask app untouched: another method or path, a query string, CORS
(``Origin``), ``X-Contacts-Workspace``, no bearer token, a refused token, an address over its
failure limit, a missing scope or workspace, an id that is no canonical UUID, authentication
or rate limiting turned off, a Redis Cluster (its limits go through flask-limiter). When the
lookup itself ran but its answer is not a plain 200 or 304 (a 404, past a rate limit, Redis
not counting, an error), the outcome is handed to the Flask view in the WSGI environ
(``PRECOMPUTED``) so the request is counted and read once, and answered by the existing code.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from contacts_domain.resource import etag
from contacts_http.auth import plain_caller
from contacts_http.auth.guard import EXTENSION as AUTH_EXTENSION
from contacts_http.observability import HttpMetrics
from contacts_http.rate_limits import INLINE_EXTENSION, InlineRateLimits
from contacts_http.request_id import REQUEST_ID_HEADER
from contacts_http.security_headers import NOSNIFF
from contacts_telemetry.logs import bind_context, clear_context
from contacts_telemetry.trace import valid_traceparent
from query_api.entrypoints.cache_metrics import CacheMetrics
from query_api.entrypoints.conditional import none_match
from query_api.entrypoints.context import canonical_uuid
from query_api.service_layer import handlers

ENDPOINT: Final = "contacts.get_contact"
PREFIX: Final = "/v1/contacts/"
#: The WSGI environ key of a lookup the fast path made but leaves to the Flask view to answer.
PRECOMPUTED: Final = "query_api.fast_get.outcome"
CONTACT_CACHE_CONTROL: Final = "private, no-cache"
_VALID_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATUS: Final = {200: "200 OK", 304: "304 NOT MODIFIED"}
_WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Precomputed:
    """A lookup the fast path made (``lookup``), or the exception it raised (``error``), for
    the Flask view to answer (it must not count or read again)."""

    lookup: handlers.ContactLookup | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Caller:
    rate_limit_key: str
    workspace: str


class FastContactGet:
    """WSGI middleware: ``FastContactGet(app, ...)`` answers the plain hot read (module doc)
    and hands every other request to ``app``'s previous ``wsgi_app``. Build it with
    ``install_fast_get``, after the app is fully set up."""

    def __init__(
        self,
        inner: _WSGI,
        *,
        guard: Any,
        limits: InlineRateLimits,
        lookup: Callable[[str, str, list[Any]], handlers.ContactLookup],
        http_metrics: HttpMetrics,
        cache_metrics: CacheMetrics,
        route: str,
        vary_authorization: bool,
    ) -> None:
        self._inner = inner
        self._guard = guard
        self._limits = limits
        self._lookup = lookup
        self._http_metrics = http_metrics
        self._cache_metrics = cache_metrics
        self._route = route
        self._vary = vary_authorization
        self._series: dict[tuple[str, int], tuple[Any, Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        try:
            contact_id = self._plain_contact_id(environ)
            caller = self._caller(environ) if contact_id is not None else None
        except Exception:  # whatever surprised us here, the Flask path answers it
            contact_id = caller = None
        if contact_id is None or caller is None:
            return self._inner(environ, start_response)
        request_id = _request_id(environ)
        clear_context()
        bind_context(
            request_id=request_id, traceparent=valid_traceparent(environ.get("HTTP_TRACEPARENT"))
        )
        bind_context(workspace=caller.workspace)
        counters = self._limits.counters_for(
            ENDPOINT, caller.rate_limit_key, f"ws:{caller.workspace}"
        )
        try:
            lookup = self._lookup(caller.workspace, contact_id, counters)
        except Exception as exc:  # answered by the app's error handlers
            environ[PRECOMPUTED] = Precomputed(error=exc)
            return self._inner(environ, start_response)
        answered = self._answer(lookup, counters, environ, request_id)
        if answered is None:
            environ[PRECOMPUTED] = Precomputed(lookup=lookup)
            return self._inner(environ, start_response)
        status, headers, body = answered
        start_response(_STATUS[status], headers)
        self._observe(environ["REQUEST_METHOD"], status, lookup.cache, started)
        return [body] if environ["REQUEST_METHOD"] == "GET" else []

    def _plain_contact_id(self, environ: dict[str, Any]) -> str | None:
        """The canonical id of a plain hot read, or ``None`` for any other request."""
        path: str = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or not path.startswith(PREFIX)
            or environ.get("QUERY_STRING")
            or "HTTP_ORIGIN" in environ
            or "HTTP_X_CONTACTS_WORKSPACE" in environ
        ):
            return None
        return canonical_uuid(path[len(PREFIX) :])

    def _caller(self, environ: dict[str, Any]) -> _Caller | None:
        """The authorized caller, or ``None`` for anything the guard would refuse or log."""
        principal = plain_caller(self._guard, environ, ENDPOINT)
        if principal is None or principal.workspace is None:
            return None
        return _Caller(principal.rate_limit_key, principal.workspace)

    def _answer(
        self,
        lookup: handlers.ContactLookup,
        counters: list[Any],
        environ: dict[str, Any],
        request_id: str,
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """Status, headers (in the Flask path's order) and body of a plain 200 or 304, or
        ``None`` for any other answer (the Flask view gives it)."""
        if lookup.body is None or lookup.version is None:
            return None
        limit_headers: dict[str, str] = {}
        if counters:
            if lookup.counts is None:
                return None  # counted in memory by the view (Redis did not count)
            limit_headers, breached = self._limits.answer(counters, lookup.counts)
            if breached is not None:
                return None
        headers = [
            ("ETag", etag(lookup.version)),
            ("Cache-Control", CONTACT_CACHE_CONTROL),
            ("X-Cache", lookup.cache),
        ]
        if none_match(environ.get("HTTP_IF_NONE_MATCH"), str(lookup.version)):
            status, body = 304, b""
        else:
            status, body = 200, lookup.body
            headers += [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ]
        headers += limit_headers.items()
        headers.append(("X-Content-Type-Options", NOSNIFF))
        if self._vary:
            headers.append(("Vary", "Authorization"))
        headers.append((REQUEST_ID_HEADER, request_id))
        return status, headers, body

    def _observe(self, method: str, status: int, outcome: str, started: float) -> None:
        """The samples the Flask hooks would record (``HttpMetrics``, ``CacheMetrics``), with
        each label series looked up once per process."""
        series = self._series.get((method, status))
        if series is None:
            metrics = self._http_metrics
            labels = (method, self._route, str(status))
            series = (metrics.requests.labels(*labels), metrics.latency.labels(*labels))
            self._series[(method, status)] = series
        series[0].inc()
        series[1].observe(time.perf_counter() - started)
        if outcome in ("hit", "miss", "bypass"):
            self._cache_metrics.lookups.labels(outcome).inc()


def _request_id(environ: dict[str, Any]) -> str:
    incoming: str = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())


def install_fast_get(
    app: Any,
    *,
    lookup: Callable[[str, str, list[Any]], handlers.ContactLookup],
    http_metrics: HttpMetrics,
    cache_metrics: CacheMetrics,
    vary_authorization: bool,
) -> bool:
    """Put ``FastContactGet`` in front of ``app`` (a fully set-up Flask app) when it can
    answer like the app: authentication on and rate limits counted inline (or off). Returns
    whether it was installed. ``lookup(workspace, contact_id, counters)`` is
    ``handlers.get_contact`` bound to the app's ports."""
    guard = app.extensions.get(AUTH_EXTENSION)
    limits = app.extensions.get(INLINE_EXTENSION)
    if guard is None or guard.authenticator is None or limits is None:
        return False
    route = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == ENDPOINT)
    app.wsgi_app = FastContactGet(
        app.wsgi_app,
        guard=guard,
        limits=limits,
        lookup=lookup,
        http_metrics=http_metrics,
        cache_metrics=cache_metrics,
        route=route,
        vary_authorization=vary_authorization,
    )
    return True
