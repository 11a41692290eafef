"""Queue depth polling: SQS ``GetQueueAttributes`` of the queue and its dead-letter queue, and
the change feed's lag (``change_feed_lag``), every ``interval_s`` seconds, into the worker's
gauges (``entrypoints.metrics``).

Runs as a daemon thread of the worker's main process (never in a pool child). A failed poll is
logged (exception class only) and the gauges keep their last values until the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from contacts_telemetry.logs import get_logger

log = get_logger(__name__)

_ATTRIBUTES: Final = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


class QueueDepthPoller:
    """Polls ``queues`` (label → queue URL, e.g. ``{"main": url, "dlq": url}``) with the boto3
    SQS client ``sqs`` and sets ``metrics.queue_messages``; sets
    ``metrics.oldest_message_age`` to 0 when the main queue holds nothing; sets
    ``metrics.change_feed_lag`` from ``change_feed_lag()`` (seconds) and
    ``metrics.owed_cache_entries`` from ``owed_cache_entries()`` when given."""

    def __init__(
        self,
        sqs: Any,
        queues: dict[str, str],
        metrics: Any,
        interval_s: float,
        change_feed_lag: Callable[[], float] | None = None,
        owed_cache_entries: Callable[[], int] | None = None,
    ) -> None:
        self._sqs = sqs
        self._queues = queues
        self._metrics = metrics
        self._interval_s = interval_s
        self._change_feed_lag = change_feed_lag
        self._owed_cache_entries = owed_cache_entries
        self._stop = threading.Event()

    def poll_once(self) -> dict[str, tuple[int, int]]:
        """Read every queue once; returns label → (visible, in flight). Raises what boto3
        raises when SQS does not answer."""
        depths: dict[str, tuple[int, int]] = {}
        for label, url in self._queues.items():
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_ATTRIBUTES)
            values = attributes.get("Attributes", {})
            visible = int(values.get("ApproximateNumberOfMessages", 0))
            in_flight = int(values.get("ApproximateNumberOfMessagesNotVisible", 0))
            self._metrics.queue_messages.labels(label, "visible").set(visible)
            self._metrics.queue_messages.labels(label, "in_flight").set(in_flight)
            depths[label] = (visible, in_flight)
        if depths.get("main") == (0, 0):
            self._metrics.oldest_message_age.set(0)
        return depths

    def start(self) -> threading.Thread:
        """Poll now and then every ``interval_s`` seconds in a daemon thread until ``stop``."""
        thread = threading.Thread(target=self._run, name="queue-depth", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def poll_change_feed(self) -> float | None:
        """Read the change feed's lag once into its gauge; returns it (``None`` without a
        source). Raises what the source raises."""
        if self._change_feed_lag is None:
            return None
        lag = self._change_feed_lag()
        self._metrics.change_feed_lag.set(lag)
        return lag

    def poll_owed_cache_entries(self) -> int | None:
        """Read the count of owed cache entries once into its gauge; returns it (``None``
        without a source). Raises what the source raises."""
        if self._owed_cache_entries is None:
            return None
        owed = self._owed_cache_entries()
        self._metrics.owed_cache_entries.set(owed)
        return owed

    def _run(self) -> None:
        while not self._stop.is_set():
            polls = (
                (self.poll_once, "queue depth"),
                (self.poll_change_feed, "lag"),
                (self.poll_owed_cache_entries, "owed cache entries"),
            )
            for poll, what in polls:
                try:
                    poll()
                except Exception as exc:  # a failed poll keeps the gauges' last values
                    log.warning(f"{what} poll failed", error=type(exc).__name__)
            self._stop.wait(self._interval_s)
