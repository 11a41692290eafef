"""JWTs verified against a JWK Set served over real HTTP by the test (RFC 7519, RFC 7517)."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator

import jwt
import pytest

from contacts_http.auth import AuthUnavailable, InvalidToken, JwtAuthenticator, JwtSettings
from contacts_http.auth.jwt_tokens import scopes_of
from support.jwks import AUDIENCE, ISSUER, JwksServer, SigningKeys, foreign_rsa_key
from support.processes import free_port


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys()


@pytest.fixture(scope="module")
def jwks(keys: SigningKeys) -> Iterator[JwksServer]:
    server = JwksServer(keys).start()
    yield server
    server.stop()


@pytest.fixture
def authenticator(jwks: JwksServer) -> JwtAuthenticator:
    return JwtAuthenticator(JwtSettings(jwks.url, ISSUER, AUDIENCE, leeway_s=5, jwks_timeout_s=1))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_good_token_is_accepted_with_its_scopes(
    authenticator: JwtAuthenticator, keys: SigningKeys, algorithm: str
) -> None:
    principal = authenticator.authenticate(keys.mint(algorithm))
    assert principal.subject == "jwt:client-42"
    assert principal.scopes == {"contacts:read", "contacts:write"}
    assert principal.rate_limit_key == f"jwt:{ISSUER}#client-42"


def test_the_jwk_set_is_fetched_once_and_cached(keys: SigningKeys, jwks: JwksServer) -> None:
    authenticator = JwtAuthenticator(JwtSettings(jwks.url, ISSUER, AUDIENCE))
    before = jwks.fetches
    for _ in range(3):
        authenticator.authenticate(keys.mint("ES256"))
    assert jwks.fetches == before + 1


def test_scopes_come_from_scope_or_scp() -> None:
    assert scopes_of({"scope": "a  b"}) == {"a", "b"}
    assert scopes_of({"scp": ["a", "b", 3]}) == {"a", "b"}
    assert scopes_of({"scp": "a b"}) == {"a", "b"}
    assert scopes_of({"scope": "a", "scp": ["b"]}) == {"a", "b"}
    assert scopes_of({"scp": {"a": 1}}) == set()
    assert scopes_of({}) == set()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": -60}, "expired"),  # times: seconds from when the test runs
        ({"nbf": +60}, "not valid yet"),
        ({"aud": "another-api"}, "another audience"),
        ({"iss": "https://evil.test/"}, "another issuer"),
        ({"exp": None}, "lacks a required claim"),
        ({"sub": None}, "lacks a required claim"),
    ],
)
def test_claims_are_checked(
    authenticator: JwtAuthenticator, keys: SigningKeys, claims: dict, message: str
) -> None:
    # Relative to now, not to collection: a long suite once ran this past an nbf of +60 s.
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in claims.items()}
    with pytest.raises(InvalidToken, match=message):
        authenticator.authenticate(keys.mint("RS256", **claims))


def test_leeway_tolerates_small_clock_skew(
    authenticator: JwtAuthenticator, keys: SigningKeys
) -> None:
    authenticator.authenticate(keys.mint("RS256", exp=int(time.time()) - 2))
    authenticator.authenticate(keys.mint("ES256", nbf=int(time.time()) + 2))


def test_a_bad_signature_is_refused(authenticator: JwtAuthenticator, keys: SigningKeys) -> None:
    forged = keys.mint("RS256", key=foreign_rsa_key())
    with pytest.raises(InvalidToken, match="signature"):
        authenticator.authenticate(forged)
    header, payload, signature = keys.mint("ES256").split(".")
    tampered = _b64(json.loads(_unb64(payload)) | {"scope": "contacts:import"})
    with pytest.raises(InvalidToken, match="signature"):
        authenticator.authenticate(f"{header}.{tampered}.{signature}")


def test_symmetric_and_unsigned_tokens_are_refused_before_any_fetch(
    keys: SigningKeys, jwks: JwksServer
) -> None:
    authenticator = JwtAuthenticator(JwtSettings(jwks.url, ISSUER, AUDIENCE))
    before = jwks.fetches
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    hmac_token = jwt.encode(claims, "a-secret-of-at-least-32-bytes-long!!", algorithm="HS256")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    for token in (hmac_token, unsigned):
        with pytest.raises(InvalidToken, match="algorithm"):
            authenticator.authenticate(token)
    with pytest.raises(InvalidToken, match="not a JWT"):
        authenticator.authenticate("a.b.c")
    assert jwks.fetches == before


def test_an_unknown_key_id_is_refused(authenticator: JwtAuthenticator) -> None:
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
        foreign_rsa_key(),
        algorithm="RS256",
        headers={"kid": "unknown"},
    )
    with pytest.raises(InvalidToken):
        authenticator.authenticate(token)


def test_an_unreachable_jwks_is_unavailable_not_invalid(keys: SigningKeys) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    authenticator = JwtAuthenticator(JwtSettings(url, ISSUER, AUDIENCE, jwks_timeout_s=1))
    with pytest.raises(AuthUnavailable):
        authenticator.authenticate(keys.mint("RS256"))


def test_a_jwks_that_never_answers_is_unavailable_within_the_timeout(keys: SigningKeys) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/jwks.json"
        authenticator = JwtAuthenticator(JwtSettings(url, ISSUER, AUDIENCE, jwks_timeout_s=0.5))
        started = time.monotonic()
        with pytest.raises(AuthUnavailable):
            authenticator.authenticate(keys.mint("ES256"))
        assert time.monotonic() - started < 2


def test_only_asymmetric_algorithms_can_be_configured() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        JwtAuthenticator(JwtSettings("http://x", ISSUER, AUDIENCE, algorithms=frozenset({"HS256"})))


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_workspace_claim_names_the_workspace(jwks: JwksServer, keys: SigningKeys) -> None:
    by_org = JwtAuthenticator(
        JwtSettings(jwks.url, ISSUER, AUDIENCE, workspace_claim="org_id", jwks_timeout_s=1)
    )
    assert by_org.authenticate(keys.mint(org_id="acme")).workspace == "acme"
    # Not a slug (an IdP's user id): one stable derived workspace, revealing nothing of it.
    derived = by_org.authenticate(keys.mint(org_id="auth0|5f7c")).workspace
    assert derived is not None
    assert derived.startswith("h-")
    assert "auth0" not in derived
    assert derived == by_org.authenticate(keys.mint(org_id="auth0|5f7c")).workspace
    # Without the claim the token is valid but names no workspace (the guard answers 403).
    assert by_org.authenticate(keys.mint()).workspace is None
    assert by_org.authenticate(keys.mint(org_id="")).workspace is None
    per_user = JwtAuthenticator(
        JwtSettings(jwks.url, ISSUER, AUDIENCE, workspace_claim="sub", jwks_timeout_s=1)
    )
    assert per_user.authenticate(keys.mint(sub="user-7")).workspace == "user-7"
    unconfigured = JwtAuthenticator(JwtSettings(jwks.url, ISSUER, AUDIENCE, jwks_timeout_s=1))
    assert unconfigured.authenticate(keys.mint(org_id="acme")).workspace == "default"
