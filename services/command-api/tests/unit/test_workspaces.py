"""Workspaces through the command API (docs/architecture.md §10): every write of a caller goes
to the workspace its identity decides, and nothing derived from a request is shared between
two workspaces (ids from an Idempotency-Key, idempotency records, operations). Imports:
``test_imports.py``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from command_api.entrypoints.app import create_app
from contacts_domain import DEFAULT_WORKSPACE
from contacts_domain.workspaces import WORKSPACE_PATTERN
from contacts_http.auth import (
    WORKSPACE_HEADER,
    ApiKeyEntry,
    AuthSettings,
    hash_api_key,
    new_api_key,
)
from contacts_http.auth import scopes as scope_names
from contacts_infra.messaging import message_group_id

OURS, ACME, OPERATOR = new_api_key(), new_api_key(), new_api_key()


@pytest.fixture
def client(settings, publisher, operations, idempotency) -> FlaskClient:
    """Three keys: one of ``default``, one of ``acme``, an operator's (of ``default``)."""
    auth = AuthSettings(
        api_keys=(
            ApiKeyEntry(hash_api_key(OURS), scope_names.ALL),
            ApiKeyEntry(hash_api_key(ACME), scope_names.ALL, "acme"),
            ApiKeyEntry(hash_api_key(OPERATOR), scope_names.ALL | {scope_names.ADMIN}),
        )
    )
    app = create_app(
        settings.model_copy(update={"auth": auth}),
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        readiness_checks={},
    )
    return app.test_client()


def as_(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def test_the_same_idempotency_key_in_two_workspaces_is_two_contacts_and_two_events(
    client, publisher, operations, idempotency, rosa
) -> None:
    key = {"Idempotency-Key": "order-1"}
    ours = client.post("/v1/contacts", json=rosa, headers=as_(OURS, **key))
    acme = client.post("/v1/contacts", json={**rosa, "company": "Acme"}, headers=as_(ACME, **key))
    # A replay in each workspace answers that workspace's first request.
    acme_again = client.post(
        "/v1/contacts", json={**rosa, "company": "Acme"}, headers=as_(ACME, **key)
    )

    assert ours.status_code == acme.status_code == acme_again.status_code == 202
    assert acme_again.get_json() == acme.get_json()
    assert ours.get_json()["id"] != acme.get_json()["id"]
    assert ours.get_json()["operation_id"] != acme.get_json()["operation_id"]
    first, second, replay = publisher.events
    assert (first.workspace, second.workspace, replay.workspace) == (
        DEFAULT_WORKSPACE,
        "acme",
        "acme",
    )
    assert first.id != second.id == replay.id
    assert first.contact_id == ours.get_json()["id"]
    assert second.contact_id == acme.get_json()["id"]
    assert message_group_id(second) == f"acme/{second.contact_id}"
    assert sorted(idempotency.records) == sorted(
        [(DEFAULT_WORKSPACE, first_digest(idempotency)), ("acme", first_digest(idempotency))]
    )
    assert operations.get("acme", acme.get_json()["operation_id"]) is not None
    assert operations.get(DEFAULT_WORKSPACE, acme.get_json()["operation_id"]) is None


def first_digest(idempotency: Any) -> str:
    digests = {digest for _workspace, digest in idempotency.records}
    assert len(digests) == 1
    return digests.pop()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", f"/v1/contacts/{uuid.UUID(int=1)}", {"first_name": "Rosa"}),
        ("patch", f"/v1/contacts/{uuid.UUID(int=1)}", {"company": "Acme"}),
        ("delete", f"/v1/contacts/{uuid.UUID(int=1)}", None),
        ("post", "/v1/contacts/upsert", {"first_name": "Rosa", "email": "rosa@example.com"}),
    ],
)
def test_every_write_goes_to_the_keys_workspace(
    client, publisher, operations, method, path, body
) -> None:
    response = getattr(client, method)(path, json=body, headers=as_(ACME))
    assert response.status_code == 202
    [event] = publisher.events
    assert event.workspace == "acme"
    assert event.to_cloudevent()["workspace"] == "acme"
    assert set(operations.in_workspace) == {"acme"}


def test_a_batch_with_a_key_in_two_workspaces_gets_two_sets_of_ids(
    client, publisher, operations
) -> None:
    body = {"operations": [{"op": "create", "data": {"first_name": "A"}}]}
    key = {"Idempotency-Key": "batch-1"}
    ours = client.post("/v1/contacts/batch", json=body, headers=as_(OURS, **key))
    acme = client.post("/v1/contacts/batch", json=body, headers=as_(ACME, **key))
    assert ours.status_code == acme.status_code == 202
    [our_item], [acme_item] = ours.get_json()["results"], acme.get_json()["results"]
    assert our_item["id"] != acme_item["id"]
    assert [(e.workspace, e.contact_id) for e in publisher.events] == [
        (DEFAULT_WORKSPACE, our_item["id"]),
        ("acme", acme_item["id"]),
    ]
    assert operations.get("acme", acme_item["operation_id"]) is not None


def test_an_operator_writes_into_the_workspace_its_header_names(
    client, publisher, operations, rosa
) -> None:
    response = client.post(
        "/v1/contacts", json=rosa, headers=as_(OPERATOR, **{WORKSPACE_HEADER: "acme"})
    )
    assert response.status_code == 202
    [event] = publisher.events
    assert event.workspace == "acme"
    assert operations.get("acme", response.get_json()["operation_id"]) is not None


def test_an_operator_without_the_header_writes_into_its_own_workspace(
    client, publisher, rosa
) -> None:
    assert client.post("/v1/contacts", json=rosa, headers=as_(OPERATOR)).status_code == 202
    assert [e.workspace for e in publisher.events] == [DEFAULT_WORKSPACE]


def test_a_workspace_key_naming_another_workspace_is_refused_and_sends_nothing(
    client, publisher, operations, rosa
) -> None:
    response = client.post(
        "/v1/contacts", json=rosa, headers=as_(ACME, **{WORKSPACE_HEADER: DEFAULT_WORKSPACE})
    )
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert WORKSPACE_HEADER in response.get_json()["detail"]
    assert publisher.events == []
    assert operations.in_workspace == {}


def test_an_operator_naming_no_workspace_id_gets_a_400_naming_the_header(
    client, publisher, rosa
) -> None:
    response = client.post(
        "/v1/contacts", json=rosa, headers=as_(OPERATOR, **{WORKSPACE_HEADER: "Not A Slug!"})
    )
    assert response.status_code == 400
    assert WORKSPACE_HEADER in response.get_json()["errors"]
    assert publisher.events == []


def test_every_operation_documents_the_operators_optional_workspace_header(client) -> None:
    document = client.get("/openapi.json").get_json()
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) >= 7
    for method, path, operation in operations:
        [parameter] = [p for p in operation["parameters"] if p["name"] == WORKSPACE_HEADER]
        assert parameter["in"] == "header", (method, path)
        assert parameter["required"] is False
        assert parameter["schema"]["pattern"] == WORKSPACE_PATTERN
        assert "403" in operation["responses"]
