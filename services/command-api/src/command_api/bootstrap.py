"""The command API's composition root: the one module that chooses concrete adapters.

``build_ports(settings, metrics=...)`` returns ``Ports``: the SQS publisher (Celery producer
over kombu's SQS transport, ``adapters.sqs_publisher``) wrapped in the publishing metrics, the
Redis stores of operation statuses, idempotency records and import reports (one Redis client
for the three), a per-process hybrid logical clock, the ``/readyz`` checks of what was built,
and where the rate limiter keeps its counters. Any port given as a keyword replaces its real
adapter (tests pass fakes of the ports); adapters whose every use is replaced are not built.

Building connects to nothing: the SQS publisher builds its boto3 client and Celery app (no
connection; ``SqsEventPublisher.warm``) so that the first ``/readyz`` does not pay for them,
and the Redis client connects on its first command, in the process that sends it (each
gunicorn worker opens its own connections). In Redis Cluster mode (``REDIS_CLUSTER_MODE``) the
client reads the slot map when it is built, so the start fails while no node answers
(``contacts_infra.redis_client``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from command_api.adapters.instrumented_publisher import InstrumentedPublisher, PublishMetrics
from command_api.adapters.process_clock import ProcessClock
from command_api.adapters.redis_import_report_writer import RedisImportReportWriter
from command_api.adapters.redis_stores import RedisIdempotencyStore
from command_api.adapters.sqs_publisher import SqsEventPublisher, SqsTarget
from command_api.service_layer.ports import IdempotencyStore, ImportReportWriter, SequenceClock
from command_api.settings import Settings
from contacts_domain.ports import EventPublisher, OperationStore
from contacts_http.rate_limits import RateLimitStorage
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis
from contacts_infra.settings import exit_on_error
from contacts_telemetry.metrics import MetricsRegistry

#: A readiness check: returns when its dependency answers, raises when it does not.
Check = Callable[[], Any]
#: The ports kept in Redis: built together, on one client, unless all three are injected.
REDIS_PORTS: Final = frozenset(("operations", "idempotency", "import_reports"))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Ports:
    """What the app needs.

    ``publisher`` is always the ``InstrumentedPublisher`` around the chosen publisher.
    ``clock`` gives per-contact ordering keys (``contacts_domain.sequence``);
    ``now`` the current time in UTC. ``readiness_checks`` are ``/readyz``'s checks (by name);
    ``prepare`` runs before their clock starts (building a forked process's SQS clients).
    ``rate_limit_storage`` is where the rate limiter keeps its counters (Redis).
    """

    publisher: EventPublisher
    operations: OperationStore
    idempotency: IdempotencyStore
    import_reports: ImportReportWriter
    rate_limit_storage: RateLimitStorage
    clock: SequenceClock = field(default_factory=ProcessClock)
    now: Callable[[], dt.datetime] = _utc_now
    readiness_checks: Mapping[str, Check] = field(default_factory=dict)
    prepare: Sequence[Callable[[], object]] = ()


#: The keywords ``build_ports`` accepts.
PORT_NAMES: Final = frozenset(f.name for f in dataclasses.fields(Ports))


def sqs_target(settings: Settings) -> SqsTarget:
    """The queue, endpoint, credentials and send bound (seconds) that ``settings`` name."""
    return SqsTarget(
        queue_name=settings.sqs_queue_name,
        queue_url=settings.sqs_queue_url,
        region=settings.aws_region,
        endpoint_url=settings.sqs_endpoint_url,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        send_timeout_s=settings.sqs_send_timeout_s,
    )


def build_ports(settings: Settings, *, metrics: MetricsRegistry, **injected: Any) -> Ports:
    """Return the real adapters for ``settings``, with ``injected`` ports replacing them.

    ``metrics`` receives the publishing metrics (``PublishMetrics``); every publisher, an
    injected one too, is wrapped to time and count its sends. When the publisher (built or
    injected) is an ``SqsEventPublisher`` it is warmed here and checked by ``/readyz``
    (GetQueueAttributes, name ``sqs``); Redis PING (``redis``) is checked when the Redis
    stores are built here. An injected ``readiness_checks`` replaces both, and nothing is
    prepared then. Raises ``TypeError`` for a keyword that names no port.
    """
    unknown = set(injected) - PORT_NAMES
    if unknown:
        raise TypeError(f"unknown ports: {', '.join(sorted(unknown))}")
    checks: dict[str, Check] = {}
    prepare: list[Callable[[], object]] = []
    publisher: EventPublisher = injected.pop("publisher", None) or SqsEventPublisher(
        sqs_target(settings)
    )
    if isinstance(publisher, SqsEventPublisher):
        publisher.warm()
        checks["sqs"] = publisher.check_ready
        prepare.append(publisher.warm)
    if not set(injected) >= REDIS_PORTS:
        injected = {**_redis_ports(settings, checks), **injected}
    if "readiness_checks" not in injected:
        injected |= {"readiness_checks": checks, "prepare": prepare}
    return Ports(
        publisher=InstrumentedPublisher(publisher, PublishMetrics(metrics)),
        **{"rate_limit_storage": rate_limit_storage(settings), **injected},
    )


def _redis_ports(settings: Settings, checks: dict[str, Check]) -> dict[str, Any]:
    """The three Redis stores on one client (lazy: it connects on first command); adds the
    client's PING to ``checks`` as ``redis``."""
    client = create_redis(settings, client_name="command-api")
    checks["redis"] = client.ping
    prefix = settings.redis_prefix
    return {
        "operations": RedisOperationStore(client, prefix=prefix, ttl_s=settings.operation_ttl_s),
        "idempotency": RedisIdempotencyStore(
            client, prefix=prefix, ttl_s=settings.idempotency_ttl_s
        ),
        "import_reports": RedisImportReportWriter(
            client,
            prefix=prefix,
            ttl_s=settings.import_report_ttl_s,
            lease_s=settings.import_queuing_lease_s,
        ),
    }


def rate_limit_storage(settings: Settings) -> RateLimitStorage:
    """The rate limiter's counters: Redis at ``settings.redis_url`` under
    ``{REDIS_PREFIX}ratelimit:command-api``, through a client of its own from the shared factory
    (bounded calls, no retries)."""
    return RateLimitStorage.on_redis(
        settings,
        client_name="command-api-rate-limits",
        key_prefix=f"{settings.redis_prefix}ratelimit:command-api",
    )


def load_settings() -> Settings:
    """The service's settings, read once from the process environment at start-up. Exits the
    process (status 2) with one line on stderr naming the variable and the rule when one is
    invalid (``contacts_infra.settings.exit_on_error``)."""
    return exit_on_error(lambda: Settings.from_env(os.environ), "command-api")
