"""``GET /v1/contacts/{id}`` counts its rate limits in the same Redis call as its cache read
(``contacts_http.rate_limits.InlineRateLimits``), and ``GET /v1/contacts`` (lists and searches)
and ``GET /v1/operations/{id}`` in one Redis call before their view
(``query_api.entrypoints.app.COUNTED_FIRST``); all answer
exactly as the other routes' limiter (flask-limiter; ``/v1/contacts/changes`` here):
``RateLimit-*`` headers, a 429 problem with ``Retry-After``, a workspace counter shared with
every route, per-process counting while Redis is down."""

from __future__ import annotations

import uuid

from contacts_http.rate_limits import RateLimitSettings


def _limited(settings, **limits):
    return settings.model_copy(update={"rate_limits": RateLimitSettings(**limits)})


def test_the_hot_get_counts_down_then_answers_429_with_retry_after(
    make_app, settings, seed, redis_client, prefix
):
    client = make_app(_limited(settings, default="3/minute", workspace="")).test_client()
    contact_id = seed.contact()

    answers = [client.get(f"/v1/contacts/{contact_id}") for _ in range(3)]
    refused = client.get(f"/v1/contacts/{contact_id}")

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["X-Cache"] for a in answers] == ["miss", "hit", "hit"]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert all(0 < int(a.headers["RateLimit-Reset"]) <= 60 for a in answers)
    assert all("Retry-After" not in a.headers for a in answers)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert "this caller to this route" in refused.get_json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert redis_client.keys(f"{prefix}ratelimit:query-api:*contacts.get_contact*")


def test_an_id_that_is_no_uuid_counts_too(make_app, settings):
    client = make_app(_limited(settings, default="1/minute", workspace="")).test_client()

    assert client.get("/v1/contacts/not-a-uuid").status_code == 404
    assert client.get("/v1/contacts/not-a-uuid").status_code == 429


def test_the_workspace_counter_is_shared_with_the_other_routes(make_app, settings, seed):
    client = make_app(_limited(settings, default="100/minute", workspace="4/minute")).test_client()
    contact_id = seed.contact()

    assert client.get("/v1/contacts/changes").status_code == 200
    assert client.get(f"/v1/contacts/{contact_id}").status_code == 200
    assert client.get("/v1/contacts?limit=1").status_code == 200
    assert client.get("/v1/contacts/changes").status_code == 200
    refused = client.get(f"/v1/contacts/{contact_id}")

    assert refused.status_code == 429
    assert "in this workspace" in refused.get_json()["detail"]
    assert client.get("/v1/contacts?limit=1").status_code == 429
    assert client.get("/v1/contacts/changes").status_code == 429


def test_the_list_counts_down_then_answers_429_like_the_other_routes(
    make_app, settings, redis_client, prefix
):
    client = make_app(_limited(settings, default="3/minute", workspace="")).test_client()

    for path in ("/v1/contacts?limit=1&q=zz", "/v1/contacts/changes"):
        answers = [client.get(path) for _ in range(3)]
        refused = client.get(path)

        assert [a.status_code for a in answers] == [200, 200, 200], path
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"], path
        assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}, path
        assert all(0 < int(a.headers["RateLimit-Reset"]) <= 60 for a in answers), path
        assert all("Retry-After" not in a.headers for a in answers), path
        assert refused.status_code == 429, path
        assert refused.mimetype == "application/problem+json", path
        assert refused.get_json()["detail"] == (
            "Too many requests from this caller to this route (at most 3/minute)."
        )
        assert 1 <= int(refused.headers["Retry-After"]) <= 60, path
        assert refused.headers["RateLimit-Remaining"] == "0", path
    assert redis_client.keys(f"{prefix}ratelimit:query-api:*contacts.list_contacts*")


def test_the_operation_status_counts_down_then_answers_429_like_the_other_routes(
    make_app, settings, redis_client, prefix
):
    client = make_app(_limited(settings, default="2/minute", workspace="")).test_client()
    path = f"/v1/operations/{uuid.uuid4()}"

    answers = [client.get(path) for _ in range(2)]
    refused = client.get(path)

    assert [a.status_code for a in answers] == [404, 404]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["1", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"2"}
    assert refused.status_code == 429
    assert refused.get_json()["detail"] == (
        "Too many requests from this caller to this route (at most 2/minute)."
    )
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert redis_client.keys(f"{prefix}ratelimit:query-api:*operations.get_operation*")


def test_with_redis_down_the_list_limit_holds_per_process(make_app, settings, refused_port):
    down = _limited(settings, default="2/minute", workspace="").model_copy(
        update={"redis_url": f"redis://127.0.0.1:{refused_port}/0"}
    )
    client = make_app(down).test_client()

    first, second, third = (client.get("/v1/contacts?limit=1&q=zz") for _ in range(3))

    # The database answers the list; only the counters' Redis is away.
    assert [first.status_code, second.status_code] == [200, 200]
    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == [
        "1",
        "0",
    ]
    assert third.status_code == 429
    assert "Retry-After" in third.headers


def test_with_redis_down_the_limit_holds_per_process(make_app, settings, refused_port):
    down = _limited(settings, default="2/minute", workspace="").model_copy(
        update={"redis_url": f"redis://127.0.0.1:{refused_port}/0"}
    )
    client = make_app(down).test_client()
    path = f"/v1/contacts/{uuid.uuid4()}"

    first, second, third = (client.get(path) for _ in range(3))

    assert [first.status_code, second.status_code] == [404, 404]
    assert first.headers["X-Cache"] == "bypass"
    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == [
        "1",
        "0",
    ]
    assert third.status_code == 429
    assert "Retry-After" in third.headers


def test_with_several_limits_the_headers_are_the_smallest_windows_like_other_routes(
    make_app, settings, seed
):
    client = make_app(
        _limited(settings, default="100/minute;5/second", workspace="1000/hour")
    ).test_client()
    contact_id = seed.contact()

    hot = client.get(f"/v1/contacts/{contact_id}")
    listed = client.get("/v1/contacts?limit=1")
    changes = client.get("/v1/contacts/changes")

    assert (
        hot.headers["RateLimit-Limit"]
        == listed.headers["RateLimit-Limit"]
        == changes.headers["RateLimit-Limit"]
        == "5"
    )
    assert hot.headers["RateLimit-Remaining"] == "4"
    assert listed.headers["RateLimit-Remaining"] == changes.headers["RateLimit-Remaining"] == "4"
