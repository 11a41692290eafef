"""Every error of a Flask + flask-smorest app is an RFC 9457 problem."""

from __future__ import annotations

import json

import marshmallow as ma
import pytest
from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.exceptions import ServiceUnavailable

from contacts_http import (
    PROBLEM_JSON,
    VALIDATION_PROBLEM,
    ProblemApi,
    abort_problem,
    flatten_errors,
    init_request_id,
    problem_response,
)


class EntrySchema(ma.Schema):
    value = ma.fields.String(required=True)


class BodySchema(ma.Schema):
    name = ma.fields.String(required=True)
    emails = ma.fields.List(ma.fields.Nested(EntrySchema))


def make_app() -> Flask:
    app = Flask("problems-test")
    app.config.update(
        API_TITLE="t",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1000,
    )
    api = ProblemApi(app)
    init_request_id(app)
    blp = Blueprint("things", __name__)

    @blp.route("/things")
    class Things(MethodView):
        @blp.arguments(BodySchema)
        @blp.response(201)
        def post(self, body: dict) -> dict:
            return body

    @blp.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    @blp.route("/busy")
    def busy() -> str:
        raise ServiceUnavailable()

    @blp.route("/conflict")
    def conflict() -> str:
        abort_problem(409, "Taken.", type_uri="urn:x:conflict", headers={"X-Extra": "1"})

    api.register_blueprint(blp)
    return app


@pytest.fixture
def client():
    return make_app().test_client()


def test_unknown_route_is_a_problem(client) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert body["detail"]


def test_method_not_allowed_keeps_allow(client) -> None:
    response = client.delete("/things")
    assert response.status_code == 405
    assert response.mimetype == PROBLEM_JSON
    assert "POST" in response.headers["Allow"]


def test_validation_errors_are_flattened_by_field_path(client) -> None:
    response = client.post("/things", json={"emails": [{"value": 3}], "extra": 1})
    assert response.status_code == 422
    body = response.get_json()
    assert body["type"] == VALIDATION_PROBLEM
    assert set(body["errors"]) == {"name", "emails.0.value", "extra"}
    assert all(isinstance(m, list) for m in body["errors"].values())


def test_malformed_json_is_400_problem(client) -> None:
    response = client.post("/things", data=b"{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON


def test_body_over_max_content_length_is_413(client) -> None:
    response = client.post("/things", data=b"x" * 2000, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == PROBLEM_JSON


def test_unexpected_exception_is_500_without_internals(client) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    assert b"postgres" not in response.data
    assert b"RuntimeError" not in response.data
    assert response.headers["X-Request-ID"]


def test_503_gets_retry_after(client) -> None:
    response = client.get("/busy")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_problem_error_keeps_type_and_headers(client) -> None:
    response = client.get("/conflict")
    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:x:conflict"
    assert response.get_json()["detail"] == "Taken."
    assert response.headers["X-Extra"] == "1"


def test_openapi_documents_errors_as_problem_json(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert PROBLEM_JSON in default["content"]


def test_flatten_errors_handles_nesting_and_top_level_lists() -> None:
    assert flatten_errors({"a": {0: {"b": ["x"]}}, "c": ["y", "z"]}) == {
        "a.0.b": ["x"],
        "c": ["y", "z"],
    }
    assert flatten_errors(["bad body"]) == {"_schema": ["bad body"]}


def test_problem_body_escapes_unpaired_surrogates_instead_of_failing() -> None:
    # JSON lets a client send "\ud800", which UTF-8 cannot encode; the problem echoes it.
    response = problem_response(
        400,
        "Bad \ud800 detail",
        errors={"emails.0.\udfff": ["Unknown \ud800 field."]},
        extensions={"hint": ["\udbff"]},
    )
    text = response.get_data().decode("utf-8")
    body = json.loads(text)
    assert body["errors"] == {"emails.0.\\udfff": ["Unknown \\ud800 field."]}
    assert body["detail"] == "Bad \\ud800 detail"
    assert body["hint"] == ["\\udbff"]


def test_unknown_member_named_by_an_unpaired_surrogate_is_a_validation_problem(client) -> None:
    response = client.post(
        "/things",
        data=b'{"name": "a", "emails": [{"value": "v", "\\ud800": 1}], "\\udc00": 2}',
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["errors"] == {
        "emails.0.\\ud800": ["Unknown field."],
        "\\udc00": ["Unknown field."],
    }
