"""The limit on refused tokens per client address (issue 14, item 3): past it, tokens from the
address are answered 429 unchecked; other addresses and valid callers are untouched."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify
from flask_smorest import Blueprint
from prometheus_client.parser import text_string_to_metric_families

from contacts_http import PROBLEM_JSON, ProblemApi, health_blueprint, openapi_config
from contacts_http.auth import (
    AuthPolicy,
    AuthSettings,
    AuthUnavailable,
    install_auth,
    scopes,
)
from contacts_http.auth.failure_limit import (
    ADDRESS_MEMO_SIZE,
    AuthFailureLimiter,
    AuthFailureMetrics,
)
from contacts_infra.settings import SettingsError
from contacts_telemetry.logs import configure_logging
from contacts_telemetry.metrics import MetricsRegistry
from support.auth import CountingAuthenticator

GOOD = "good-token"
POLICY = AuthPolicy(realm="test-api", default_scope=scopes.WRITE)
ATTACKER, OTHER = "198.51.100.7", "203.0.113.9"


def make_app(
    authenticator: CountingAuthenticator, registry: MetricsRegistry, **settings: object
) -> Flask:
    app = Flask("failure-limited")
    app.config.update(openapi_config("Failure-limited"))
    api = ProblemApi(app)
    install_auth(
        app,
        api,
        AuthSettings(**settings),  # type: ignore[arg-type]
        POLICY,
        metrics=registry,
        authenticator=authenticator,
    )
    blp = Blueprint("things", __name__, url_prefix="/v1/things")

    @blp.route("", methods=["POST"])
    def write_thing():  # type: ignore[no-untyped-def]
        return jsonify(ok=True), 202

    api.register_blueprint(blp)
    app.register_blueprint(health_blueprint({}))
    return app


def post(app: Flask, token: str | None, address: str, **headers: str):  # type: ignore[no-untyped-def]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return app.test_client().post(
        "/v1/things", headers=headers, environ_base={"REMOTE_ADDR": address}
    )


def events(registry: MetricsRegistry, event: str) -> float:
    """``auth_failure_limit_events_total{event}`` as exposed (a series not yet created: 0)."""
    for family in text_string_to_metric_families(registry.render().decode()):
        for metric in family.samples:
            if metric.name == "auth_failure_limit_events_total" and metric.labels == {
                "event": event
            }:
                return metric.value
    return 0.0


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("test-api", stream=stream)
    yield stream
    root.handlers[:], root.level = saved


def test_past_the_limit_tokens_are_429_unchecked(logs: io.StringIO) -> None:
    fake, registry = CountingAuthenticator(GOOD), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="5/minute")

    statuses = [post(app, f"guess-{n}", ATTACKER).status_code for n in range(5)]
    assert statuses == [401] * 5
    assert fake.calls == 5

    refused = post(app, "guess-6", ATTACKER)
    assert refused.status_code == 429
    assert refused.mimetype == PROBLEM_JSON
    assert refused.get_json()["type"] == "urn:contacts:problem:too-many-auth-failures"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Even the right token is not looked at from that address: checking it is the cost.
    assert post(app, GOOD, ATTACKER).status_code == 429
    assert fake.calls == 5

    assert events(registry, "failure") == 5
    assert events(registry, "throttled") == 2
    assert events(registry, "limit_reached") == 1

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    reached = [line for line in lines if line["event"].startswith("auth failure limit reached")]
    assert len(reached) == 1, "one line per address per window, not one per refusal"
    assert reached[0]["client_ip"] == ATTACKER
    assert reached[0]["limit"] == "5/minute"
    assert "guess" not in logs.getvalue()


def test_other_addresses_and_valid_callers_are_unaffected() -> None:
    fake, registry = CountingAuthenticator(GOOD), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="3/minute")
    for n in range(4):
        post(app, f"guess-{n}", ATTACKER)
    assert post(app, GOOD, ATTACKER).status_code == 429

    assert [post(app, GOOD, OTHER).status_code for _ in range(10)] == [202] * 10
    # Successes do not count: the other address still has its three failures.
    assert [post(app, "bad", OTHER).status_code for _ in range(4)] == [401, 401, 401, 429]


@pytest.mark.parametrize("token", [None, "", "   "], ids=["no-header", "bearer", "bearer-spaces"])
def test_requests_without_a_token_are_not_counted(token: str | None) -> None:
    fake, registry = CountingAuthenticator(GOOD), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="2/minute")
    for _ in range(5):
        assert post(app, token, ATTACKER).status_code == 401
    assert post(app, GOOD, ATTACKER).status_code == 202
    assert events(registry, "failure") == 0
    assert fake.calls == 1


def test_an_unavailable_provider_is_not_a_client_failure() -> None:
    fake, registry = CountingAuthenticator(GOOD, AuthUnavailable("JWKS down")), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="2/minute")
    assert [post(app, "a.b.c", ATTACKER).status_code for _ in range(4)] == [503] * 4
    assert fake.calls == 4


def test_the_address_may_try_again_once_the_window_moves_on() -> None:
    fake, registry = CountingAuthenticator(GOOD), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="2/second")
    assert [post(app, "bad", ATTACKER).status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(1.1)
    assert post(app, GOOD, ATTACKER).status_code == 202


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    fake, registry = CountingAuthenticator(GOOD), MetricsRegistry()
    app = make_app(fake, registry, failure_limit="2/minute", trusted_proxies=("10.0.0.0/8",))
    # An untrusted peer cannot spread its failures over invented addresses.
    codes = [post(app, "bad", ATTACKER, **{"X-Forwarded-For": f"192.0.2.{n}"}) for n in range(3)]
    assert [c.status_code for c in codes] == [401, 401, 429]
    # Behind a trusted proxy, each client counts for itself, whatever it puts in the header.
    via_proxy = {"X-Forwarded-For": f"1.2.3.4, {ATTACKER}"}
    assert post(app, "bad", "10.1.2.3", **via_proxy).status_code == 429
    assert post(app, GOOD, "10.1.2.3", **{"X-Forwarded-For": OTHER}).status_code == 202


def test_client_address_rules() -> None:
    limiter = AuthFailureLimiter(
        "1/minute",
        AuthFailureMetrics(MetricsRegistry()),
        trusted_proxies=("10.0.0.0/8", "fd00::1"),
    )
    assert limiter.client_address("192.0.2.1", "203.0.113.5") == "192.0.2.1"
    assert limiter.client_address("10.0.0.2", "203.0.113.5, 10.0.0.9") == "203.0.113.5"
    assert limiter.client_address("10.0.0.2", "not-an-ip, 10.0.0.9") == "10.0.0.9"
    assert limiter.client_address("fd00::1", "2001:db8:1:2:3::7") == "2001:db8:1:2::/64"
    assert limiter.client_address("2001:db8::1", None) == "2001:db8::/64"
    assert limiter.client_address("::ffff:192.0.2.1", None) == "192.0.2.1"
    assert limiter.client_address(None, None) == "unknown"


def test_remembered_client_addresses_are_bounded_and_stay_right() -> None:
    limiter = AuthFailureLimiter(
        "1/minute", AuthFailureMetrics(MetricsRegistry()), trusted_proxies=("10.0.0.0/8",)
    )
    # A client behind the proxy can send any X-Forwarded-For: one remembered pair each.
    for n in range(ADDRESS_MEMO_SIZE + 10):
        hop = f"198.51.{n // 256 % 256}.{n % 256}"
        assert limiter.client_address("10.0.0.2", f"{hop}, 10.0.0.9") == hop
        assert len(limiter._addresses) <= ADDRESS_MEMO_SIZE
    assert limiter.client_address("10.0.0.2", "203.0.113.5, 10.0.0.9") == "203.0.113.5"
    assert limiter.client_address("10.0.0.2", "203.0.113.5, 10.0.0.9") == "203.0.113.5"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AUTH_FAILURE_LIMIT", "twenty a minute"), ("AUTH_TRUSTED_PROXIES", "10.0.0.0/8,proxy")],
)
def test_settings_name_a_malformed_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        AuthSettings.from_env({variable: value})


def test_settings_defaults_and_values() -> None:
    assert AuthSettings().failure_limit == "20/minute"
    read = AuthSettings.from_env(
        {"AUTH_FAILURE_LIMIT": "5/second;50/minute", "AUTH_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}
    )
    assert (read.failure_limit, read.trusted_proxies) == (
        "5/second;50/minute",
        ("10.0.0.0/8", "::1"),
    )
