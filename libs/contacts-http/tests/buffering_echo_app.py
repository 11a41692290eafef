"""A WSGI app for the tests of ``BufferingThreadWorker``: it reads the whole body and answers
``<method> <path> <body length> <body sha256 prefix>`` (text), so a test can tell a body that
reached the app whole from a cut one. ``/fields`` answers the environ's ``HTTP_*`` values and
its ``REPEATED_FIELDS`` as JSON instead."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from contacts_http.repeated_fields import REPEATED_FIELDS


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    digest = hashlib.sha256(body).hexdigest()[:12]
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)} {digest}".encode()
    if environ["PATH_INFO"] == "/fields":
        fields = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
        repeated = sorted(environ.get(REPEATED_FIELDS, ["absent"]))
        answer = json.dumps({"fields": fields, "repeated": repeated}).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
