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
and close the connection. Each kind of refusal has its own detail (``REFUSALS``). gunicorn's log
lines are kept, without what they would quote of the request: the warning names the kind of
refusal and the request's method and path (``request_summary``), never its query string (a
search is personal data) nor a header line.

Use with ``worker_class = "contacts_http.gunicorn_workers.ProblemThreadWorker"`` (gthread) or
``--worker-class contacts_http.gunicorn_workers.ProblemSyncWorker`` (sync). Importing this module
imports gunicorn; nothing else in ``contacts_http`` does.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Callable
from datetime import datetime
from ssl import SSLError
from typing import Any, Final

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.message import Request
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from contacts_http.problems import ABOUT_BLANK, PROBLEM_JSON
from contacts_http.security_headers import NO_STORE, NOSNIFF
from contacts_telemetry.logs import clear_context

#: Longest part of gunicorn's own description of a refusal kept in a problem.
_MAX_DETAIL_ECHO: Final = 200
#: A header field name as RFC 9110 §5.6.2 spells it (a token): gunicorn's ``InvalidHeader``
#: holds either one (the field whose value is wrong) or the whole line that has no colon.
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_CHUNKED: Final = (
    "The chunked body is malformed (a chunk size, chunk extension or the CRLF after a chunk; "
    "RFC 9112 §7.1)."
)

#: gunicorn's refusal → (status, title, detail); the first class that matches wins. A detail is
#: a text, where ``{exc}`` is gunicorn's description, or a function of the exception. Another
#: ``ParseException`` is a 400 with ``MALFORMED``; any other exception a 500 (gunicorn's rule).
_Kinds = type[BaseException] | tuple[type[BaseException], ...]
_Detail = str | Callable[[BaseException], str]
MALFORMED: Final = "The request is malformed and was not read."


def _invalid_header(exc: BaseException) -> str:
    """The detail of an ``InvalidHeader``, from what gunicorn names: the field (its value holds
    a control character, or it may appear once and appears twice), the line without a colon
    (not echoed: it may hold a credential), or a bare LF."""
    name = str(getattr(exc, "hdr", ""))
    if name.upper() == "CONTENT-LENGTH":
        return (
            "The Content-Length header is not valid: send it once, as a decimal number of "
            "bytes (0 or more), and never together with Transfer-Encoding."
        )
    if name.upper() == "TRANSFER-ENCODING":
        return (
            "The Transfer-Encoding header is not valid: send chunked once, as the last coding, "
            "and only with HTTP/1.1."
        )
    if "bare LF" in name:
        return "A line of the request head ends with a bare LF; every line must end with CRLF."
    if _FIELD_NAME.fullmatch(name) and getattr(exc, "req", None) is not None:
        # gunicorn names the request only for a field that may appear once and appears twice.
        return f"The header field {name} may appear only once and appears twice."
    if _FIELD_NAME.fullmatch(name):
        return f"The value of the header field {name} holds a control character (RFC 9110 §5.5)."
    return "A header line is not a field name, a colon and a value (RFC 9112 §5)."


REFUSALS: Final[tuple[tuple[_Kinds, int, str, _Detail], ...]] = (
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
        errors.InvalidRequestLine,
        400,
        "Bad Request",
        "The request line is not valid: it must be a method, a target and HTTP/1.1, separated "
        "by single spaces and ended by CRLF; the target starts with / (* only with OPTIONS) "
        "and holds only printable ASCII, anything else percent-encoded (RFC 9112 §3).",
    ),
    (
        errors.InvalidRequestMethod,
        400,
        "Bad Request",
        "The request method is not valid: an upper-case token of 3 to 20 characters, such as GET.",
    ),
    (
        errors.InvalidHTTPVersion,
        400,
        "Bad Request",
        "The HTTP version is not supported: send HTTP/1.1 (or HTTP/1.0).",
    ),
    (
        errors.InvalidHeaderName,
        400,
        "Bad Request",
        "A header field name is not valid: a token (letters, digits, - and a few symbols; no "
        "_) with no space before the colon (RFC 9110 §5.1).",
    ),
    (
        errors.ObsoleteFolding,
        400,
        "Bad Request",
        "A header field value continues on the next line (obsolete line folding, RFC 9112 "
        "§5.2); send each field on one line.",
    ),
    (errors.InvalidHeader, 400, "Bad Request", _invalid_header),
    (
        (errors.InvalidChunkSize, errors.ChunkMissingTerminator, errors.InvalidChunkExtension),
        400,
        "Bad Request",
        _CHUNKED,
    ),
    (
        (errors.InvalidProxyLine, errors.InvalidProxyHeader),
        400,
        "Bad Request",
        "The PROXY protocol header is not valid.",
    ),
    (
        errors.InvalidSchemeHeaders,
        400,
        "Bad Request",
        "The request's scheme headers (such as X-Forwarded-Proto) contradict each other.",
    ),
    (
        errors.InvalidH2CPreface,
        400,
        "Bad Request",
        "The HTTP/2 connection preface is not valid.",
    ),
    (errors.ParseException, 400, "Bad Request", MALFORMED),
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
            if callable(detail):
                return status, title, detail(exc)
            return status, title, detail.format(exc=str(exc)[:_MAX_DETAIL_ECHO])
    return 500, "Internal Server Error", "The server failed to answer."


def request_summary(req: Any) -> str:
    """What a log line may say of a request: its method and path, never the query string (a
    search is personal data), nor gunicorn's description of a refusal (it quotes the request
    line or a header line, credentials included); "-" when no request line was parsed."""
    if req is None or not getattr(req, "method", None):
        return "-"
    return f"{req.method} {getattr(req, 'path', '') or ''}"


class ProblemRefusals:
    """Mixin for a gunicorn worker: answers gunicorn's own refusals as problems (module doc)."""

    log: Any
    cfg: Any

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Log the refusal and answer it as a problem (module doc), with no request context
        of its own: a thread's log context still holds the request it served before (kept for
        that request's access line), which this refusal is not part of."""
        clear_context()
        started = datetime.now()
        addr = addr or ("", -1)  # a Unix socket
        status, title, detail = refusal_of(exc)
        if req is None and isinstance(getattr(exc, "req", None), Request):
            req = exc.req  # type: ignore[attr-defined]  # InvalidRequestLine's is the line
        if status >= 500:
            self.log.exception("Error handling request %s", request_summary(req))
        else:
            self.log.warning(
                "Invalid request from ip=%s: %s, request %s",
                addr[0],
                type(exc).__name__,
                request_summary(req),
            )
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
