"""Settings from the environment."""

from __future__ import annotations

import pytest

from query_api.settings import Settings, SettingsError


def test_defaults_follow_the_contracts_page():
    settings = Settings.from_env({})

    assert settings.database_url.startswith("postgresql+psycopg2://contacts_reader@")
    assert settings.redis_prefix == "contacts:"
    assert (settings.redis_socket_timeout_s, settings.redis_connect_timeout_s) == (0.25, 0.25)
    assert settings.contact_cache_ttl_s == 3600


def test_reads_every_variable():
    settings = Settings.from_env(
        {
            "QUERY_DATABASE_URL": "postgresql+psycopg2://r@db/x",
            "QUERY_DB_STATEMENT_TIMEOUT_MS": "500",
            "REDIS_URL": "redis://cache:6380/1",
            "REDIS_PREFIX": "t1:",
            "REDIS_SOCKET_TIMEOUT_S": "0.1",
            "REDIS_CONNECT_TIMEOUT_S": "0.2",
            "CONTACT_CACHE_TTL_S": "60",
            "REDIS_BREAKER_FAILURES": "5",
            "QUERY_REFILL_WAIT_S": "0",
            "CACHE_REPAIR_MARGIN_S": "90",
            "QUERY_STREAM_SLOTS": "3",
        }
    )

    assert settings.database_url == "postgresql+psycopg2://r@db/x"
    assert settings.db_statement_timeout_ms == 500
    assert settings.redis_url == "redis://cache:6380/1"
    assert settings.redis_prefix == "t1:"
    assert settings.redis_socket_timeout_s == 0.1
    assert settings.redis_connect_timeout_s == 0.2
    assert settings.contact_cache_ttl_s == 60
    assert settings.redis_breaker_failures == 5
    assert (settings.refill_wait_s, settings.cache_repair_margin_s) == (0.0, 90.0)
    assert settings.stream_slots == 3


def test_a_refill_lease_outlives_the_longest_database_read():
    settings = Settings.from_env(
        {"QUERY_DB_POOL_TIMEOUT_S": "1.5", "QUERY_DB_STATEMENT_TIMEOUT_MS": "2000"}
    )

    assert settings.refill_lease_ms == 3500


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_SOCKET_TIMEOUT_S", "fast"),
        ("REDIS_SOCKET_TIMEOUT_S", "0"),
        ("CONTACT_CACHE_TTL_S", "-1"),
        ("QUERY_DB_STATEMENT_TIMEOUT_MS", "1.5"),
        ("QUERY_REFILL_WAIT_S", "-0.1"),
        ("CACHE_REPAIR_MARGIN_S", "0"),
        ("QUERY_STREAM_SLOTS", "0"),
    ],
)
def test_unusable_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_token_secret_is_long_and_never_echoed():
    assert Settings.from_env({}).token_secret == ""
    secret = "s" * 32
    assert Settings.from_env({"QUERY_TOKEN_SECRET": secret}).token_secret == secret

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"QUERY_TOKEN_SECRET": "short-Quorbelvantrexi"})

    assert "QUERY_TOKEN_SECRET" in str(refused.value)
    assert "Quorbelvantrexi" not in str(refused.value)


def test_the_previous_token_secret_is_optional_long_and_never_echoed():
    old, new = "o" * 32, "n" * 32
    assert Settings.from_env({}).token_previous_secret == ""
    rotated = Settings.from_env({"QUERY_TOKEN_SECRET": new, "QUERY_TOKEN_PREVIOUS_SECRET": old})
    assert (rotated.token_secret, rotated.token_previous_secret) == (new, old)

    with pytest.raises(SettingsError) as refused:
        Settings.from_env(
            {"QUERY_TOKEN_SECRET": new, "QUERY_TOKEN_PREVIOUS_SECRET": "short-Quorbelvantrexi"}
        )

    assert "QUERY_TOKEN_PREVIOUS_SECRET must be at least 32 characters" in str(refused.value)
    assert "Quorbelvantrexi" not in str(refused.value)


@pytest.mark.parametrize(
    ("current", "rule"),
    [
        # Nothing to rotate to: new tokens would be signed with the public development key.
        ("", "QUERY_TOKEN_PREVIOUS_SECRET needs QUERY_TOKEN_SECRET"),
        # Most likely both variables were given the old value: the rotation did not happen.
        ("Quorbelvantrexi-of-32-characters", "equals QUERY_TOKEN_SECRET"),
    ],
)
def test_a_previous_token_secret_needs_another_current_one(current, rule):
    previous = "Quorbelvantrexi-of-32-characters"
    with pytest.raises(SettingsError, match=rule) as refused:
        Settings.from_env({"QUERY_TOKEN_SECRET": current, "QUERY_TOKEN_PREVIOUS_SECRET": previous})

    assert "Quorbelvantrexi" not in str(refused.value)


def test_the_token_secrets_are_not_shown_in_the_settings_repr():
    settings = Settings.from_env(
        {
            "QUERY_TOKEN_SECRET": "Zenqualibroth-current-of-32-chars",
            "QUERY_TOKEN_PREVIOUS_SECRET": "Yomberflax-previous-of-32-chars!",
        }
    )

    for shown in (repr(settings), str(settings)):
        assert "Zenqualibroth" not in shown
        assert "Yomberflax" not in shown
        assert "token_secret" not in shown
