"""The Celery application of the worker, configured for SQS per DESIGN.md §8."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_shutdown, worker_ready, worker_shutting_down
from sqlalchemy.exc import DBAPIError

from contact_worker.adapters import sqs_heartbeat as heartbeat
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.entrypoints.runtime import Runtime
from contact_worker.entrypoints.watchdog import start_watchdog
from contact_worker.service_layer.handlers import handle_event, read_event
from contact_worker.settings import Settings
from contacts_infra.messaging import APPLY_EVENT_TASK
from contacts_telemetry.logs import bind_context, clear_context, get_logger
from contacts_telemetry.metrics import MetricsRegistry, mark_process_dead

log = get_logger("contact_worker")


class DatabaseFailure(Exception):
    """A database error, retold without its text: PostgreSQL quotes the offending values
    (``invalid input syntax ... "<value>"``, a ``LINE 1:`` excerpt, a ``DETAIL: Key (...)=``),
    and Celery logs the exception of a failed task. Keeps the driver's class and SQLSTATE."""


def without_values(exc: Exception) -> Exception:
    """``exc`` itself, or a ``DatabaseFailure`` naming it when it is a database error."""
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "pgcode", None)
        return DatabaseFailure(f"{type(exc.orig).__name__} (SQLSTATE {code})")
    return exc


def receive_count(request: Any) -> int | None:
    """How many times SQS has handed out the task's message (``ApproximateReceiveCount``, which
    kombu's SQS transport passes in the message properties), or ``None`` when unknown."""
    properties = getattr(request, "properties", None) or {}
    message = (properties.get("delivery_info") or {}).get("sqs_message") or {}
    raw = (message.get("Attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def create_celery(
    settings: Settings, runtime: Runtime | None = None, metrics: WorkerMetrics | None = None
) -> Celery:
    """Return a Celery app that consumes ``settings.queue_name`` and applies contact events.

    Delivery settings, each for a reason measured on this stack (DESIGN.md §8): late acks, and
    no ack on failure or on a lost worker, so a message is deleted only after its transaction
    committed and anything else is redelivered and, after ``max_receive_count`` receives, moved
    to the dead-letter queue by SQS; predefined queues so kombu never creates a queue; a backoff
    of the visibility timeout by receive count for failed messages.

    ``metrics`` (default: a new in-process ``WorkerMetrics``) counts task outcomes, durations
    and event ages; every log line of a task carries its ``request_id`` (the event's
    ``correlationid``), ``traceparent``, ``event_id``, ``operation_id`` and ``contact_id``.
    """
    runtime = runtime or Runtime(settings)
    metrics = metrics or WorkerMetrics(MetricsRegistry())
    backoff = dict(enumerate(settings.retry_backoff_s, start=1))
    app = Celery("contact_worker", broker=settings.broker_url, set_as_current=False)
    heartbeat.beat(settings.heartbeat_file)  # alive from the start, until polls take over
    app.conf.update(
        broker_transport_options={
            "region": settings.aws_region,
            "is_secure": settings.sqs_endpoint_url.startswith("https")
            or not settings.sqs_endpoint_url,
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
            "wait_time_seconds": settings.sqs_wait_time_s,
            "polling_interval": settings.sqs_polling_interval_s,
            "visibility_timeout": settings.visibility_timeout_s,
            "client-config": {
                "connect_timeout": 5,
                "read_timeout": settings.sqs_wait_time_s + 10,
                "retries": {"mode": "standard", "max_attempts": 3},
            },
        },
        broker_transport="contact_worker.adapters.sqs_heartbeat:Transport",
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue_name,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=False,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        task_ignore_result=True,
        worker_prefetch_multiplier=settings.prefetch_multiplier,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )

    def on_ready(sender: Any = None, **_: Any) -> None:
        if sender is not None and sender.app is app:
            start_watchdog(settings.heartbeat_file, settings.liveness_max_age_s)

    worker_ready.connect(on_ready, weak=False)

    def on_shutting_down(**_: Any) -> None:
        # A warm shutdown waits for running tasks (at most task_time_limit_s), then kombu's SQS
        # channel was seen to hang in interpreter finalization. The kernel ends the process
        # when the alarm rings, whatever Python is doing; unacked messages come back later.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(settings.shutdown_grace_s)

    worker_shutting_down.connect(on_shutting_down, weak=False)

    def on_process_shutdown(**_: Any) -> None:
        mark_process_dead(os.getpid())  # a pool child's live gauges go with it

    worker_process_shutdown.connect(on_process_shutdown, weak=False)

    @app.task(name=APPLY_EVENT_TASK, bind=True)
    def apply_contact_event(task: Task, envelope: Any) -> dict[str, Any]:
        """Apply one CloudEvents envelope. Raises on malformed input or transient failures so
        the message is redelivered (and dead-lettered after ``max_receive_count``)."""
        started = time.perf_counter()
        received = receive_count(task.request)
        clear_context()
        try:
            event = read_event(envelope)
            bind_context(
                request_id=event.correlation_id,
                traceparent=event.traceparent,
                event_id=event.id,
                operation_id=event.operation_id,
                contact_id=event.contact_id,
            )
            metrics.event_started((dt.datetime.now(dt.UTC) - event.time).total_seconds())
            correlation = event.correlation_id or ""
            if settings.fault_delay_prefix and correlation.startswith(settings.fault_delay_prefix):
                time.sleep(settings.fault_delay_s)
            ports = runtime.ports()
            outcome = handle_event(
                event,
                unit_of_work=ports.unit_of_work,
                cache=ports.cache,
                operations=ports.operations,
            )
        except Exception as exc:
            last = received is not None and received >= settings.max_receive_count
            result = "dead_lettered" if last else "retried"
            metrics.task_done(result, time.perf_counter() - started)
            # The exception class only: a message may quote the event's data.
            log.warning(
                "event not applied", outcome=result, error=type(exc).__name__, receives=received
            )
            clear_context()
            safe = without_values(exc)
            if safe is exc:
                raise
            raise safe from None
        metrics.task_done(outcome.status, time.perf_counter() - started)
        metrics.operations.labels(outcome.status, outcome.reason or "none").inc()
        log.info(
            "event processed",
            kind=event.kind,
            status=outcome.status,
            reason=outcome.reason,
            version=outcome.version,
            receives=received,
        )
        clear_context()
        return outcome.to_dict()

    return app
