"""The publishing metrics of a batch: each event's outcome is counted, the batch is timed."""

from __future__ import annotations

import datetime as dt
import uuid

from command_api.adapters.instrumented_publisher import InstrumentedPublisher, PublishMetrics
from contacts_domain import ContactEvent, HybridLogicalClock
from contacts_domain.ports import EventPublisher, PublishFailed
from contacts_telemetry.metrics import MetricsRegistry


class RefusingPublisher(EventPublisher):
    """Refuses the events of the contacts in ``refused``; counts ``publish_batch`` calls."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.batches = 0

    def publish(self, event: ContactEvent) -> None:
        if event.contact_id in self.refused:
            raise PublishFailed("refused")

    def publish_batch(self, events):  # the adapter's own batching must be used, not publish
        self.batches += 1
        return super().publish_batch(events)


def _event(contact_id: str, clock: HybridLogicalClock) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created",
        contact_id=contact_id,
        sequence=clock.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"first_name": "Rosa"},
    )


def test_a_batch_is_delegated_whole_and_each_outcome_counted() -> None:
    registry = MetricsRegistry()
    clock = HybridLogicalClock()
    refused = str(uuid.uuid4())
    inner = RefusingPublisher({refused})
    publisher = InstrumentedPublisher(inner, PublishMetrics(registry))
    events = [_event(str(uuid.uuid4()), clock), _event(refused, clock), _event(refused, clock)]

    results = publisher.publish_batch(events)

    assert inner.batches == 1
    assert results[0] is None
    sample = registry.registry.get_sample_value
    assert sample("commands_accepted_total", {"kind": "created"}) == 1
    assert sample("sqs_publish_failures_total", {"reason": "PublishFailed"}) == 2
    assert sample("sqs_publish_batch_duration_seconds_count") == 1
