"""A header that takes one value, sent on two field lines, against the real gunicorn process.

gunicorn joins the two values with ``","`` before the app sees them
(``libs/contacts-http/tests/test_request_buffering_answers.py`` shows it), and a comma is a
valid ``Idempotency-Key`` character: two keys were taken as one key ``"k1,k2"``. Every write
route refuses such a request with 400 naming the header, the fast ``POST /v1/contacts`` too,
and queues nothing.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from contacts_http.auth import WORKSPACE_HEADER, format_api_key_hashes, hash_api_key, new_api_key
from contacts_http.auth import scopes as scope_names
from support.auth import TEST_API_KEY
from support.processes import Service, command_api, free_port, http_ok

pytestmark = pytest.mark.processes

OPERATOR = new_api_key()
ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}
CSV = b"First Name,Last Name,E-mail 1 - Value\r\nRosa,Example,rosa@example.com\r\n"


@pytest.fixture(scope="module")
def port(command_env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    hashes = {
        hash_api_key(TEST_API_KEY): scope_names.ALL,
        hash_api_key(OPERATOR): scope_names.ALL | {scope_names.ADMIN},
    }
    env = {**command_env, "AUTH_API_KEY_HASHES": format_api_key_hashes(hashes)}
    service: Service = command_api(port, env, workers=1, name="command-api-repeated").start()
    try:
        service.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 30, "healthz")
        yield port
    finally:
        service.stop()


def send(
    port: int,
    method: str,
    path: str,
    fields: list[tuple[str, str]],
    body: bytes = b"",
    content_type: str = "application/json",
    key: str = TEST_API_KEY,
) -> tuple[int, str, Any]:
    """Send one request whose header ``fields`` go on the wire as given, each on its own line.
    Returns (status, content type, decoded JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.putrequest(method, path)
        connection.putheader("Authorization", f"Bearer {key}")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(len(body)))
        for name, value in fields:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type", ""), json.loads(data)
    finally:
        connection.close()


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


def assert_refused(answer: tuple[int, str, Any], header: str) -> None:
    status, content_type, problem = answer
    assert status == 400, problem
    assert content_type == "application/problem+json"
    assert problem["type"] == "urn:contacts:problem:bad-header"
    assert problem["errors"] == {header: ["Sent more than once."]}


KEYED_WRITES = [
    ("POST", "/v1/contacts", json_body(ROSA), "application/json"),
    ("POST", "/v1/contacts/upsert", json_body(ROSA), "application/json"),
    (
        "POST",
        "/v1/contacts/batch",
        json_body({"operations": [{"op": "create", "data": ROSA}]}),
        "application/json",
    ),
    ("POST", "/v1/imports", CSV, "text/csv"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    KEYED_WRITES,
    ids=["create", "upsert", "batch", "import"],
)
def test_two_idempotency_keys_are_refused(port, drain, method, path, body, content_type) -> None:
    fields = [("Idempotency-Key", f"k1-{uuid.uuid4()}"), ("Idempotency-Key", "k2")]

    answer = send(port, method, path, fields, body, content_type)

    assert_refused(answer, "Idempotency-Key")
    assert drain() == []


def test_one_key_holding_a_comma_is_one_key(port, drain) -> None:
    fields = [("Idempotency-Key", f"k1,k2-{uuid.uuid4()}")]

    status, _, body = send(port, "POST", "/v1/contacts", fields, json_body(ROSA))
    again, _, body_again = send(port, "POST", "/v1/contacts", fields, json_body(ROSA))

    assert status == 202, body
    assert again == 202
    assert body_again["id"] == body["id"]
    assert len(drain()) == 1


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_two_if_match_fields_are_refused(port, drain, method) -> None:
    body = b"" if method == "DELETE" else json_body(ROSA)
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"

    answer = send(
        port,
        method,
        f"/v1/contacts/{uuid.uuid4()}",
        [("If-Match", '"3"'), ("If-Match", '"4"')],
        body,
        content_type,
    )

    assert_refused(answer, "If-Match")
    assert drain() == []


def test_two_workspaces_are_refused(port, drain) -> None:
    fields = [(WORKSPACE_HEADER, "acme"), (WORKSPACE_HEADER, "acme")]

    answer = send(port, "POST", "/v1/contacts", fields, json_body(ROSA), key=OPERATOR)

    assert_refused(answer, WORKSPACE_HEADER)
    assert drain() == []


def test_two_authorization_fields_are_refused_naming_the_field(port, drain) -> None:
    # Both lines hold a valid key: still one request with two credentials, refused as such
    # (before: 401 "Unknown API key" for the joined value).
    fields = [("Authorization", f"Bearer {OPERATOR}")]

    answer = send(port, "POST", "/v1/contacts", fields, json_body(ROSA))

    assert_refused(answer, "Authorization")
    assert drain() == []
