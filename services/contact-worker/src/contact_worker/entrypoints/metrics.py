"""The worker's Prometheus metrics (prometheus-client, multi-process mode across the prefork
pool; served by the main process, see ``entrypoints.worker``).

- ``worker_tasks_total{outcome}`` and ``worker_task_duration_seconds{outcome}``: every task
  run, by outcome: ``applied`` | ``rejected`` (a business rejection, acked) | ``retried`` (it
  raised: the message comes back) | ``dead_lettered`` (it raised on the last receive SQS
  allows, ``SQS_MAX_RECEIVE_COUNT``: the next receive moves it to the dead-letter queue).
- ``operations_total{status, reason}``: outcomes recorded on operations (``reason`` is
  ``none`` for ``applied``).
- ``worker_event_age_seconds``: now − the event's ``time`` (when the command API accepted it)
  when the task starts, in seconds.
- ``worker_event_commit_age_seconds``: now − the event's ``time`` once its transaction has
  committed (applied or rejected), in seconds: the write path's freshness, from the 202 of the
  command API to the change in PostgreSQL, where the read model and the change feed have it
  (a change is readable in the feed once no older transaction is still open).
- ``sqs_messages{queue, state}``: ``ApproximateNumberOfMessages`` (``visible``) and
  ``ApproximateNumberOfMessagesNotVisible`` (``in_flight``) of the queue (``main``) and the
  dead-letter queue (``dlq``), polled by the main process (``adapters.queue_metrics``).
- ``sqs_oldest_message_age_seconds``: how long the oldest message of the queue has waited.
  SQS reports it only to CloudWatch (``ApproximateAgeOfOldestMessage`` is not a queue
  attribute, and LocalStack has no such attribute either), so it is derived: a FIFO queue
  hands out its oldest message first, so the event age of the task that started last is the
  age of the oldest message of that moment; the poller sets it to 0 when the queue is empty.
  Multi-process mode ``mostrecent``: the latest write of any process wins.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contacts_telemetry.metrics import AGE_BUCKETS, LATENCY_BUCKETS, MetricsRegistry

TASK_OUTCOMES = ("applied", "rejected", "retried", "dead_lettered")


def _polled_gauge(
    registry: CollectorRegistry, name: str, documentation: str, labels: tuple[str, ...] = ()
) -> Gauge:
    """A gauge the main process's poller sets (``adapters.queue_metrics``): the most recent
    value across the pool's processes is the one exported."""
    return Gauge(name, documentation, labels, multiprocess_mode="mostrecent", registry=registry)


class WorkerMetrics:
    """Every metric of the worker, registered on ``registry.registry`` (see module doc)."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.registry = registry
        r = registry.registry
        self.tasks = Counter(
            "worker_tasks_total", "Tasks run, by outcome.", ("outcome",), registry=r
        )
        self.duration = Histogram(
            "worker_task_duration_seconds",
            "Time to run one task, in seconds, by outcome.",
            ("outcome",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.operations = Counter(
            "operations_total",
            "Operation outcomes recorded, by status and rejection reason.",
            ("status", "reason"),
            registry=r,
        )
        self.event_age = Histogram(
            "worker_event_age_seconds",
            "Now minus the event's time (its acceptance) when its task starts, in seconds.",
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.commit_age = Histogram(
            "worker_event_commit_age_seconds",
            "Now minus the event's time once its transaction committed, in seconds.",
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.queue_messages = _polled_gauge(
            r,
            "sqs_messages",
            "Approximate messages in an SQS queue (queue: main|dlq; state: visible|in_flight).",
            ("queue", "state"),
        )
        self.change_feed_lag = _polled_gauge(
            r,
            "change_feed_lag_seconds",
            "Age of the oldest committed change the change feed cannot serve yet (a running "
            "transaction holds it back), in seconds; 0 when the feed is current.",
        )
        self.owed_cache_entries = _polled_gauge(
            r,
            "contact_cache_owed_entries",
            "Cache entries the worker owes Redis: writes after a commit that failed and are not "
            "repaired yet (cache_repairs rows of this cache); the query API reads those contacts "
            "from PostgreSQL meanwhile.",
        )
        self.oldest_message_age = _polled_gauge(
            r,
            "sqs_oldest_message_age_seconds",
            "Age of the oldest message of the queue, in seconds (derived; see the docs).",
        )
        for outcome in TASK_OUTCOMES:
            self.tasks.labels(outcome)

    def task_done(self, outcome: str, seconds: float) -> None:
        """Count one task with ``outcome`` (one of ``TASK_OUTCOMES``) that took ``seconds``."""
        self.tasks.labels(outcome).inc()
        self.duration.labels(outcome).observe(seconds)

    def event_started(self, age_s: float) -> None:
        """Record the age, in seconds, of the event whose task starts now (never negative)."""
        age = max(0.0, age_s)
        self.event_age.observe(age)
        self.oldest_message_age.set(age)

    def event_committed(self, age_s: float) -> None:
        """Record the age, in seconds, of an event whose transaction just committed."""
        self.commit_age.observe(max(0.0, age_s))
