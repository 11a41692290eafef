"""C10 — lost updates and conditional writes: the API's part (shared/cases/write-api.md).

``If-Match`` travels as the event's ``expectedversion``; the worker compares it in the same
transaction that writes. The outcome is shown with the domain's ``apply_event``.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import reduce

import pytest

from contacts_domain import ABSENT_VERSION, VERSION_MISMATCH, ContactState, apply_event


def state_of(contact_id, events):
    return reduce(lambda s, e: apply_event(s, e).state, events, ContactState(contact_id))


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_c10_if_match_travels_as_expectedversion(client, publisher, method) -> None:
    response = getattr(client, method)(
        f"/v1/contacts/{uuid.uuid4()}", json={"first_name": "A"}, headers={"If-Match": '"12"'}
    )
    assert response.status_code == 202
    assert publisher.events[0].expected_version == 12
    assert publisher.events[0].to_cloudevent()["expectedversion"] == 12


def test_c10_without_if_match_expectedversion_is_null(client, publisher) -> None:
    client.patch(f"/v1/contacts/{uuid.uuid4()}", json={"company": "A"})
    assert publisher.events[0].to_cloudevent()["expectedversion"] is None


def test_c10_two_concurrent_patches_on_etag_1_only_one_applies(app, publisher, rosa) -> None:
    contact_id = app.test_client().post("/v1/contacts", json=rosa).get_json()["id"]
    created = state_of(contact_id, publisher.events)
    assert created.version == 1

    def send(phone: str) -> int:
        response = app.test_client().patch(
            f"/v1/contacts/{contact_id}", json={"phone": phone}, headers={"If-Match": '"1"'}
        )
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(send, ["+12025550101", "+12025550102"]))
    assert statuses == [202, 202]
    patches = publisher.events[1:]
    assert [e.expected_version for e in patches] == [1, 1]
    assert len({e.sequence for e in patches}) == 2

    state, outcomes = created, []
    for event in sorted(patches, key=lambda e: e.sequence):
        decision = apply_event(state, event)
        state = decision.state
        outcomes.append((decision.status, decision.reason))
    assert outcomes == [("applied", None), ("rejected", VERSION_MISMATCH)]


def test_c10_stale_if_match_is_rejected_by_the_worker_rule(client, publisher, rosa) -> None:
    contact_id = client.post("/v1/contacts", json=rosa).get_json()["id"]
    client.patch(f"/v1/contacts/{contact_id}", json={"company": "ACME"})
    at_version_2 = state_of(contact_id, publisher.events)
    assert at_version_2.version == 2
    response = client.patch(
        f"/v1/contacts/{contact_id}", json={"company": "Other"}, headers={"If-Match": '"7"'}
    )
    assert response.status_code == 202
    decision = apply_event(at_version_2, publisher.events[-1])
    assert (decision.status, decision.reason) == ("rejected", VERSION_MISMATCH)


@pytest.mark.parametrize("value", ["1", '"abc"', '"-1"', "*", '"1", "2"', '"1', '""', '"01"'])
def test_c10_malformed_if_match_is_400(client, publisher, value) -> None:
    response = client.patch(
        f"/v1/contacts/{uuid.uuid4()}", json={"company": "A"}, headers={"If-Match": value}
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"If-Match": ["Not a single strong ETag."]}
    assert publisher.events == []


@pytest.mark.parametrize("value", ['W/"1"', '"0"'])
def test_c10_if_match_that_can_never_match_is_412_at_once(client, publisher, value) -> None:
    response = client.delete(f"/v1/contacts/{uuid.uuid4()}", headers={"If-Match": value})
    assert response.status_code == 412
    assert response.get_json()["type"] == "urn:contacts:problem:precondition-failed"
    assert publisher.events == []


def test_if_none_match_star_on_put_travels_as_absent_version(client, publisher) -> None:
    contact_id = str(uuid.uuid4())
    response = client.put(
        f"/v1/contacts/{contact_id}", json={"first_name": "A"}, headers={"If-None-Match": "*"}
    )
    assert response.status_code == 202
    assert publisher.events[0].to_cloudevent()["expectedversion"] == ABSENT_VERSION == 0
    # The worker then creates the contact, or rejects the write if one is visible.
    created = apply_event(ContactState(contact_id), publisher.events[0])
    assert (created.status, created.state.version) == ("applied", 1)
    again = apply_event(created.state, publisher.events[0])
    assert (again.status, again.reason) == ("rejected", VERSION_MISMATCH)


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("put", {"If-None-Match": '"3"'}),
        ("patch", {"If-None-Match": "*"}),
        ("delete", {"If-None-Match": "*"}),
    ],
)
def test_if_none_match_that_a_write_cannot_honour_is_a_400_naming_it(
    client, publisher, method, headers
) -> None:
    response = getattr(client, method)(
        f"/v1/contacts/{uuid.uuid4()}", json={"first_name": "A"}, headers=headers
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert list(response.get_json()["errors"]) == ["If-None-Match"]
    assert publisher.events == []


def test_if_none_match_beside_if_match_never_holds_412(client, publisher) -> None:
    response = client.put(
        f"/v1/contacts/{uuid.uuid4()}",
        json={"first_name": "A"},
        headers={"If-None-Match": "*", "If-Match": '"3"'},
    )
    assert response.status_code == 412
    assert response.get_json()["type"] == "urn:contacts:problem:precondition-failed"
    assert publisher.events == []


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/v1/contacts", {"first_name": "A"}, "application/json"),
        ("/v1/contacts/upsert", {"first_name": "A", "email": "a@example.com"}, "application/json"),
        (
            "/v1/contacts/batch",
            {"operations": [{"op": "create", "data": {"first_name": "A"}}]},
            "application/json",
        ),
        ("/v1/imports", None, "text/vcard"),
    ],
)
@pytest.mark.parametrize("header", [("If-None-Match", "*"), ("If-Match", '"7"')])
def test_a_precondition_on_a_route_that_takes_none_is_a_400_naming_it(
    client, publisher, path, body, content_type, header
) -> None:
    # The review found both headers ignored there: an upsert "create only" overwrote a contact.
    name, value = header
    data = b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nN:;A;;;\r\nEND:VCARD\r\n"
    response = client.post(
        path,
        json=body,
        data=None if body is not None else data,
        headers={name: value, "Content-Type": content_type},
    )
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == [name]
    assert publisher.events == []
