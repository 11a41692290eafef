"""The app factory: the command API's one composition root.

gunicorn runs ``'command_api.entrypoints.app:create_app()'``: settings are read from the
environment, real adapters are built from them (the SQS clients included, so that the first
``/readyz`` does not pay for building them), and nothing connects to a server until the first
request needs it (each gunicorn worker then opens its own connections).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Final

from flask import Flask

from command_api.adapters.instrumented_publisher import InstrumentedPublisher, PublishMetrics
from command_api.adapters.process_clock import ProcessClock
from command_api.adapters.redis_import_reports import RedisImportReportStore
from command_api.adapters.redis_stores import (
    RedisIdempotencyStore,
    RedisOperationStore,
    make_redis_client,
)
from command_api.adapters.sqs_publisher import SqsEventPublisher, SqsTarget
from command_api.entrypoints.contacts import (
    BATCH_ENDPOINT,
    EXTENSION,
    WriteApi,
    contacts_blueprint,
)
from command_api.entrypoints.errors import register_error_handlers
from command_api.entrypoints.imports import EXTENSION as IMPORTS_EXTENSION
from command_api.entrypoints.imports import (
    IMPORT_ENDPOINT,
    IMPORTS_PATH,
    ImportApi,
    imports_blueprint,
)
from command_api.service_layer.handlers import Context
from command_api.service_layer.imports import ImportLimits, ImportReportStore
from command_api.service_layer.ports import IdempotencyStore
from command_api.settings import Settings
from contacts_domain.ports import EventPublisher, OperationStore
from contacts_http import (
    ProblemApi,
    health_blueprint,
    init_body_limit,
    init_request_id,
    openapi_config,
)
from contacts_http.auth import Authenticator, AuthPolicy, install_auth, install_rate_limits, scopes
from contacts_http.observability import HttpMetrics, init_observability
from contacts_http.rate_limits import RateLimitStorage
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


def create_app(
    settings: Settings | None = None,
    *,
    publisher: EventPublisher | None = None,
    operations: OperationStore | None = None,
    idempotency: IdempotencyStore | None = None,
    import_reports: ImportReportStore | None = None,
    next_sequence: Any = None,
    readiness_checks: dict[str, Any] | None = None,
    authenticator: Authenticator | None = None,
    metrics: MetricsRegistry | None = None,
) -> Flask:
    """Build the app from ``settings`` (default: ``Settings.from_env(os.environ)``).

    Every port may be injected (tests use fakes); the ones not given are the real adapters:
    the SQS publisher, Redis stores (operations, idempotency, import reports) and a
    per-process hybrid logical clock. ``readiness_checks``
    replaces the ``/readyz`` checks (default: SQS GetQueueAttributes when the publisher is an
    ``SqsEventPublisher``, and Redis PING when the Redis stores are built here).
    ``authenticator`` replaces the one built from ``settings.auth`` (API keys and/or JWTs).

    Every route needs a bearer token with ``contacts:write`` (``AUTH_POLICY``), is rate-limited
    per caller in Redis (``settings.rate_limits``) and answers ``Cache-Control: no-store`` and
    ``X-Content-Type-Options: nosniff``; health, readiness and the OpenAPI document stay open.

    ``metrics`` holds the app's Prometheus metrics (default: a new ``MetricsRegistry``, which
    aggregates every gunicorn worker when ``PROMETHEUS_MULTIPROC_DIR`` is set; see
    ``gunicorn_conf``); every publisher is wrapped to time and count its sends.

    An ``SqsEventPublisher`` is warmed here (its clients built, nothing connected) and again,
    outside the probe's ``READINESS_TIMEOUT_S``, by ``/readyz`` in a process forked since.
    """
    settings = settings or Settings.from_env(os.environ)
    configure_structlog(SERVICE)
    metrics = metrics or MetricsRegistry()
    checks: dict[str, Any] = {}
    prepare: list[Any] = []
    if publisher is None:
        publisher = SqsEventPublisher(
            SqsTarget(
                queue_name=settings.sqs_queue_name,
                queue_url=settings.sqs_queue_url,
                region=settings.aws_region,
                endpoint_url=settings.sqs_endpoint_url,
                access_key_id=settings.aws_access_key_id,
                secret_access_key=settings.aws_secret_access_key,
                send_timeout_s=settings.sqs_send_timeout_s,
            )
        )
    if isinstance(publisher, SqsEventPublisher):
        publisher.warm()
        checks["sqs"] = publisher.check_ready
        prepare.append(publisher.warm)
    if operations is None or idempotency is None or import_reports is None:
        redis_client = make_redis_client(
            settings.redis_url,
            socket_timeout_s=settings.redis_socket_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
        )
        checks["redis"] = redis_client.ping
        operations = operations or RedisOperationStore(
            redis_client, prefix=settings.redis_prefix, ttl_s=settings.operation_ttl_s
        )
        idempotency = idempotency or RedisIdempotencyStore(
            redis_client, prefix=settings.redis_prefix, ttl_s=settings.idempotency_ttl_s
        )
        import_reports = import_reports or RedisImportReportStore(
            redis_client, prefix=settings.redis_prefix, ttl_s=settings.import_report_ttl_s
        )

    publisher = InstrumentedPublisher(publisher, PublishMetrics(metrics))

    app = Flask("command_api")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        **openapi_config("Contacts command API"),
    )
    api = ProblemApi(app)
    init_request_id(app)
    init_observability(app, HttpMetrics(metrics))
    init_body_limit(
        app,
        endpoint_limits={BATCH_ENDPOINT: settings.batch_max_bytes},
        own_limit_paths=(IMPORTS_PATH,),
        idle_timeout_s=settings.request_body_idle_timeout_s,
    )
    init_security_headers(app, vary_on_authorization=not settings.auth.disabled)
    register_error_handlers(app)
    install_auth(app, api, settings.auth, AUTH_POLICY, metrics=metrics, authenticator=authenticator)
    context = Context(
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        next_sequence=next_sequence or ProcessClock(),
        now=lambda: dt.datetime.now(dt.UTC),
    )
    app.extensions[EXTENSION] = WriteApi(
        context=context,
        query_api_base_url=settings.query_api_base_url,
        default_phone_region=settings.default_phone_region,
    )
    api.register_blueprint(contacts_blueprint())
    app.extensions[IMPORTS_EXTENSION] = ImportApi(
        context=context,
        reports=import_reports,
        limits=ImportLimits(
            max_bytes=settings.import_max_bytes,
            max_records=settings.import_max_records,
            errors_max=settings.import_errors_max,
            default_region=settings.default_phone_region,
        ),
        query_api_base_url=settings.query_api_base_url,
    )
    api.register_blueprint(imports_blueprint())
    app.register_blueprint(
        health_blueprint(
            checks if readiness_checks is None else readiness_checks,
            timeout_s=READINESS_TIMEOUT_S,
            prepare=prepare if readiness_checks is None else (),
        )
    )
    install_rate_limits(
        app,
        settings.rate_limits,
        RateLimitStorage(
            redis_url=settings.redis_url,
            key_prefix=f"{settings.redis_prefix}ratelimit:command-api",
            socket_timeout_s=settings.redis_socket_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
        ),
        AUTH_POLICY,
    )
    return app
