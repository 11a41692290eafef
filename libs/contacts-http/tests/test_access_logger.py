"""``AccessLogger`` writes the line gunicorn's own logger makes of ``ACCESS_LOG_FORMAT``.

gunicorn's ``Logger.atoms`` and its case-insensitive mapping are the reference: for each
request and response below, ``access_message`` must give the very text they give.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn import glogging

from contacts_http.gunicorn_hooks import ACCESS_LOG_FORMAT, access_message

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/v1/contacts/1?q=rosa",
    "PATH_INFO": "/v1/contacts/1",
    "QUERY_STRING": "q=rosa",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_AUTHORIZATION": "Basic cm9zYTpzZWNyZXQ=",
}
HEADERS = [("Content-Type", "application/json"), ("X-Request-ID", "r-1"), ("X-Cache", "miss")]


def gunicorn_line(resp: Any, environ: dict[str, Any], took: dt.timedelta) -> str:
    # An instance without __init__: gunicorn's constructor sets up the process-wide
    # "gunicorn.access" logger (no propagation, no handler), which silenced the access lines
    # of every later test in the same process (tests/e2e/test_observability.py under xdist).
    logger = object.__new__(glogging.Logger)
    atoms = logger.atoms(resp, SimpleNamespace(headers=[]), environ, took)
    return str(ACCESS_LOG_FORMAT % glogging.SafeAtoms(atoms))


@pytest.mark.parametrize(
    ("status", "sent", "headers", "method"),
    [
        ("200 OK", 512, HEADERS, "GET"),
        (304, 0, HEADERS, "HEAD"),  # an int status
        ("503 Service Unavailable", None, [("Retry-After", "1")], "POST"),  # nothing sent
        ("202 Accepted", 31, [("x-request-id", "a"), ("X-REQUEST-ID", "b")], "PATCH"),
    ],
)
def test_the_line_is_gunicorns_own(status: Any, sent: Any, headers: Any, method: str) -> None:
    resp = SimpleNamespace(status=status, sent=sent, headers=headers)
    environ = {**ENVIRON, "REQUEST_METHOD": method}
    took = dt.timedelta(seconds=2, microseconds=1_234)

    assert access_message(resp, environ, took) == gunicorn_line(resp, environ, took)


def test_the_line_never_holds_the_query_string_nor_the_credentials() -> None:
    resp = SimpleNamespace(status="200 OK", sent=1, headers=HEADERS)

    line = access_message(resp, ENVIRON, dt.timedelta(microseconds=812))

    assert line == "GET /v1/contacts/1 200 1 812us request_id=r-1 cache=miss"
    assert "rosa" not in line
