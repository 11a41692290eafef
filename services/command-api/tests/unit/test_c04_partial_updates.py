"""C04 — null, empty and absent in partial updates (shared/cases/write-api.md).

The API's part: what each PATCH enqueues. The stored contact is built with the domain's own
``apply_event`` from the events the API published, so each case also shows the resulting state.
"""

from __future__ import annotations

from functools import reduce

import pytest

from contacts_domain import ContactState, apply_event


@pytest.fixture
def stored(client, publisher, rosa):
    """Create Rosa through the API; return (contact id, a function giving the state now)."""
    contact_id = client.post("/v1/contacts", json=rosa).get_json()["id"]

    def state() -> ContactState:
        return reduce(
            lambda s, e: apply_event(s, e).state, publisher.events, ContactState(contact_id)
        )

    assert state().fields["phones"]
    assert state().fields["emails"]
    return contact_id, state


def patch(client, contact_id, body):
    return client.patch(f"/v1/contacts/{contact_id}", json=body)


@pytest.mark.parametrize("body", [{"phones": []}, {"phone": None}, {"phone": ""}])
def test_c04_patch_clearing_phones(client, publisher, stored, body) -> None:
    contact_id, state = stored
    assert patch(client, contact_id, body).status_code == 202
    assert publisher.events[-1].data == {"phones": []}
    assert state().fields["phones"] == []
    assert state().fields["emails"][0]["value"] == "rosa@example.com"


def test_c04_patch_null_last_name_clears_it(client, publisher, stored) -> None:
    contact_id, state = stored
    assert patch(client, contact_id, {"last_name": None}).status_code == 202
    assert publisher.events[-1].data == {"last_name": None}
    assert state().fields["last_name"] is None
    assert state().fields["first_name"] == "Rosa"


def test_c04_patch_clearing_both_names_is_400(client, publisher, stored) -> None:
    contact_id, _ = stored
    response = patch(client, contact_id, {"first_name": None, "last_name": None})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"first_name", "last_name"}
    assert len(publisher.events) == 1


@pytest.mark.parametrize("body", [{"first_name": "", "last_name": ""}, {"first_name": " "}])
def test_c04_empty_strings_clear_like_null_everywhere(client, publisher, stored, body) -> None:
    contact_id, state = stored
    response = patch(client, contact_id, body)
    if len(body) == 2:
        assert response.status_code == 400
    else:
        assert response.status_code == 202
        assert publisher.events[-1].data == {"first_name": None}
        assert state().fields["last_name"] == "Example"


def test_c04_patch_empty_last_name_is_treated_as_null(client, publisher, stored) -> None:
    contact_id, state = stored
    assert patch(client, contact_id, {"last_name": ""}).status_code == 202
    assert publisher.events[-1].data == {"last_name": None}
    assert state().fields["last_name"] is None


def test_c04_empty_patch_is_400_and_enqueues_nothing(client, publisher, stored) -> None:
    contact_id, _ = stored
    response = patch(client, contact_id, {})
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"_schema": ["An empty patch changes nothing."]}
    assert len(publisher.events) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com"},
        {"first_name": None, "last_name": None, "company": "ACME"},
        {"first_name": "", "company": "ACME"},
        {"first_name": "\u2800", "company": "ACME"},  # BRAILLE PATTERN BLANK: shows nothing
        {"first_name": "\U0001d159", "last_name": "\u3164"},  # NULL NOTEHEAD, Hangul filler
        {},
    ],
)
def test_c04_put_without_any_name_is_400(client, publisher, body) -> None:
    response = client.put("/v1/contacts/1b4e28ba-2fa1-41d2-883f-0016d3cca427", json=body)
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) >= {"first_name", "last_name"}
    assert publisher.events == []


@pytest.mark.parametrize("blank", ["\u2800", "\U0001d159", "\u2800 \U0001d159"])
def test_c04_create_with_a_blank_symbol_for_a_name_is_400(client, publisher, blank) -> None:
    response = client.post("/v1/contacts", json={"first_name": blank})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) >= {"first_name", "last_name"}
    assert publisher.events == []


def test_c04_absent_keys_never_change_stored_values(client, publisher, stored) -> None:
    contact_id, state = stored
    before = dict(state().fields)
    assert patch(client, contact_id, {"company": "ACME"}).status_code == 202
    assert publisher.events[-1].data == {"company": "ACME"}
    after = dict(state().fields)
    assert after.pop("company") == "ACME"
    before.pop("company")
    assert after == before
