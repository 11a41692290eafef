"""The query API's composition root: the one module that chooses its concrete adapters.

Every concrete choice of the service is made here and nowhere else:

- PostgreSQL: one SQLAlchemy engine for the read-only role (``build_engine``), read by
  ``SqlContactReadModel`` (behind ``CoalescingReadModel``, single-flight reads and pages per
  process, a page's reads bounded by ``shared_read_wait_s``),
  ``SqlOperationLog``, ``SqlChangeFeed`` and ``SqlImportOutcomeLog``;
- Redis: one client (``contacts_infra.redis_client.create_redis``) called through ``RedisCalls``
  (its Lua scripts by a ``ScriptRunner`` on connections with the client's settings, unless in
  Redis Cluster mode)
  behind a ``CircuitBreaker`` whose half-open trial first runs the cache repair
  (``handlers.repair_cache``, itself unguarded: ``NoBreaker``), read by
  ``RedisReadThroughContactCache`` (behind ``LocalContactCache``, a per-process cache of hot
  entries kept coherent by an ``InvalidationListener``, with a ``LocalRateBudget`` for the rate
  limits of its hits, unless ``local_cache_size`` is 0 or in Redis Cluster mode),
  ``RedisOperationStatusCache`` and ``RedisImportReportReader``;
- the rate-limit counters: Redis at ``settings.redis_url`` (``rate_limit_storage``).

``build_ports(settings)`` returns ``Ports``; any port given as a keyword replaces its real
adapter (tests pass fakes of ``service_layer.ports``). Building connects to nothing: the engine
and the Redis pool connect on first use, in the process that uses them (in Redis Cluster mode
the client reads the slot map when built: ``contacts_infra.redis_client``). The app factory
(``entrypoints.app.create_app``) is the only caller.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine, create_engine, text

from contacts_http.rate_limits import RateLimitStorage
from contacts_infra.redis_client import create_redis
from contacts_infra.settings import exit_on_error
from query_api.adapters.circuit_breaker import CircuitBreaker, NoBreaker
from query_api.adapters.client_tracking import InvalidationListener, listener_connect
from query_api.adapters.coalescing import CoalescingReadModel
from query_api.adapters.local_contact_cache import LocalContactCache
from query_api.adapters.local_rate_budget import RESERVE_LUA, LocalRateBudget
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_contact_cache import RedisReadThroughContactCache
from query_api.adapters.redis_import_report_reader import RedisImportReportReader
from query_api.adapters.redis_operation_status import RedisOperationStatusCache
from query_api.adapters.redis_scripts import ScriptRunner
from query_api.adapters.sql_change_feed import SqlChangeFeed
from query_api.adapters.sql_import_outcomes import SqlImportOutcomeLog
from query_api.adapters.sql_operation_log import SqlOperationLog
from query_api.adapters.sql_owed_entries import PolledOwedEntries
from query_api.adapters.sql_read_model import SqlContactReadModel
from query_api.service_layer.handlers import repair_cache
from query_api.service_layer.ports import (
    ChangeFeed,
    ContactReadModel,
    ImportOutcomeLog,
    ImportReportReader,
    OperationLog,
    OperationStatusCache,
    OwedEntries,
    ReadThroughContactCache,
    WindowCounter,
)
from query_api.settings import Settings

#: A readiness check: returns when its dependency answers, raises when it does not.
Check = Callable[[], Any]


@dataclass(frozen=True)
class Ports:
    """What the routes need.

    ``owed``: the cache entries the worker owes (``None``: nothing owed), read from the read
    model's database. ``required_checks`` must pass for ``/readyz`` to be 200;
    ``optional_checks`` are reported but only degrade it (the API serves without Redis).
    ``close`` releases pooled connections and stops the ports' threads.
    """

    contacts: ContactReadModel
    cache: ReadThroughContactCache
    statuses: OperationStatusCache
    outcomes: OperationLog
    changes: ChangeFeed
    import_reports: ImportReportReader
    import_outcomes: ImportOutcomeLog
    owed: OwedEntries | None = None
    required_checks: Mapping[str, Check] = field(default_factory=dict)
    optional_checks: Mapping[str, Check] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


PORT_NAMES = frozenset(f.name for f in dataclasses.fields(Ports))
#: How this service names itself to Redis (``CLIENT LIST``) and PostgreSQL (``application_name``).
CLIENT_NAME = "query-api"


def build_ports(settings: Settings, **injected: Any) -> Ports:
    """Return the real adapters for ``settings``, with ``injected`` ports replacing them.

    Raises ``TypeError`` for a keyword that names no port. The real adapters are built either
    way; they connect on first use only, so one that an injected port replaces never does.
    """
    unknown = set(injected) - PORT_NAMES
    if unknown:
        raise TypeError(f"unknown ports: {', '.join(sorted(unknown))}")
    engine = build_engine(settings)
    client = create_redis(settings, client_name=CLIENT_NAME)
    contacts = CoalescingReadModel(
        SqlContactReadModel(engine), list_wait_s=shared_read_wait_s(settings)
    )
    scripts = None if settings.redis_cluster_mode else ScriptRunner(client)
    calls = _guarded_calls(settings, client, contacts, scripts)
    cache, stops = _read_cache(settings, calls)
    # The owed entries live in the read model's database: with a read model injected (a
    # fake), there is none to read, and nothing is owed unless ``owed`` is injected too.
    owed = None
    if "contacts" not in injected:
        owed = PolledOwedEntries(engine, settings.redis_prefix, settings.owed_entries_poll_s)
        stops = [*stops, owed.stop]
    real: dict[str, Any] = {
        "contacts": contacts,
        "cache": cache,
        "statuses": RedisOperationStatusCache(calls, settings.redis_prefix),
        "outcomes": SqlOperationLog(engine),
        "changes": SqlChangeFeed(engine),
        "import_reports": RedisImportReportReader(calls, settings.redis_prefix),
        "import_outcomes": SqlImportOutcomeLog(engine),
        "owed": owed,
        "required_checks": {"postgresql": functools.partial(_ping_database, engine)},
        "optional_checks": {"redis": client.ping},
        "close": functools.partial(_close, engine, client, [*stops, *_stop(scripts)]),
    }
    return Ports(**{**real, **injected})


def shared_read_wait_s(settings: Settings) -> float:
    """The longest one read of a page can take by its own bounds (a pooled connection, a new
    connection, then a search's two statements), plus a second, in seconds: the ``wait_s``
    of ``single_flight.SingleFlight`` (a read queued behind another waits at most this for it,
    a request waiting for a read twice this; then 503)."""
    return (
        settings.db_pool_timeout_s
        + settings.db_connect_timeout_s
        + 2 * settings.db_statement_timeout_ms / 1000
        + 1.0
    )


def rate_limit_storage(settings: Settings) -> RateLimitStorage:
    """The rate limiter's counters: Redis at ``settings.redis_url`` under
    ``{REDIS_PREFIX}ratelimit:query-api``, through a client of its own from the shared factory
    (bounded calls, no retries)."""
    return RateLimitStorage.on_redis(
        settings,
        client_name="query-api-rate-limits",
        key_prefix=f"{settings.redis_prefix}ratelimit:query-api",
    )


def _guarded_calls(
    settings: Settings,
    client: redis.Redis,
    contacts: ContactReadModel,
    scripts: ScriptRunner | None,
) -> RedisCalls:
    """Redis calls behind the circuit breaker; its half-open trial first repairs the cache
    entries that went stale during the outage (``handlers.repair_cache``). Scripts run on
    ``scripts`` (``None``: through redis-py, a cluster client)."""
    # The repair runs while the circuit is half-open, so its own calls must not be refused.
    repair_target = _contact_cache(settings, RedisCalls(client, NoBreaker(), scripts=scripts))
    repair = functools.partial(
        repair_cache,
        contacts=contacts,
        cache=repair_target,
        margin_s=settings.cache_repair_margin_s,
        max_lookback_s=settings.contact_cache_ttl_s + settings.cache_repair_margin_s,
    )
    breaker = CircuitBreaker(settings.redis_breaker_failures, settings.redis_breaker_reset_s)
    return RedisCalls(client, breaker, before_trial=repair, scripts=scripts)


def _contact_cache(settings: Settings, calls: RedisCalls) -> RedisReadThroughContactCache:
    return RedisReadThroughContactCache(
        calls,
        settings.redis_prefix,
        settings.contact_cache_ttl_s,
        lease_ms=settings.refill_lease_ms,
        wait_s=settings.refill_wait_s,
    )


def _read_cache(
    settings: Settings, calls: RedisCalls
) -> tuple[ReadThroughContactCache, list[Callable[[], None]]]:
    """The contact read cache: Redis, behind the local cache when it is on (not in Redis
    Cluster mode: it would need an invalidation listener per node), and what stops its
    threads on close (the listener's, the rate budget's)."""
    redis_cache = _contact_cache(settings, calls)
    if not settings.local_cache_size or settings.redis_cluster_mode:
        return redis_cache, []
    listener = InvalidationListener(
        listener_connect(calls.client, f"{settings.redis_prefix}contact:"),
        heartbeat_s=settings.local_cache_heartbeat_s,
        reply_timeout_s=settings.redis_socket_timeout_s,
    )
    reserve = calls.client.register_script(RESERVE_LUA)

    def reserve_counts(counters: Sequence[WindowCounter], batches: Sequence[int]) -> list[int]:
        keys = [c.key for c in counters]
        args = [*batches, *(c.window_s for c in counters)]
        return list(calls.run(lambda r: reserve(keys=keys, args=args, client=r)))

    budget = LocalRateBudget(settings.local_rate_batch, reserve_counts)
    local = LocalContactCache(
        redis_cache,
        listener,
        budget,
        prefix=settings.redis_prefix,
        max_entries=settings.local_cache_size,
    )
    return local, [listener.close, budget.close]


def _ping_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _stop(scripts: ScriptRunner | None) -> list[Callable[[], None]]:
    return [] if scripts is None else [scripts.close]


def _close(engine: Engine, client: redis.Redis, stops: Sequence[Callable[[], None]]) -> None:
    for stop in stops:
        stop()
    engine.dispose()
    client.close()


def build_engine(settings: Settings) -> Engine:
    """Create the engine (it connects lazily, on first use).

    Every connection is read-only and autocommit: a request runs one SELECT, so there is no
    transaction to open or roll back. No ``pool_pre_ping``: its ``SELECT 1`` was one of six
    round trips per cache miss; a dead pooled connection fails its read, which invalidates the
    pool (the contact read retries once, ``sql_read_model.first_row``; other reads answer one
    503 with ``Retry-After``). gunicorn ``--preload`` forks workers after the app (and
    maybe a pooled connection) exists, and a socket shared by two processes corrupts both
    (cases C21), so a child drops the inherited pool without closing the parent's sockets.
    """
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_s,
        isolation_level="AUTOCOMMIT",
        # Search and filter values are personal data: never in an exception's text or a log.
        hide_parameters=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": CLIENT_NAME,
            "options": (
                f"-c statement_timeout={settings.db_statement_timeout_ms}"
                " -c default_transaction_read_only=on"
            ),
        },
    )
    os.register_at_fork(after_in_child=functools.partial(_forget_pool, weakref.ref(engine)))
    return engine


def _forget_pool(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def load_settings() -> Settings:
    """The service's settings, read once from the process environment at start-up. Exits the
    process (status 2) with one line on stderr naming the variable and the rule when one is
    invalid (``contacts_infra.settings.exit_on_error``)."""
    return exit_on_error(lambda: Settings.from_env(os.environ), "query-api")
