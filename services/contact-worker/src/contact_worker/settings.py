"""Worker settings, read once from the environment at start-up (12-factor); how they are read
is ``contacts_infra.settings``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from contacts_infra.settings import RedisSettings, SettingsError, SqsConnectionSettings, split_list

__all__ = ["Settings", "SettingsError"]

#: ``RETRY_BACKOFF_S=5,15,60``: whole seconds, comma-separated.
Backoff = Annotated[tuple[PositiveInt, ...], NoDecode, BeforeValidator(split_list)]


class Settings(RedisSettings, SqsConnectionSettings):
    """Every knob of the worker, with local defaults.

    Time bounds, smallest to largest, and why they must stay in this order:
    ``db_lock_timeout_ms`` < ``db_statement_timeout_ms`` < ``task_soft_time_limit_s`` <
    ``task_time_limit_s`` < ``visibility_timeout_s``: a task blocked on a row lock or a slow
    query fails and is retried before SQS would hand its message to another consumer while it
    still runs (case C12). ``from_env`` raises ``SettingsError`` when they are out of order or
    a variable does not parse.
    """

    database_url: str = "postgresql+psycopg2://root@127.0.0.1:5432/contacts"
    redis_socket_timeout_s: PositiveFloat = 0.5
    redis_connect_timeout_s: PositiveFloat = 0.5
    queue_name: str = Field("contacts-events.fifo", validation_alias="SQS_QUEUE_NAME")
    dlq_name: str = Field("contacts-events-dlq.fifo", validation_alias="SQS_DLQ_NAME")
    queue_url: str = Field("", validation_alias="SQS_QUEUE_URL")
    #: Seconds SQS hides a received message; set on the queue itself (docs/architecture.md,
    #: "Celery on SQS").
    visibility_timeout_s: PositiveInt = Field(60, validation_alias="SQS_VISIBILITY_TIMEOUT_S")
    #: Receives before SQS moves a message to the dead-letter queue.
    max_receive_count: PositiveInt = Field(5, validation_alias="SQS_MAX_RECEIVE_COUNT")
    #: Seconds a failed message stays hidden before its next receive, by receive count. The
    #: sum of the first ``max_receive_count - 1`` values is the longest outage (database or
    #: Redis) survived without dead-lettering: 200 s by default. A message dead-lettered by a
    #: longer outage is already applied or harmless to apply again: redrive it afterwards.
    retry_backoff_s: Backoff = (5, 15, 60, 120, 300)
    sqs_wait_time_s: int = Field(10, ge=0, le=20)
    #: Pause between two receives while messages keep coming (an empty queue long-polls
    #: ``sqs_wait_time_s`` instead, so idle cost does not depend on it). With 0.1 s the worker
    #: was throttled to ``concurrency × prefetch`` messages per ~0.1 s (75 events/s, issue 6).
    sqs_polling_interval_s: NonNegativeFloat = 0.01
    #: Messages held per pool process (received, running or waiting): two batches
    #: (``batch_size`` 20), room for the batch each process runs and the next one, received
    #: meanwhile; with only one, a process that finished its batch waits for the acks and two
    #: more receives. Measured (issue 13, bench/README.md, worker section): 20 with batches of
    #: 20 and 4 processes, 0.26-0.34 of the raw drain; 40, 0.37-0.38 in the same hour.
    prefetch_multiplier: PositiveInt = Field(40, validation_alias="WORKER_PREFETCH_MULTIPLIER")
    #: Most received events applied in one database transaction by one pool process
    #: (``entrypoints.batches``); 1 applies each event in its own transaction.
    batch_size: int = Field(20, ge=1, le=100, validation_alias="WORKER_BATCH_SIZE")
    db_lock_timeout_ms: PositiveInt = 10_000
    db_statement_timeout_ms: PositiveInt = 20_000
    task_soft_time_limit_s: PositiveInt = 30
    task_time_limit_s: PositiveInt = 45
    contact_cache_ttl_s: PositiveInt = 3600
    operation_ttl_s: PositiveInt = 86_400
    #: File whose modification time the worker sets after every completed SQS receive.
    heartbeat_file: str = Field(
        "/tmp/contact-worker.heartbeat", validation_alias="WORKER_HEARTBEAT_FILE"
    )
    #: Fault injection for tests, off unless both are set: sleep ``fault_delay_s`` seconds before
    #: applying an event whose correlation id (the request's X-Request-ID) starts with the prefix.
    fault_delay_s: NonNegativeFloat = Field(0.0, validation_alias="WORKER_FAULT_DELAY_S")
    fault_delay_prefix: str = Field("", validation_alias="WORKER_FAULT_DELAY_PREFIX")
    #: With the two above: sleep after the batch's commit instead of before applying it, so a
    #: test can stop the worker between the commit and the deletes (``DeleteMessageBatch``).
    fault_delay_after_commit: bool = Field(
        False, validation_alias="WORKER_FAULT_DELAY_AFTER_COMMIT"
    )
    #: With the two above: take the delay holding a lock of the pool process that every batch
    #: takes first, released only when the delay ends; the soft time limit's exception leaves it
    #: held, as an interrupted library would (case C13; ``bootstrap.apply_batch_step``).
    fault_hold_lock: bool = Field(False, validation_alias="WORKER_FAULT_HOLD_LOCK")
    #: Level name of the JSON log lines (``DEBUG``, ``INFO``, ...).
    log_level: str = "INFO"
    #: ``/metrics`` of the worker (Prometheus, the whole prefork pool): address and port of the
    #: HTTP server of the main process; port 0 turns it off.
    metrics_addr: str = Field("127.0.0.1", validation_alias="WORKER_METRICS_ADDR")
    metrics_port: NonNegativeInt = Field(9100, le=65535, validation_alias="WORKER_METRICS_PORT")
    #: Seconds between two polls of the queues' depths (SQS GetQueueAttributes).
    queue_metrics_interval_s: PositiveFloat = 15.0
    #: Seconds between two passes of each pool process's repair of the cache entries owed
    #: after failed Redis writes (``service_layer.cache_repair``): one indexed read of an
    #: empty table when nothing is owed.
    cache_repair_interval_s: PositiveFloat = 0.5
    #: Most live contacts one workspace may hold (issue 12, item 5); 0 = no limit. A write that
    #: would make one more live is rejected with ``quota_exceeded``, in its own transaction.
    max_live_contacts_per_workspace: NonNegativeInt = Field(
        0, validation_alias="MAX_LIVE_CONTACTS_PER_WORKSPACE"
    )

    #: Days an event's payload stays in the inbox (``processed_events.data``) before
    #: ``contact-worker-admin purge-inbox`` drops it (issue 16); at least 7
    #: (``adapters.inbox_retention``). Ids, sequences and outcomes are kept.
    inbox_payload_retention_days: int = Field(
        7, ge=7, validation_alias="INBOX_PAYLOAD_RETENTION_DAYS"
    )

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

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Settings:
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
