"""The Celery application of the worker, configured for SQS per docs/architecture.md §8."""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from sqlalchemy.exc import DBAPIError

from contact_worker import bootstrap
from contact_worker.adapters import sqs_heartbeat as heartbeat
from contact_worker.bootstrap import ApplyBatch, ApplyEvent, RecordDeadLetter, Runtime
from contact_worker.entrypoints.batches import BatchDispatcher
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.entrypoints.repair_loop import start_in_pool_process
from contact_worker.entrypoints.watchdog import start_watchdog
from contact_worker.service_layer.handlers import read_event
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, OperationStatus
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


@dataclass(frozen=True)
class TaskDependencies:
    """What ``apply_contact_event`` uses, chosen by ``create_celery``: the apply step
    (``bootstrap.apply_step``), the metrics, the receive count after which SQS
    dead-letters a message (``settings.max_receive_count``) and what records a dead-lettered
    event of an import (``bootstrap.dead_letter_step``)."""

    apply_event: ApplyEvent
    metrics: WorkerMetrics
    max_receive_count: int
    record_dead_letter: RecordDeadLetter
    apply_batch: ApplyBatch | None = None

    def run_batch(self, items: list[tuple[Any, int | None]]) -> list[bool]:
        """Apply the received ``(envelope, receive count)`` items as one batch (in a pool
        process): ``apply_envelopes``."""
        return apply_envelopes(self, items)


class ContactEventTask(Task):
    """Base class of the registered ``apply_contact_event`` task; ``dependencies`` and
    ``batch_size`` are set by ``create_celery`` when it registers the task.

    The worker does not run the task one message at a time: its strategy is a
    ``BatchDispatcher`` (``entrypoints.batches``), which sends the received messages to the
    pool in batches, applied by ``apply_envelopes``. ``Task.apply`` (one envelope, in process)
    still runs ``apply_contact_event``.
    """

    dependencies: TaskDependencies
    batch_size: int = 10
    dispatcher: BatchDispatcher | None = None

    def Strategy(self, task: Any, app: Celery, consumer: Any, **_: Any) -> BatchDispatcher:  # noqa: N802 (Celery's name)
        """Celery's hook for the worker's handling of a received message of this task."""
        dispatcher = BatchDispatcher(
            task,
            consumer,
            batch_size=self.batch_size,
            soft_timeout_s=app.conf.task_soft_time_limit,
            timeout_s=app.conf.task_time_limit,
        )
        self.dispatcher = dispatcher
        return dispatcher


def create_celery(
    settings: Settings, runtime: Runtime | None = None, metrics: WorkerMetrics | None = None
) -> Celery:
    """Return a Celery app that consumes ``settings.queue_name`` and applies contact events
    with ``apply_contact_event``, registered as ``APPLY_EVENT_TASK``.

    Delivery settings, each for a reason measured on this stack (docs/architecture.md §8): late
    acks, and
    no ack on failure or on a lost worker, so a message is deleted only after its transaction
    committed and anything else is redelivered and, after ``max_receive_count`` receives, moved
    to the dead-letter queue by SQS; predefined queues so kombu never creates a queue; a backoff
    of the visibility timeout by receive count for failed messages (``bootstrap.broker_settings``).

    ``runtime`` (default: ``bootstrap.Runtime(settings)``, the real adapters) gives each process
    its ports, and each pool process repairs the cache entries owed after failed Redis writes
    (``repair_loop``); ``metrics`` (default: a new in-process ``WorkerMetrics``) counts task
    outcomes, durations and event ages.
    """
    runtime = runtime or Runtime(settings)
    metrics = metrics or WorkerMetrics(MetricsRegistry())
    app = Celery("contact_worker", set_as_current=False)
    heartbeat.beat(settings.heartbeat_file)  # alive from the start, until polls take over
    app.conf.update(**bootstrap.broker_settings(settings), **delivery_settings(settings))
    worker_ready.connect(functools.partial(on_ready, app=app, settings=settings), weak=False)
    worker_shutting_down.connect(
        functools.partial(on_shutting_down, grace_s=settings.shutdown_grace_s), weak=False
    )
    worker_process_shutdown.connect(on_process_shutdown, weak=False)
    worker_process_init.connect(
        functools.partial(start_in_pool_process, runtime=runtime, settings=settings), weak=False
    )
    dependencies = TaskDependencies(
        apply_event=bootstrap.apply_step(settings, runtime),
        metrics=metrics,
        max_receive_count=settings.max_receive_count,
        record_dead_letter=bootstrap.dead_letter_step(runtime),
        apply_batch=bootstrap.apply_batch_step(settings, runtime),
    )
    # shared=False: the task and its dependencies belong to this app only, not to every
    # Celery app finalized later in the process.
    app.task(
        name=APPLY_EVENT_TASK,
        bind=True,
        base=ContactEventTask,
        shared=False,
        dependencies=dependencies,
        batch_size=settings.batch_size,
    )(apply_contact_event)
    worker_shutting_down.connect(functools.partial(release_prefetched, app=app), weak=False)
    return app


def delivery_settings(settings: Settings) -> dict[str, Any]:
    """Celery configuration of task delivery and of the worker (see ``create_celery``)."""
    return {
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue_name,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": False,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_ignore_result": True,
        "worker_prefetch_multiplier": settings.prefetch_multiplier,
        "worker_enable_remote_control": False,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
    }


def on_ready(sender: Any = None, *, app: Celery, settings: Settings, **_: Any) -> None:
    """``worker_ready`` receiver: start the heartbeat watchdog once ``app``'s worker runs."""
    if sender is not None and sender.app is app:
        start_watchdog(settings.heartbeat_file, settings.liveness_max_age_s)


def on_shutting_down(*, grace_s: int, **_: Any) -> None:
    """``worker_shutting_down`` receiver: end the process ``grace_s`` seconds from now.

    A warm shutdown waits for running tasks (at most task_time_limit_s), then kombu's SQS
    channel was seen to hang in interpreter finalization. The kernel ends the process when the
    alarm rings, whatever Python is doing; unacked messages come back later.
    """
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(grace_s)


def release_prefetched(*, app: Celery, **_: Any) -> None:
    """``worker_shutting_down`` receiver (SIGTERM, in the main process): the batch task's
    dispatcher hands its held, unstarted messages back to SQS at once
    (``BatchDispatcher.release_pending``). Never raises: the shutdown goes on."""
    dispatcher = getattr(app.tasks.get(APPLY_EVENT_TASK), "dispatcher", None)
    if dispatcher is None:
        return
    try:
        dispatcher.release_pending()
    except Exception as exc:
        log.warning("prefetched messages not released", error=type(exc).__name__)


def on_process_shutdown(**_: Any) -> None:
    """``worker_process_shutdown`` receiver: a pool child's live gauges go with it."""
    mark_process_dead(os.getpid())


def apply_contact_event(task: ContactEventTask, envelope: Any) -> dict[str, Any]:
    """Apply one CloudEvents envelope; returns the outcome (``OperationStatus.to_dict()``).

    Raises on malformed input or transient failures so the message is redelivered (and
    dead-lettered after ``max_receive_count``: on that last receive the event is recorded as
    dead-lettered in its import, ``TaskDependencies.record_dead_letter``); a database error is
    retold without the values PostgreSQL quotes (``without_values``). Every log line carries
    the event's ``request_id`` (its ``correlationid``), ``traceparent``, ``event_id``,
    ``operation_id``, ``contact_id`` and ``workspace``.
    """
    deps = task.dependencies
    started = time.perf_counter()
    received = receive_count(task.request)
    clear_context()
    try:
        event = read_event(envelope)
        _bind_event(event)
        deps.metrics.event_started((dt.datetime.now(dt.UTC) - event.time).total_seconds())
        outcome = deps.apply_event(event)
    except Exception as exc:
        result = _count_failed(deps, envelope, received, time.perf_counter() - started)
        # The exception class only: a message may quote the event's data.
        log.warning(
            "event not applied", outcome=result, error=type(exc).__name__, receives=received
        )
        clear_context()
        safe = without_values(exc)
        if safe is exc:
            raise
        raise safe from None
    _count_processed(deps, event, outcome, received, time.perf_counter() - started)
    clear_context()
    return outcome.to_dict()


def _bind_event(event: ContactEvent) -> None:
    """Bind ``event``'s ids and workspace to every log line until ``clear_context``."""
    bind_context(
        request_id=event.correlation_id,
        traceparent=event.traceparent,
        event_id=event.id,
        operation_id=event.operation_id,
        contact_id=event.contact_id,
        workspace=event.workspace,
    )


def _count_failed(
    deps: TaskDependencies, envelope: Any, received: int | None, elapsed: float
) -> str:
    """Count an event that was not applied; on the last receive SQS allows, record it as
    dead-lettered in its import. Returns the outcome label: ``dead_lettered`` or ``retried``."""
    last = received is not None and received >= deps.max_receive_count
    outcome = "dead_lettered" if last else "retried"
    deps.metrics.task_done(outcome, elapsed)
    if last:
        deps.record_dead_letter(envelope)
    return outcome


def _count_processed(
    deps: TaskDependencies,
    event: ContactEvent,
    outcome: OperationStatus,
    received: int | None,
    elapsed: float,
) -> None:
    """The metrics and the log line of an event applied or rejected (both are processed).

    ``elapsed`` (s): from the pool process taking the event, or its batch, to its outcome
    (committed, statuses written); logged as ``duration_ms`` so a write's freshness can be cut
    into the hand-off to the pool and the apply (``bench/writes.freshness_segments``)."""
    deps.metrics.task_done(outcome.status, elapsed)
    deps.metrics.event_committed((dt.datetime.now(dt.UTC) - event.time).total_seconds())
    deps.metrics.operations.labels(outcome.status, outcome.reason or "none").inc()
    log.info(
        "event processed",
        kind=event.kind,
        status=outcome.status,
        reason=outcome.reason,
        version=outcome.version,
        receives=received,
        duration_ms=round(elapsed * 1000, 2),
    )


def apply_envelopes(deps: TaskDependencies, items: list[tuple[Any, int | None]]) -> list[bool]:
    """Apply a batch of received ``(envelope, receive count)`` items, in order, in one
    transaction when they all apply (``bootstrap.apply_batch_step``); returns one verdict per
    item: ``True`` when its event was applied or rejected (ack the message), ``False`` when it
    failed (redeliver: the queue's backoff, the dead-letter queue after
    ``max_receive_count``). Never raises. Logs and metrics per event are those of
    ``apply_contact_event``."""
    started = time.perf_counter()
    events: list[tuple[int, ContactEvent]] = []
    results: dict[int, OperationStatus | Exception] = {}
    for index, (envelope, _) in enumerate(items):
        try:
            events.append((index, read_event(envelope)))
        except Exception as exc:
            results[index] = exc
    now = dt.datetime.now(dt.UTC)
    for _, event in events:
        deps.metrics.event_started((now - event.time).total_seconds())
    try:
        apply_batch = deps.apply_batch or _one_by_one(deps.apply_event)
        outcomes = apply_batch([event for _, event in events])
    except Exception as exc:  # the step reports per event; this is a defect's safety net
        outcomes = [exc] * len(events)
    for (index, _), outcome in zip(events, outcomes, strict=True):
        results[index] = outcome
    parsed = dict(events)
    elapsed = time.perf_counter() - started
    verdicts = []
    for index, (envelope, receives) in enumerate(items):
        verdicts.append(
            _report(deps, envelope, parsed.get(index), results[index], receives, elapsed)
        )
    return verdicts


def _one_by_one(apply: ApplyEvent) -> ApplyBatch:
    def run(events: Any) -> list[OperationStatus | Exception]:
        results: list[OperationStatus | Exception] = []
        for event in events:
            try:
                results.append(apply(event))
            except Exception as exc:
                results.append(exc)
        return results

    return run


def _report(
    deps: TaskDependencies,
    envelope: Any,
    event: ContactEvent | None,
    result: OperationStatus | Exception,
    received: int | None,
    elapsed: float,
) -> bool:
    """Metrics and the log line of one event of a batch; its verdict (see ``apply_envelopes``)."""
    clear_context()
    if event is not None:
        _bind_event(event)
    try:
        if isinstance(result, Exception):
            outcome = _count_failed(deps, envelope, received, elapsed)
            error = type(without_values(result)).__name__
            log.warning("event not applied", outcome=outcome, error=error, receives=received)
            return False
        assert event is not None
        _count_processed(deps, event, result, received, elapsed)
        return True
    finally:
        clear_context()
