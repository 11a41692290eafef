"""The query API's Flask app factory: it takes its adapters from ``query_api.bootstrap`` (the
composition root) and registers the module-level views of each blueprint.

gunicorn runs ``'query_api.entrypoints.app:create_app()'``. Importing this module and calling
``create_app`` connects to nothing; the engine and the Redis pool connect on first use.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Final

from flask import Flask, Response, current_app

from contacts_http import (
    ProblemApi,
    docs_blueprint,
    init_request_id,
    init_routing_answers,
    openapi_config,
    problem_response,
)
from contacts_http.auth import Authenticator, AuthPolicy, install_auth, install_rate_limits, scopes
from contacts_http.observability import HttpMetrics, init_observability
from contacts_http.rate_limits import RateCounter
from contacts_http.security_headers import init_security_headers
from contacts_telemetry.logs import configure_structlog
from contacts_telemetry.metrics import MetricsRegistry
from query_api import bootstrap
from query_api.entrypoints.cache_metrics import CacheMetrics, init_cache_metrics
from query_api.entrypoints.changes import changes_blueprint
from query_api.entrypoints.contacts import contacts_blueprint
from query_api.entrypoints.context import EXTENSION, AppContext, current
from query_api.entrypoints.cors import init_cors
from query_api.entrypoints.export import export_blueprint
from query_api.entrypoints.fast_get import install_fast_get
from query_api.entrypoints.health import health_blueprint
from query_api.entrypoints.imports import imports_blueprint
from query_api.entrypoints.operations import operations_blueprint
from query_api.service_layer.handlers import ContactLookup, OperationStatusUnknown, get_contact
from query_api.service_layer.imports import ImportReportUnavailable
from query_api.service_layer.ports import ReadModelUnavailable
from query_api.service_layer.token_key import TokenKey
from query_api.settings import Settings

#: The ``service`` field of every log line.
SERVICE = "query-api"
logger = logging.getLogger(__name__)
#: Every route of this API needs ``contacts:read`` (RFC 6750 realm below), except the export
#: of whole address books and the progress of imports, which need ``contacts:import``
#: (issues 3 and 7).
AUTH_POLICY: Final = AuthPolicy(
    realm="contacts-query-api",
    default_scope=scopes.READ,
    route_scopes={
        "export.export_contacts": scopes.IMPORT,
        "imports.get_import": scopes.IMPORT,
    },
)

#: Routes that count their rate limits in the same Redis call as their cache read.
INLINE_RATE_LIMITED: Final = frozenset({"contacts.get_contact"})
#: Routes that count their rate limits in one Redis round trip (a script of
#: ``InlineRateLimits``) before their view, instead of flask-limiter's four (a hit per limit,
#: then a ``GET`` and a ``TTL`` for the headers): ~0.5 ms of CPU less per list page or search
#: (bench/README.md, "Session 16: list page CPU"). The operation status too: a client polls it
#: after every write (read your writes). On a Redis Cluster flask-limiter counts them
#: (``contacts_http.rate_limits.init_rate_limits``).
COUNTED_FIRST: Final = frozenset({"contacts.list_contacts", "operations.get_operation"})

#: The blueprint factories of the API's routes (registered in this order).
BLUEPRINTS: Final = (
    changes_blueprint,
    export_blueprint,
    contacts_blueprint,
    operations_blueprint,
    imports_blueprint,
)

API_DESCRIPTION = """Read side of the contacts platform (cache-first, read only).

Errors are RFC 9457 `application/problem+json`. Every endpoint refuses unknown query parameters
with 400. `X-Cache: hit|miss|bypass` says whether the cache answered (Redis, or the process's
copy of a hot entry that Redis keeps coherent), PostgreSQL answered and the cache was refilled,
or Redis was unavailable.

Every request needs `Authorization: Bearer <API key or JWT>` with the scope `contacts:read`
(`contacts:import` for the export and for imports; 401/403 otherwise). Responses vary by
`Authorization`; limits per caller are reported in `RateLimit-Limit`, `RateLimit-Remaining`
and `RateLimit-Reset` (429 past them).
"""


def create_app(
    settings: Settings | None = None,
    *,
    authenticator: Authenticator | None = None,
    metrics: MetricsRegistry | None = None,
    **injected_ports: Any,
) -> Flask:
    """Build the app from ``settings`` (default: read from ``os.environ``).

    Every adapter comes from the composition root (``query_api.bootstrap``):
    ``injected_ports`` replace real adapters by name (``contacts``, ``cache``, ``statuses``,
    ``outcomes``, ``changes``, ``import_reports``, ``import_outcomes``, ``required_checks``,
    ``optional_checks``, ``close``; see ``bootstrap.Ports``); ``authenticator`` replaces the
    one built from ``settings.auth``.
    ``metrics`` holds the Prometheus metrics (default: a new ``MetricsRegistry``, aggregating
    every gunicorn worker under ``gunicorn_conf``). Raises ``SettingsError`` for an unusable
    environment variable.

    Every route needs a bearer token with the scope ``AUTH_POLICY`` names, is rate-limited
    per caller (``settings.rate_limits``), answers ``Vary: Authorization`` and
    ``X-Content-Type-Options: nosniff``, and ``Cache-Control: no-store`` unless the route sets
    its own ETag-based policy; CORS follows ``settings.cors_*``.
    """
    settings = settings or bootstrap.load_settings()
    configure_structlog(SERVICE)
    metrics = metrics or MetricsRegistry()
    ports = bootstrap.build_ports(settings, **injected_ports)

    app = Flask("query_api")
    app.config.update(openapi_config("Contacts query API", API_DESCRIPTION))
    app.extensions[EXTENSION] = _app_context(settings, ports)
    api = ProblemApi(app)
    init_request_id(app)
    http_metrics, cache_metrics = HttpMetrics(metrics), CacheMetrics(metrics)
    init_observability(app, http_metrics)
    init_cache_metrics(app, cache_metrics)
    init_security_headers(app, vary_on_authorization=not settings.auth.disabled)
    init_cors(app, settings)
    install_auth(app, api, settings.auth, AUTH_POLICY, metrics=metrics, authenticator=authenticator)
    _register_routes(app, api)
    install_rate_limits(
        app,
        settings.rate_limits,
        bootstrap.rate_limit_storage(settings),
        AUTH_POLICY,
        inline_endpoints=INLINE_RATE_LIMITED,
        counted_first=COUNTED_FIRST,
    )
    _install_error_answers(app)
    if settings.fast_get and not settings.cors_allowed_origins:
        install_fast_get(
            app,
            lookup=functools.partial(_get_contact, ports),
            http_metrics=http_metrics,
            cache_metrics=cache_metrics,
            vary_authorization=not settings.auth.disabled,
        )
    return app


def _app_context(settings: Settings, ports: bootstrap.Ports) -> AppContext:
    """What the routes reach (``context.current``): the settings, the ports, the token key and
    the export slots; warns when no ``QUERY_TOKEN_SECRET`` is set."""
    if not settings.token_secret:
        logger.warning(
            "QUERY_TOKEN_SECRET is not set: cursors and change tokens are signed with a "
            "development key anyone can read; set a secret of 32 characters or more"
        )
    return AppContext(
        settings,
        ports,
        TokenKey.of(settings.token_secret, settings.token_previous_secret),
        threading.BoundedSemaphore(settings.stream_slots),
    )


def _register_routes(app: Flask, api: ProblemApi) -> None:
    """The API's blueprints (``BLUEPRINTS``, documented), then health and the docs pages."""
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint())
    app.register_blueprint(health_blueprint())
    app.register_blueprint(docs_blueprint("Contacts query API"))


def _install_error_answers(app: Flask) -> None:
    """The 503s of the read model, the operation statuses and the import reports, and the
    problem answers of routing (404, 405)."""
    app.register_error_handler(ReadModelUnavailable, database_unavailable)
    app.register_error_handler(OperationStatusUnknown, status_unknown)
    app.register_error_handler(ImportReportUnavailable, import_report_unavailable)
    init_routing_answers(app)


def _get_contact(
    ports: bootstrap.Ports, workspace: str, contact_id: str, counters: list[RateCounter]
) -> ContactLookup:
    return get_contact(
        workspace,
        contact_id,
        contacts=ports.contacts,
        cache=ports.cache,
        counters=counters,
        owed=ports.owed,
    )


def database_unavailable(error: ReadModelUnavailable) -> Response:
    """503 + ``Retry-After``: PostgreSQL did not answer in time."""
    current_app.logger.warning("database unavailable: %s", error)
    return problem_response(
        503, "The contacts database is not answering; retry later.", headers=_retry_after()
    )


def status_unknown(_error: OperationStatusUnknown) -> Response:
    """503 + ``Retry-After``: Redis is down and PostgreSQL has no outcome for the operation."""
    return problem_response(
        503,
        "The operation has no recorded outcome and the status store is not answering; retry later.",
        headers=_retry_after(),
    )


def import_report_unavailable(error: ImportReportUnavailable) -> Response:
    """503 + ``Retry-After``: Redis, which holds the import reports, is not answering."""
    current_app.logger.warning("import reports unavailable: %s", error)
    return problem_response(
        503, "The import reports store is not answering; retry later.", headers=_retry_after()
    )


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(current().settings.retry_after_s)}
