"""Request metrics, ``/metrics`` and the log context of each request (issue 7, items 5 and 6).

``init_observability(app, metrics)`` makes every request:

- bind ``request_id`` (``X-Request-ID``, see ``request_id``) and a valid W3C ``traceparent``
  header (``current_traceparent``) to the request's log lines (``contacts_telemetry.logs``),
  gunicorn's access line included;
- count itself and time itself in ``http_requests_total`` and
  ``http_request_duration_seconds``, labelled by method, route *template*
  (``/v1/contacts/<uuid:contact_id>``, never the raw path: no ids in labels) and status;

and serves ``GET /metrics`` (Prometheus text format, the aggregate of every gunicorn worker in
multi-process mode). ``/metrics`` stays open like ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

import time
from typing import Final

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import Counter, Histogram

from contacts_http.request_id import current_request_id
from contacts_telemetry.logs import bind_context, clear_context
from contacts_telemetry.metrics import CONTENT_TYPE, LATENCY_BUCKETS, MetricsRegistry
from contacts_telemetry.trace import TRACEPARENT_HEADER, valid_traceparent

METRICS_PATH: Final = "/metrics"
#: Methods labelled as themselves; any other becomes ``OTHER`` (bounded label values).
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Route label of a request no route matched (404, or 405 before routing).
UNMATCHED: Final = "unmatched"


class HttpMetrics:
    """The request metrics of one API, registered on ``registry.registry``.

    ``requests``: ``http_requests_total{method, route, status}``; ``latency``:
    ``http_request_duration_seconds{method, route, status}`` (seconds, ``LATENCY_BUCKETS``).
    """

    def __init__(self, registry: MetricsRegistry) -> None:
        self.registry = registry
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests_total", "HTTP requests answered.", labels, registry=registry.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the first app hook to the response, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration in seconds."""
        label_method = method if method in _METHODS else "OTHER"
        self.requests.labels(label_method, route, str(status)).inc()
        self.latency.labels(label_method, route, str(status)).observe(seconds)


def current_traceparent() -> str | None:
    """The request's valid ``traceparent`` header, or ``None`` (outside a request too)."""
    if not has_request_context():
        return None
    return valid_traceparent(request.headers.get(TRACEPARENT_HEADER))


def init_observability(app: Flask, metrics: HttpMetrics) -> None:
    """Install the hooks and the ``/metrics`` route described in the module doc on ``app``."""

    def start() -> None:
        g.metrics_started = time.perf_counter()
        clear_context()
        bind_context(request_id=current_request_id(), traceparent=current_traceparent())

    def finish(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None and request.path != METRICS_PATH:
            rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            metrics.observe(
                request.method, rule, response.status_code, time.perf_counter() - started
            )
        return response

    # The context is cleared when the next request starts, not at teardown: gunicorn writes
    # the access line after the app returned, in the same thread, and it carries the ids too.
    app.before_request(start)
    app.after_request(finish)

    def serve_metrics() -> Response:
        return Response(metrics.registry.render(), content_type=CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, "metrics", serve_metrics, methods=["GET"])
