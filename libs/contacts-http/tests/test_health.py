"""/healthz never checks dependencies; /readyz runs them with a time bound."""

from __future__ import annotations

import threading
import time

from flask import Flask

from contacts_http import PROBLEM_JSON, health_blueprint, run_checks


def failing() -> None:
    raise ConnectionError("redis://secret@host refused")


def test_healthz_is_ok_even_when_dependencies_fail() -> None:
    app = Flask("h")
    app.register_blueprint(health_blueprint({"redis": failing}))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_ok_when_every_check_answers() -> None:
    app = Flask("h")
    app.register_blueprint(health_blueprint({"a": lambda: None, "b": lambda: True}))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"a": "ok", "b": "ok"}}


def test_readyz_503_with_retry_after_when_a_check_fails() -> None:
    app = Flask("h")
    app.register_blueprint(health_blueprint({"redis": failing}, retry_after_s=7))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["Retry-After"] == "7"
    assert response.get_json()["checks"] == {"redis": "ConnectionError"}
    assert b"secret" not in response.data


def test_a_hanging_check_is_abandoned_after_the_timeout() -> None:
    release = threading.Event()
    started = time.monotonic()
    results = run_checks({"slow": release.wait, "fast": lambda: None}, timeout_s=0.2)
    elapsed = time.monotonic() - started
    release.set()
    assert results == {"slow": "timed out", "fast": "ok"}
    assert elapsed < 1.0


def test_readyz_runs_the_preparation_outside_its_timeout() -> None:
    # Building a client can take longer than the whole probe's budget on a loaded machine.
    built: list[str] = []

    def build_slowly() -> None:
        time.sleep(0.5)
        built.append("client")

    def check() -> None:
        assert built == ["client"]

    app = Flask("h")
    app.register_blueprint(health_blueprint({"sqs": check}, timeout_s=0.2, prepare=[build_slowly]))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"sqs": "ok"}


def test_readyz_503_when_the_preparation_fails() -> None:
    def broken() -> None:
        raise ValueError("bad endpoint http://secret")

    app = Flask("h")
    app.register_blueprint(health_blueprint({"sqs": lambda: None}, prepare=[broken]))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"sqs": "ValueError"}
    assert b"secret" not in response.data
