"""Publishing metrics: an ``EventPublisher`` that times and counts the one it wraps.

``sqs_publish_duration_seconds{outcome}`` (``ok`` | ``failed`` | ``too_large``) times every
send, in seconds; ``sqs_publish_batch_duration_seconds`` times every ``publish_batch`` call
(batches and imports: several ``SendMessageBatch`` calls), in seconds;
``sqs_publish_failures_total{reason}`` counts events not queued by exception class (never the
message, which may quote a URL); ``commands_accepted_total{kind}`` counts the events the queue
took (``created`` | ``replaced`` | ``patched`` | ``deleted`` | ``upserted``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from command_api.service_layer.errors import EventTooLarge
from contacts_domain import ContactEvent
from contacts_domain.ports import EventPublisher
from contacts_telemetry.metrics import LATENCY_BUCKETS, MetricsRegistry


class PublishMetrics:
    """The command API's publishing metrics, registered on ``registry.registry``."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.duration = Histogram(
            "sqs_publish_duration_seconds",
            "Time to send one event to SQS, in seconds, by outcome.",
            ("outcome",),
            buckets=LATENCY_BUCKETS,
            registry=registry.registry,
        )
        self.batch_duration = Histogram(
            "sqs_publish_batch_duration_seconds",
            "Time to send one batch of events to SQS (SendMessageBatch calls), in seconds.",
            buckets=LATENCY_BUCKETS,
            registry=registry.registry,
        )
        self.failures = Counter(
            "sqs_publish_failures_total",
            "Events SQS did not take (answered 503, 413, or per item), by exception class.",
            ("reason",),
            registry=registry.registry,
        )
        self.accepted = Counter(
            "commands_accepted_total",
            "Commands whose event is durably in SQS (answered 202), by event kind.",
            ("kind",),
            registry=registry.registry,
        )


class InstrumentedPublisher(EventPublisher):
    """Delegates to ``inner`` and records ``metrics``; raises whatever ``inner`` raises."""

    def __init__(self, inner: EventPublisher, metrics: PublishMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def publish(self, event: ContactEvent) -> None:
        started = time.perf_counter()
        try:
            self.inner.publish(event)
        except Exception as exc:
            outcome = "too_large" if isinstance(exc, EventTooLarge) else "failed"
            self._metrics.duration.labels(outcome).observe(time.perf_counter() - started)
            self._metrics.failures.labels(type(exc).__name__).inc()
            raise
        self._metrics.duration.labels("ok").observe(time.perf_counter() - started)
        self._metrics.accepted.labels(event.kind).inc()

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        """Delegates to ``inner.publish_batch`` (so an adapter's batching is kept) and counts
        each event's outcome."""
        started = time.perf_counter()
        results = self.inner.publish_batch(events)
        self._metrics.batch_duration.observe(time.perf_counter() - started)
        for event, result in zip(events, results, strict=True):
            if result is None:
                self._metrics.accepted.labels(event.kind).inc()
            else:
                self._metrics.failures.labels(type(result).__name__).inc()
        return results
