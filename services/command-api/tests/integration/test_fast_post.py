"""The WSGI fast path of ``POST /v1/contacts`` (``entrypoints.fast_post``) answers exactly as
the Flask path: the same status, headers (in order), body shape, log context, metrics samples,
queued message and pending status; and every request it does not serve itself (an invalid
body, past a limit, an ``Idempotency-Key``, another media type, SQS down) reaches Flask once,
counted once.

Each case runs against two apps on the same queue, one with the fast path (the default) and
one without (``fast_post=False``); each app has a Redis prefix of its own, so both count from
the same starting state.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import structlog
from flask import Flask, request

from command_api.entrypoints.app import create_app
from command_api.entrypoints.fast_post import FastContactCreate
from contacts_domain import DEFAULT_WORKSPACE, OperationStatus
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.redis_keys import operation_key
from support.auth import authorized

ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _pair(settings: Any, **limits: str) -> tuple[Flask, Flask]:
    """(fast app, Flask-only app), each on a Redis prefix of its own; the fast app records the
    ``/v1/`` requests its Flask path answered in ``flask_seen``."""
    prefix = f"{settings.redis_prefix}{uuid.uuid4().hex[:8]}"
    apps = []
    for fast in (True, False):
        update: dict[str, Any] = {"redis_prefix": f"{prefix}{'f' if fast else 's'}:"}
        update["fast_post"] = fast
        if limits:
            update["rate_limits"] = RateLimitSettings(**limits)
        apps.append(authorized(create_app(settings.model_copy(update=update))))
    fast_app, slow_app = apps
    assert _fast_path_in(fast_app)
    assert not _fast_path_in(slow_app)
    fast_app.flask_seen = []  # type: ignore[attr-defined]
    # First of the hooks: the guard and the body checks may answer before the others run.
    fast_app.before_request_funcs.setdefault(None, []).insert(
        0,
        lambda: _record(fast_app.flask_seen),  # type: ignore[attr-defined]
    )
    return fast_app, slow_app


def _fast_path_in(app: Flask) -> bool:
    """Whether ``FastContactCreate`` is in the app's WSGI chain (behind the body guard)."""
    wsgi: Any = app.wsgi_app
    for cell in getattr(wsgi, "__closure__", None) or ():
        if isinstance(cell.cell_contents, FastContactCreate):
            return True
    return isinstance(wsgi, FastContactCreate)


def _record(seen: list[str]) -> None:
    if request.path.startswith("/v1/"):
        seen.append(f"{request.method} {request.path}")


def _answer(app: Flask, **kwargs: Any) -> dict[str, Any]:
    structlog.contextvars.clear_contextvars()
    headers = {"X-Request-ID": "req-1", **kwargs.pop("headers", {})}
    response = app.test_client().post("/v1/contacts", headers=headers, **kwargs)
    context = dict(structlog.contextvars.get_contextvars())
    return {
        "status": response.status_code,
        # ids differ between two apps: compare the shape of each value, and Reset within 1 s
        "headers": [(k, _UUID.sub("<id>", v)) for k, v in response.headers.items()],
        "body": _UUID.sub("<id>", response.get_data(as_text=True)),
        "log_context": {k: _UUID.sub("<id>", str(v)) for k, v in context.items()},
        "json": response.get_json(silent=True),
    }


def _same(fast: Flask, slow: Flask, **kwargs: Any) -> dict[str, Any]:
    a = _answer(fast, **json.loads(json.dumps(kwargs)))
    b = _answer(slow, **kwargs)
    reset = "RateLimit-Reset"
    a_reset = dict(a["headers"]).get(reset)
    b_reset = dict(b["headers"]).get(reset)
    assert (a_reset is None) == (b_reset is None)
    if a_reset is not None:
        assert abs(int(a_reset) - int(b_reset)) <= 1
    assert a["status"] == b["status"]
    assert [(k, v) for k, v in a["headers"] if k != reset] == [
        (k, v) for k, v in b["headers"] if k != reset
    ]
    assert a["body"] == b["body"]
    assert a["log_context"] == b["log_context"]
    return a


def _samples(app: Flask) -> list[str]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(("http_requests_total{", "http_request_duration_seconds_count{"))
        or line.startswith(("sqs_publish_duration_seconds_count{", "commands_accepted_total{"))
    )


def test_a_plain_create_answers_queues_and_records_as_the_flask_path(
    command_settings, drain, redis_client
) -> None:
    fast, slow = _pair(command_settings, default="100/minute", workspace="1000/hour")

    answer = _same(fast, slow, json=ROSA)

    assert answer["status"] == 202
    assert fast.flask_seen == []  # type: ignore[attr-defined]
    assert answer["log_context"]["request_id"] == "req-1"
    assert answer["log_context"]["workspace"] == DEFAULT_WORKSPACE
    assert set(answer["log_context"]) >= {"operation_id", "contact_id", "event_id"}
    assert _samples(fast) == _samples(slow)
    first, second = drain()
    assert (first.task, first.envelope["type"], first.envelope["correlationid"]) == (
        second.task,
        second.envelope["type"],
        second.envelope["correlationid"],
    )
    assert {m.envelope["data"]["first_name"] for m in (first, second)} == {"Rosa"}
    body = answer["json"]
    raw = redis_client.get(
        operation_key(fast_prefix(fast), DEFAULT_WORKSPACE, body["operation_id"])
    )
    assert OperationStatus.from_dict(json.loads(raw)).status == "pending"


def fast_prefix(app: Flask) -> str:
    """The Redis prefix the fast app's operation store writes under."""
    operations = app.extensions["command_api"].context.operations
    return str(operations._prefix)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {}},
        {"json": {"first_name": "A", "x": 1}},
        {"json": [ROSA]},
        {"json": {"first_name": "A", "email": "not an email"}},
        {"data": "{", "content_type": "application/json"},
        {"data": '{"first_name": "A", "first_name": "B"}', "content_type": "application/json"},
        {"data": "", "content_type": "application/json"},
        {"data": json.dumps(ROSA), "content_type": "text/plain"},
        {"data": json.dumps(ROSA), "content_type": "application/json; charset=utf-8"},
        {"json": ROSA, "headers": {"Idempotency-Key": "fast-post-key"}},
        {"json": ROSA, "headers": {"Idempotency-Key": ""}},
        {"json": ROSA, "query_string": "x=1"},
        {"json": ROSA, "headers": {"Content-Encoding": "gzip"}},
        {"json": ROSA, "headers": {"Authorization": "Bearer nope"}},
        {"json": ROSA, "headers": {"Authorization": ""}},
        {"json": ROSA, "headers": {"X-Contacts-Workspace": "other"}},
    ],
)
def test_what_the_fast_path_does_not_serve_reaches_flask_once(
    command_settings, drain, kwargs
) -> None:
    fast, slow = _pair(command_settings, default="100/minute", workspace="1000/hour")

    answer = _same(fast, slow, **kwargs)

    assert fast.flask_seen == ["POST /v1/contacts"]  # type: ignore[attr-defined]
    assert _samples(fast) == _samples(slow)
    if answer["status"] == 202:  # queued by both (SQS drops a key's second as a duplicate)
        assert len(drain()) == (1 if "Idempotency-Key" in kwargs.get("headers", {}) else 2)


def test_past_a_limit_answers_429_counted_once(command_settings, drain) -> None:
    fast, slow = _pair(command_settings, default="2/minute", workspace="")

    answers = [_same(fast, slow, json=ROSA) for _ in range(3)]

    assert [a["status"] for a in answers] == [202, 202, 429]
    assert [dict(a["headers"])["RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert fast.flask_seen == ["POST /v1/contacts"]  # type: ignore[attr-defined]
    assert len(drain()) == 4


def test_sqs_down_is_the_flask_paths_503_and_nothing_is_pending(
    command_settings, redis_client, free_tcp_port
) -> None:
    closed_port = free_tcp_port  # nothing listens there
    settings = command_settings.model_copy(
        update={
            "sqs_endpoint_url": f"http://127.0.0.1:{closed_port}",
            "sqs_queue_url": f"http://127.0.0.1:{closed_port}/000000000000/q.fifo",
        }
    )
    fast, slow = _pair(settings, default="100/minute", workspace="1000/hour")

    answer = _same(fast, slow, json=ROSA)

    assert answer["status"] == 503
    assert fast.flask_seen == ["POST /v1/contacts"]  # type: ignore[attr-defined]
    assert _samples(fast) == _samples(slow)
    assert not redis_client.keys(f"{fast_prefix(fast)}op:*")
    # Without an X-Request-ID, the id the client gets is the one the log lines carry, though
    # the fast path made it and Flask answered (review of the merged POST work).
    structlog.contextvars.clear_contextvars()
    response = fast.test_client().post("/v1/contacts", json=ROSA)
    assert response.status_code == 503
    context = structlog.contextvars.get_contextvars()
    assert response.headers["X-Request-ID"] == context["request_id"]
