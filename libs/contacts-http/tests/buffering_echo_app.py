"""A WSGI app for the tests of ``BufferingThreadWorker``: it reads the whole body and answers
``<method> <path> <body length> <body sha256 prefix>`` (text), so a test can tell a body that
reached the app whole from a cut one. ``/fields`` answers the environ's ``HTTP_*`` values and
its ``REPEATED_FIELDS`` as JSON instead. ``GET /stream?<n>`` answers ``n`` bytes ``x``, streamed
in 64 KiB chunks (chunked, no ``Content-Length``), as the export of the query API does."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from contacts_http.repeated_fields import REPEATED_FIELDS


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _stream(int(environ["QUERY_STRING"]))
    body = environ["wsgi.input"].read()
    digest = hashlib.sha256(body).hexdigest()[:12]
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)} {digest}".encode()
    if environ["PATH_INFO"] == "/fields":
        fields = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
        repeated = sorted(environ.get(REPEATED_FIELDS, ["absent"]))
        answer = json.dumps({"fields": fields, "repeated": repeated}).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


def _stream(size: int) -> Iterator[bytes]:
    chunk = b"x" * 65536
    while size > 0:
        yield chunk[:size]
        size -= len(chunk)
