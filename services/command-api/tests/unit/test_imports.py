"""``POST /v1/imports`` with fakes of our ports (issue 3, item 3).

Every sample address book of ``shared/data`` is posted: each answers 202 or a clear 4xx, never
5xx, and the report agrees with what ``contacts_exchange`` reads from the file. Then the rules:
upserts for records with an email, creates without; limits, media types and malformed files
refused with nothing queued; ``Idempotency-Key`` replays and reuse; a queue that fails part-way;
Redis down.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient

from command_api.adapters.background_imports import ImportSlots
from command_api.adapters.sqs_publisher import message_size
from command_api.entrypoints.app import create_app
from command_api.entrypoints.imports import EXTENSION as IMPORTS_EXTENSION
from command_api.service_layer import imports as imports_service
from command_api.service_layer.errors import EventTooLarge
from command_api.service_layer.handlers import Context
from command_api.service_layer.ports import IdempotencyStore, ImportReportWriter
from command_api.settings import Settings, SettingsError
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, HybridLogicalClock
from contacts_domain.imports import ImportProblem, ImportReport, record_ids
from contacts_domain.ordering import ordering_key
from contacts_domain.ports import EventPublisher, OperationStore, PublishFailed, StoreUnavailable
from contacts_exchange import ImportFormatError, ImportRecord, read_csv, read_vcards
from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.messaging import SQS_MESSAGE_MAX_BYTES
from support import shared_data
from support.auth import TEST_AUTH, authorized
from support.pii_scan import find

VCARD = "text/vcard"
CSV = "text/csv"
DATA = shared_data.shared_data_dir()
SAMPLES = shared_data.sample_files()


class FakeReportWriter(ImportReportWriter):
    """Keeps every report saved, in order, and the workspace of each, and counts the queuing
    leases taken or renewed per import id; ``down`` makes saving fail like Redis down."""

    def __init__(self) -> None:
        self.saved: list[ImportReport] = []
        self.workspaces: list[str] = []
        self.leases: dict[str, int] = {}
        self.down = False

    def hold_queuing(self, workspace: str, import_id: str) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.leases[import_id] = self.leases.get(import_id, 0) + 1

    def save(self, workspace: str, report: ImportReport) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.saved.append(report)
        self.workspaces.append(workspace)

    def created_at(self, workspace: str, import_id: str) -> dt.datetime | None:
        if self.down:
            raise StoreUnavailable("down")
        stored = [
            report.created_at
            for report, where in zip(self.saved, self.workspaces, strict=True)
            if report.import_id == import_id and where == workspace
        ]
        return stored[-1] if stored else None

    def last(self, import_id: str) -> ImportReport:
        return [report for report in self.saved if report.import_id == import_id][-1]


class FlakyPublisher(EventPublisher):
    """Keeps published events in order (``publish_batch`` is the port's default, one
    ``publish`` per event); takes ``capacity`` events, then fails every publish (a queue that
    goes away). Applies the real adapter's size rule (``message_size``, a pure function)."""

    def __init__(self) -> None:
        self.events: list[ContactEvent] = []
        self.capacity: int | None = None
        #: Publishes to fail before the queue takes events again (a queue slow for a moment).
        self.fail_next = 0
        self.tries = 0
        #: With ``hold_after``, a publish past that many events waits for ``gate`` (≤ 10 s).
        self.hold_after: int | None = None
        self.gate = threading.Event()

    def publish(self, event: ContactEvent) -> None:
        if self.hold_after is not None and len(self.events) >= self.hold_after:
            assert self.gate.wait(10), "the test never opened the gate"
        self.tries += 1
        size = message_size(event.to_cloudevent())
        if size > SQS_MESSAGE_MAX_BYTES:
            raise EventTooLarge(size, SQS_MESSAGE_MAX_BYTES)
        if self.fail_next:
            self.fail_next -= 1
            raise PublishFailed("SQS did not answer within 2 s.", may_be_queued=True)
        if self.capacity is not None and len(self.events) >= self.capacity:
            raise PublishFailed("queue gone")
        self.events.append(event)


@pytest.fixture
def publisher() -> FlakyPublisher:
    return FlakyPublisher()


@pytest.fixture
def reports() -> FakeReportWriter:
    return FakeReportWriter()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        query_api_base_url="http://query.test",
        auth=TEST_AUTH,
        rate_limits=RateLimitSettings(enabled=False),
    )


@pytest.fixture
def build_app(
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
    operations: OperationStore,
    idempotency: IdempotencyStore,
) -> Callable[..., Flask]:
    """Return a function that builds the app with ``settings`` and the test's fakes; ``ports``
    replace some of them (``clock``, ``now``)."""

    def build(settings: Settings, **ports: Any) -> Flask:
        injected: dict[str, Any] = {
            "publisher": publisher,
            "operations": operations,
            "idempotency": idempotency,
            "import_reports": reports,
            "clock": HybridLogicalClock(node="test"),
            "readiness_checks": {},
        }
        return create_app(settings, **{**injected, **ports})

    return build


@pytest.fixture
def client(settings: Settings, build_app: Callable[[Settings], Flask]) -> FlaskClient:
    return authorized(build_app(settings)).test_client()


def card(number: int, *, email: bool = True, name: bool = True) -> str:
    """One vCard 3.0 card; without ``name`` it has no N nor FN (an invalid record)."""
    lines = ["BEGIN:VCARD", "VERSION:3.0"]
    if name:
        lines += [f"N:Example{number};Rosa;;;", f"FN:Rosa Example{number}"]
    if email:
        lines.append(f"EMAIL;TYPE=WORK:rosa{number}@example.com")
    lines += [f"TEL;TYPE=CELL:+1 202 555 {number % 10000:04d}", f"ORG:Acme {number}", "END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


def vcards(count: int, **kwargs: Any) -> bytes:
    return "".join(card(number, **kwargs) for number in range(1, count + 1)).encode()


def post(client: FlaskClient, body: bytes, media_type: str = VCARD, **kwargs: Any) -> Any:
    return client.post("/v1/imports", data=body, content_type=media_type, **kwargs)


def read_sample(path: Path) -> list[ImportRecord]:
    reader = read_vcards if shared_data.media_type(path) == VCARD else read_csv
    with path.open("rb") as stream:
        return list(reader(stream))


# --- every sample file ------------------------------------------------------------------------


@pytest.mark.skipif(DATA is None, reason="shared/data (the sample address books) is absent")
@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_every_sample_file_imports_as_the_library_reads_it(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter, path: Path
) -> None:
    response = post(client, path.read_bytes(), shared_data.media_type(path))

    assert response.status_code < 500
    if response.status_code == 400:
        with pytest.raises(ImportFormatError) as refused:
            read_sample(path)
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == str(refused.value)
        assert publisher.events == []
        assert reports.saved == []
        return
    records = read_sample(path)
    assert response.status_code == 202, response.json
    valid = [record for record in records if record.valid]
    import_id = response.json["import_id"]
    assert response.json == {
        "import_id": import_id,
        "status": "queued",
        "received": len(records),
        "accepted": len(valid),
        "invalid": len(records) - len(valid),
        "failed": 0,
        "repaired": sum(1 for record in valid if record.warnings),
    }
    assert response.headers["Location"] == f"http://query.test/v1/imports/{import_id}"
    # Stored ``queuing`` before its first (and here only) chunk was sent, then ``queued``.
    assert [report.state for report in reports.saved] == ["queuing", "queued"]
    report = reports.saved[-1]
    assert report.import_id == import_id
    assert report.format == ("vcard" if shared_data.media_type(path) == VCARD else "csv")
    assert (report.received, report.accepted, report.invalid) == (
        len(records),
        len(valid),
        len(records) - len(valid),
    )
    assert report.errors == tuple(
        ImportProblem(record.position, record.line, error["field"], error["message"])
        for record in records
        for error in record.errors
    )
    # What was dropped from the valid records is listed too; an invalid record's warnings are not.
    assert report.warnings == tuple(
        ImportProblem(record.position, record.line, warning["field"], warning["message"])
        for record in valid
        for warning in record.warnings
    )
    assert not report.warnings_truncated
    assert report.repaired == response.json["repaired"]
    assert [event.contact_id for event in publisher.events] == [
        record_ids(import_id, record.position).contact_id for record in valid
    ]
    assert {event.import_id for event in publisher.events} <= {import_id}


def test_the_file_is_parsed_once(
    client: FlaskClient, publisher: FlakyPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 13: the validation pass and the queue pass used to parse the file twice.
    calls: list[int] = []

    def counting_reader(*args: Any, **kwargs: Any) -> Iterator[ImportRecord]:
        calls.append(1)
        return read_vcards(*args, **kwargs)

    monkeypatch.setitem(imports_service.READERS, "vcard", counting_reader)
    body = "".join(card(n) for n in range(1, 251)).encode()
    response = post(client, body, "text/x-vcard; charset=utf-8")

    assert response.status_code == 202
    assert response.json["accepted"] == 250
    assert len(publisher.events) == 250
    assert [event.contact_id for event in publisher.events] == [
        record_ids(response.json["import_id"], n).contact_id for n in range(1, 251)
    ]
    assert calls == [1]


# --- records to commands ----------------------------------------------------------------------


def test_records_with_an_email_become_upserts_and_the_others_creates(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    body = (card(1) + card(2, email=False) + card(3)).encode()
    response = post(client, body, "text/x-vcard; charset=utf-8")

    assert response.status_code == 202
    import_id = response.json["import_id"]
    assert [event.kind for event in publisher.events] == ["upserted", "created", "upserted"]
    for position, event in enumerate(publisher.events, start=1):
        ids = record_ids(import_id, position)
        assert (event.contact_id, event.id, event.operation_id, event.import_id) == (
            ids.contact_id,
            ids.event_id,
            ids.operation_id,
            import_id,
        )
    sequences = [event.sequence for event in publisher.events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 3
    upsert = publisher.events[0].data
    assert upsert["emails"][0]["value"] == "rosa1@example.com"
    # Fields the card does not have are left out of an upsert (they stay as they are).
    assert "notes" not in upsert
    assert "addresses" not in upsert
    assert publisher.events[1].data["emails"] == []


def test_invalid_records_are_reported_and_skipped(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    body = (card(1) + card(2, name=False, email=False) + card(3)).encode()
    response = post(client, body)

    assert response.json["received"] == 3
    assert (response.json["accepted"], response.json["invalid"]) == (2, 1)
    assert len(publisher.events) == 2
    *_, report = reports.saved
    assert report.errors
    assert {(problem.position, problem.line) for problem in report.errors} == {(2, 9)}


def test_problems_listed_are_capped(
    settings: Settings, build_app: Callable[[Settings], Flask], reports: FakeReportWriter
) -> None:
    capped = Settings(**{**_fields(settings), "import_errors_max": 2})
    client = authorized(build_app(capped)).test_client()
    response = post(client, vcards(3, name=False, email=False))

    assert response.json["invalid"] == 3
    *_, report = reports.saved
    assert len(report.errors) == 2
    assert report.errors_truncated
    assert (report.warnings, report.warnings_truncated) == ((), False)


def with_bad_email(number: int) -> str:
    """A valid card whose only email is invalid: imported without it, with a warning."""
    return card(number).replace(f"rosa{number}@example.com", f"rosa{number}@example")


def test_values_dropped_from_valid_records_are_listed_as_warnings_without_the_value(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    body = (
        card(1)
        + with_bad_email(2).replace("END:VCARD", "BDAY:--0203\r\nEND:VCARD")
        + card(3, name=False)
        + with_bad_email(4)
    ).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert (response.json["accepted"], response.json["invalid"]) == (3, 1)
    assert response.json["repaired"] == 2
    *_, report = reports.saved
    assert report.repaired == 2
    assert [(w.position, w.line, w.field) for w in report.warnings] == [
        (2, 9, "birthday"),
        (2, 9, "emails.0.value"),
        (4, 24, "emails.0.value"),
    ]
    assert report.warnings[1].message.endswith("Dropped the email address.")
    for warning in report.warnings:
        assert "rosa" not in warning.message
        assert "0203" not in warning.message
    assert not report.warnings_truncated
    # The record is imported without the dropped value: a create, since it has no email left.
    assert [event.kind for event in publisher.events] == ["upserted", "created", "created"]
    assert publisher.events[1].data["emails"] == []
    assert publisher.events[1].data["birthday"] is None


def test_warnings_are_capped_apart_from_errors(
    settings: Settings, build_app: Callable[[Settings], Flask], reports: FakeReportWriter
) -> None:
    capped = Settings(**{**_fields(settings), "import_errors_max": 2})
    client = authorized(build_app(capped)).test_client()
    invalid = card(1, name=False, email=False)  # two errors: no first name, no last name
    body = (invalid + "".join(with_bad_email(n) for n in range(2, 5))).encode()

    response = post(client, body)

    assert (response.json["invalid"], response.json["repaired"]) == (1, 3)
    *_, report = reports.saved
    assert (len(report.errors), report.errors_truncated) == (2, False)
    assert [w.position for w in report.warnings] == [2, 3]
    assert report.warnings_truncated
    assert report.repaired == 3  # counted whole, listed up to the cap


def test_an_empty_file_is_an_empty_address_book(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    for media_type in (VCARD, CSV):
        response = post(client, b"", media_type)
        assert response.status_code == 202
        assert response.json["received"] == 0
    assert publisher.events == []


def test_csv_rows_are_imported(client: FlaskClient, publisher: FlakyPublisher) -> None:
    body = (
        b"First Name,Last Name,E-mail 1 - Value\r\nRosa,Example,rosa@example.com\r\nTom,Hawes,\r\n"
    )
    response = post(client, body, "application/csv")

    assert response.status_code == 202
    assert [event.kind for event in publisher.events] == ["upserted", "created"]
    positions = [2, 3]  # CSV positions are the lines where rows start
    assert [event.contact_id for event in publisher.events] == [
        record_ids(response.json["import_id"], line).contact_id for line in positions
    ]


# --- refused uploads: nothing queued, no report -----------------------------------------------


@pytest.mark.parametrize("media_type", ["application/json", "text/plain", "multipart/form-data"])
def test_other_media_types_are_refused(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter, media_type: str
) -> None:
    response = post(client, vcards(1), media_type)

    assert response.status_code == 415
    assert "text/vcard" in response.json["detail"]
    assert "text/csv" in response.json["detail"]
    assert "text/csv" in response.headers["Accept-Post"]
    assert response.json["errors"] == {"Content-Type": [response.json["detail"]]}
    assert publisher.events == []
    assert reports.saved == []


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b'{"first_name": "Rosa"}', VCARD),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", VCARD),
        (b'{"first_name": "Rosa"}', CSV),
        (b"\x00\x01\x02\x03", CSV),
    ],
)
def test_a_file_of_another_format_is_a_bad_request(
    client: FlaskClient,
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
    body: bytes,
    media_type: str,
) -> None:
    response = post(client, body, media_type)

    assert response.status_code == 400
    assert response.json["type"] == "urn:contacts:problem:import-format"
    assert response.json["errors"] == {"body": [response.json["detail"]]}
    assert publisher.events == []
    assert reports.saved == []


def test_a_format_error_says_what_was_expected_and_never_quotes_the_upload(
    client: FlaskClient,
) -> None:
    csv_as_vcard = post(client, b"Name,Given Name,Additional Name\r\nRosa,Example,Q\r\n", VCARD)
    garbage_as_csv = post(client, b"Rosa\rExample\x00\x89PNG\r\n", CSV)

    assert csv_as_vcard.status_code == garbage_as_csv.status_code == 400
    detail = csv_as_vcard.json["detail"]
    assert "BEGIN:VCARD" in detail
    assert "Name" not in detail
    detail = garbage_as_csv.json["detail"]
    # Binary bytes are not text in any encoding (issue 16): refused before CSV parsing.
    assert detail.startswith("The file is not text in any encoding we can read")
    assert "Rosa" not in detail
    assert "universal-newline" not in detail


SECRET = "Quorbelvantrexi"


def test_no_problem_of_the_report_quotes_a_value_of_the_file(
    client: FlaskClient, reports: FakeReportWriter
) -> None:
    body = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Example;Rosa;;;\r\n"
        f"EMAIL:{SECRET}@quorbel_x.example.org\r\nTEL:+1 555 {SECRET}\r\n"
        f"BDAY:{SECRET}\r\nADR;TYPE=home:;;1 Lane;Springfield;;;{SECRET}\r\n"
        f"CATEGORIES:{SECRET * 4}\r\nEND:VCARD\r\n"
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:{SECRET * 7};Rosa;;;\r\nEND:VCARD\r\n"
    ).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert (response.json["accepted"], response.json["repaired"]) == (1, 1)
    *_, report = reports.saved
    assert {w.field for w in report.warnings} == {
        "emails.0.value",
        "phones.0.value",
        "birthday",
        "addresses.0.country",
        "tags.0",
    }
    assert [e.field for e in report.errors] == ["last_name"]
    assert find(json.dumps(report.to_dict()), [SECRET]) == []


def test_a_file_over_the_byte_limit_is_refused_whole(
    settings: Settings,
    build_app: Callable[[Settings], Flask],
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
) -> None:
    small = Settings(**{**_fields(settings), "import_max_bytes": 1000})
    client = authorized(build_app(small)).test_client()
    body = vcards(20)
    assert len(body) > 1000

    declared = post(client, body)
    chunked = client.post(
        "/v1/imports",
        input_stream=io.BytesIO(body),
        content_type=VCARD,
        headers={"Transfer-Encoding": "chunked"},
        # What gunicorn sets for a chunked body: the server ends the stream.
        environ_overrides={"wsgi.input_terminated": True},
    )

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json["type"] == "urn:contacts:problem:import-too-large"
        assert "1000 bytes" in response.json["detail"]
    assert publisher.events == []
    assert reports.saved == []


def test_a_file_over_the_record_limit_is_refused_whole(
    settings: Settings,
    build_app: Callable[[Settings], Flask],
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
) -> None:
    few = Settings(**{**_fields(settings), "import_max_records": 3})
    client = authorized(build_app(few)).test_client()

    assert post(client, vcards(3)).status_code == 202
    response = post(client, vcards(4))
    assert response.status_code == 413
    assert "3 records" in response.json["detail"]
    assert len(publisher.events) == 3
    assert [report.state for report in reports.saved] == ["queuing", "queued"]


def test_the_import_limit_replaces_the_json_body_limit_on_this_route_only(
    client: FlaskClient, publisher: FlakyPublisher, settings: Settings
) -> None:
    body = vcards(8000)
    assert settings.max_request_bytes < len(body) < settings.import_max_bytes

    response = post(client, body)
    chunked = client.post(
        "/v1/imports",
        input_stream=io.BytesIO(body),
        content_type=VCARD,
        headers={"Transfer-Encoding": "chunked", "Idempotency-Key": "chunked-8000"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 202
    assert response.json["accepted"] == 8000
    assert chunked.status_code == 202
    assert chunked.json["accepted"] == 8000
    contacts = client.post(
        "/v1/contacts", data=b"{" + b" " * settings.max_request_bytes + b"}", content_type=JSON
    )
    assert contacts.status_code == 413


JSON = "application/json"


# --- the rest queued after the 202 (issue 13) --------------------------------------------------


def _slots(client: FlaskClient) -> ImportSlots:
    return cast(ImportSlots, client.application.extensions[IMPORTS_EXTENSION].slots)


def test_the_202_comes_after_the_first_chunk_and_the_rest_is_queued_after_it(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    publisher.hold_after = 250  # the queue takes the first chunk, then waits for the gate

    response = post(client, vcards(600), headers={"Idempotency-Key": "big-file"})

    assert response.status_code == 202
    assert response.json["status"] == "queuing"
    assert (response.json["accepted"], response.json["failed"]) == (600, 0)
    import_id = response.json["import_id"]
    assert len(publisher.events) == 250
    assert reports.last(import_id).state == "queuing"
    publisher.gate.set()
    assert _slots(client).wait(10)
    final = reports.last(import_id)
    assert (final.state, final.accepted, final.failed) == ("queued", 600, 0)
    assert sorted(event.id for event in publisher.events) == sorted(
        record_ids(import_id, n).event_id for n in range(1, 601)
    )
    # Taken before the first chunk, renewed after each of the two chunks sent after the 202.
    assert reports.leases[import_id] == 3


def test_every_sequence_is_read_before_the_202(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    # A command accepted after the 202 must order after every record of the import (§5.3),
    # even those whose events are built and sent later.
    publisher.hold_after = 250

    response = post(client, vcards(600))
    later = client.application.extensions[IMPORTS_EXTENSION].context.clock.next()
    publisher.gate.set()
    assert _slots(client).wait(10)

    assert response.status_code == 202
    assert len(publisher.events) == 600
    assert max(event.sequence for event in publisher.events) < later


def test_a_command_after_an_import_sorts_after_its_block_on_a_clock_standing_still(
    settings: Settings, build_app: Callable[..., Flask], publisher: FlakyPublisher
) -> None:
    # The block is 1 µs per record from the first reading; the clock observes its end, so a
    # clock whose time does not move still sorts what it gives next after every record.
    clock = HybridLogicalClock(now_us=lambda: 1_000_000, node="test")
    client = authorized(build_app(settings, clock=clock)).test_client()

    response = post(client, vcards(600))
    assert _slots(client).wait(10)

    assert response.status_code == 202
    assert len(publisher.events) == 600
    assert max(event.sequence for event in publisher.events) == f"{1_000_599:016x}.test"
    assert clock.next() == f"{1_000_600:016x}.test"


def test_a_queue_failing_after_the_202_ends_in_a_failed_report_with_the_counts(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    publisher.capacity = 400

    response = post(client, vcards(600), headers={"Idempotency-Key": "fails-later"})

    assert response.status_code == 202
    assert response.json["status"] == "queuing"
    assert _slots(client).wait(10)
    final = reports.last(response.json["import_id"])
    assert (final.state, final.accepted, final.failed) == ("failed", 400, 200)
    assert len(publisher.events) == 400


def test_a_keyed_retry_gives_each_record_the_sequence_of_the_first_attempt(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    # Fresh-clone review: records a retry queued got new sequences, so a write accepted
    # between the first 202 and the retry was overwritten by a record of the import.
    publisher.capacity = 400
    headers = {"Idempotency-Key": "retried-import"}
    first = post(client, vcards(600), headers=headers)
    assert _slots(client).wait(10)
    assert reports.last(first.json["import_id"]).state == "failed"
    taken = {event.id: event.sequence for event in publisher.events}
    between = client.application.extensions[IMPORTS_EXTENSION].context.clock.next()

    publisher.capacity = None
    again = post(client, vcards(600), headers=headers)
    assert _slots(client).wait(10)

    assert again.status_code == 202
    assert reports.last(first.json["import_id"]).state == "queued"
    retried = {event.id: event.sequence for event in publisher.events[400:]}
    assert len(retried) == 600
    assert all(retried[event_id] == sequence for event_id, sequence in taken.items())
    assert max(retried.values()) < between


def test_a_server_queuing_as_many_imports_as_it_may_answers_503_and_queues_nothing(
    settings: Settings, build_app: Callable[[Settings], Flask], publisher: FlakyPublisher
) -> None:
    one_slot = Settings(**{**_fields(settings), "import_queuing_slots": 1})
    client = authorized(build_app(one_slot)).test_client()
    publisher.hold_after = 250
    assert post(client, vcards(600)).status_code == 202

    busy = post(client, vcards(3))

    assert busy.status_code == 503
    assert busy.mimetype == "application/problem+json"
    assert busy.json["type"] == "urn:contacts:problem:imports-busy"
    assert busy.headers["Retry-After"] == "5"
    assert len(publisher.events) == 250
    publisher.gate.set()
    assert _slots(client).wait(10)
    assert post(client, vcards(3)).status_code == 202  # the slot is free again
    assert len(publisher.events) == 603


def test_a_busy_server_still_answers_a_key_reused_with_another_file_422(
    settings: Settings, build_app: Callable[[Settings], Flask], publisher: FlakyPublisher
) -> None:
    # It answered 503, so the client retried a request that could never succeed.
    one_slot = Settings(**{**_fields(settings), "import_queuing_slots": 1})
    client = authorized(build_app(one_slot)).test_client()
    headers = {"Idempotency-Key": "busy-import"}
    assert post(client, vcards(3), headers=headers).status_code == 202
    publisher.hold_after = 253
    assert post(client, vcards(600)).status_code == 202  # holds the only slot

    other_file = post(client, vcards(4), headers=headers)
    same_file = post(client, vcards(3), headers=headers)
    unused_key = post(client, vcards(4), headers={"Idempotency-Key": "never-used"})

    assert other_file.status_code == 422
    assert other_file.json["type"] == "urn:contacts:problem:idempotency-key-reused"
    assert (same_file.status_code, same_file.headers["Retry-After"]) == (503, "5")
    assert same_file.json["type"] == "urn:contacts:problem:imports-busy"
    assert unused_key.status_code == 503
    publisher.gate.set()
    assert _slots(client).wait(10)
    assert len(publisher.events) == 603
    # Nothing was reserved by the busy answers: the unused key is still free for any file.
    assert post(client, vcards(5), headers={"Idempotency-Key": "never-used"}).status_code == 202


def test_an_import_held_by_its_first_chunk_gives_its_slot_back(
    settings: Settings, build_app: Callable[[Settings], Flask], publisher: FlakyPublisher
) -> None:
    # Refused, failed or wholly queued before the answer: no background job keeps the slot.
    one_slot = Settings(**{**_fields(settings), "import_queuing_slots": 1})
    client = authorized(build_app(one_slot)).test_client()

    assert post(client, vcards(3)).status_code == 202
    assert post(client, b"not a vcard").status_code == 400
    publisher.capacity = 3
    assert post(client, vcards(3)).status_code == 503
    publisher.capacity = None
    assert post(client, vcards(3)).status_code == 202


# --- Idempotency-Key --------------------------------------------------------------------------


def test_a_replay_answers_the_same_import_and_queues_the_same_events(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    headers = {"Idempotency-Key": "import-2026-11-29"}
    first = post(client, vcards(3), headers=headers)
    again = post(client, vcards(3), headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json == again.json
    import_id = first.json["import_id"]
    assert uuid.UUID(import_id).version == 5
    ids = [event.id for event in publisher.events]
    assert ids[:3] == ids[3:] == [record_ids(import_id, n).event_id for n in (1, 2, 3)]
    assert [report.import_id for report in reports.saved] == [import_id] * 4


def test_a_replay_keeps_the_first_attempts_created_at(
    settings: Settings, build_app: Callable[..., Flask], reports: FakeReportWriter
) -> None:
    moment = [dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)]
    client = authorized(build_app(settings, now=lambda: moment[0])).test_client()
    headers = {"Idempotency-Key": "import-2026-11-29"}
    assert post(client, vcards(3), headers=headers).status_code == 202
    moment[0] += dt.timedelta(minutes=5)
    assert post(client, vcards(3), headers=headers).status_code == 202

    assert len(reports.saved) == 4
    assert {report.created_at for report in reports.saved} == {
        dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    }


def test_a_key_reused_with_another_file_is_refused(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    headers = {"Idempotency-Key": "import-2026-11-29"}
    assert post(client, vcards(3), headers=headers).status_code == 202

    other_file = post(client, vcards(4), headers=headers)
    other_format = post(client, vcards(3), "text/directory", headers=headers)
    # Another media type of the same format is the same request.
    same = post(client, vcards(3), "text/x-vcard", headers=headers)

    assert other_file.status_code == 422
    assert other_format.status_code == 202  # text/directory is vCard too
    assert same.status_code == 202
    assert len(publisher.events) == 9


def test_a_key_used_for_a_create_cannot_name_an_import(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    created = client.post(
        "/v1/contacts", json={"first_name": "Rosa", "email": "rosa@example.com"}, headers=headers
    )
    assert created.status_code == 202

    assert post(client, vcards(1), headers=headers).status_code == 422
    assert len(publisher.events) == 1


def test_a_malformed_key_is_a_bad_request(client: FlaskClient, publisher: FlakyPublisher) -> None:
    response = post(client, vcards(1), headers={"Idempotency-Key": "two words"})

    assert response.status_code == 400
    assert publisher.events == []


# --- failures ---------------------------------------------------------------------------------


def test_events_the_queue_did_not_take_at_once_are_sent_again_in_order(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    publisher.fail_next = 30  # the first 30 publishes time out, then the queue takes them

    response = post(client, vcards(40))

    assert response.status_code == 202
    assert response.json["accepted"] == 40
    assert [report.state for report in reports.saved] == ["queuing", "queued"]
    assert publisher.tries == 40 + 30
    # Every record's event was taken once (each its own message group: no order between them).
    import_id = response.json["import_id"]
    assert sorted(e.id for e in publisher.events) == sorted(
        record_ids(import_id, n).event_id for n in range(1, 41)
    )


def test_a_queue_failing_part_way_answers_503_with_the_counts_then_a_retry_finishes(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    publisher.capacity = 150
    headers = {"Idempotency-Key": "flaky-import"}
    body = vcards(250) + card(251, name=False).encode()

    response = post(client, body, headers=headers)

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    import_id = response.json["import_id"]
    assert response.json["type"] == "urn:contacts:problem:queue-unavailable"
    assert (response.json["received"], response.json["invalid"]) == (251, 1)
    # 150 of the first chunk's 250 went out, before the answer: a 503, not a 202.
    assert (response.json["accepted"], response.json["failed"]) == (150, 100)
    assert response.headers["Location"] == f"http://query.test/v1/imports/{import_id}"
    assert response.json["detail"].endswith(
        "Send the same file again with the same Idempotency-Key to queue the rest without "
        "duplicates."
    )
    queuing, failed = reports.saved
    assert (queuing.state, queuing.accepted, queuing.failed) == ("queuing", 250, 0)
    assert (failed.state, failed.accepted, failed.failed, failed.invalid) == ("failed", 150, 100, 1)
    assert len(publisher.events) == 150

    publisher.capacity = None
    retry = post(client, body, headers=headers)

    assert retry.status_code == 202
    assert retry.json["import_id"] == import_id
    assert retry.json["accepted"] == 250
    assert reports.last(import_id).state == "queued"
    # The first 150 were sent twice with the same ids: SQS and the worker drop the copies.
    assert len({event.id for event in publisher.events}) == 250


def test_without_a_key_the_503_says_a_retry_queues_everything_again(
    client: FlaskClient, publisher: FlakyPublisher
) -> None:
    publisher.capacity = 100

    response = post(client, vcards(150))

    assert response.status_code == 503
    assert (response.json["accepted"], response.json["failed"]) == (100, 50)
    detail = response.json["detail"]
    assert "same Idempotency-Key" not in detail
    assert "no Idempotency-Key" in detail
    assert "queues every record again" in detail
    assert "without an email would be created twice" in detail


def test_a_dead_queue_costs_one_chunk(client: FlaskClient, publisher: FlakyPublisher) -> None:
    publisher.capacity = 0

    response = post(client, vcards(300))

    assert response.status_code == 503
    assert (response.json["accepted"], response.json["failed"]) == (0, 300)


def test_redis_down_answers_503_and_queues_nothing(
    client: FlaskClient,
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
    idempotency: Any,
) -> None:
    reports.down = True
    idempotency.down = True

    response = post(client, vcards(3), headers={"Idempotency-Key": "redis-down"})

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json["type"] == "urn:contacts:problem:import-report-unavailable"
    assert publisher.events == []


# --- authorization ----------------------------------------------------------------------------


def test_imports_need_the_import_scope(
    settings: Settings, build_app: Callable[[Settings], Flask], publisher: FlakyPublisher
) -> None:
    writer, importer = new_api_key(), new_api_key()
    auth = AuthSettings(
        api_keys=(
            (hash_api_key(writer), frozenset({scopes.WRITE})),
            (hash_api_key(importer), frozenset({scopes.IMPORT})),
        )
    )
    client = build_app(Settings(**{**_fields(settings), "auth": auth})).test_client()

    refused = post(client, vcards(1), headers={"Authorization": f"Bearer {writer}"})
    accepted = post(client, vcards(1), headers={"Authorization": f"Bearer {importer}"})
    contact = client.post(
        "/v1/contacts",
        json={"first_name": "Rosa"},
        headers={"Authorization": f"Bearer {importer}"},
    )

    assert refused.status_code == 403
    assert 'scope="contacts:import"' in refused.headers["WWW-Authenticate"]
    assert accepted.status_code == 202
    assert contact.status_code == 403
    assert len(publisher.events) == 1


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.model_fields}


@pytest.fixture(autouse=True)
def _no_leftover_spools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Spooled uploads that reach disk land in ``tmp_path``; none may be left behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    yield
    assert list(tmp_path.iterdir()) == []


def test_the_import_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "IMPORT_MAX_BYTES": "2048",
            "IMPORT_MAX_RECORDS": "5",
            "IMPORT_ERRORS_MAX": "7",
            "IMPORT_REPORT_TTL_S": "60",
        }
    )
    assert (
        settings.import_max_bytes,
        settings.import_max_records,
        settings.import_errors_max,
        settings.import_report_ttl_s,
    ) == (2048, 5, 7, 60)
    defaults = Settings.from_env({})
    assert (defaults.import_max_bytes, defaults.import_max_records) == (10_485_760, 10_000)
    assert (defaults.import_errors_max, defaults.import_report_ttl_s) == (1_000, 604_800)
    for name in ("IMPORT_MAX_BYTES", "IMPORT_MAX_RECORDS", "IMPORT_ERRORS_MAX"):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "0"})
    with pytest.raises(SettingsError, match="IMPORT_REPORT_TTL_S"):
        Settings.from_env({"IMPORT_REPORT_TTL_S": "7d"})


def test_the_openapi_document_describes_repaired_and_the_retry_without_a_key(
    client: FlaskClient,
) -> None:
    document = client.get("/openapi.json").get_json()

    accepted = document["components"]["schemas"]["ImportAccepted"]
    assert "repaired" in accepted["properties"]
    assert "repaired" in accepted["required"]
    problem = document["components"]["schemas"]["ImportNotQueuedProblem"]
    assert "repaired" in problem["properties"]
    operation = document["paths"]["/v1/imports"]["post"]
    assert "Without a key" in operation["responses"]["503"]["description"]
    assert "`repaired`" in operation["description"]


def test_an_unclosed_quote_in_a_csv_is_an_invalid_row_and_the_rows_after_it_are_imported(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    body = (
        b"First Name,Last Name,E-mail Address,Notes\n"
        b'"Quo,X,quo1@example.com,n\n'
        b"Ann,Y,ann-q@example.com,n\n"
        b"Bob,Z,bob-q@example.com,n\n"
    )

    response = post(client, body, CSV)

    assert response.status_code == 202
    counts = {name: response.json[name] for name in ("received", "accepted", "invalid")}
    assert counts == {"received": 3, "accepted": 2, "invalid": 1}
    assert [e.data["first_name"] for e in publisher.events] == ["Ann", "Bob"]
    *_, report = reports.saved
    assert [(e.position, e.line, e.field, e.message) for e in report.errors] == [
        (
            2,
            2,
            "_card",
            "The row starting on line 2 could not be read: a quoted field is not closed "
            "before the end of the file.",
        )
    ]


# --- encodings (issue 16, item 1) -------------------------------------------------------------


def test_a_guessed_encoding_is_imported_exactly_and_the_report_says_it_was_a_guess(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    names = [("太郎", "山田"), ("花子", "佐藤"), ("一郎", "鈴木"), ("ソウタ", "表川")]
    rows = "".join(f"{first},{last},Met at the fair\r\n" for first, last in names)
    body = ("First Name,Last Name,Notes\r\n" + rows).encode("shift_jis")

    response = post(client, body, CSV)

    assert response.status_code == 202
    assert (response.json["accepted"], response.json["repaired"]) == (4, 4)
    assert [(e.data["first_name"], e.data["last_name"]) for e in publisher.events] == names
    *_, report = reports.saved
    messages = {warning.message for warning in report.warnings}
    assert messages <= {
        f"The file is not UTF-8; read as {name} (a guess)." for name in ("shift_jis", "cp932")
    }
    assert [(w.line, w.field) for w in report.warnings] == [
        (2, "_card"),
        (3, "_card"),
        (4, "_card"),
        (5, "_card"),
    ]


def test_a_file_no_encoding_reads_cleanly_is_a_400_that_says_so(
    client: FlaskClient, publisher: FlakyPublisher, reports: FakeReportWriter
) -> None:
    body = b"First Name,Last Name\r\n\x81\x01\x9d\x02,\x8f\x03\x90\x04\r\nJane,Doe\r\n"

    response = post(client, body, CSV)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "urn:contacts:problem:import-format"
    assert response.json["detail"].startswith(
        "The file is not text in any encoding we can read: it is not UTF-8"
    )
    assert "Jane" not in response.json["detail"]
    assert publisher.events == []
    assert reports.saved == []


# --- workspaces -------------------------------------------------------------------------------


def test_one_idempotency_key_in_two_workspaces_is_two_imports(
    settings: Settings,
    build_app: Callable[[Settings], Flask],
    publisher: FlakyPublisher,
    reports: FakeReportWriter,
) -> None:
    ours, acme = new_api_key(), new_api_key()
    auth = AuthSettings(
        api_keys=(
            ApiKeyEntry(hash_api_key(ours), scopes.ALL),
            ApiKeyEntry(hash_api_key(acme), scopes.ALL, "acme"),
        )
    )
    client = build_app(settings.model_copy(update={"auth": auth})).test_client()
    body = vcards(2)
    answers = [
        post(client, body, headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k"})
        for key in (ours, acme)
    ]

    assert [answer.status_code for answer in answers] == [202, 202]
    our_id, acme_id = (answer.get_json()["import_id"] for answer in answers)
    assert our_id != acme_id
    assert reports.workspaces == [DEFAULT_WORKSPACE] * 2 + ["acme"] * 2
    assert [report.import_id for report in reports.saved] == [our_id] * 2 + [acme_id] * 2
    ours_events, acme_events = publisher.events[:2], publisher.events[2:]
    assert {e.workspace for e in ours_events} == {DEFAULT_WORKSPACE}
    assert {e.workspace for e in acme_events} == {"acme"}
    assert [e.id for e in acme_events] == [record_ids(acme_id, p).event_id for p in (1, 2)]
    assert {e.import_id for e in acme_events} == {acme_id}
    assert not {e.id for e in acme_events} & {e.id for e in ours_events}


# --- chunks in flight ---------------------------------------------------------------------------


class OverlapPublisher(EventPublisher):
    """Records, for each ``publish_batch`` call, whether another call was running then and
    whether they shared a message group; every call takes ``call_s`` seconds."""

    def __init__(self, call_s: float = 0.05) -> None:
        self.call_s = call_s
        self.events: list[ContactEvent] = []
        self._lock = threading.Lock()
        self._running: list[set[str]] = []
        self.overlaps: list[bool] = []  # one per overlap seen: True when groups were shared

    def publish(self, event: ContactEvent) -> None:
        with self._lock:
            self.events.append(event)

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        groups = {ordering_key(event) for event in events}
        with self._lock:
            self.overlaps += [not groups.isdisjoint(other) for other in self._running]
            self._running.append(groups)
        time.sleep(self.call_s)
        results = super().publish_batch(events)
        with self._lock:
            self._running.remove(groups)
        return results


def _import(body: bytes, publisher: EventPublisher, chunk_size: int) -> ImportReport:
    """Run the use case as the entrypoint does (the first chunk, then ``finish``) in this
    thread; return the final report."""
    context = Context(
        publisher,
        cast(OperationStore, None),
        cast(IdempotencyStore, None),
        HybridLogicalClock(node="test"),
        lambda: dt.datetime.now(dt.UTC),
    )
    limits = imports_service.ImportLimits(
        max_bytes=len(body), max_records=10_000, errors_max=100, default_region="US"
    )
    upload = imports_service.Upload(io.BytesIO(body), "vcard", len(body), "fingerprint")
    queuing = imports_service.import_upload(
        upload,
        context,
        FakeReportWriter(),
        limits,
        workspace=DEFAULT_WORKSPACE,
        correlation_id=None,
        chunk_size=chunk_size,
    )
    return queuing.finish()


def test_chunks_of_disjoint_message_groups_are_sent_at_once() -> None:
    publisher = OverlapPublisher()

    report = _import(vcards(400), publisher, chunk_size=100)

    assert report.accepted == len(publisher.events) == 400
    assert publisher.overlaps  # another chunk was being sent
    assert not any(publisher.overlaps)
    assert {event.id for event in publisher.events} == {
        record_ids(report.import_id, position).event_id for position in range(1, 401)
    }


def test_a_chunk_sharing_a_message_group_with_one_in_flight_waits_for_it() -> None:
    # Cards 1, 150 and 250 upsert the same email: chunks 1, 2 and 3 of 100 share its group.
    cards = [card(number) for number in range(1, 301)]
    for number in (150, 250):
        cards[number - 1] = cards[number - 1].replace(f"rosa{number}@", "rosa1@")
    publisher = OverlapPublisher()

    report = _import("".join(cards).encode(), publisher, chunk_size=100)

    assert report.accepted == len(publisher.events) == 300
    assert not any(publisher.overlaps)
    shared = [e for e in publisher.events if e.data["emails"][0]["value"] == "rosa1@example.com"]
    assert [e.id for e in shared] == [
        record_ids(report.import_id, position).event_id for position in (1, 150, 250)
    ]


def test_valid_records_read_back_what_was_kept_in_order_across_buffer_reads() -> None:
    kept = [
        (n, {"note": f"{n}:" + "é" * (n * 7919 % 300_000), "emails": [{"value": None}]})
        for n in range(1, 60)
    ]
    records = imports_service.ValidRecords()
    try:
        for position, fields in kept:
            records.append(position, fields)
        assert len(records) == len(kept)
        assert list(records) == kept
        assert list(records) == kept  # each iteration reads from the start
    finally:
        records.close()
