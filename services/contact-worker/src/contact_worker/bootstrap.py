"""The worker's composition root: every concrete adapter of the service is chosen here.

What the worker runs on, and who asks for it:

- PostgreSQL: the writer's engine (``writer_engine``) behind ``SqlUnitOfWork``;
  a plain engine for the admin's change-feed purge; an AUTOCOMMIT engine on the server's
  ``postgres`` database for ``create-database``.
- Redis: one client (``contacts_infra.redis_client.create_redis``) behind ``RedisContactCache``,
  the shared ``RedisOperationStore`` and the imports' dead letters (``RedisImportDeadLetters``,
  also built for the admin's ``dlq redrive`` by ``import_dead_letters``).
- SQS: kombu's SQS transport with a heartbeat (``adapters.sqs_heartbeat.Transport``) for the
  Celery consumer (``broker_settings``); one boto3 client shape (``sqs_client``) for the
  queue-depth poller of the main process, the admin's ``create-queues`` and its ``dlq``
  commands (``dead_letter_queue``).

The Celery app (``entrypoints.celery_app``), the ``contact-worker`` process
(``entrypoints.worker``) and the admin CLI (``entrypoints.admin``) call these functions and
build no client themselves. Tests inject fakes of the ports through ``Runtime(settings,
build=...)``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import redis
import sqlalchemy as sa
from botocore.config import Config as BotoConfig
from sqlalchemy.engine import Engine

from contact_worker.adapters.cache_repairs import SqlCacheRepairs
from contact_worker.adapters.change_feed_lag import ChangeFeedLag
from contact_worker.adapters.dead_letter_queue import DeadLetterQueue
from contact_worker.adapters.queue_metrics import QueueDepthPoller
from contact_worker.adapters.redis_store import RedisContactCache
from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.service_layer.cache_repair import CacheRepairer
from contact_worker.service_layer.dead_letters import ImportDeadLetterLog, record_dead_letter
from contact_worker.service_layer.handlers import handle_batch, handle_event
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, OperationStatus
from contacts_domain.ports import ContactCache, IdempotencyIndex, OperationStore, UnitOfWork
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.import_dead_letters import RedisImportDeadLetters
from contacts_infra.messaging import APPLY_EVENT_TASK
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis
from contacts_infra.settings import exit_on_error
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")

#: The apply step of the task: one parsed event in, its outcome out. Raises what the adapters
#: raise for transient failures (the message is then redelivered).
ApplyEvent = Callable[[ContactEvent], OperationStatus]
#: The batch apply step: parsed events in (delivery order), one result per event out: its
#: outcome, or the exception that kept it from being applied (``handlers.handle_batch``).
ApplyBatch = Callable[[Sequence[ContactEvent]], list[OperationStatus | Exception]]
#: Called with the raw envelope of a task that failed on its last receive (the message goes to
#: the dead-letter queue); never raises.
RecordDeadLetter = Callable[[object], None]


@dataclass(frozen=True)
class Ports:
    """The adapters one worker process uses.

    ``engine`` and ``redis`` are the connections behind the real ports (a warm-up before the
    fork reaches them); ``None`` when the ports are fakes. ``dead_letters``: where the
    dead-lettered events of imports are recorded (``None``: not recorded). ``idempotency``: the
    index of the command API's idempotency records by contact (``None``: not kept).
    ``cache_repairer``: the owed cache entries' repair of this process (``None``: nothing owed
    is recorded, as with fakes).
    """

    unit_of_work: Callable[[], UnitOfWork]
    cache: ContactCache
    operations: OperationStore
    dead_letters: ImportDeadLetterLog | None = None
    idempotency: IdempotencyIndex | None = None
    cache_repairer: CacheRepairer | None = None
    engine: Engine | None = None
    redis: redis.Redis | None = None


def build_ports(settings: Settings) -> Ports:
    """The real ports: PostgreSQL (bounded lock and statement timeouts) and Redis (bounded
    connect and socket timeouts). Connections open lazily, on first use (in Redis Cluster mode
    the client reads the slot map when built: ``contacts_infra.redis_client``)."""
    engine = writer_engine(settings)
    client = create_redis(settings, client_name="contact-worker")
    prefix = settings.redis_prefix
    cache = RedisContactCache(client, prefix=prefix, ttl_s=settings.contact_cache_ttl_s)
    repairer = CacheRepairer(SqlCacheRepairs(engine, cache=prefix), cache)
    return Ports(
        unit_of_work=lambda: SqlUnitOfWork(engine),
        cache=repairer.recording(),
        operations=RedisOperationStore(client, prefix=prefix, ttl_s=settings.operation_ttl_s),
        dead_letters=RedisImportDeadLetters(client, prefix=prefix),
        idempotency=RedisIdempotencyIndex(client, prefix=prefix),
        cache_repairer=repairer,
        engine=engine,
        redis=client,
    )


class Runtime:
    """Builds the ports on first use in each process, with ``build`` (default: the real
    ``build_ports``; a test passes a function returning fakes).

    Connections must never cross a fork (case C21): the Celery parent may have touched them
    before forking its pool, so a child that finds ports built by another pid builds its own.
    """

    def __init__(
        self, settings: Settings, build: Callable[[Settings], Ports] = build_ports
    ) -> None:
        self.settings = settings
        self._build = build
        self._ports: Ports | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ports(self) -> Ports:
        """This process's ports, built now if none were built in this process."""
        with self._lock:
            if self._ports is None or self._pid != os.getpid():
                self._ports = self._build(self.settings)
                self._pid = os.getpid()
            return self._ports


def apply_step(settings: Settings, runtime: Runtime) -> ApplyEvent:
    """The task's apply step: ``handle_event`` on ``runtime``'s ports of the calling process,
    with the quota ``settings.max_live_contacts_per_workspace``.

    With ``settings.fault_delay_prefix`` set (WORKER_FAULT_DELAY_PREFIX, a fault-injection
    setting of the end-to-end and fault tests, never deployed), the step is wrapped by
    ``delayed``; otherwise it is returned as is.
    """

    def apply(event: ContactEvent) -> OperationStatus:
        ports = runtime.ports()
        return handle_event(
            event,
            unit_of_work=ports.unit_of_work,
            cache=ports.cache,
            operations=ports.operations,
            max_live_contacts=settings.max_live_contacts_per_workspace,
            idempotency=ports.idempotency,
        )

    if settings.fault_delay_prefix:
        return delayed(apply, prefix=settings.fault_delay_prefix, seconds=settings.fault_delay_s)
    return apply


def apply_batch_step(settings: Settings, runtime: Runtime) -> ApplyBatch:
    """The batch task's apply step: ``handle_batch`` (several events, one transaction, falling
    back to one transaction per event when the batch fails) on ``runtime``'s ports of the
    calling process, with the quota ``settings.max_live_contacts_per_workspace``.

    With ``settings.fault_delay_prefix`` set (fault injection of the tests, never deployed),
    the batch sleeps ``settings.fault_delay_s`` once if any of its events' correlation ids
    starts with the prefix: before applying it, or after its commit with
    ``settings.fault_delay_after_commit``, or before applying it holding the process's fault
    lock with ``settings.fault_hold_lock`` (``_pass_fault_lock``).
    """

    def apply(events: Sequence[ContactEvent]) -> list[OperationStatus | Exception]:
        prefix = settings.fault_delay_prefix
        slow = bool(prefix) and any((e.correlation_id or "").startswith(prefix) for e in events)
        if settings.fault_hold_lock:
            _pass_fault_lock(settings.fault_delay_s if slow else 0.0)
        elif slow and not settings.fault_delay_after_commit:
            time.sleep(settings.fault_delay_s)
        ports = runtime.ports()
        results = handle_batch(
            events,
            unit_of_work=ports.unit_of_work,
            cache=ports.cache,
            operations=ports.operations,
            max_live_contacts=settings.max_live_contacts_per_workspace,
            idempotency=ports.idempotency,
        )
        if slow and settings.fault_delay_after_commit:
            time.sleep(settings.fault_delay_s)
        return results

    return apply


#: The lock of ``WORKER_FAULT_HOLD_LOCK`` (one per process; a forked child inherits it free,
#: since the main process never takes it).
_fault_lock = threading.Lock()


def _pass_fault_lock(seconds: float) -> None:
    """Take the fault lock (waiting for it without a bound, as code waiting on a library's
    lock does), hold it ``seconds``, release it. Deliberately not in ``try``/``finally``: an
    exception raised meanwhile (the soft time limit's) leaves it held for good, as a lock left
    by an interrupted holder, and every later batch of the process waits on it."""
    _fault_lock.acquire()
    time.sleep(seconds)
    _fault_lock.release()


def dead_letter_step(runtime: Runtime) -> RecordDeadLetter:
    """What the task calls when it fails on the last receive SQS allows: record the event as
    dead-lettered in its import (``service_layer.dead_letters.record_dead_letter``) so the
    import's report counts it. Best effort: a failure is logged (the message still reaches the
    dead-letter queue, where ``dlq list`` shows it), never raised."""

    def record(envelope: object) -> None:
        log_port = runtime.ports().dead_letters
        if log_port is None:
            return
        try:
            record_dead_letter(envelope, log_port)
        except Exception as exc:
            log.warning("dead-lettered event not recorded", error=type(exc).__name__)

    return record


def delayed(apply: ApplyEvent, *, prefix: str, seconds: float) -> ApplyEvent:
    """``apply``, after a sleep of ``seconds`` for an event whose correlation id (the request's
    X-Request-ID) starts with ``prefix``: how tests keep a task busy at will."""

    def apply_later(event: ContactEvent) -> OperationStatus:
        if (event.correlation_id or "").startswith(prefix):
            time.sleep(seconds)
        return apply(event)

    return apply_later


def broker_settings(settings: Settings) -> dict[str, Any]:
    """Celery configuration of the broker: SQS through kombu's transport with a heartbeat
    (``adapters.sqs_heartbeat``), consuming the predefined queue ``settings.queue_name`` (kombu
    never creates a queue) with a backoff of the visibility timeout by receive count.

    Returns ``broker_url``, ``broker_transport`` and ``broker_transport_options``; timeouts in
    seconds: connect 5, read a long poll (``sqs_wait_time_s``) plus 10.
    """
    backoff = dict(enumerate(settings.retry_backoff_s, start=1))
    return {
        "broker_url": settings.broker_url,
        "broker_transport": "contact_worker.adapters.sqs_heartbeat:Transport",
        "broker_transport_options": {
            "region": settings.aws_region,
            "is_secure": not settings.sqs_endpoint_url
            or settings.sqs_endpoint_url.startswith("https"),
            "predefined_queues": {
                settings.queue_name: {
                    "url": settings.resolved_queue_url,
                    "access_key_id": settings.aws_access_key_id,
                    "secret_access_key": settings.aws_secret_access_key,
                    "backoff_policy": backoff,
                    "backoff_tasks": [APPLY_EVENT_TASK],
                }
            },
            "heartbeat_file": settings.heartbeat_file,
            # The group keeps a contact's events in one batch, never in two at once
            # (entrypoints.batches); the receive count decides retry or dead letter.
            "fetch_message_attributes": ["ApproximateReceiveCount", "MessageGroupId"],
            "wait_time_seconds": settings.sqs_wait_time_s,
            "polling_interval": settings.sqs_polling_interval_s,
            "visibility_timeout": settings.visibility_timeout_s,
            "client-config": {
                "connect_timeout": 5,
                "read_timeout": settings.sqs_wait_time_s + 10,
                "retries": {"mode": "standard", "max_attempts": 3},
            },
        },
    }


def sqs_client(settings: Settings) -> Any:
    """A boto3 SQS client for ``settings``: connect within 3 s, answer within 10 s, at most 3
    attempts. Static keys when set (a local server), else the default credential chain."""
    return boto3.client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.sqs_endpoint_url or None,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=BotoConfig(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3}),
    )


def dead_letter_queue(settings: Settings) -> DeadLetterQueue:
    """The dead-letter queue ``settings.dlq_name`` (its URL asked from SQS) and the main queue,
    for the admin's ``dlq`` commands. Raises botocore's errors when SQS does not answer or the
    queue does not exist."""
    sqs = sqs_client(settings)
    dlq_url = sqs.get_queue_url(QueueName=settings.dlq_name)["QueueUrl"]
    return DeadLetterQueue(sqs, dlq_url=dlq_url, main_url=settings.resolved_queue_url)


def import_dead_letters(settings: Settings) -> RedisImportDeadLetters:
    """The imports' dead letters in Redis, for ``dlq redrive``."""
    client = create_redis(settings, client_name="contact-worker-admin")
    return RedisImportDeadLetters(client, prefix=settings.redis_prefix)


def queue_depth_poller(settings: Settings, metrics: WorkerMetrics) -> QueueDepthPoller:
    """A poller of the depths of the queue (``main``) and its dead-letter queue (``dlq``), of
    the change feed's lag (PostgreSQL, ``ChangeFeedLag``) and of the cache entries owed
    (``SqlCacheRepairs.count``), into ``metrics`` every ``queue_metrics_interval_s`` seconds,
    not started.

    A dead-letter queue whose URL SQS does not give is left out (logged), never raised.
    """
    sqs = sqs_client(settings)
    queues = {"main": settings.resolved_queue_url}
    try:
        queues["dlq"] = sqs.get_queue_url(QueueName=settings.dlq_name)["QueueUrl"]
    except Exception as exc:
        log.warning("dead-letter queue depth not polled", error=type(exc).__name__)
    engine = writer_engine(settings)
    return QueueDepthPoller(
        sqs,
        queues,
        metrics,
        settings.queue_metrics_interval_s,
        change_feed_lag=ChangeFeedLag(engine).seconds,
        owed_cache_entries=SqlCacheRepairs(engine, cache=settings.redis_prefix).count,
    )


#: kB of not yet merged entries a GIN index of ``contacts`` may hold before the writer that
#: overflows it merges them (PostgreSQL's minimum; its default is 4,096). Every upsert's email
#: look-up (``holder_of_email``, ``sql_batch.lock_emails``) scans the whole pending list of
#: ``contacts_ws_live_email_keys``: with the default, a 10,000-card import fills it and each
#: look-up read ~390 pages, 3 ms of PostgreSQL CPU, against 0.03 ms once merged (bench/README.md,
#: "Upserts in batches"). The worker writes ``contacts``, so its sessions' limit bounds the
#: list: the merges move into its writes, 64 kB at a time (``test_batch_sql`` checks the list
#: stays short; their cost is inside the import figures of bench/README.md).
GIN_PENDING_LIST_LIMIT_KB = 64


def writer_engine(settings: Settings) -> Engine:
    """The writer's engine behind ``SqlUnitOfWork`` (connections open lazily, so it is safe
    before a fork as long as the child builds its own: see ``Runtime``).

    Every session gets ``lock_timeout`` and ``statement_timeout`` (``DB_LOCK_TIMEOUT_MS``,
    ``DB_STATEMENT_TIMEOUT_MS``) so a task blocked on a row lock or a slow query fails well
    before the queue's visibility timeout; connecting is bounded to 3 s. ``hide_parameters``: a
    failed statement's text (logged when a task fails) never carries the contact's fields,
    which are personal data. ``gin_pending_list_limit``: ``GIN_PENDING_LIST_LIMIT_KB``.

    No ``pool_pre_ping`` (a ``SELECT 1`` round trip per checkout, i.e. per batch): a batch
    whose pooled connection is dead reads again on a new one (``SqlUnitOfWork.prepare_batch``);
    any other use of a dead connection (``handle_event``: the single-event task, a failed
    batch's events applied alone) fails, SQLAlchemy replaces every pooled connection older than
    the failure, and the message is redelivered.
    """
    options = (
        f"-c lock_timeout={settings.db_lock_timeout_ms}"
        f" -c statement_timeout={settings.db_statement_timeout_ms}"
        f" -c gin_pending_list_limit={GIN_PENDING_LIST_LIMIT_KB}"
    )
    return sa.create_engine(
        settings.database_url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        hide_parameters=True,
        connect_args={"options": options, "connect_timeout": 3},
    )


def database_engine(settings: Settings) -> Engine:
    """A plain engine on ``settings.database_url`` for one-shot admin work; dispose it after."""
    return sa.create_engine(settings.database_url)


def admin_redis(settings: Settings) -> redis.Redis:
    """A Redis client for one-shot admin work (``workspace erase``); close it after."""
    return create_redis(settings, client_name="contact-worker-admin")


def server_engine(database_url: str) -> Engine:
    """An AUTOCOMMIT engine on the ``postgres`` database of the server of ``database_url``
    (``CREATE DATABASE`` cannot run in a transaction); dispose it after."""
    url = sa.engine.make_url(database_url)
    return sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


def load_settings() -> Settings:
    """The service's settings, read once from the process environment at start-up. Exits the
    process (status 2) with one line on stderr naming the variable and the rule when one is
    invalid (``contacts_infra.settings.exit_on_error``)."""
    return exit_on_error(lambda: Settings.from_env(os.environ), "contact-worker")
