"""The query API's settings: one typed object, read from the environment once at start-up.

Names and local defaults follow docs/contracts.md; how they are read is
``contacts_infra.settings``. Every time bound is in seconds unless the name says otherwise;
together they keep a request inside its latency budget when a dependency is slow or gone
(docs/architecture.md, "Redis outages"; cases C18).
"""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from contacts_http.auth import AuthSettings
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.settings import SECRET, CommaList, RedisSettings, SettingsError

__all__ = ["Settings", "SettingsError"]


class Settings(RedisSettings):
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
    - ``owed_entries_poll_s``: seconds between two reads of the cache entries the worker owes
      (``adapters.sql_owed_entries``): how long after the worker records a failed cache write
      this process may still serve the old entry from Redis.
    - ``retry_after_s``: ``Retry-After`` sent with a 503.
    - ``stream_slots``: streamed exports one process writes at once (``QUERY_STREAM_SLOTS``);
      another export meanwhile is answered 503 with ``Retry-After``, so clients that read an
      export slowly hold that many of the process's threads at most (``entrypoints.export``).
    - ``cors_allowed_origins``: origins (``https://app.example.com``) whose browser pages may
      read this API (``CORS_ALLOWED_ORIGINS``, comma-separated; empty: no CORS headers at all;
      ``*``: any origin, refused together with credentials).
    - ``cors_allow_credentials``: answer ``Access-Control-Allow-Credentials: true``.
    - ``cors_max_age_s``: how long a browser may cache a preflight answer.
    - ``fast_get``: answer the plain ``GET|HEAD /v1/contacts/{id}`` in a WSGI fast path before
      Flask (``entrypoints.fast_get``; ``QUERY_FAST_GET``, on by default; tests turn it off to
      compare it with the Flask path's answers).
    - ``local_cache_size``: contact entries each process keeps in its local cache, kept
      coherent by Redis's invalidations (``adapters.local_contact_cache``;
      ``QUERY_LOCAL_CACHE_SIZE``, least recently used out; 0 turns it off). Off in Redis
      Cluster mode whatever it says (no invalidation listener per node).
    - ``local_rate_batch``: rate-limit counts one process reserves from Redis at a time for
      the hits it serves locally (``adapters.local_rate_budget``; ``QUERY_LOCAL_RATE_BATCH``;
      at most 1% of a limit; the next batch reserved while half of one is left): up to twice
      that many minus one per process and limit may be refused early in a window, never
      admitted beyond the limit.
    - ``local_cache_heartbeat_s``: how often the invalidation connection is PINGed; a PONG
      later than ``redis_socket_timeout_s`` turns the local cache off until it reconnects
      (``QUERY_LOCAL_CACHE_HEARTBEAT_S``).
    - ``token_secret``: the HMAC key that binds list cursors and change-feed tokens to their
      workspace (``service_layer.token_key``; ``QUERY_TOKEN_SECRET``, secret, at least 32
      characters, the same in every process; changing it alone refuses every token issued
      before). Empty: a development key anyone can read, with a warning at start-up. Hidden
      from ``repr``, as is the next one.
    - ``token_previous_secret``: the secret before a rotation (``QUERY_TOKEN_PREVIOUS_SECRET``,
      secret, at least 32 characters when set; empty by default): tokens it signed are still
      accepted, new ones are signed with ``token_secret`` only (``service_layer.token_key``;
      the README's rotation first gives the new secret here, so every replica accepts it
      before any signs with it). Refused when ``token_secret`` is empty (the new tokens would
      be signed with the public development key) or equal to it (the secret was not changed:
      a rotation that did not happen, most likely both variables given the old value).
    - ``auth`` (``AUTH_*``) and ``rate_limits`` (``RATE_LIMIT_*``) are read by
      ``contacts_http``; see ``contacts_http.auth.settings`` and ``contacts_http.rate_limits``.
    """

    database_url: str = Field(
        "postgresql+psycopg2://contacts_reader@127.0.0.1:5432/contacts",
        validation_alias="QUERY_DATABASE_URL",
    )
    db_statement_timeout_ms: PositiveInt = Field(
        2000, validation_alias="QUERY_DB_STATEMENT_TIMEOUT_MS"
    )
    db_connect_timeout_s: PositiveInt = Field(2, validation_alias="QUERY_DB_CONNECT_TIMEOUT_S")
    db_pool_size: PositiveInt = Field(5, validation_alias="QUERY_DB_POOL_SIZE")
    db_pool_timeout_s: PositiveFloat = Field(2.0, validation_alias="QUERY_DB_POOL_TIMEOUT_S")
    redis_breaker_failures: PositiveInt = 3
    redis_breaker_reset_s: PositiveFloat = 5.0
    contact_cache_ttl_s: PositiveInt = 3600
    refill_wait_s: NonNegativeFloat = Field(0.3, validation_alias="QUERY_REFILL_WAIT_S")
    cache_repair_margin_s: PositiveFloat = 60.0
    owed_entries_poll_s: PositiveFloat = 0.25
    retry_after_s: PositiveInt = Field(2, validation_alias="QUERY_RETRY_AFTER_S")
    stream_slots: PositiveInt = Field(1, validation_alias="QUERY_STREAM_SLOTS")
    cors_allowed_origins: CommaList = ()
    cors_allow_credentials: bool = False
    cors_max_age_s: PositiveInt = 600
    fast_get: bool = Field(True, validation_alias="QUERY_FAST_GET")
    local_cache_size: NonNegativeInt = Field(10000, validation_alias="QUERY_LOCAL_CACHE_SIZE")
    local_rate_batch: PositiveInt = Field(64, validation_alias="QUERY_LOCAL_RATE_BATCH")
    local_cache_heartbeat_s: PositiveFloat = Field(
        1.0, validation_alias="QUERY_LOCAL_CACHE_HEARTBEAT_S"
    )
    token_secret: str = Field(
        "", validation_alias="QUERY_TOKEN_SECRET", json_schema_extra=SECRET, repr=False
    )
    token_previous_secret: str = Field(
        "", validation_alias="QUERY_TOKEN_PREVIOUS_SECRET", json_schema_extra=SECRET, repr=False
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @property
    def refill_lease_ms(self) -> int:
        """TTL of a refill lease in milliseconds: the longest the holder's database read can
        take (waiting for a pooled connection, then the statement timeout)."""
        return int(self.db_pool_timeout_s * 1000) + self.db_statement_timeout_ms

    @model_validator(mode="after")
    def _token_secrets_are_long(self) -> Settings:
        for name, secret in (
            ("QUERY_TOKEN_SECRET", self.token_secret),
            ("QUERY_TOKEN_PREVIOUS_SECRET", self.token_previous_secret),
        ):
            if secret and len(secret) < 32:
                raise ValueError(f"{name} must be at least 32 characters long.")
        return self

    @model_validator(mode="after")
    def _previous_token_secret_is_another(self) -> Settings:
        if not self.token_previous_secret:
            return self
        if not self.token_secret:
            raise ValueError(
                "QUERY_TOKEN_PREVIOUS_SECRET needs QUERY_TOKEN_SECRET: set the new secret there."
            )
        if self.token_previous_secret == self.token_secret:
            raise ValueError(
                "QUERY_TOKEN_PREVIOUS_SECRET equals QUERY_TOKEN_SECRET: set QUERY_TOKEN_SECRET "
                "to a new secret to rotate it, or leave the previous one empty."
            )
        return self

    @model_validator(mode="after")
    def _credentials_need_an_allowlist(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_allowed_origins:
            # The Fetch standard refuses a credentialed response with a wildcard origin
            # (§3.2.5); answering one would mean reflecting any origin, i.e. no allowlist.
            raise ValueError("CORS_ALLOWED_ORIGINS=* cannot be used with credentials.")
        return self
