"""The composition root's wiring: the one place where real adapters are chosen.

``build_ports(settings)`` returns ``Ports`` built from PostgreSQL and Redis adapters; any port
given as a keyword replaces its real adapter (tests pass fakes). Building connects to nothing:
the engine and the Redis pool connect on first use, in the process that uses them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from query_api.adapters.circuit_breaker import CircuitBreaker, NoBreaker
from query_api.adapters.coalescing import CoalescingReadModel
from query_api.adapters.redis_calls import RedisCalls, build_client
from query_api.adapters.redis_contact_cache import RedisContactCache
from query_api.adapters.redis_import_report import RedisImportReportStore
from query_api.adapters.redis_operation_status import RedisOperationStatusCache
from query_api.adapters.sql_change_feed import SqlChangeFeed
from query_api.adapters.sql_engine import build_engine
from query_api.adapters.sql_import_outcomes import SqlImportOutcomeLog
from query_api.adapters.sql_operation_log import SqlOperationLog
from query_api.adapters.sql_read_model import SqlContactReadModel
from query_api.service_layer.handlers import repair_cache
from query_api.service_layer.ports import (
    ChangeFeed,
    ContactCache,
    ContactReadModel,
    ImportOutcomeLog,
    ImportReportStore,
    OperationLog,
    OperationStatusCache,
)
from query_api.settings import Settings

#: A readiness check: returns when its dependency answers, raises when it does not.
Check = Callable[[], Any]


@dataclass(frozen=True)
class Ports:
    """What the routes need.

    ``required_checks`` must pass for ``/readyz`` to be 200; ``optional_checks`` are reported
    but only degrade it (the API serves without Redis). ``close`` releases pooled connections.
    """

    contacts: ContactReadModel
    cache: ContactCache
    statuses: OperationStatusCache
    outcomes: OperationLog
    changes: ChangeFeed
    import_reports: ImportReportStore
    import_outcomes: ImportOutcomeLog
    required_checks: Mapping[str, Check] = field(default_factory=dict)
    optional_checks: Mapping[str, Check] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


PORT_NAMES = frozenset(f.name for f in dataclasses.fields(Ports))
#: The ports that read data (the others have defaults).
DATA_PORTS = frozenset(
    ("contacts", "cache", "statuses", "outcomes", "changes", "import_reports", "import_outcomes")
)


def build_ports(settings: Settings, **injected: Any) -> Ports:
    """Return the real adapters for ``settings``, with ``injected`` ports replacing them.

    Raises ``TypeError`` for a keyword that names no port. Adapters whose every use is replaced
    are not built, so a test injecting every one of ``DATA_PORTS`` needs no server.
    """
    unknown = set(injected) - PORT_NAMES
    if unknown:
        raise TypeError(f"unknown ports: {', '.join(sorted(unknown))}")
    if set(injected) >= DATA_PORTS:
        return Ports(**injected)

    engine = build_engine(settings)
    client = build_client(settings)
    contacts = CoalescingReadModel(SqlContactReadModel(engine))

    def contact_cache(calls: RedisCalls) -> RedisContactCache:
        return RedisContactCache(
            calls,
            settings.redis_prefix,
            settings.contact_cache_ttl_s,
            lease_ms=settings.refill_lease_ms,
            wait_s=settings.refill_wait_s,
        )

    # The repair runs while the circuit is half-open, so its own calls must not be refused.
    repair_target = contact_cache(RedisCalls(client, NoBreaker()))

    def repair(seconds_since_healthy: float | None) -> int:
        return repair_cache(
            seconds_since_healthy,
            contacts=contacts,
            cache=repair_target,
            margin_s=settings.cache_repair_margin_s,
            max_lookback_s=settings.contact_cache_ttl_s + settings.cache_repair_margin_s,
        )

    breaker = CircuitBreaker(settings.redis_breaker_failures, settings.redis_breaker_reset_s)
    calls = RedisCalls(client, breaker, before_trial=repair)

    def ping_database() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close() -> None:
        engine.dispose()
        client.close()

    real: dict[str, Any] = {
        "contacts": contacts,
        "cache": contact_cache(calls),
        "statuses": RedisOperationStatusCache(calls, settings.redis_prefix),
        "outcomes": SqlOperationLog(engine),
        "changes": SqlChangeFeed(engine),
        "import_reports": RedisImportReportStore(calls, settings.redis_prefix),
        "import_outcomes": SqlImportOutcomeLog(engine),
        "required_checks": {"postgresql": ping_database},
        "optional_checks": {"redis": client.ping},
        "close": close,
    }
    return Ports(**{**real, **injected})
