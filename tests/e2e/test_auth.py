"""Authentication, scopes, rate limits and security headers against the real gunicorn processes
(issue 7): the session's API key on the shared stack, JWTs signed by keys made here and checked
against a JWK Set this test serves over HTTP, a JWKS that cannot be reached (503), and a rate
limit shared by the gunicorn workers through Redis (429)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from support.auth import AUTH_HEADERS, TEST_API_KEY
from support.jwks import AUDIENCE, ISSUER, JwksServer, SigningKeys
from support.processes import Service, command_api, free_port, http_ok, query_api
from support.stack import Stack

pytestmark = pytest.mark.processes
LIST_LIMIT = 3


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_session_key_is_needed_and_enough(stack: Stack) -> None:
    body = {"first_name": "Key", "email": f"key-{uuid.uuid4().hex}@example.com"}
    refused = requests.post(f"{stack.command_url}/v1/contacts", json=body, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="contacts-command-api"'
    accepted = requests.post(
        f"{stack.command_url}/v1/contacts", json=body, headers=AUTH_HEADERS, timeout=10
    )
    assert accepted.status_code == 202
    assert accepted.headers["Cache-Control"] == "no-store"
    assert accepted.headers["X-Content-Type-Options"] == "nosniff"
    assert int(accepted.headers["RateLimit-Limit"]) > 0
    assert stack.wait_operation(accepted.json()["operation_id"])["status"] == "applied"
    url = f"{stack.query_url}/v1/contacts/{accepted.json()['id']}"
    assert requests.get(url, timeout=5).status_code == 401
    read = requests.get(url, headers=AUTH_HEADERS, timeout=5)
    assert read.status_code == 200
    assert read.headers["Cache-Control"] == "private, no-cache"
    assert "Authorization" in read.headers["Vary"]
    assert int(read.headers["RateLimit-Remaining"]) >= 0
    for base in (stack.command_url, stack.query_url):
        for path in ("/healthz", "/readyz", "/openapi.json"):
            assert requests.get(f"{base}{path}", timeout=5).status_code == 200, path


@dataclass
class JwtStack:
    command_url: str
    query_url: str
    keys: SigningKeys
    services: list[Service]


@pytest.fixture(scope="module")
def jwt_stack(stack_env: dict[str, str], redis_prefix: str) -> Iterator[JwtStack]:
    """The command API accepting JWTs from a JWKS served here; the query API pointed at a JWKS
    URL nothing answers, with a low limit on listing contacts."""
    keys = SigningKeys()
    jwks = JwksServer(keys).start()
    jwt_env = {
        "AUTH_JWT_ISSUER": ISSUER,
        "AUTH_JWT_AUDIENCE": AUDIENCE,
        "AUTH_JWKS_TIMEOUT_S": "0.5",
        "REDIS_PREFIX": f"{redis_prefix}jwt{uuid.uuid4().hex[:6]}:",
    }
    command_port, query_port = free_port(), free_port()
    command = command_api(
        command_port, {**stack_env, **jwt_env, "AUTH_JWKS_URL": jwks.url}, name="command-api-jwt"
    )
    query = query_api(
        query_port,
        {
            **stack_env,
            **jwt_env,
            "AUTH_JWKS_URL": f"http://127.0.0.1:{free_port()}/jwks.json",
            "RATE_LIMIT_ROUTES": f'{{"contacts.list_contacts": "{LIST_LIMIT}/minute"}}',
        },
    )
    services = [command.start(), query.start()]
    try:
        command_url = f"http://127.0.0.1:{command_port}"
        query_url = f"http://127.0.0.1:{query_port}"
        command.wait_until(lambda: http_ok(f"{command_url}/readyz"), 60, "readiness")
        query.wait_until(lambda: http_ok(f"{query_url}/readyz"), 60, "readiness")
        yield JwtStack(command_url, query_url, keys, services)
    finally:
        for service in services:
            service.stop()
        jwks.stop()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_jwt_with_the_write_scope_is_accepted(jwt_stack: JwtStack, algorithm: str) -> None:
    token = jwt_stack.keys.mint(algorithm, scope="contacts:write")
    answer = requests.post(
        f"{jwt_stack.command_url}/v1/contacts",
        json={"first_name": "Jwt"},
        headers=bearer(token),
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def test_refused_jwts(jwt_stack: JwtStack) -> None:
    now = int(time.time())
    cases = {
        "read only": (jwt_stack.keys.mint("RS256", scope=None, scp=["contacts:read"]), 403),
        "expired": (jwt_stack.keys.mint("ES256", exp=now - 120), 401),
        "other audience": (jwt_stack.keys.mint("RS256", aud="another"), 401),
        "other issuer": (jwt_stack.keys.mint("RS256", iss="https://evil.test/"), 401),
        "not yet valid": (jwt_stack.keys.mint("ES256", nbf=now + 600), 401),
    }
    for name, (token, status) in cases.items():
        answer = requests.post(
            f"{jwt_stack.command_url}/v1/contacts",
            json={"first_name": "Jwt"},
            headers=bearer(token),
            timeout=10,
        )
        assert answer.status_code == status, name
        assert answer.headers["Content-Type"] == "application/problem+json", name
        error = "insufficient_scope" if status == 403 else "invalid_token"
        assert f'error="{error}"' in answer.headers["WWW-Authenticate"], name


def test_an_unreachable_jwks_is_503_with_retry_after_fast(jwt_stack: JwtStack) -> None:
    started = time.monotonic()
    answer = requests.get(
        f"{jwt_stack.query_url}/v1/contacts",
        headers=bearer(jwt_stack.keys.mint("RS256", scope="contacts:read")),
        timeout=10,
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert time.monotonic() - started < 3


def test_the_limit_is_shared_by_the_workers_and_answered_with_429(jwt_stack: JwtStack) -> None:
    url = f"{jwt_stack.query_url}/v1/contacts"
    answers = [requests.get(url, headers=bearer(TEST_API_KEY), timeout=5) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses[:LIST_LIMIT] == [200] * LIST_LIMIT
    assert set(statuses[LIST_LIMIT:]) == {429}
    refused = answers[-1]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["RateLimit-Limit"] == str(LIST_LIMIT)
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 60
    # Another route keeps its own (default) limit.
    operation = requests.get(
        f"{jwt_stack.query_url}/v1/operations/{uuid.uuid4()}",
        headers=bearer(TEST_API_KEY),
        timeout=5,
    )
    assert operation.status_code != 429
    assert int(operation.headers["RateLimit-Limit"]) > LIST_LIMIT
