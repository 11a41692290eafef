"""``POST /v1/imports`` with the real adapters: the SQS publisher on the run's SQS-compatible
server and the report in the run's Redis."""

from __future__ import annotations

import json

import pytest

from contacts_domain import DEFAULT_WORKSPACE, ContactEvent
from contacts_domain.imports import ImportReport, record_ids
from contacts_exchange import read_csv
from contacts_infra.messaging import APPLY_EVENT_TASK, message_group_id
from contacts_infra.redis_keys import import_key
from support.shared_data import shared_data_dir

DATA = shared_data_dir()
#: Two Google Contacts rows, each with emails: two upserts.
SAMPLE = "02-gmail-2008-section-format.csv"


@pytest.mark.skipif(DATA is None, reason="shared/data (the sample address books) is absent")
def test_a_sample_file_lands_on_the_queue_with_its_import_id_and_report(
    real_app, drain, redis_client, command_settings
) -> None:
    assert DATA is not None
    path = DATA / "csv" / SAMPLE
    with path.open("rb") as stream:
        records = list(read_csv(stream))

    response = real_app.test_client().post(
        "/v1/imports",
        data=path.read_bytes(),
        content_type="text/csv; charset=utf-8",
        headers={"X-Request-ID": "req-import-1"},
    )

    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["import_id"]
    assert response.get_json()["accepted"] == len(records) == 2
    messages = drain()
    assert len(messages) == len(records)
    by_contact = {message.envelope["subject"]: message for message in messages}
    for record in records:
        ids = record_ids(import_id, record.position)
        message = by_contact[ids.contact_id]
        event = ContactEvent.from_cloudevent(message.envelope)
        assert message.task == APPLY_EVENT_TASK
        assert message.envelope["importid"] == import_id
        assert message.envelope["type"] == "contacts.contact.upserted.v1"
        assert message.envelope["correlationid"] == "req-import-1"
        assert (event.id, event.operation_id) == (ids.event_id, ids.operation_id)
        assert message.dedup_id == ids.event_id
        # Upserts of one email keep their order: the group is the email's, not the contact's.
        assert message.group_id == message_group_id(event)
        assert message.group_id.startswith("email-")
    raw = redis_client.get(import_key(command_settings.redis_prefix, DEFAULT_WORKSPACE, import_id))
    report = ImportReport.from_dict(json.loads(raw))
    assert (report.state, report.received, report.accepted, report.invalid) == ("queued", 2, 2, 0)
    ttl = redis_client.ttl(import_key(command_settings.redis_prefix, DEFAULT_WORKSPACE, import_id))
    assert 0 < ttl <= command_settings.import_report_ttl_s


def test_records_without_email_are_creates_grouped_by_contact(real_app, drain) -> None:
    body = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Tom Hawes\r\nN:Hawes;Tom;;;\r\nEND:VCARD\r\n"
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nN:;;;;\r\nEND:VCARD\r\n"
    )

    response = real_app.test_client().post("/v1/imports", data=body, content_type="text/vcard")

    assert response.status_code == 202
    assert response.get_json()["invalid"] == 1
    import_id = response.get_json()["import_id"]
    [message] = drain()
    assert message.envelope["type"] == "contacts.contact.created.v1"
    assert message.envelope["importid"] == import_id
    assert message.group_id == f"{DEFAULT_WORKSPACE}/{record_ids(import_id, 1).contact_id}"


def test_values_dropped_from_a_record_are_in_the_stored_report(
    real_app, drain, redis_client, command_settings
) -> None:
    body = (
        b"First Name,Last Name,E-mail 1 - Value,Birthday\r\n"
        b"Rosa,Example,rosa@example,1990-02-30\r\n"
        b"Tom,Hawes,tom@example.com,\r\n"
    )

    response = real_app.test_client().post("/v1/imports", data=body, content_type="text/csv")

    assert response.status_code == 202, response.get_json()
    assert (response.get_json()["accepted"], response.get_json()["repaired"]) == (2, 1)
    import_id = response.get_json()["import_id"]
    assert len(drain()) == 2
    raw = redis_client.get(import_key(command_settings.redis_prefix, DEFAULT_WORKSPACE, import_id))
    stored = json.loads(raw)
    assert stored["repaired"] == 1
    assert stored["warnings_truncated"] is False
    assert [(w["position"], w["line"], w["field"]) for w in stored["warnings"]] == [
        (2, 2, "birthday"),
        (2, 2, "emails.0.value"),
    ]
    # The report says what was dropped, never the dropped values (personal data).
    assert "rosa@example" not in json.dumps(stored)
    assert "1990-02-30" not in json.dumps(stored)
    assert ImportReport.from_dict(stored).repaired == 1
