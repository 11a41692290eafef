"""The query API's settings: one typed object, read from the environment once at start-up.

Names and local defaults follow docs/contracts.md. Every time bound is in seconds unless the name
says otherwise; together they keep a request inside its latency budget when a dependency is slow
or gone (DESIGN.md §5.5, cases C18).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from contacts_http.auth import AuthSettings
from contacts_http.env import ConfigError, read_bool, read_list, read_positive
from contacts_http.rate_limits import RateLimitSettings

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use (names the variable)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the composition root needs to build the adapters.

    - ``database_url``: SQLAlchemy URL of the SELECT-only role (``QUERY_DATABASE_URL``).
    - ``db_statement_timeout_ms``: PostgreSQL ``statement_timeout`` set on every connection.
    - ``db_connect_timeout_s``: libpq ``connect_timeout`` (integer seconds, libpq's unit).
    - ``db_pool_size`` / ``db_pool_timeout_s``: connections per process, and how long a request
      waits for one before the API answers 503.
    - ``redis_url`` / ``redis_prefix``: cache server and the prefix of every key.
    - ``redis_socket_timeout_s`` / ``redis_connect_timeout_s``: bound on one Redis call.
    - ``redis_breaker_failures`` / ``redis_breaker_reset_s``: consecutive Redis failures that
      open the circuit, and how long it stays open before one trial call.
    - ``contact_cache_ttl_s``: TTL of a refilled ``contact:{id}`` entry.
    - ``refill_wait_s``: how long a request that missed waits for the refill of the request
      holding the refill lease (another thread or process) before reading PostgreSQL itself;
      0 turns the wait off. Keep it above a normal database read and well below the request's
      latency budget.
    - ``cache_repair_margin_s``: added to the outage's length when the cache is repaired after
      it (``handlers.repair_cache``); must exceed the worker's longest commit-to-cache-write
      delay, its ``TASK_TIME_LIMIT_S`` (45 s).
    - ``retry_after_s``: ``Retry-After`` sent with a 503.
    - ``cors_allowed_origins``: origins (``https://app.example.com``) whose browser pages may
      read this API (``CORS_ALLOWED_ORIGINS``, comma-separated; empty: no CORS headers at all;
      ``*``: any origin, refused together with credentials).
    - ``cors_allow_credentials``: answer ``Access-Control-Allow-Credentials: true``.
    - ``cors_max_age_s``: how long a browser may cache a preflight answer.
    - ``auth`` (``AUTH_*``) and ``rate_limits`` (``RATE_LIMIT_*``) are read by
      ``contacts_http``; see ``contacts_http.auth.settings`` and ``contacts_http.rate_limits``.
    """

    database_url: str = "postgresql+psycopg2://contacts_reader@127.0.0.1:5432/contacts"
    db_statement_timeout_ms: int = 2000
    db_connect_timeout_s: int = 2
    db_pool_size: int = 5
    db_pool_timeout_s: float = 2.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "contacts:"
    redis_socket_timeout_s: float = 0.25
    redis_connect_timeout_s: float = 0.25
    redis_breaker_failures: int = 3
    redis_breaker_reset_s: float = 5.0
    contact_cache_ttl_s: int = 3600
    refill_wait_s: float = 0.3
    cache_repair_margin_s: float = 60.0
    retry_after_s: int = 2
    cors_allowed_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    cors_max_age_s: int = 600
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)

    @property
    def refill_lease_ms(self) -> int:
        """TTL of a refill lease in milliseconds: the longest the holder's database read can
        take (waiting for a pooled connection, then the statement timeout)."""
        return int(self.db_pool_timeout_s * 1000) + self.db_statement_timeout_ms

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the settings from ``environ`` (normally ``os.environ``); absent names keep their
        defaults. Raises ``SettingsError`` naming the first variable that does not parse or is
        out of range."""
        d = cls()
        try:
            auth = AuthSettings.from_env(environ)
            rate_limits = RateLimitSettings.from_env(environ)
            origins = read_list(environ, "CORS_ALLOWED_ORIGINS")
            credentials = read_bool(environ, "CORS_ALLOW_CREDENTIALS", d.cors_allow_credentials)
            max_age = read_positive(environ, "CORS_MAX_AGE_S", d.cors_max_age_s)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        if credentials and "*" in origins:
            # The Fetch standard refuses a credentialed response with a wildcard origin
            # (§3.2.5); answering one would mean reflecting any origin, i.e. no allowlist.
            raise SettingsError("CORS_ALLOWED_ORIGINS=* cannot be used with credentials.")
        return cls(
            database_url=_read(environ, "QUERY_DATABASE_URL", str, d.database_url),
            db_statement_timeout_ms=_read(
                environ, "QUERY_DB_STATEMENT_TIMEOUT_MS", _positive(int), d.db_statement_timeout_ms
            ),
            db_connect_timeout_s=_read(
                environ, "QUERY_DB_CONNECT_TIMEOUT_S", _positive(int), d.db_connect_timeout_s
            ),
            db_pool_size=_read(environ, "QUERY_DB_POOL_SIZE", _positive(int), d.db_pool_size),
            db_pool_timeout_s=_read(
                environ, "QUERY_DB_POOL_TIMEOUT_S", _positive(float), d.db_pool_timeout_s
            ),
            redis_url=_read(environ, "REDIS_URL", str, d.redis_url),
            redis_prefix=_read(environ, "REDIS_PREFIX", str, d.redis_prefix),
            redis_socket_timeout_s=_read(
                environ, "REDIS_SOCKET_TIMEOUT_S", _positive(float), d.redis_socket_timeout_s
            ),
            redis_connect_timeout_s=_read(
                environ, "REDIS_CONNECT_TIMEOUT_S", _positive(float), d.redis_connect_timeout_s
            ),
            redis_breaker_failures=_read(
                environ, "REDIS_BREAKER_FAILURES", _positive(int), d.redis_breaker_failures
            ),
            redis_breaker_reset_s=_read(
                environ, "REDIS_BREAKER_RESET_S", _positive(float), d.redis_breaker_reset_s
            ),
            contact_cache_ttl_s=_read(
                environ, "CONTACT_CACHE_TTL_S", _positive(int), d.contact_cache_ttl_s
            ),
            refill_wait_s=_read(
                environ, "QUERY_REFILL_WAIT_S", _not_negative(float), d.refill_wait_s
            ),
            cache_repair_margin_s=_read(
                environ, "CACHE_REPAIR_MARGIN_S", _positive(float), d.cache_repair_margin_s
            ),
            retry_after_s=_read(environ, "QUERY_RETRY_AFTER_S", _positive(int), d.retry_after_s),
            cors_allowed_origins=origins,
            cors_allow_credentials=credentials,
            cors_max_age_s=int(max_age),
            auth=auth,
            rate_limits=rate_limits,
        )


def _positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not value > 0:  # type: ignore[operator]
            raise ValueError("must be greater than 0")
        return value

    return parse


def _not_negative(kind: Callable[[str], T]) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if value < 0:  # type: ignore[operator]
            raise ValueError("must not be negative")
        return value

    return parse


def _read(environ: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None
