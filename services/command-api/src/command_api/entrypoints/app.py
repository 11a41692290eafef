"""The command API's Flask app factory.

gunicorn runs ``'command_api.entrypoints.app:create_app()'``: settings are read from the
environment, ``bootstrap.build_ports`` builds the real adapters from them (the composition
root: the SQS clients are built there, so that the first ``/readyz`` does not pay for them), and
this module assembles Flask around those ports. Nothing connects to a server until the first
request needs it (each gunicorn worker then opens its own connections).
"""

from __future__ import annotations

from typing import Any, Final

from flask import Flask

from command_api.adapters.background_imports import ImportSlots
from command_api.bootstrap import Ports, build_ports, load_settings
from command_api.entrypoints.contacts import (
    BATCH_ENDPOINT,
    EXTENSION,
    WriteApi,
    contacts_blueprint,
)
from command_api.entrypoints.errors import register_error_handlers
from command_api.entrypoints.fast_post import install_fast_post
from command_api.entrypoints.imports import EXTENSION as IMPORTS_EXTENSION
from command_api.entrypoints.imports import (
    IMPORT_ENDPOINT,
    IMPORTS_PATH,
    ImportApi,
    imports_blueprint,
)
from command_api.service_layer.handlers import Context
from command_api.service_layer.imports import ImportLimits
from command_api.settings import Settings
from contacts_http import (
    ProblemApi,
    docs_blueprint,
    health_blueprint,
    init_body_limit,
    init_request_id,
    init_routing_answers,
    openapi_config,
)
from contacts_http.auth import Authenticator, AuthPolicy, install_auth, install_rate_limits, scopes
from contacts_http.observability import HttpMetrics, init_observability
from contacts_http.security_headers import init_security_headers
from contacts_telemetry.logs import configure_structlog
from contacts_telemetry.metrics import MetricsRegistry

#: The ``service`` field of every log line.
SERVICE: Final = "command-api"

#: Bound, in seconds, on the whole ``/readyz`` probe (checks run concurrently).
READINESS_TIMEOUT_S: Final = 1.0
#: Every route of this API needs ``contacts:write`` (RFC 6750 realm below), but imports, which
#: need ``contacts:import`` (README, "Authentication").
AUTH_POLICY: Final = AuthPolicy(
    realm="contacts-command-api",
    default_scope=scopes.WRITE,
    route_scopes={IMPORT_ENDPOINT: scopes.IMPORT},
)
#: Every write route counts its rate limits in one Redis round trip (a script of
#: ``InlineRateLimits``) before its view, instead of flask-limiter's three or four; on a Redis
#: Cluster flask-limiter counts them (``contacts_http.rate_limits.init_rate_limits``).
COUNTED_FIRST: Final = frozenset(
    {"contacts.Contacts", "contacts.Upsert", "contacts.Contact", BATCH_ENDPOINT, IMPORT_ENDPOINT}
)


def create_app(
    settings: Settings | None = None,
    *,
    authenticator: Authenticator | None = None,
    metrics: MetricsRegistry | None = None,
    **injected_ports: Any,
) -> Flask:
    """Build the app from ``settings`` (default: ``bootstrap.load_settings()``, the environment).

    ``injected_ports`` replace real adapters by name (``publisher``, ``operations``,
    ``idempotency``, ``import_reports``, ``clock``, ``now``, ``readiness_checks``,
    ``prepare``, ``rate_limit_storage``; see ``bootstrap.Ports`` and ``build_ports``, which
    raises ``TypeError`` for any other name); tests pass fakes. ``authenticator`` replaces
    the one built from ``settings.auth`` (API keys and/or JWTs).

    Every route needs a bearer token with ``contacts:write`` (``AUTH_POLICY``), is rate-limited
    per caller in Redis (``settings.rate_limits``) and answers ``Cache-Control: no-store`` and
    ``X-Content-Type-Options: nosniff``; health, readiness and the OpenAPI document stay open.

    ``metrics`` holds the app's Prometheus metrics (default: a new ``MetricsRegistry``, which
    aggregates every gunicorn worker when ``PROMETHEUS_MULTIPROC_DIR`` is set; see
    ``gunicorn_conf``); every publisher is wrapped to time and count its sends.
    """
    settings = settings or load_settings()
    configure_structlog(SERVICE)
    metrics = metrics or MetricsRegistry()
    ports = build_ports(settings, metrics=metrics, **injected_ports)

    app = Flask("command_api")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        **openapi_config("Contacts command API"),
    )
    api = ProblemApi(app)
    http_metrics = HttpMetrics(metrics)
    init_request_id(app)
    init_observability(app, http_metrics)
    _init_body_path(app, settings, http_metrics)
    init_security_headers(app, vary_on_authorization=not settings.auth.disabled)
    register_error_handlers(app)
    install_auth(app, api, settings.auth, AUTH_POLICY, metrics=metrics, authenticator=authenticator)
    _init_extensions(app, settings, ports)
    api.register_blueprint(contacts_blueprint())
    api.register_blueprint(imports_blueprint())
    app.register_blueprint(docs_blueprint("Contacts command API"))
    app.register_blueprint(
        health_blueprint(
            ports.readiness_checks, timeout_s=READINESS_TIMEOUT_S, prepare=ports.prepare
        )
    )
    install_rate_limits(
        app,
        settings.rate_limits,
        ports.rate_limit_storage,
        AUTH_POLICY,
        counted_first=COUNTED_FIRST,
    )
    init_routing_answers(app)
    return app


def _init_body_path(app: Flask, settings: Settings, http_metrics: HttpMetrics) -> None:
    """The WSGI layers a request body passes: the body guard (limits, deadlines) in front of
    the fast path of the plain create, when ``settings.fast_post``, in front of Flask."""
    if settings.fast_post:  # before init_body_limit: the body guard stays in front of it
        install_fast_post(
            app,
            http_metrics=http_metrics,
            max_body_bytes=settings.max_request_bytes,
            vary_authorization=not settings.auth.disabled,
        )
    init_body_limit(
        app,
        endpoint_limits={BATCH_ENDPOINT: settings.batch_max_bytes},
        own_limit_paths=(IMPORTS_PATH,),
        idle_timeout_s=settings.request_body_idle_timeout_s,
    )


def _init_extensions(app: Flask, settings: Settings, ports: Ports) -> None:
    """Store what the views need (``WriteApi``, ``ImportApi``) in ``app.extensions``."""
    context = Context(
        publisher=ports.publisher,
        operations=ports.operations,
        idempotency=ports.idempotency,
        clock=ports.clock,
        now=ports.now,
    )
    app.extensions[EXTENSION] = WriteApi(
        context=context,
        query_api_base_url=settings.query_api_base_url,
        default_phone_region=settings.default_phone_region,
    )
    app.extensions[IMPORTS_EXTENSION] = ImportApi(
        context=context,
        reports=ports.import_reports,
        limits=ImportLimits(
            max_bytes=settings.import_max_bytes,
            max_records=settings.import_max_records,
            errors_max=settings.import_errors_max,
            default_region=settings.default_phone_region,
        ),
        query_api_base_url=settings.query_api_base_url,
        slots=ImportSlots(settings.import_queuing_slots),
    )
