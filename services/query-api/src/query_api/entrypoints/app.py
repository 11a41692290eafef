"""The query API's Flask app factory: the composition root.

gunicorn runs ``'query_api.entrypoints.app:create_app()'``. Importing this module and calling
``create_app`` connects to nothing; the engine and the Redis pool connect on first use.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response

from contacts_http import ProblemApi, init_request_id, openapi_config, problem_response
from contacts_http.observability import HttpMetrics, init_observability
from contacts_telemetry.logs import configure_structlog
from contacts_telemetry.metrics import MetricsRegistry
from query_api.bootstrap import build_ports
from query_api.entrypoints.cache_metrics import CacheMetrics, init_cache_metrics
from query_api.entrypoints.contacts import contacts_blueprint
from query_api.entrypoints.context import EXTENSION, AppContext
from query_api.entrypoints.health import health_blueprint
from query_api.entrypoints.operations import operations_blueprint
from query_api.service_layer.handlers import OperationStatusUnknown
from query_api.service_layer.ports import ReadModelUnavailable
from query_api.settings import Settings

#: The ``service`` field of every log line.
SERVICE = "query-api"
#: Bound, in seconds, on the whole ``/readyz`` probe.
READINESS_TIMEOUT_S = 1.0

API_DESCRIPTION = """Read side of the contacts platform (cache-first, read only).

Errors are RFC 9457 `application/problem+json`. Every endpoint refuses unknown query parameters
with 400. `X-Cache: hit|miss|bypass` says whether Redis answered, PostgreSQL answered and the
cache was refilled, or Redis was unavailable.
"""


def create_app(
    settings: Settings | None = None,
    *,
    metrics: MetricsRegistry | None = None,
    **injected_ports: Any,
) -> Flask:
    """Build the app from ``settings`` (default: read from ``os.environ``).

    ``injected_ports`` replace real adapters by name (``contacts``, ``cache``, ``statuses``,
    ``outcomes``, ``required_checks``, ``optional_checks``, ``close``; see
    ``bootstrap.Ports``). ``metrics`` holds the Prometheus metrics (default: a new
    ``MetricsRegistry``, aggregating every gunicorn worker under ``gunicorn_conf``).
    Raises ``SettingsError`` for an unusable environment variable.
    """
    settings = settings or Settings.from_env(os.environ)
    configure_structlog(SERVICE)
    metrics = metrics or MetricsRegistry()
    ports = build_ports(settings, **injected_ports)

    app = Flask("query_api")
    app.config.update(openapi_config("Contacts query API", API_DESCRIPTION))
    app.extensions[EXTENSION] = AppContext(settings, ports)
    api = ProblemApi(app)
    init_request_id(app)
    init_observability(app, HttpMetrics(metrics))
    init_cache_metrics(app, CacheMetrics(metrics))
    api.register_blueprint(contacts_blueprint())
    api.register_blueprint(operations_blueprint())
    app.register_blueprint(
        health_blueprint(
            ports.required_checks,
            ports.optional_checks,
            timeout_s=READINESS_TIMEOUT_S,
            retry_after_s=settings.retry_after_s,
        )
    )
    retry_after = {"Retry-After": str(settings.retry_after_s)}

    @app.errorhandler(ReadModelUnavailable)
    def database_unavailable(_error: ReadModelUnavailable) -> Response:
        app.logger.warning("database unavailable: %s", _error)
        return problem_response(
            503, "The contacts database is not answering; retry later.", headers=retry_after
        )

    @app.errorhandler(OperationStatusUnknown)
    def status_unknown(_error: OperationStatusUnknown) -> Response:
        return problem_response(
            503,
            "The operation has no recorded outcome and the status store is not answering; "
            "retry later.",
            headers=retry_after,
        )

    return app
