"""Request metrics by route template, ``/metrics``, and the log context of each request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from contacts_http import init_request_id
from contacts_http.observability import HttpMetrics, init_observability
from contacts_telemetry.logs import configure_logging, get_logger
from contacts_telemetry.metrics import MetricsRegistry

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("test-api", stream=stream)
    yield stream
    root.handlers[:], root.level = saved


def make_app() -> tuple[Flask, MetricsRegistry]:
    app = Flask(__name__)
    registry = MetricsRegistry()
    init_request_id(app)
    init_observability(app, HttpMetrics(registry))

    @app.get("/things/<uuid:thing_id>")
    def thing(thing_id: object) -> dict[str, str]:
        get_logger("test").info("serving a thing")
        return {"id": str(thing_id)}

    return app, registry


def test_requests_are_counted_by_route_template_and_status() -> None:
    app, registry = make_app()
    client = app.test_client()
    thing = "5d1b7a3e-8f7c-4b5e-9a34-3f9c2d6f1b20"
    for _ in range(2):
        assert client.get(f"/things/{thing}").status_code == 200
    assert client.get("/nowhere/secret@example.org").status_code == 404
    assert client.open("/things/x", method="BREW").status_code in (404, 405)
    sample = registry.registry.get_sample_value
    labels = {"method": "GET", "route": "/things/<uuid:thing_id>", "status": "200"}
    assert sample("http_requests_total", labels) == 2
    assert sample("http_request_duration_seconds_count", labels) == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert sample("http_requests_total", unmatched) == 1
    scrape = client.get("/metrics")
    # The exposition format's own media type, charset once (prometheus_client's constant).
    assert scrape.headers["Content-Type"].count("charset") == 1
    text = scrape.get_data(as_text=True)
    assert thing not in text
    assert "secret@example.org" not in text
    assert 'method="OTHER"' in text  # unknown methods do not become label values
    assert 'route="/metrics"' not in text  # scrapes are not counted


def test_each_request_logs_with_its_request_id_and_traceparent(logs: io.StringIO) -> None:
    app, _ = make_app()
    client = app.test_client()
    client.get(
        "/things/5d1b7a3e-8f7c-4b5e-9a34-3f9c2d6f1b20",
        headers={"X-Request-ID": "req-42", "traceparent": TRACEPARENT},
    )
    client.get("/things/5d1b7a3e-8f7c-4b5e-9a34-3f9c2d6f1b20", headers={"traceparent": "bad"})
    first, second = (json.loads(line) for line in logs.getvalue().splitlines())
    assert (first["request_id"], first["traceparent"]) == ("req-42", TRACEPARENT)
    assert first["service"] == "test-api"
    assert second["request_id"] != "req-42"  # the next request has its own context
    assert "traceparent" not in second  # a malformed header is dropped
