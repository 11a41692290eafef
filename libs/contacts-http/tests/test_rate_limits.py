"""Rate limits against the real Redis: headers, 429 problems, per-caller counting, fail-open."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid

import pytest
import redis
from flask import Flask, jsonify
from flask_smorest import Blueprint
from redis.cluster import RedisCluster

from contacts_http import PROBLEM_JSON, ProblemApi, health_blueprint, openapi_config
from contacts_http.auth import (
    WORKSPACE_HEADER,
    ApiKeyEntry,
    AuthPolicy,
    AuthSettings,
    hash_api_key,
    install_auth,
    install_rate_limits,
    new_api_key,
    scopes,
)
from contacts_http.rate_limits import RateLimitSettings, RateLimitStorage
from contacts_infra.settings import RedisSettings
from contacts_infra.settings import SettingsError as ConfigError
from contacts_telemetry.metrics import MetricsRegistry
from support.processes import free_port
from support.redis_cluster import redis_cluster

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE, BOB = new_api_key(), new_api_key()
#: Two keys of the workspace ``acme`` and an operator (of ``default``).
ACME_1, ACME_2, OPERATOR = new_api_key(), new_api_key(), new_api_key()
POLICY = AuthPolicy(realm="limited", default_scope=scopes.READ)


def make_app(
    limits: RateLimitSettings,
    prefix: str,
    redis_url: str = REDIS_URL,
    auth: bool = True,
    *,
    cluster: bool = False,
) -> Flask:
    app = Flask("limited")
    app.config.update(openapi_config("Limited"))
    api = ProblemApi(app)
    settings = AuthSettings(
        disabled=not auth,
        api_keys=(
            ApiKeyEntry(hash_api_key(ALICE), scopes.ALL),
            ApiKeyEntry(hash_api_key(BOB), scopes.ALL),
            ApiKeyEntry(hash_api_key(ACME_1), scopes.ALL, "acme"),
            ApiKeyEntry(hash_api_key(ACME_2), scopes.ALL, "acme"),
            ApiKeyEntry(hash_api_key(OPERATOR), scopes.ALL | {scopes.ADMIN}),
        ),
    )
    install_auth(app, api, settings, POLICY, metrics=MetricsRegistry())
    blp = Blueprint("things", __name__, url_prefix="/v1/things")

    @blp.route("", methods=["GET"])
    def list_things():  # type: ignore[no-untyped-def]
        return jsonify(items=[])

    @blp.route("/<thing_id>", methods=["GET"])
    def get_thing(thing_id: str):  # type: ignore[no-untyped-def]
        return jsonify(id=thing_id)

    api.register_blueprint(blp)
    app.register_blueprint(health_blueprint({}))
    storage = RateLimitStorage.on_redis(
        RedisSettings(redis_url=redis_url, redis_cluster_mode=cluster),
        client_name="rate-limit-test",
        key_prefix=prefix,
    )
    install_rate_limits(app, limits, storage, POLICY)
    return app


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}rl{uuid.uuid4().hex[:8]}"


def as_(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def test_headers_count_down_and_the_limit_is_a_429_problem_with_retry_after(
    prefix: str, redis_client: redis.Redis
) -> None:
    client = make_app(RateLimitSettings(default="3/minute"), prefix).test_client()
    seen = []
    for _ in range(3):
        response = client.get("/v1/things", headers=as_(ALICE))
        assert response.status_code == 200
        assert "Retry-After" not in response.headers
        seen.append(response.headers["RateLimit-Remaining"])
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    assert seen == ["2", "1", "0"]
    refused = client.get("/v1/things", headers=as_(ALICE))
    assert refused.status_code == 429
    assert refused.mimetype == PROBLEM_JSON
    assert refused.get_json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert not any(name.startswith("X-Internal") for name, _ in refused.headers.items())
    assert redis_client.keys(f"{prefix}:*"), "the counters live in Redis under the prefix"


def test_each_caller_and_each_route_count_separately(prefix: str) -> None:
    client = make_app(RateLimitSettings(default="1/minute"), prefix).test_client()
    assert client.get("/v1/things", headers=as_(ALICE)).status_code == 200
    assert client.get("/v1/things", headers=as_(ALICE)).status_code == 429
    assert client.get("/v1/things", headers=as_(BOB)).status_code == 200
    assert client.get("/v1/things/1", headers=as_(ALICE)).status_code == 200


def test_processes_share_the_counters_through_redis(prefix: str) -> None:
    one = make_app(RateLimitSettings(default="2/minute"), prefix).test_client()
    two = make_app(RateLimitSettings(default="2/minute"), prefix).test_client()
    assert one.get("/v1/things", headers=as_(ALICE)).status_code == 200
    assert two.get("/v1/things", headers=as_(ALICE)).status_code == 200
    assert one.get("/v1/things", headers=as_(ALICE)).status_code == 429


def test_a_route_override_replaces_the_default(prefix: str) -> None:
    limits = RateLimitSettings(default="1/minute", routes=(("things.get_thing", "3/minute"),))
    client = make_app(limits, prefix).test_client()
    assert [client.get("/v1/things/1", headers=as_(ALICE)).status_code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]
    assert client.get("/v1/things", headers=as_(ALICE)).headers["RateLimit-Limit"] == "1"


def test_an_override_of_an_unknown_route_stops_the_start_up(prefix: str) -> None:
    with pytest.raises(ValueError, match=r"things\.nope"):
        make_app(RateLimitSettings(routes=(("things.nope", "1/minute"),)), prefix)


def test_open_paths_and_refused_requests_are_not_limited(prefix: str) -> None:
    client = make_app(RateLimitSettings(default="1/minute"), prefix).test_client()
    for _ in range(3):
        health = client.get("/healthz")
        assert health.status_code == 200
        assert "RateLimit-Limit" not in health.headers
        assert client.get("/v1/things").status_code == 401


def test_without_authentication_the_remote_address_is_the_caller(prefix: str) -> None:
    client = make_app(RateLimitSettings(default="1/minute"), prefix, auth=False).test_client()
    assert client.get("/v1/things").status_code == 200
    assert client.get("/v1/things", headers=as_(BOB)).status_code == 429


def test_redis_down_fails_open_quickly_and_logs(prefix: str, caplog) -> None:  # type: ignore[no-untyped-def]
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = make_app(RateLimitSettings(default="2/minute"), prefix, redis_url=closed).test_client()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        statuses = [client.get("/v1/things", headers=as_(ALICE)).status_code for _ in range(2)]
    assert statuses == [200, 200]
    assert time.monotonic() - started < 2
    assert "Rate limit storage unreachable" in caplog.text
    # Limits still hold per process, in memory, while Redis is away.
    assert client.get("/v1/things", headers=as_(ALICE)).status_code == 429


def test_redis_down_logs_one_warning_not_a_traceback_per_request(prefix: str, caplog) -> None:  # type: ignore[no-untyped-def]
    # A port that accepts connections and never answers: every request in flight when the
    # limiter first sees Redis fail fails with it (issue 16: a traceback each).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    app = make_app(RateLimitSettings(default="1000/minute"), prefix, redis_url=url)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def requests() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.extend(client.get("/v1/things", headers=as_(ALICE)).status_code for _ in range(5))

    try:
        with caplog.at_level(logging.DEBUG, logger="flask-limiter"):
            threads = [threading.Thread(target=requests) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        silent.close()
    assert statuses == [200] * 40
    records = [r for r in caplog.records if r.name == "flask-limiter"]
    assert [(r.levelname, r.exc_info) for r in records] == [("WARNING", None)]
    assert "Rate limit storage unreachable (Redis)" in records[0].getMessage()


def test_disabled_limits_install_nothing(prefix: str) -> None:
    client = make_app(RateLimitSettings(enabled=False), prefix).test_client()
    response = client.get("/v1/things", headers=as_(ALICE))
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers


def test_settings_parse_and_refuse_bad_limits() -> None:
    settings = RateLimitSettings.from_env(
        {
            "RATE_LIMIT_ENABLED": "false",
            "RATE_LIMIT_DEFAULT": "10/second;100/minute",
            "RATE_LIMIT_ROUTES": '{"contacts.list_contacts": "5 per minute"}',
        }
    )
    assert settings == RateLimitSettings(
        enabled=False,
        default="10/second;100/minute",
        routes=(("contacts.list_contacts", "5 per minute"),),
    )
    assert RateLimitSettings.from_env({}) == RateLimitSettings()
    assert RateLimitSettings().workspace == "6000/minute"
    for off in ("", "none", " None "):
        assert RateLimitSettings.from_env({"RATE_LIMIT_WORKSPACE_DEFAULT": off}).workspace == ""
    assert (
        RateLimitSettings.from_env({"RATE_LIMIT_WORKSPACE_DEFAULT": "50/second"}).workspace
        == "50/second"
    )
    for environ, name in (
        ({"RATE_LIMIT_DEFAULT": "lots"}, "RATE_LIMIT_DEFAULT"),
        ({"RATE_LIMIT_ROUTES": "[1]"}, "RATE_LIMIT_ROUTES"),
        ({"RATE_LIMIT_ROUTES": "{"}, "RATE_LIMIT_ROUTES"),
        ({"RATE_LIMIT_ROUTES": '{"a.b": "often"}'}, "RATE_LIMIT_ROUTES"),
        ({"RATE_LIMIT_ENABLED": "sometimes"}, "RATE_LIMIT_ENABLED"),
        ({"RATE_LIMIT_WORKSPACE_DEFAULT": "plenty"}, "RATE_LIMIT_WORKSPACE_DEFAULT"),
    ):
        with pytest.raises(ConfigError, match=name):
            RateLimitSettings.from_env(environ)


def test_a_redis_that_never_answers_costs_one_socket_timeout_then_nothing(prefix: str) -> None:
    with socket.socket() as silent:  # the kernel completes connections; nothing ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        app = make_app(RateLimitSettings(default="100/minute"), prefix, redis_url=url)
        timings = []
        for _ in range(5):
            started = time.monotonic()
            response = app.test_client().get("/v1/things", headers=as_(ALICE))
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
    assert timings[0] < 1.5, "bounded by the socket timeout (0.25 s), not retried"
    assert max(timings[1:]) < 0.2, "then in-memory counters until Redis is tried again"


# --- per workspace ------------------------------------------------------------------------------


def test_a_workspace_limit_counts_every_key_and_route_of_the_workspace(
    prefix: str, redis_client: redis.Redis
) -> None:
    client = make_app(RateLimitSettings(default="10/minute", workspace="3/minute"), prefix)
    client = client.test_client()
    statuses = [
        client.get("/v1/things", headers=as_(ACME_1)).status_code,
        client.get("/v1/things/1", headers=as_(ACME_2)).status_code,
        client.get("/v1/things", headers=as_(ACME_2)).status_code,
    ]
    assert statuses == [200, 200, 200]

    refused = client.get("/v1/things/2", headers=as_(ACME_1))
    assert refused.status_code == 429
    assert refused.mimetype == PROBLEM_JSON
    assert "workspace" in refused.get_json()["detail"]
    assert "at most 3/minute" in refused.get_json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    # The other workspace, and the per-key limits of each key, are untouched.
    assert client.get("/v1/things", headers=as_(ALICE)).status_code == 200
    assert client.get("/v1/things", headers=as_(BOB)).status_code == 200
    workspace_keys = redis_client.keys(f"{prefix}*ws:acme*")
    assert workspace_keys, "the workspace's counter lives in the same Redis"


def test_the_per_key_limit_still_holds_under_the_workspace_limit_and_says_so(
    prefix: str,
) -> None:
    client = make_app(RateLimitSettings(default="2/minute", workspace="100/minute"), prefix)
    client = client.test_client()
    assert [client.get("/v1/things", headers=as_(ACME_1)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    refused = client.get("/v1/things", headers=as_(ACME_1))
    assert "caller" in refused.get_json()["detail"]
    assert "at most 2/minute" in refused.get_json()["detail"]
    assert client.get("/v1/things", headers=as_(ACME_2)).status_code == 200


def test_an_operator_counts_against_the_workspace_it_names(prefix: str) -> None:
    client = make_app(RateLimitSettings(default="10/minute", workspace="2/minute"), prefix)
    client = client.test_client()
    assert client.get("/v1/things", headers=as_(ACME_1)).status_code == 200
    named = as_(OPERATOR, **{WORKSPACE_HEADER: "acme"})
    assert client.get("/v1/things", headers=named).status_code == 200
    assert client.get("/v1/things", headers=named).status_code == 429
    assert client.get("/v1/things", headers=as_(ACME_2)).status_code == 429
    # Without the header the operator is in its own workspace, whose counter is apart.
    assert client.get("/v1/things", headers=as_(OPERATOR)).status_code == 200


def test_processes_share_the_workspace_counter_through_redis(prefix: str) -> None:
    limits = RateLimitSettings(default="10/minute", workspace="2/minute")
    one = make_app(limits, prefix).test_client()
    two = make_app(limits, prefix).test_client()
    assert one.get("/v1/things", headers=as_(ACME_1)).status_code == 200
    assert two.get("/v1/things", headers=as_(ACME_2)).status_code == 200
    assert one.get("/v1/things/1", headers=as_(ACME_2)).status_code == 429


def test_a_workspace_limit_turned_off_leaves_the_per_key_limits(prefix: str) -> None:
    client = make_app(RateLimitSettings(default="3/minute", workspace=""), prefix).test_client()
    assert [client.get("/v1/things", headers=as_(k)).status_code for k in (ACME_1, ACME_2)] * 2 == [
        200
    ] * 4
    assert [client.get("/v1/things/1", headers=as_(ACME_1)).status_code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]


def test_without_authentication_the_named_workspace_is_counted_and_a_bad_name_never_fails_open(
    prefix: str, caplog
) -> None:  # type: ignore[no-untyped-def]
    client = make_app(
        RateLimitSettings(default="10/minute", workspace="1/minute"), prefix, auth=False
    ).test_client()
    acme = {WORKSPACE_HEADER: "acme"}
    assert client.get("/v1/things", headers=acme).status_code == 200
    assert client.get("/v1/things", headers=acme).status_code == 429
    assert client.get("/v1/things").status_code == 200
    with caplog.at_level(logging.WARNING):
        client.get("/v1/things", headers={WORKSPACE_HEADER: "Not A Slug"})
    assert "falling back to in-memory" not in caplog.text


def test_counters_live_in_a_redis_cluster_in_cluster_mode(
    prefix: str, redis_cluster_url: str
) -> None:
    limits = RateLimitSettings(default="2/minute", workspace="3/minute")
    one = make_app(limits, prefix, redis_cluster_url, cluster=True).test_client()
    two = make_app(limits, prefix, redis_cluster_url, cluster=True).test_client()
    assert one.get("/v1/things", headers=as_(ALICE)).status_code == 200
    assert two.get("/v1/things", headers=as_(ALICE)).status_code == 200
    refused = one.get("/v1/things", headers=as_(ALICE))
    assert refused.status_code == 429, "the two apps share the caller's counter"
    assert refused.headers["RateLimit-Remaining"] == "0"
    # The workspace limit: counted across callers and routes, in the cluster too.
    assert one.get("/v1/things", headers=as_(ACME_1)).status_code == 200
    assert two.get("/v1/things/1", headers=as_(ACME_2)).status_code == 200
    assert one.get("/v1/things/2", headers=as_(ACME_2)).status_code == 200
    over = two.get("/v1/things/3", headers=as_(ACME_1))
    assert over.status_code == 429
    assert "workspace" in over.get_json()["detail"]
    with RedisCluster.from_url(redis_cluster_url, socket_timeout=2) as cluster:
        assert list(cluster.scan_iter(match=f"{prefix}:*")), "the counters are in the cluster"


def test_a_stopped_cluster_fails_open_onto_in_memory_counters(prefix: str, caplog) -> None:  # type: ignore[no-untyped-def]
    with redis_cluster(primaries=3) as ports:
        url = f"redis://127.0.0.1:{ports[0]}/0"
        app = make_app(
            RateLimitSettings(default="2/minute"), prefix, url, cluster=True
        ).test_client()
        assert app.get("/v1/things", headers=as_(ALICE)).status_code == 200
    with caplog.at_level(logging.WARNING):
        statuses = [app.get("/v1/things", headers=as_(ALICE)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429], "in memory, per process, from nothing"
    assert "Rate limit storage unreachable" in caplog.text
