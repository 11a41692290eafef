"""Imports end to end (issue 3): every shared sample address book through ``POST /v1/imports``
on the running stack, and the round trip import → export → delete everything → import.

The stack here has a database, queues and Redis prefix of its own, so "every contact" means
the contacts these tests imported.
"""

from __future__ import annotations

import collections
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from contacts_domain.imports import record_ids
from contacts_exchange import ImportFormatError, ImportRecord, read_csv, read_vcards
from support.auth import api
from support.resources import isolated_database
from support.shared_data import media_type, sample_files
from support.stack import Stack, isolated_stack

SAMPLES = sample_files()
#: Bound, in seconds, on waiting for the worker to apply an import (a loaded machine).
APPLY_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def importing(stack_env: dict[str, str], sqs_client: Any, run_id: str) -> Iterator[Stack]:
    with isolated_database(f"{run_id}imp") as database:
        overrides = {
            "DATABASE_URL": database.url,
            "QUERY_DATABASE_URL": database.reader_url,
            "REDIS_PREFIX": f"{stack_env['REDIS_PREFIX']}imp:",
        }
        with isolated_stack(stack_env, sqs_client, f"t{run_id}-imp", overrides) as stack:
            yield stack


def read_records(path: Path) -> list[ImportRecord]:
    """What the import library reads from ``path`` (raises ``ImportFormatError``)."""
    reader = read_vcards if media_type(path) == "text/vcard" else read_csv
    with path.open("rb") as stream:
        return list(reader(stream))


def post_import(stack: Stack, body: bytes, content_type: str) -> requests.Response:
    return api.post(
        f"{stack.command_url}/v1/imports",
        data=body,
        headers={"Content-Type": content_type},
        timeout=60,
    )


def wait_import(stack: Stack, import_id: str) -> dict[str, Any]:
    """Poll ``GET /v1/imports/{id}`` until every queued record is applied or rejected."""
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = api.get(f"{stack.query_url}/v1/imports/{import_id}", timeout=10)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        if report["status"] == "completed":
            return report
        time.sleep(0.2)
    raise AssertionError(f"import {import_id} not applied in {APPLY_TIMEOUT_S} s: {report}")


def all_contacts(stack: Stack) -> list[dict[str, Any]]:
    """Every live contact, through the list's cursor pages."""
    contacts: list[dict[str, Any]] = []
    url: str | None = f"{stack.query_url}/v1/contacts?limit=100"
    while url:
        answer = api.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        contacts.extend(page["items"])
        cursor = page.get("next_cursor")
        url = f"{stack.query_url}/v1/contacts?limit=100&cursor={cursor}" if cursor else None
    return contacts


def comparable(contact: dict[str, Any]) -> str:
    """A contact's fields without its identity and history, as canonical JSON."""
    fields = {
        key: value
        for key, value in contact.items()
        if key not in ("id", "version", "created_at", "updated_at")
    }
    fields["tags"] = sorted(fields.get("tags") or [])
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


@pytest.mark.skipif(not SAMPLES, reason="shared/data is not beside the repository")
@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_every_sample_file_imports_through_the_running_stack(importing: Stack, path: Path) -> None:
    body = path.read_bytes()
    answer = post_import(importing, body, media_type(path))
    assert answer.status_code < 500, answer.text
    try:
        records = read_records(path)
    except ImportFormatError:
        assert answer.status_code in (400, 415), answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["detail"]
        return
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    valid = [record for record in records if record.valid]
    invalid = [record for record in records if not record.valid]
    assert (accepted["received"], accepted["accepted"], accepted["invalid"]) == (
        len(records),
        len(valid),
        len(invalid),
    )

    report = wait_import(importing, accepted["import_id"])
    assert (report["applied"], report["rejected"], report["failed"]) == (len(valid), 0, 0)
    expected_errors = sorted(
        (record.position, error["field"]) for record in invalid for error in record.errors
    )
    assert sorted((e["position"], e["field"]) for e in report["errors"]) == expected_errors
    assert all(error["message"] for error in report["errors"])
    # What was dropped from the imported records is reported, not lost silently.
    repaired = [record for record in valid if record.warnings]
    assert accepted["repaired"] == report["repaired"] == len(repaired)
    expected_warnings = [
        (record.position, record.line, warning["field"], warning["message"])
        for record in repaired
        for warning in record.warnings
    ]
    assert not report["warnings_truncated"]
    assert [
        (w["position"], w["line"], w["field"], w["message"]) for w in report["warnings"]
    ] == expected_warnings

    for record in valid:
        ids = record_ids(accepted["import_id"], record.position)
        operation = importing.wait_operation(ids.operation_id, timeout_s=30)
        assert operation["status"] == "applied", operation
        contact = api.get(f"{importing.query_url}/v1/contacts/{operation['contact_id']}")
        assert contact.status_code == 200, contact.text
        read = contact.json()
        assert record.data is not None
        assert (read["first_name"], read["last_name"]) == (
            record.data["first_name"],
            record.data["last_name"],
        )
        emails = [entry["value"] for entry in record.data["emails"]]
        if emails:
            assert read["email"] == next(
                (e["value"] for e in record.data["emails"] if e["primary"]), emails[0]
            )
        else:
            assert operation["contact_id"] == ids.contact_id  # created under its derived id


@pytest.mark.skipif(not SAMPLES, reason="shared/data is not beside the repository")
def test_import_export_delete_everything_import_gives_the_same_contacts(
    importing: Stack,
) -> None:
    for path in SAMPLES:
        answer = post_import(importing, path.read_bytes(), media_type(path))
        assert answer.status_code < 500, answer.text
        if answer.status_code == 202:
            wait_import(importing, answer.json()["import_id"])
    before = all_contacts(importing)
    assert len(before) > 30

    export = api.get(f"{importing.query_url}/v1/contacts/export?format=vcard", timeout=60)
    assert export.status_code == 200, export.text
    exported = export.content
    assert len(list(read_vcards(io.BytesIO(exported)))) == len(before)

    for start in range(0, len(before), 100):
        operations = [{"op": "delete", "id": c["id"]} for c in before[start : start + 100]]
        deleted = api.post(
            f"{importing.command_url}/v1/contacts/batch",
            json={"operations": operations},
            timeout=60,
        )
        assert deleted.status_code == 202, deleted.text
        for result in deleted.json()["results"]:
            assert result["status"] == "accepted", result
            assert importing.wait_operation(result["operation_id"])["status"] == "applied"
    assert all_contacts(importing) == []

    again = post_import(importing, exported, "text/vcard; charset=utf-8")
    assert again.status_code == 202, again.text
    assert again.json()["invalid"] == 0
    wait_import(importing, again.json()["import_id"])

    after = all_contacts(importing)
    assert collections.Counter(map(comparable, after)) == collections.Counter(
        map(comparable, before)
    )


def test_a_broken_csv_quote_and_a_blank_name_are_reported_and_a_retry_keeps_created_at(
    importing: Stack,
) -> None:
    body = (
        "First Name,Last Name,E-mail Address,Notes\n"
        '"Quo,X,quo-e2e@example.com,n\n'
        "Ann,Y,ann-q-e2e@example.com,n\n"
        "Bob,Z,bob-q-e2e@example.com,n\n"
        "\u2800,\U0001d159,blank-e2e@example.com,n\n"
    ).encode()
    headers = {"Content-Type": "text/csv", "Idempotency-Key": f"csv-quote-{uuid.uuid4()}"}

    first = api.post(f"{importing.command_url}/v1/imports", data=body, headers=headers, timeout=60)
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert (accepted["received"], accepted["accepted"], accepted["invalid"]) == (4, 2, 2)
    report = wait_import(importing, accepted["import_id"])
    assert report["applied"] == 2
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, "_card"),
        (5, "first_name"),
        (5, "last_name"),
    ]
    assert report["errors"][0]["message"] == (
        "The row starting on line 2 could not be read: a quoted field is not closed before "
        "the end of the file."
    )

    again = api.post(f"{importing.command_url}/v1/imports", data=body, headers=headers, timeout=60)
    assert again.status_code == 202, again.text
    assert again.json()["import_id"] == accepted["import_id"]
    retried = wait_import(importing, accepted["import_id"])
    assert retried["created_at"] == report["created_at"]
