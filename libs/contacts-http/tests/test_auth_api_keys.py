"""Static API keys: SHA-256 digests in settings, constant-time comparison, scopes per key."""

from __future__ import annotations

import hashlib
import io
import sys

import pytest

from contacts_http.auth import (
    ApiKeyAuthenticator,
    ApiKeyEntry,
    AuthSettings,
    BearerAuthenticator,
    InvalidToken,
    build_authenticator,
    format_api_key_hashes,
    hash_api_key,
    new_api_key,
    parse_api_key_hashes,
    scopes,
)
from contacts_http.auth.keygen import main as keygen
from contacts_infra.settings import SettingsError as ConfigError


def test_a_key_is_accepted_with_its_scopes_and_named_without_revealing_it() -> None:
    key = new_api_key()
    digest = hashlib.sha256(key.encode()).hexdigest()
    authenticator = ApiKeyAuthenticator({digest: frozenset({scopes.READ})})
    principal = authenticator.authenticate(key)
    assert principal.scopes == {scopes.READ}
    assert principal.subject == f"key:{digest[:12]}"
    assert principal.rate_limit_key == f"key:{digest}"
    assert key not in repr(principal)


def test_unknown_keys_and_digests_themselves_are_refused() -> None:
    key = new_api_key()
    authenticator = ApiKeyAuthenticator({hash_api_key(key): scopes.ALL})
    for presented in (new_api_key(), hash_api_key(key), "", key + " "):
        with pytest.raises(InvalidToken):
            authenticator.authenticate(presented)


def test_upper_case_digests_are_accepted_and_bad_digests_refused_at_start_up() -> None:
    key = new_api_key()
    assert ApiKeyAuthenticator({hash_api_key(key).upper(): scopes.ALL}).authenticate(key)
    with pytest.raises(ValueError, match="64 hex"):
        ApiKeyAuthenticator({"abc": scopes.ALL})


def test_the_settings_format_round_trips() -> None:
    one, two = hash_api_key("one"), hash_api_key("two")
    raw = format_api_key_hashes({one: {scopes.READ, scopes.WRITE}, two: {scopes.READ}})
    assert raw == f"{one}=contacts:read,contacts:write;{two}=contacts:read"
    assert parse_api_key_hashes(f" {one.upper()} = contacts:read , contacts:write ;;") == (
        ApiKeyEntry(one, frozenset({scopes.READ, scopes.WRITE}), "default"),
    )


def test_a_key_is_bound_to_the_workspace_its_entry_names() -> None:
    one, two = hash_api_key("one"), hash_api_key("two")
    raw = f"{format_api_key_hashes({one: {scopes.READ}}, 'acme')};{two}=contacts:read"
    assert raw.startswith(f"{one}@acme=contacts:read;")
    assert parse_api_key_hashes(raw) == (
        ApiKeyEntry(one, frozenset({scopes.READ}), "acme"),
        ApiKeyEntry(two, frozenset({scopes.READ}), "default"),
    )
    keys = build_authenticator(AuthSettings.from_env({"AUTH_API_KEY_HASHES": raw}))
    assert keys.authenticate("one").workspace == "acme"
    assert keys.authenticate("two").workspace == "default"


def test_an_entry_with_a_bad_workspace_stops_the_start_up() -> None:
    with pytest.raises(ConfigError, match="entry 1: the workspace is not a workspace id"):
        parse_api_key_hashes(f"{hash_api_key('x')}@Not_A_Slug=contacts:read")


@pytest.mark.parametrize(
    "raw",
    [
        "abc=contacts:read",
        f"{hash_api_key('x')}",
        f"{hash_api_key('x')}=",
        f"{hash_api_key('x')}=a;{hash_api_key('x')}=b",
        f"{'g' * 64}=contacts:read",
    ],
)
def test_malformed_entries_stop_the_start_up_without_echoing_a_digest(raw: str) -> None:
    with pytest.raises(ConfigError, match="AUTH_API_KEY_HASHES entry") as caught:
        parse_api_key_hashes(raw)
    assert hash_api_key("x") not in str(caught.value)


def test_auth_settings_default_on_with_nothing_accepted() -> None:
    settings = AuthSettings.from_env({})
    assert settings == AuthSettings()
    assert not settings.disabled
    assert not BearerAuthenticator(None, None).configured
    with pytest.raises(InvalidToken):
        BearerAuthenticator(None, None).authenticate(new_api_key())


def test_auth_settings_read_every_variable() -> None:
    digest = hash_api_key("k")
    settings = AuthSettings.from_env(
        {
            "AUTH_DISABLED": "true",
            "AUTH_API_KEY_HASHES": f"{digest}=contacts:write",
            "AUTH_JWKS_URL": "https://idp.test/jwks",
            "AUTH_JWT_ISSUER": "https://idp.test/",
            "AUTH_JWT_AUDIENCE": "contacts",
            "AUTH_JWT_ALGORITHMS": "ES256",
            "AUTH_JWT_LEEWAY_S": "0",
            "AUTH_JWKS_TIMEOUT_S": "0.5",
            "AUTH_JWKS_CACHE_S": "60",
        }
    )
    assert settings.disabled
    assert settings.api_keys == (ApiKeyEntry(digest, frozenset({scopes.WRITE})),)
    assert settings.jwt is not None
    assert (settings.jwt.algorithms, settings.jwt.leeway_s) == ({"ES256"}, 0.0)
    assert (settings.jwt.jwks_timeout_s, settings.jwt.jwks_cache_s) == (0.5, 60.0)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AUTH_DISABLED": "maybe"}, "AUTH_DISABLED"),
        ({"AUTH_JWKS_URL": "https://idp.test/jwks"}, "AUTH_JWT_ISSUER"),
        (
            {
                "AUTH_JWKS_URL": "https://idp.test/jwks",
                "AUTH_JWT_ISSUER": "i",
                "AUTH_JWT_AUDIENCE": "a",
                "AUTH_JWT_ALGORITHMS": "HS256",
            },
            "AUTH_JWT_ALGORITHMS",
        ),
        (
            {
                "AUTH_JWKS_URL": "https://idp.test/jwks",
                "AUTH_JWT_ISSUER": "i",
                "AUTH_JWT_AUDIENCE": "a",
                "AUTH_JWKS_TIMEOUT_S": "0",
            },
            "AUTH_JWKS_TIMEOUT_S",
        ),
    ],
)
def test_unusable_auth_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuthSettings.from_env(environ)


def test_keygen_prints_a_key_and_the_entry_of_its_hash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert keygen(["new"]) == 0
    key, entry = capsys.readouterr().out.splitlines()
    assert entry == format_api_key_hashes({hash_api_key(key): scopes.ALL})
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    assert keygen(["entry", scopes.READ]) == 0
    assert capsys.readouterr().out.strip() == f"{hash_api_key(key)}=contacts:read"
    assert keygen([]) == 2


def test_keygen_makes_a_key_of_another_workspace(capsys: pytest.CaptureFixture[str]) -> None:
    assert keygen(["new", "--workspace", "acme", scopes.READ]) == 0
    key, entry = capsys.readouterr().out.splitlines()
    assert entry == f"{hash_api_key(key)}@acme=contacts:read"
    assert parse_api_key_hashes(entry)[0].workspace == "acme"
    assert keygen(["new", "--workspace", "ACME!"]) == 2
    assert keygen(["new", "contacts:bogus"]) == 2
