"""The WSGI fast path of ``GET|HEAD /v1/contacts/{id}`` (``entrypoints.fast_get``) answers
exactly as the Flask path: the same status, headers (in order), body, log context and metrics
samples, for hits, misses, HEAD, 304, 404, 429, 401, 403 and workspaces.

Each case runs against two apps on the same data, one with the fast path (the default) and one
without (``fast_get=False``); each app has a Redis prefix of its own, so both read and count
from the same starting state.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import structlog
from flask import request

from contacts_http.auth import ApiKeyEntry, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from query_api.entrypoints.fast_get import FastContactGet

WRITE_ONLY_KEY = new_api_key()
#: Headers whose values legitimately differ between two apps answering a second apart.
_RESET = "RateLimit-Reset"


@pytest.fixture
def pair(make_app, settings):
    """``pair(**rate_limits)`` → (fast app, Flask-only app), each on a Redis prefix of its own
    and with an extra API key that has only ``contacts:write``."""

    def make(failure_limit: str | None = None, **limits: str) -> tuple[Any, Any]:
        auth = settings.auth.model_copy(
            update={
                "api_keys": (
                    *settings.auth.api_keys,
                    ApiKeyEntry(hash_api_key(WRITE_ONLY_KEY), frozenset({scopes.WRITE})),
                ),
                "failure_limit": failure_limit or settings.auth.failure_limit,
            }
        )
        apps = []
        for fast in (True, False):
            update: dict[str, Any] = {
                "redis_prefix": f"{settings.redis_prefix}{'f' if fast else 's'}:",
                "fast_get": fast,
                "auth": auth,
            }
            if limits:
                update["rate_limits"] = RateLimitSettings(**limits)
            apps.append(make_app(settings.model_copy(update=update)))
        assert isinstance(apps[0].wsgi_app, FastContactGet)
        apps[0].flask_seen = []  # the contact requests the fast app's Flask path answered
        apps[0].before_request(lambda: _record(apps[0].flask_seen))
        assert not isinstance(apps[1].wsgi_app, FastContactGet)
        return apps[0], apps[1]

    return make


def _record(seen: list[str]) -> None:
    if request.path.startswith("/v1/"):
        seen.append(f"{request.method} {request.full_path.rstrip('?')}")


def _answer(app: Any, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    structlog.contextvars.clear_contextvars()
    response = app.test_client().open(
        path, method=method, headers={"X-Request-ID": "req-1", **headers}
    )
    header_list = [(k, v) for k, v in response.headers.items() if k != _RESET]
    return {
        "status": response.status_code,
        "headers": header_list,
        "reset": response.headers.get(_RESET),
        "body": response.get_data(),
        "log_context": dict(structlog.contextvars.get_contextvars()),
    }


def _same(fast: Any, slow: Any, method: str, path: str, headers: dict[str, str] | None = None):
    a = _answer(fast, method, path, headers or {})
    b = _answer(slow, method, path, headers or {})
    assert a["status"] == b["status"]
    assert a["headers"] == b["headers"]
    assert a["body"] == b["body"]
    assert a["log_context"] == b["log_context"]
    if a["reset"] is not None or b["reset"] is not None:
        assert abs(int(a["reset"]) - int(b["reset"])) <= 1
    return a


def _samples(app: Any) -> list[str]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(
            (
                "http_requests_total{",
                "contact_cache_lookups_total{",
                "auth_failure_limit_events_total{",
            )
        )
        or (line.startswith("http_request_duration_seconds_count{"))
    )


def test_hits_misses_head_and_304_answer_as_the_flask_path(pair, seed):
    fast, slow = pair()
    contact_id = seed.contact(first_name="Grace")
    path = f"/v1/contacts/{contact_id}"

    miss = _same(fast, slow, "GET", path)
    hit = _same(fast, slow, "GET", path)
    head = _same(fast, slow, "HEAD", path)
    not_modified = _same(fast, slow, "GET", path, {"If-None-Match": 'W/"1"'})
    head_304 = _same(fast, slow, "HEAD", path, {"If-None-Match": "*"})
    upper = _same(fast, slow, "GET", path.upper().replace("/V1/CONTACTS/", "/v1/contacts/"))
    traced = _same(
        fast,
        slow,
        "GET",
        path,
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    fresh_id = _answer(fast, "GET", path, {"X-Request-ID": "bad id!"})

    assert [miss["status"], hit["status"], head["status"]] == [200, 200, 200]
    assert dict(miss["headers"])["X-Cache"] == "miss"
    assert dict(hit["headers"])["X-Cache"] == "hit"
    assert b"Grace" in hit["body"]
    assert head["body"] == b""
    assert [not_modified["status"], head_304["status"]] == [304, 304]
    assert upper["status"] == 200
    assert traced["log_context"]["traceparent"].startswith("00-4bf92f")
    assert hit["log_context"] == {"request_id": "req-1", "workspace": "default"}
    # A request id that is not kept becomes a fresh uuid4 (as on the Flask path), echoed and
    # logged.
    fresh = dict(fresh_id["headers"])["X-Request-ID"]
    assert str(uuid.UUID(fresh)) == fresh
    assert fresh_id["log_context"]["request_id"] == fresh
    assert fast.flask_seen == []  # every one of them answered by the fast path
    _answer(slow, "GET", path, {"X-Request-ID": "bad id!"})  # keeps the metrics comparable
    assert _samples(fast) == _samples(slow)


def test_refusals_and_misses_of_the_fast_path_fall_back_to_the_flask_answers(pair, seed):
    fast, slow = pair(default="3/minute", workspace="")
    contact_id = seed.contact()
    unknown = f"/v1/contacts/{uuid.uuid4()}"

    cases = [
        ("GET", unknown, {}),  # 404, counted once
        ("GET", "/v1/contacts/not-a-uuid", {}),  # 404 before any read, counted
        ("GET", f"/v1/contacts/{contact_id}", {"Authorization": "Basic eDp5"}),  # 401
        ("GET", f"/v1/contacts/{contact_id}", {"Authorization": "Bearer nope"}),  # 401
        ("GET", f"/v1/contacts/{contact_id}", {"Authorization": f"Bearer {WRITE_ONLY_KEY}"}),
        ("GET", f"/v1/contacts/{contact_id}?fields=first_name", {}),  # Flask path, counted
        ("GET", f"/v1/contacts/{contact_id}", {}),  # the third: within the limit
        ("GET", f"/v1/contacts/{contact_id}", {}),  # 429
        ("HEAD", unknown, {}),  # 429
    ]
    statuses = [_same(fast, slow, *case)["status"] for case in cases]

    assert statuses == [404, 404, 401, 401, 403, 200, 429, 429, 429]
    # Every case went to Flask (the refused ones stop in the guard, before the recorder).
    refused = {2, 3, 4}
    expected = [f"{m} {p}" for i, (m, p, _) in enumerate(cases) if i not in refused]
    assert fast.flask_seen == expected
    assert _samples(fast) == _samples(slow)


def test_another_workspace_and_an_operator_naming_one_answer_as_the_flask_path(
    pair, seed, other_workspace
):
    fast, slow = pair()
    workspace, caller = other_workspace
    theirs = seed.contact(workspace=workspace, first_name="Other")
    ours = seed.contact()

    own = _same(fast, slow, "GET", f"/v1/contacts/{theirs}", caller)
    again = _same(fast, slow, "GET", f"/v1/contacts/{theirs}", caller)
    foreign = _same(fast, slow, "GET", f"/v1/contacts/{ours}", caller)
    operator = _same(
        fast, slow, "GET", f"/v1/contacts/{theirs}", {"X-Contacts-Workspace": workspace}
    )

    assert [own["status"], again["status"], foreign["status"]] == [200, 200, 404]
    assert again["log_context"]["workspace"] == workspace
    assert operator["status"] == 403  # the header needs contacts:admin
    assert _samples(fast) == _samples(slow)


def test_an_address_over_the_failure_limit_is_refused_by_the_guard_alone(pair, seed):
    # The fast path only looks at the failure limit: the guard refuses and counts
    # (``event="throttled"`` once per refused request, on both paths alike).
    fast, slow = pair(failure_limit="2/minute")
    path = f"/v1/contacts/{seed.contact()}"

    guesses = [_same(fast, slow, "GET", path, {"Authorization": "Bearer guess"}) for _ in range(2)]
    throttled = _same(fast, slow, "GET", path)  # the valid key, from the same address

    assert [g["status"] for g in guesses] == [401, 401]
    assert throttled["status"] == 429
    assert _samples(fast) == _samples(slow)
    assert 'auth_failure_limit_events_total{event="throttled"} 1.0' in _samples(fast)
