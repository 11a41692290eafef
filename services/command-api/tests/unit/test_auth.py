"""Authentication, scopes and security headers of the command API (issue 7, items 1 and 7)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from command_api.entrypoints.app import create_app
from contacts_http import PROBLEM_JSON
from contacts_http.auth import AuthSettings, hash_api_key, new_api_key, scopes

WRITER, READER = new_api_key(), new_api_key()


def app_with(settings: Any, **ports: Any) -> Flask:
    return create_app(settings, **ports, readiness_checks={})


def keys_settings(settings: Any) -> Any:
    return settings.model_copy(
        update={
            "auth": AuthSettings(
                api_keys=(
                    (hash_api_key(WRITER), frozenset({scopes.WRITE})),
                    (hash_api_key(READER), frozenset({scopes.READ})),
                )
            )
        }
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_write_key_is_accepted(settings, publisher, operations, idempotency, rosa) -> None:
    app = app_with(
        keys_settings(settings), publisher=publisher, operations=operations, idempotency=idempotency
    )
    response = app.test_client().post("/v1/contacts", json=rosa, headers=bearer(WRITER))
    assert response.status_code == 202
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Authorization" in response.headers["Vary"]
    assert len(publisher.events) == 1


def test_no_token_is_401_and_nothing_is_enqueued(
    settings, publisher, operations, idempotency, rosa
) -> None:
    client = app_with(
        keys_settings(settings), publisher=publisher, operations=operations, idempotency=idempotency
    ).test_client()
    for method, path in (("post", "/v1/contacts"), ("delete", "/v1/contacts/x")):
        response = getattr(client, method)(path, json=rosa)
        assert response.status_code == 401
        assert response.mimetype == PROBLEM_JSON
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="contacts-command-api"'
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    unknown = client.post("/v1/contacts", json=rosa, headers=bearer(new_api_key()))
    assert unknown.status_code == 401
    assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
    assert publisher.events == []
    assert operations.statuses == {}


def test_a_read_only_key_is_403_insufficient_scope(
    settings, publisher, operations, idempotency, rosa
) -> None:
    client = app_with(
        keys_settings(settings), publisher=publisher, operations=operations, idempotency=idempotency
    ).test_client()
    response = client.post("/v1/contacts", json=rosa, headers=bearer(READER))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="contacts:write"' in response.headers["WWW-Authenticate"]
    assert publisher.events == []


def test_health_and_the_document_stay_open(settings, publisher, operations, idempotency) -> None:
    client = app_with(
        keys_settings(settings), publisher=publisher, operations=operations, idempotency=idempotency
    ).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert document.headers["X-Content-Type-Options"] == "nosniff"
    assert document.get_json()["security"] == [{"bearerAuth": []}]


def test_auth_disabled_opens_the_api_and_warns(
    settings, publisher, operations, idempotency, rosa, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="contacts_http.auth"):
        app = app_with(
            settings.model_copy(update={"auth": AuthSettings(disabled=True)}),
            publisher=publisher,
            operations=operations,
            idempotency=idempotency,
        )
    assert "authentication is DISABLED" in caplog.text
    assert "contacts-command-api" in caplog.text
    response = app.test_client().post("/v1/contacts", json=rosa)
    assert response.status_code == 202
    assert "Vary" not in response.headers
