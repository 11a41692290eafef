"""Authentication, scopes, caching headers and CORS of the query API (issue 7, items 1, 2, 7)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from contacts_http import PROBLEM_JSON
from contacts_http.auth import AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from contacts_http.repeated_fields import REPEATED_FIELDS
from contacts_telemetry.metrics import MetricsRegistry
from query_api.entrypoints.app import create_app
from query_api.settings import Settings, SettingsError
from support.auth import CountingAuthenticator

READER, WRITER = new_api_key(), new_api_key()
AUTH = AuthSettings(
    api_keys=(
        (hash_api_key(READER), frozenset({scopes.READ})),
        (hash_api_key(WRITER), frozenset({scopes.WRITE})),
    )
)
FRONTEND = "https://app.example.com"


@pytest.fixture
def make(contacts, cache, statuses, outcomes) -> Any:
    def build(**settings: Any) -> Flask:
        settings = {"auth": AUTH, **settings}
        return create_app(
            Settings(rate_limits=RateLimitSettings(enabled=False), **settings),
            contacts=contacts,
            cache=cache,
            statuses=statuses,
            outcomes=outcomes,
            required_checks={},
            optional_checks={},
        )

    return build


@pytest.fixture
def stored(contacts, make_record):
    record = make_record(version=3)
    contacts.add(record)
    return record


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_read_key_reads_with_etag_caching_that_varies_by_authorization(make, stored) -> None:
    client = make().test_client()
    url = f"/v1/contacts/{stored.contact_id}"
    response = client.get(url, headers=bearer(READER))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["ETag"] == '"3"'
    assert "Authorization" in response.headers["Vary"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(url, headers={**bearer(READER), "If-None-Match": '"3"'})
    assert again.status_code == 304
    assert "Authorization" in again.headers["Vary"]
    listing = client.get("/v1/contacts", headers=bearer(READER))
    assert listing.headers["Cache-Control"] == "private, no-store"
    assert "Authorization" in listing.headers["Vary"]


def test_no_token_is_401_and_a_write_only_key_is_403(make, stored) -> None:
    client = make().test_client()
    url = f"/v1/contacts/{stored.contact_id}"
    missing = client.get(url)
    assert missing.status_code == 401
    assert missing.mimetype == PROBLEM_JSON
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="contacts-query-api"'
    assert missing.headers["Cache-Control"] == "no-store"
    assert "ETag" not in missing.headers
    for path in (url, "/v1/contacts", "/v1/contacts/changes", "/v1/operations/x"):
        forbidden = client.get(path, headers=bearer(WRITER))
        assert forbidden.status_code == 403, path
        assert 'scope="contacts:read"' in forbidden.headers["WWW-Authenticate"]
    assert client.head(url).status_code == 401


def test_two_authorization_field_lines_are_a_400_naming_the_field(make, stored) -> None:
    # What gunicorn's worker reports for a request with two Authorization lines
    # (contacts_http.repeated_fields); the hot GET's fast path leaves it to the guard.
    client = make().test_client()
    repeated = {REPEATED_FIELDS: frozenset({"AUTHORIZATION"})}
    for path in (f"/v1/contacts/{stored.contact_id}", "/v1/contacts"):
        answer = client.get(path, headers=bearer(READER), environ_overrides=repeated)
        assert answer.status_code == 400, path
        assert answer.mimetype == PROBLEM_JSON
        assert answer.json["errors"] == {"Authorization": ["Sent more than once."]}


def test_without_origins_there_are_no_cors_headers(make, stored) -> None:
    client = make().test_client()
    response = client.get(
        f"/v1/contacts/{stored.contact_id}", headers={**bearer(READER), "Origin": FRONTEND}
    )
    assert response.status_code == 200
    assert not any(name.startswith("Access-Control-") for name, _ in response.headers.items())


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_token(make, stored) -> None:
    client = make(cors_allowed_origins=(FRONTEND,)).test_client()
    response = client.options(
        f"/v1/contacts/{stored.contact_id}",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, if-none-match",
        },
    )
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "if-none-match" in allowed
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_allowed_origin_can_read_the_etag_link_and_rate_limit_headers(make, stored) -> None:
    client = make(cors_allowed_origins=(FRONTEND,)).test_client()
    response = client.get(
        f"/v1/contacts/{stored.contact_id}", headers={**bearer(READER), "Origin": FRONTEND}
    )
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "link", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed
    assert {"retry-after", "x-request-id"} <= exposed
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origins", [(), (FRONTEND,)], ids=["no-cors", "cors"])
def test_options_is_204_with_allow_and_no_html(make, stored, origins) -> None:
    client = make(cors_allowed_origins=origins).test_client()
    for path in ("/v1/contacts", f"/v1/contacts/{stored.contact_id}", "/v1/contacts/changes"):
        response = client.options(path)
        assert response.status_code == 204
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
        assert "Content-Type" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_read_of_a_path_with_a_trailing_slash_is_308_to_the_route(make, stored) -> None:
    client = make().test_client()
    response = client.get(f"/v1/contacts/{stored.contact_id}/?fields=id", headers=bearer(READER))
    assert response.status_code == 308
    assert response.headers["Location"] == f"/v1/contacts/{stored.contact_id}?fields=id"


def test_a_refused_origin_gets_no_cors_headers(make, stored) -> None:
    client = make(cors_allowed_origins=(FRONTEND,)).test_client()
    preflight = client.options(
        "/v1/contacts",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    actual = client.get(
        "/v1/contacts", headers={**bearer(READER), "Origin": "https://evil.example"}
    )
    assert actual.status_code == 200
    assert "Access-Control-Allow-Origin" not in actual.headers


def test_credentials_are_allowed_only_for_listed_origins(make) -> None:
    client = make(cors_allowed_origins=(FRONTEND,), cors_allow_credentials=True).test_client()
    response = client.options(
        "/v1/contacts", headers={"Origin": FRONTEND, "Access-Control-Request-Method": "GET"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_cors_settings_are_read_and_a_wildcard_with_credentials_is_refused() -> None:
    settings = Settings.from_env(
        {
            "CORS_ALLOWED_ORIGINS": f"{FRONTEND}, https://admin.example.com",
            "CORS_ALLOW_CREDENTIALS": "true",
            "CORS_MAX_AGE_S": "120",
        }
    )
    assert settings.cors_allowed_origins == (FRONTEND, "https://admin.example.com")
    assert (settings.cors_allow_credentials, settings.cors_max_age_s) == (True, 120)
    assert Settings.from_env({"CORS_ALLOWED_ORIGINS": "*"}).cors_allowed_origins == ("*",)
    with pytest.raises(SettingsError, match="credentials"):
        Settings.from_env({"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "1"})
    with pytest.raises(SettingsError, match="CORS_ALLOW_CREDENTIALS"):
        Settings.from_env({"CORS_ALLOW_CREDENTIALS": "perhaps"})


def test_auth_and_rate_limit_settings_are_read(make) -> None:
    digest = hash_api_key(READER)
    settings = Settings.from_env(
        {"AUTH_API_KEY_HASHES": f"{digest}=contacts:read", "RATE_LIMIT_DEFAULT": "5/second"}
    )
    assert settings.auth.api_keys == ((digest, frozenset({scopes.READ}), "default"),)
    bound = Settings.from_env({"AUTH_API_KEY_HASHES": f"{digest}@acme=contacts:read"})
    assert bound.auth.api_keys == ((digest, frozenset({scopes.READ}), "acme"),)
    assert settings.rate_limits.default == "5/second"
    with pytest.raises(SettingsError, match="RATE_LIMIT_DEFAULT"):
        Settings.from_env({"RATE_LIMIT_DEFAULT": "fast"})
    with pytest.raises(SettingsError, match="AUTH_API_KEY_HASHES"):
        Settings.from_env({"AUTH_API_KEY_HASHES": "nope"})


def test_auth_disabled_warns_and_drops_vary(make, stored, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="contacts_http.auth"):
        client = make(auth=AuthSettings(disabled=True)).test_client()
    assert "contacts-query-api" in caplog.text
    response = client.get(f"/v1/contacts/{stored.contact_id}")
    assert response.status_code == 200
    assert "Authorization" not in response.headers.get("Vary", "")


def test_settings_stay_comparable() -> None:
    assert Settings().model_copy(update={"cors_max_age_s": 600}) == Settings()


def test_refused_tokens_are_limited_per_client_address(
    contacts, cache, statuses, outcomes, stored
) -> None:
    # Issue 14, item 3: read from the API's own settings, checked before the authenticator.
    settings = Settings.from_env({"AUTH_FAILURE_LIMIT": "3/minute", "RATE_LIMIT_ENABLED": "false"})
    fake, metrics = CountingAuthenticator(READER), MetricsRegistry()
    client = create_app(
        settings,
        authenticator=fake,
        metrics=metrics,
        contacts=contacts,
        cache=cache,
        statuses=statuses,
        outcomes=outcomes,
        required_checks={},
        optional_checks={},
    ).test_client()
    url = f"/v1/contacts/{stored.contact_id}"
    attacker = {"REMOTE_ADDR": "198.51.100.7"}

    codes = [client.get(url, headers=bearer("guess"), environ_base=attacker) for _ in range(4)]
    assert [c.status_code for c in codes] == [401, 401, 401, 429]
    assert codes[-1].mimetype == PROBLEM_JSON
    assert int(codes[-1].headers["Retry-After"]) >= 1
    assert fake.calls == 3
    other = client.get(url, headers=bearer(READER), environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 200
    assert fake.calls == 4
    exposed = client.get("/metrics").get_data(as_text=True)
    assert 'auth_failure_limit_events_total{event="throttled"} 1.0' in exposed
    assert 'auth_failure_limit_events_total{event="failure"} 3.0' in exposed


def test_a_trailing_slash_redirect_keeps_a_control_character_encoded(make) -> None:
    # Found by the HTTP fuzz test: a decoded CR in the Location header was a 500.
    client = make().test_client()
    response = client.get("/v1/contacts/%0D/", headers=bearer(READER))
    assert response.status_code == 308
    assert response.headers["Location"] == "/v1/contacts/%0D"
