"""The import report, the ids of an import's records, and ``publish_batch``'s order rule."""

from __future__ import annotations

import datetime as dt
import uuid

from contacts_domain import ContactEvent, HybridLogicalClock
from contacts_domain.imports import (
    RECORD_ID_NAMESPACE,
    ImportProblem,
    ImportReport,
    RecordIds,
    record_ids,
)
from contacts_domain.ports import EARLIER_EVENT_FAILED, EventPublisher, PublishFailed


def test_an_import_report_round_trips_through_its_dict() -> None:
    report = ImportReport(
        import_id=str(uuid.uuid4()),
        format="vcard",
        state="failed",
        received=5,
        accepted=2,
        invalid=2,
        failed=1,
        created_at=dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC),
        errors=(ImportProblem(3, 17, "first_name", "A name is required."),),
        errors_truncated=True,
        repaired=1,
        warnings=(
            ImportProblem(1, 1, "emails.0.value", "Not a valid email. Dropped the email address."),
        ),
        warnings_truncated=True,
    )
    assert ImportReport.from_dict(report.to_dict()) == report


def test_a_report_stored_before_warnings_existed_reads_as_one_without_warnings() -> None:
    stored = {
        "import_id": str(uuid.uuid4()),
        "format": "csv",
        "state": "queued",
        "received": 2,
        "accepted": 2,
        "invalid": 0,
        "failed": 0,
        "created_at": "2026-11-29T10:00:00+00:00",
        "errors": [],
        "errors_truncated": False,
    }

    report = ImportReport.from_dict(stored)

    assert (report.repaired, report.warnings, report.warnings_truncated) == (0, (), False)
    assert report.to_dict() == {
        **stored,
        "repaired": 0,
        "warnings": [],
        "warnings_truncated": False,
    }


def test_record_ids_are_stable_per_import_and_position_and_distinct_otherwise() -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert record_ids(first, 1) == record_ids(first, 1)
    ids = {record_ids(i, p) for i in (first, second) for p in (1, 2)}
    assert len(ids) == 4
    one = record_ids(first, 1)
    assert len({one.contact_id, one.event_id, one.operation_id}) == 3


class _Queue(EventPublisher):
    """Takes every event except those of contacts in ``refuse``."""

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.sent: list[ContactEvent] = []

    def publish(self, event: ContactEvent) -> None:
        if event.contact_id in self.refuse:
            raise PublishFailed("refused")
        self.sent.append(event)


def _event(contact_id: str, clock: HybridLogicalClock) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="patched",
        contact_id=contact_id,
        sequence=clock.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"company": "Acme"},
    )


def test_publish_batch_reports_each_event_and_holds_back_a_failed_contacts_later_events() -> None:
    clock = HybridLogicalClock()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    events = [_event(a, clock), _event(b, clock), _event(a, clock), _event(b, clock)]
    queue = _Queue(refuse={b})

    results = queue.publish_batch(events)

    assert [type(result).__name__ for result in results] == [
        "NoneType",
        "PublishFailed",
        "NoneType",
        "PublishFailed",
    ]
    assert [str(results[1]), str(results[3])] == ["refused", EARLIER_EVENT_FAILED]
    assert queue.sent == [events[0], events[2]]


def test_record_ids_are_the_uuid5s_of_the_record_in_the_import_namespace() -> None:
    import_id = str(uuid.uuid4())
    for position in (1, 10_000):
        name = f"{import_id}:{position}"
        assert record_ids(import_id, position) == RecordIds(
            contact_id=str(uuid.uuid5(RECORD_ID_NAMESPACE, f"contact:{name}")),
            event_id=str(uuid.uuid5(RECORD_ID_NAMESPACE, f"event:{name}")),
            operation_id=str(uuid.uuid5(RECORD_ID_NAMESPACE, f"operation:{name}")),
        )
