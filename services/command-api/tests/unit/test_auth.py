"""Authentication, scopes and security headers of the command API (issue 7, items 1 and 7)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from command_api.entrypoints.app import create_app
from command_api.settings import Settings
from contacts_http import PROBLEM_JSON
from contacts_http.auth import AuthSettings, hash_api_key, new_api_key, scopes
from contacts_telemetry.metrics import MetricsRegistry
from support.auth import CountingAuthenticator

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


def test_refused_tokens_are_limited_per_client_address(
    publisher, operations, idempotency, rosa
) -> None:
    # Issue 14, item 3: read from the API's own settings, checked before the authenticator.
    settings = Settings.from_env({"AUTH_FAILURE_LIMIT": "3/minute", "RATE_LIMIT_ENABLED": "false"})
    fake, metrics = CountingAuthenticator(WRITER), MetricsRegistry()
    client = app_with(
        settings,
        authenticator=fake,
        metrics=metrics,
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
    ).test_client()
    attacker = {"REMOTE_ADDR": "198.51.100.7"}

    codes = [
        client.post("/v1/contacts", json=rosa, headers=bearer("guess"), environ_base=attacker)
        for _ in range(4)
    ]
    assert [c.status_code for c in codes] == [401, 401, 401, 429]
    assert codes[-1].mimetype == PROBLEM_JSON
    assert int(codes[-1].headers["Retry-After"]) >= 1
    assert fake.calls == 3
    other = client.post(
        "/v1/contacts", json=rosa, headers=bearer(WRITER), environ_base={"REMOTE_ADDR": "::1"}
    )
    assert other.status_code == 202
    assert fake.calls == 4
    assert len(publisher.events) == 1
    exposed = client.get("/metrics").get_data(as_text=True)
    assert 'auth_failure_limit_events_total{event="throttled"} 1.0' in exposed
    assert 'auth_failure_limit_events_total{event="failure"} 3.0' in exposed
