"""The guard decides the workspace of every request from the caller's identity
(docs/architecture.md §10): never from a free header, except for an operator."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, jsonify

from contacts_http import ProblemApi, openapi_config
from contacts_http.auth import (
    WORKSPACE_HEADER,
    ApiKeyEntry,
    AuthPolicy,
    AuthSettings,
    Principal,
    hash_api_key,
    install_auth,
    new_api_key,
    request_workspace,
    scopes,
)
from contacts_telemetry.metrics import MetricsRegistry

ACME, OTHER, OPERATOR = new_api_key(), new_api_key(), new_api_key()
POLICY = AuthPolicy(realm="test-api", default_scope=scopes.READ)


class ClaimlessJwt:
    """An authenticator of our own standing in for a JWT without the workspace claim."""

    def authenticate(self, token: str) -> Principal:
        return Principal("jwt:u1", frozenset({scopes.READ}), "jwt:u1", workspace=None)


def make_app(settings: AuthSettings, authenticator: object = None) -> Flask:
    app = Flask("workspaces")
    app.config.update(openapi_config("Workspaces"))
    api = ProblemApi(app)
    install_auth(
        app,
        api,
        settings,
        POLICY,
        metrics=MetricsRegistry(),
        authenticator=authenticator,  # type: ignore[arg-type]
    )

    @app.get("/v1/whoami")
    def whoami():  # type: ignore[no-untyped-def]
        return jsonify(workspace=request_workspace())

    return app


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    read = frozenset({scopes.READ})
    settings = AuthSettings(
        api_keys=(
            ApiKeyEntry(hash_api_key(ACME), read, "acme"),
            ApiKeyEntry(hash_api_key(OTHER), read),
            ApiKeyEntry(hash_api_key(OPERATOR), read | {scopes.ADMIN}, "ops"),
        )
    )
    return make_app(settings).test_client()


def _as(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def test_the_key_decides_the_workspace(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/v1/whoami", headers=_as(ACME)).json == {"workspace": "acme"}
    assert client.get("/v1/whoami", headers=_as(OTHER)).json == {"workspace": "default"}


def test_a_client_cannot_name_another_workspace(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/whoami", headers=_as(ACME, **{WORKSPACE_HEADER: "other"}))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "urn:contacts:problem:workspace-not-allowed"


def test_an_operator_acts_on_the_named_workspace_and_is_logged(
    client,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="contacts_http.auth"):
        response = client.get("/v1/whoami", headers=_as(OPERATOR, **{WORKSPACE_HEADER: "acme"}))
    assert response.json == {"workspace": "acme"}
    assert any(
        "operator request" in r.getMessage() and "acme" in r.getMessage() for r in caplog.records
    )
    assert client.get("/v1/whoami", headers=_as(OPERATOR)).json == {"workspace": "ops"}
    bad = client.get("/v1/whoami", headers=_as(OPERATOR, **{WORKSPACE_HEADER: "Not A Slug"}))
    assert bad.status_code == 400
    assert bad.json["type"] == "urn:contacts:problem:bad-header"
    assert WORKSPACE_HEADER in bad.json["errors"]


def test_a_token_without_the_workspace_claim_is_refused_with_403() -> None:
    app = make_app(AuthSettings(), ClaimlessJwt())
    response = app.test_client().get("/v1/whoami", headers=_as("any-jwt"))
    assert response.status_code == 403
    assert response.json["type"] == "urn:contacts:problem:no-workspace"
    assert "AUTH_JWT_WORKSPACE_CLAIM" in response.json["detail"]


def test_without_authentication_everything_is_in_default_or_the_named_workspace() -> None:
    client = make_app(AuthSettings(disabled=True)).test_client()
    assert client.get("/v1/whoami").json == {"workspace": "default"}
    named = client.get("/v1/whoami", headers={WORKSPACE_HEADER: "acme"})
    assert named.json == {"workspace": "acme"}
