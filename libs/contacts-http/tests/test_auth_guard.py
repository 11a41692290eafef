"""The Flask guard: RFC 6750 answers as RFC 9457 problems, open paths, scopes per route."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, jsonify
from flask_smorest import Blueprint

from contacts_http import (
    PROBLEM_JSON,
    ProblemApi,
    docs_blueprint,
    health_blueprint,
    openapi_config,
)
from contacts_http.auth import (
    AuthPolicy,
    AuthSettings,
    AuthUnavailable,
    Principal,
    hash_api_key,
    install_auth,
    new_api_key,
    request_principal,
    scopes,
)
from contacts_telemetry.metrics import MetricsRegistry

KEY = new_api_key()
READER = new_api_key()
POLICY = AuthPolicy(
    realm="test-api",
    default_scope=scopes.WRITE,
    route_scopes={"things.read_thing": scopes.READ},
)


def make_app(settings: AuthSettings, authenticator: object = None) -> Flask:
    app = Flask("guarded")
    app.config.update(openapi_config("Guarded"))
    api = ProblemApi(app)
    install_auth(
        app,
        api,
        settings,
        POLICY,
        metrics=MetricsRegistry(),
        authenticator=authenticator,  # type: ignore[arg-type]
    )
    blp = Blueprint("things", __name__, url_prefix="/v1/things")

    @blp.route("", methods=["POST"])
    def write_thing():  # type: ignore[no-untyped-def]
        principal = request_principal()
        return jsonify(subject=principal.subject if principal else None), 202

    @blp.route("/<thing_id>", methods=["GET"])
    def read_thing(thing_id: str):  # type: ignore[no-untyped-def]
        return jsonify(id=thing_id)

    api.register_blueprint(blp)
    app.register_blueprint(health_blueprint({}))
    app.register_blueprint(docs_blueprint("Guarded"))
    return app


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    settings = AuthSettings(
        api_keys=((hash_api_key(KEY), scopes.ALL), (hash_api_key(READER), frozenset({scopes.READ})))
    )
    return make_app(settings).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_key_with_the_scope_passes(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things", headers=bearer(KEY))
    assert response.status_code == 202
    assert response.get_json() == {"subject": f"key:{hash_api_key(KEY)[:12]}"}
    assert client.get("/v1/things/1", headers=bearer(READER)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Basic dXNlcjpwYXNz", "Token abc", "", "Bearer", "Bearer ", "bearer    ", "Bearer \t "],
    ids=[
        "none",
        "basic",
        "other",
        "blank",
        "bearer",
        "bearer-space",
        "bearer-spaces",
        "bearer-tab",
    ],
)
def test_no_bearer_credentials_is_401_without_an_error_code(client, header) -> None:  # type: ignore[no-untyped-def]
    headers = {} if header is None else {"Authorization": header}
    response = client.post("/v1/things", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="test-api"'
    body = response.get_json()
    assert (body["status"], body["title"]) == (401, "Unauthorized")
    assert body == client.post("/v1/things").get_json()


@pytest.mark.parametrize(
    "token",
    ["not-a-key", hash_api_key(KEY), "a.b.c"],
    ids=["not-a-key", "the-key-hash", "jwt-shaped"],
)
def test_a_refused_token_is_401_invalid_token(client, token: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(
        'Bearer realm="test-api", error="invalid_token", error_description="'
    )
    assert response.get_json()["type"] == "urn:contacts:problem:invalid-token"


def test_the_scheme_name_is_case_insensitive(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things", headers={"Authorization": f"bearer {KEY}"})
    assert response.status_code == 202


def test_a_missing_scope_is_403_insufficient_scope(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/things", headers=bearer(READER))
    assert response.status_code == 403
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="test-api", error="insufficient_scope", '
        'error_description="The token lacks the scope contacts:write.", scope="contacts:write"'
    )
    assert response.get_json()["detail"] == "The token lacks the scope contacts:write."


def test_health_docs_and_preflights_stay_open(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/docs/init.js").status_code == 200
    assert client.options("/v1/things").status_code == 200
    # An unknown path needs a token too: its existence is nobody else's business.
    assert client.get("/nope").status_code == 401


class FakeAuthenticator:
    """A fake of our own port: refuses with the error it is given, or accepts."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls = 0

    def authenticate(self, token: str) -> Principal:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Principal("fake:1", frozenset({scopes.WRITE}), "fake:1")


def test_an_unavailable_authenticator_is_503_with_retry_after() -> None:
    fake = FakeAuthenticator(AuthUnavailable("JWKS down"))
    client = make_app(AuthSettings(), fake).test_client()
    response = client.post("/v1/things", headers=bearer("x.y.z"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["type"] == "urn:contacts:problem:auth-unavailable"
    assert "WWW-Authenticate" not in response.headers


def test_a_crashing_authenticator_refuses_instead_of_500() -> None:
    client = make_app(AuthSettings(), FakeAuthenticator(KeyError("bug"))).test_client()
    response = client.post("/v1/things", headers=bearer("x"))
    assert response.status_code == 401


def test_the_token_is_checked_once_per_request() -> None:
    fake = FakeAuthenticator(None)
    app = make_app(AuthSettings(), fake)

    @app.before_request
    def second_reader() -> None:  # as the rate limiter reads it
        request_principal()

    assert app.test_client().post("/v1/things", headers=bearer("t")).status_code == 202
    assert fake.calls == 1


def test_nothing_configured_refuses_everything_and_says_so(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.ERROR, logger="contacts_http.auth"):
        client = make_app(AuthSettings()).test_client()
    assert "every request will be refused" in caplog.text
    assert client.post("/v1/things", headers=bearer(KEY)).status_code == 401


def test_disabled_opens_every_route_and_warns_at_start_up(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="contacts_http.auth"):
        client = make_app(AuthSettings(disabled=True)).test_client()
    assert "authentication is DISABLED" in caplog.text
    assert client.post("/v1/things").status_code == 202


def test_the_openapi_document_declares_the_bearer_scheme(client) -> None:  # type: ignore[no-untyped-def]
    document = client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    responses = document["paths"]["/v1/things"]["post"]["responses"]
    assert {"401", "403", "429"} <= set(responses)
    assert responses["401"] == {"$ref": "#/components/responses/UNAUTHORIZED"}
    assert (
        "application/problem+json" in document["components"]["responses"]["UNAUTHORIZED"]["content"]
    )
