"""``POST /v1/contacts/upsert`` on the fakes: what is accepted, what is refused, what is sent."""

from __future__ import annotations

import pytest

from contacts_infra.messaging import message_group_id


def test_an_upsert_is_accepted_and_sent_as_one_upserted_event(client, publisher) -> None:
    response = client.post(
        "/v1/contacts/upsert",
        json={"first_name": "Ada", "email": "Ada@Example.com", "company": "Acme"},
    )

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "pending"
    assert response.headers["Operation-Location"].endswith(f"/v1/operations/{body['operation_id']}")
    assert "Location" not in response.headers  # the contact written is known once applied
    [event] = publisher.events
    assert event.kind == "upserted"
    assert event.contact_id == body["id"]
    # Only the fields sent: a match keeps the rest of the contact.
    assert set(event.data) == {"first_name", "emails", "company"}
    assert message_group_id(event).startswith("email-")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_name": "Ada"}, "email"),
        ({"email": "ada@example.com", "first_name": None, "last_name": None}, "first_name"),
        ({"first_name": "Ada", "email": "not an email"}, "emails.0.value"),
        ({"first_name": "Ada", "emails": []}, "email"),
    ],
)
def test_an_upsert_without_a_primary_email_or_clearing_names_is_a_400(
    client, publisher, body, field
):
    response = client.post("/v1/contacts/upsert", json=body)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert publisher.events == []


def test_only_email_can_be_matched_on(client, publisher) -> None:
    response = client.post(
        "/v1/contacts/upsert?match_on=phone", json={"first_name": "A", "email": "a@example.com"}
    )

    assert response.status_code == 400
    assert "match_on" in response.get_json()["errors"]
    assert publisher.events == []


def test_an_idempotency_key_makes_a_retried_upsert_one_operation(client, publisher) -> None:
    body = {"first_name": "Ada", "email": "ada@example.com"}
    headers = {"Idempotency-Key": "upsert-1"}

    first = client.post("/v1/contacts/upsert", json=body, headers=headers)
    again = client.post("/v1/contacts/upsert", json=body, headers=headers)
    other = client.post("/v1/contacts/upsert", json={**body, "first_name": "B"}, headers=headers)

    assert first.get_json() == again.get_json()
    assert len({e.id for e in publisher.events}) == 1
    assert other.status_code == 422


def test_an_upsert_without_a_name_is_accepted_for_the_worker_to_decide(client, publisher) -> None:
    # Issue 16: it may match a contact, which keeps its name; only the worker knows.
    response = client.post("/v1/contacts/upsert", json={"email": "ada@example.com"})

    assert response.status_code == 202
    [event] = publisher.events
    assert event.kind == "upserted"
    assert set(event.data) == {"emails"}
