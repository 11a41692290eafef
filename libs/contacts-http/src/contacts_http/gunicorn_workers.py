"""gunicorn workers whose own refusals are RFC 9457 problems, like every other error
(docs/architecture.md §6).

gunicorn refuses some requests before the app sees them and answers with an HTML page: a request
line longer than ``limit_request_line`` (4094 bytes by default) with 414, and more or larger
header fields than ``limit_request_fields`` / ``limit_request_field_size`` (100 fields, 8190
bytes) with 431. A long query string reaches the first limit easily (50 non-ASCII tags do), and
a client of our APIs expects ``application/problem+json`` for every 4xx. These workers answer
those two refusals as problems; every other error keeps gunicorn's own handling.

Use with ``worker_class = "contacts_http.gunicorn_workers.ProblemThreadWorker"`` (gthread) or
``--worker-class contacts_http.gunicorn_workers.ProblemSyncWorker`` (sync). Importing this module
imports gunicorn; nothing else in ``contacts_http`` does.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any, Final

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from contacts_http.problems import ABOUT_BLANK, PROBLEM_JSON

#: gunicorn's refusal → (status, title, detail).
REFUSALS: Final = (
    (
        LimitRequestLine,
        414,
        "URI Too Long",
        "The request line is longer than this server reads; shorten the query string.",
    ),
    (
        LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "The request has more or larger header fields than this server reads.",
    ),
)


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying the problem; the connection is closed after it."""
    body = json.dumps(
        {"type": ABOUT_BLANK, "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemRefusals:
    """Mixin for a gunicorn worker: answers gunicorn's 414 and 431 as problems."""

    log: Any

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        for kind, status, title, detail in REFUSALS:
            if isinstance(exc, kind):
                self.log.info("refused before the app: %s %s", status, exc)
                with contextlib.suppress(OSError):  # the client went away: nothing to answer
                    util.write_nonblock(client, problem_bytes(status, title, detail))
                return
        super().handle_error(req, client, addr, exc)  # type: ignore[misc]


class ProblemSyncWorker(ProblemRefusals, SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, with problem answers for its refusals."""


class ProblemThreadWorker(ProblemRefusals, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, with problem answers for its refusals."""
