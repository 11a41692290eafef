"""X-Request-ID is taken from the client when safe, generated otherwise, and echoed."""

from __future__ import annotations

import logging
import uuid

from flask import Flask

from contacts_http import RequestIdLogFilter, current_request_id, init_request_id


def make_app() -> Flask:
    app = Flask("request-id-test")
    init_request_id(app)

    @app.get("/id")
    def show() -> dict:
        return {"id": current_request_id()}

    return app


def test_client_request_id_is_echoed_and_available() -> None:
    response = make_app().test_client().get("/id", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.get_json() == {"id": "abc-123"}


def test_missing_request_id_is_a_new_uuid4() -> None:
    response = make_app().test_client().get("/id")
    generated = response.headers["X-Request-ID"]
    assert uuid.UUID(generated).version == 4
    assert response.get_json() == {"id": generated}


def test_unsafe_request_id_is_replaced() -> None:
    response = make_app().test_client().get("/id", headers={"X-Request-ID": "a b\tevil"})
    assert uuid.UUID(response.headers["X-Request-ID"]).version == 4


def test_error_responses_carry_the_id() -> None:
    response = make_app().test_client().get("/missing", headers={"X-Request-ID": "r1"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "r1"


def test_outside_a_request_there_is_no_id() -> None:
    assert current_request_id() is None
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert RequestIdLogFilter().filter(record)
    assert record.request_id == "-"
