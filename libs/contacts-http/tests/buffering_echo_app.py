"""A WSGI app for the tests of ``BufferingThreadWorker``: it reads the whole body and answers
``<method> <path> <body length> <body sha256 prefix>`` (text), so a test can tell a body that
reached the app whole from a cut one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    digest = hashlib.sha256(body).hexdigest()[:12]
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)} {digest}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
