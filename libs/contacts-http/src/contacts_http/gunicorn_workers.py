"""gunicorn workers whose own refusals are RFC 9457 problems, like every other error
(docs/architecture.md §6).

gunicorn refuses some requests before the app sees them and answers with an HTML page of its
own, without the headers the app puts on every answer: a request line longer than
``limit_request_line`` (4094 bytes by default) with 414, more or larger header fields than
``limit_request_fields`` / ``limit_request_field_size`` (100 fields, 8190 bytes) with 431, a
malformed head (a control character in a header value, a bad request line, a broken chunk)
with 400, and a transfer coding it does not know (``Transfer-Encoding: xchunked``) with 501. A
client of our APIs expects ``application/problem+json`` for every 4xx and 5xx, so these workers
answer every such refusal as a problem, with ``X-Content-Type-Options: nosniff`` and
``Cache-Control: no-store`` like the app's own answers (``contacts_http.security_headers``),
and close the connection. gunicorn's log lines (a warning, the access line) are kept.

Use with ``worker_class = "contacts_http.gunicorn_workers.ProblemThreadWorker"`` (gthread) or
``--worker-class contacts_http.gunicorn_workers.ProblemSyncWorker`` (sync). Importing this module
imports gunicorn; nothing else in ``contacts_http`` does.
"""

from __future__ import annotations

import contextlib
import json
import socket
from datetime import datetime
from ssl import SSLError
from typing import Any, Final

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from contacts_http.problems import ABOUT_BLANK, PROBLEM_JSON
from contacts_http.security_headers import NO_STORE, NOSNIFF

#: Longest part of gunicorn's own description of a malformed request kept in a problem.
_MAX_DETAIL_ECHO: Final = 200
_MALFORMED: Final = "The request is malformed and was not read"

#: gunicorn's refusal → (status, title, detail); the first class that matches wins, and
#: ``{exc}`` is gunicorn's description. Any other exception is a 500 (gunicorn's rule too).
_Kinds = type[BaseException] | tuple[type[BaseException], ...]
REFUSALS: Final[tuple[tuple[_Kinds, int, str, str], ...]] = (
    (
        (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName),
        500,
        "Internal Server Error",
        "The server failed to answer; nothing about the request is known to be wrong.",
    ),
    (
        errors.LimitRequestLine,
        414,
        "URI Too Long",
        "The request line is longer than this server reads; shorten the query string.",
    ),
    (
        errors.LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "The request has more or larger header fields than this server reads.",
    ),
    (
        errors.UnsupportedTransferCoding,
        501,
        "Not Implemented",
        "The request's Transfer-Encoding is not supported ({exc}): send the body with "
        "Content-Length, or with Transfer-Encoding: chunked alone.",
    ),
    (errors.ExpectationFailed, 417, "Expectation Failed", "{exc}"),
    ((errors.ForbiddenProxyRequest, SSLError), 403, "Forbidden", "Request forbidden."),
    (errors.ConfigurationProblem, 500, "Internal Server Error", "The server is misconfigured."),
    (
        (
            errors.InvalidRequestLine,
            errors.InvalidRequestMethod,
            errors.InvalidHTTPVersion,
            errors.InvalidHeader,
            errors.InvalidHeaderName,
            errors.ObsoleteFolding,
            errors.InvalidProxyLine,
            errors.InvalidSchemeHeaders,
            errors.InvalidH2CPreface,
            errors.InvalidChunkSize,
            errors.ChunkMissingTerminator,
            errors.InvalidChunkExtension,
        ),
        400,
        "Bad Request",
        _MALFORMED + " ({exc}); a header value may not hold control characters.",
    ),
)


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying the problem, with the security headers of every
    answer of the APIs; the connection is closed after it."""
    body = json.dumps(
        {"type": ABOUT_BLANK, "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\nX-Content-Type-Options: {NOSNIFF}\r\n"
        f"Cache-Control: {NO_STORE}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def refusal_of(exc: BaseException) -> tuple[int, str, str]:
    """(status, title, detail) of the problem answering ``exc``, raised by gunicorn while it
    read a request (``REFUSALS``); 500 for anything else."""
    for kinds, status, title, detail in REFUSALS:
        if isinstance(exc, kinds):
            echo = str(exc)[:_MAX_DETAIL_ECHO]
            return status, title, detail.format(exc=echo)
    return 500, "Internal Server Error", "The server failed to answer."


class ProblemRefusals:
    """Mixin for a gunicorn worker: answers gunicorn's own refusals as problems (module doc)."""

    log: Any
    cfg: Any

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        started = datetime.now()
        addr = addr or ("", -1)  # a Unix socket
        status, title, detail = refusal_of(exc)
        if status >= 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        req = req or getattr(exc, "req", None)
        if req is not None:
            self._log_access(req, client, addr, f"{status} {title}", datetime.now() - started)
        with contextlib.suppress(OSError):  # the client went away: nothing to answer
            util.write_nonblock(client, problem_bytes(status, title, detail))

    def _log_access(
        self, req: Any, client: socket.socket, addr: Any, status: str, took: Any
    ) -> None:
        """gunicorn's access line for a request it refused (as its own ``handle_error`` writes)."""
        with contextlib.suppress(Exception):  # a half-read request may lack what the line needs
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            response = Response(req, client, self.cfg)
            response.status = status
            self.log.access(response, req, environ, took)


class ProblemSyncWorker(ProblemRefusals, SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, with problem answers for its refusals."""


class ProblemThreadWorker(ProblemRefusals, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, with problem answers for its refusals."""
