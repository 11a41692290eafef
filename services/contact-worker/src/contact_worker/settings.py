"""Worker settings, read once from the environment at start-up (12-factor)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the worker, with local defaults.

    Time bounds, smallest to largest, and why they must stay in this order:
    ``db_lock_timeout_ms`` < ``db_statement_timeout_ms`` < ``task_soft_time_limit_s`` <
    ``task_time_limit_s`` < ``visibility_timeout_s``: a task blocked on a row lock or a slow
    query fails and is retried before SQS would hand its message to another consumer while it
    still runs (case C12).
    """

    database_url: str = "postgresql+psycopg2://root@127.0.0.1:5432/contacts"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "contacts:"
    redis_socket_timeout_s: float = 0.5
    redis_connect_timeout_s: float = 0.5
    sqs_endpoint_url: str = "http://127.0.0.1:4566"
    aws_region: str = "us-east-1"
    #: Static keys for a local SQS server. Set both variables empty on AWS: the default
    #: credential chain (the pod's IRSA role) is used then.
    aws_access_key_id: str | None = "test"
    aws_secret_access_key: str | None = "test"
    queue_name: str = "contacts-events.fifo"
    dlq_name: str = "contacts-events-dlq.fifo"
    queue_url: str = ""
    #: Seconds SQS hides a received message; set on the queue itself (DESIGN.md §8).
    visibility_timeout_s: int = 60
    #: Receives before SQS moves a message to the dead-letter queue (DESIGN.md §3).
    max_receive_count: int = 5
    #: Seconds a failed message stays hidden before its next receive, by receive count. The
    #: sum of the first ``max_receive_count - 1`` values is the longest outage (database or
    #: Redis) survived without dead-lettering: 200 s by default. A message dead-lettered by a
    #: longer outage is already applied or harmless to apply again: redrive it afterwards.
    retry_backoff_s: tuple[int, ...] = (5, 15, 60, 120, 300)
    sqs_wait_time_s: int = 10
    #: Pause between two receives while messages keep coming (an empty queue long-polls
    #: ``sqs_wait_time_s`` instead, so idle cost does not depend on it). With 0.1 s the worker
    #: was throttled to ``concurrency × prefetch`` messages per ~0.1 s (75 events/s, issue 6).
    sqs_polling_interval_s: float = 0.01
    #: 5 × the default concurrency 2 = 10: one full ReceiveMessage batch (the SQS maximum) per
    #: poll. ``make bench`` with 0.01 s and 5: 110–125 events/s, against 75 with 0.1 s and 4.
    prefetch_multiplier: int = 5
    db_lock_timeout_ms: int = 10_000
    db_statement_timeout_ms: int = 20_000
    task_soft_time_limit_s: int = 30
    task_time_limit_s: int = 45
    contact_cache_ttl_s: int = 3600
    operation_ttl_s: int = 86_400
    #: File whose modification time the worker sets after every completed SQS receive.
    heartbeat_file: str = "/tmp/contact-worker.heartbeat"
    #: Fault injection for tests, off unless both are set: sleep ``fault_delay_s`` seconds before
    #: applying an event whose correlation id (the request's X-Request-ID) starts with the prefix.
    fault_delay_s: float = 0.0
    fault_delay_prefix: str = ""
    #: Level name of the JSON log lines (``DEBUG``, ``INFO``, ...).
    log_level: str = "INFO"
    #: ``/metrics`` of the worker (Prometheus, the whole prefork pool): address and port of the
    #: HTTP server of the main process; port 0 turns it off.
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 9100
    #: Seconds between two polls of the queues' depths (SQS GetQueueAttributes).
    queue_metrics_interval_s: float = 15.0

    @property
    def resolved_queue_url(self) -> str:
        """``SQS_QUEUE_URL``, or the URL LocalStack gives a queue under its default account."""
        return self.queue_url or f"{self.sqs_endpoint_url}/000000000000/{self.queue_name}"

    @property
    def liveness_max_age_s(self) -> int:
        """Oldest heartbeat of a live worker, in seconds: a long poll (``sqs_wait_time_s``), plus
        the longest every pool slot can be busy (``task_time_limit_s``) when no poll is made,
        plus 15 s of slack for a slow ``ReceiveMessage``."""
        return self.sqs_wait_time_s + self.task_time_limit_s + 15

    @property
    def shutdown_grace_s(self) -> int:
        """Longest a warm shutdown (SIGTERM) may take, in seconds: running tasks finish within
        ``task_time_limit_s``, plus 5 s to release prefetched messages. The orchestrator's grace
        period (Kubernetes ``terminationGracePeriodSeconds``) must be longer."""
        return self.task_time_limit_s + 5

    @property
    def broker_url(self) -> str:
        """Celery broker URL: ``sqs://host:port`` for an SQS-compatible server, else ``sqs://``."""
        if not self.sqs_endpoint_url:
            return "sqs://"
        parts = urlsplit(self.sqs_endpoint_url)
        return f"sqs://{parts.netloc}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings; raises ``ValueError`` naming the variable that does not parse."""
        d = cls()
        read = _Reader(env)
        backoff = env.get("RETRY_BACKOFF_S")
        return cls(
            database_url=read.text("DATABASE_URL", d.database_url),
            redis_url=read.text("REDIS_URL", d.redis_url),
            redis_prefix=env.get("REDIS_PREFIX", d.redis_prefix),
            redis_socket_timeout_s=read.number("REDIS_SOCKET_TIMEOUT_S", d.redis_socket_timeout_s),
            redis_connect_timeout_s=read.number(
                "REDIS_CONNECT_TIMEOUT_S", d.redis_connect_timeout_s
            ),
            sqs_endpoint_url=env.get("SQS_ENDPOINT_URL", d.sqs_endpoint_url),
            aws_region=read.text("AWS_REGION", d.aws_region),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", d.aws_access_key_id) or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", d.aws_secret_access_key) or None,
            queue_name=read.text("SQS_QUEUE_NAME", d.queue_name),
            dlq_name=read.text("SQS_DLQ_NAME", d.dlq_name),
            queue_url=read.text("SQS_QUEUE_URL", d.queue_url),
            visibility_timeout_s=read.integer("SQS_VISIBILITY_TIMEOUT_S", d.visibility_timeout_s),
            max_receive_count=read.integer("SQS_MAX_RECEIVE_COUNT", d.max_receive_count),
            retry_backoff_s=(
                tuple(int(x) for x in backoff.split(",")) if backoff else d.retry_backoff_s
            ),
            sqs_wait_time_s=read.integer("SQS_WAIT_TIME_S", d.sqs_wait_time_s),
            sqs_polling_interval_s=read.number("SQS_POLLING_INTERVAL_S", d.sqs_polling_interval_s),
            prefetch_multiplier=read.integer("WORKER_PREFETCH_MULTIPLIER", d.prefetch_multiplier),
            db_lock_timeout_ms=read.integer("DB_LOCK_TIMEOUT_MS", d.db_lock_timeout_ms),
            db_statement_timeout_ms=read.integer(
                "DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms
            ),
            task_soft_time_limit_s=read.integer("TASK_SOFT_TIME_LIMIT_S", d.task_soft_time_limit_s),
            task_time_limit_s=read.integer("TASK_TIME_LIMIT_S", d.task_time_limit_s),
            contact_cache_ttl_s=read.integer("CONTACT_CACHE_TTL_S", d.contact_cache_ttl_s),
            operation_ttl_s=read.integer("OPERATION_TTL_S", d.operation_ttl_s),
            heartbeat_file=read.text("WORKER_HEARTBEAT_FILE", d.heartbeat_file),
            fault_delay_s=read.number("WORKER_FAULT_DELAY_S", d.fault_delay_s),
            fault_delay_prefix=env.get("WORKER_FAULT_DELAY_PREFIX", d.fault_delay_prefix),
            log_level=read.text("LOG_LEVEL", d.log_level).upper(),
            metrics_addr=read.text("WORKER_METRICS_ADDR", d.metrics_addr),
            metrics_port=read.integer("WORKER_METRICS_PORT", d.metrics_port),
            queue_metrics_interval_s=read.number(
                "QUEUE_METRICS_INTERVAL_S", d.queue_metrics_interval_s
            ),
        ).checked()

    def checked(self) -> Settings:
        """Return self; raises ``ValueError`` if the time bounds are out of order (see above)."""
        bounds = [
            self.db_lock_timeout_ms / 1000,
            self.db_statement_timeout_ms / 1000,
            self.task_soft_time_limit_s,
            self.task_time_limit_s,
            self.visibility_timeout_s,
        ]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(
                "Need DB_LOCK_TIMEOUT_MS < DB_STATEMENT_TIMEOUT_MS < TASK_SOFT_TIME_LIMIT_S < "
                "TASK_TIME_LIMIT_S < SQS_VISIBILITY_TIMEOUT_S"
            )
        return self


class _Reader:
    """Typed reads of environment variables; an empty value means "use the default"."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name)
        return value if value else None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def integer(self, name: str, default: int) -> int:
        raw = self._raw(name)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer") from None

    def number(self, name: str, default: float) -> float:
        raw = self._raw(name)
        try:
            return default if raw is None else float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
