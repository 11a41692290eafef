"""Request ids: ``X-Request-ID`` from the client (or a new uuid4), echoed on every response.

The id is what ties one request's log lines, its problem response and the events it produced
(``correlationid``) together (docs/architecture.md §6). A client value is kept only when it is 1–128
characters of ``A-Z a-z 0-9 . _ : -``; anything else is replaced by a fresh uuid4 so a header
cannot inject text into logs.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Final

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER: Final = "X-Request-ID"
_VALID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_request_id(app: Flask) -> None:
    """Give every request of ``app`` an id and echo it in the ``X-Request-ID`` response header."""

    def assign() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID.match(incoming) else str(uuid.uuid4())

    def echo(response: Response) -> Response:
        request_id = current_request_id()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    app.before_request(assign)
    app.after_request(echo)


def current_request_id() -> str | None:
    """Return the id of the request being served, or ``None`` outside a request.

    Before ``init_request_id``'s hook ran (e.g. a 404 raised during routing) the id is derived
    on first use, so error responses carry one too.
    """
    if not has_request_context():
        return None
    request_id = g.get("request_id")
    if request_id is None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = g.request_id = incoming if _VALID.match(incoming) else str(uuid.uuid4())
    return str(request_id)


class RequestIdLogFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) so formats can use ``%(request_id)s``.

    Attach it to a handler: ``handler.addFilter(RequestIdLogFilter())``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True
