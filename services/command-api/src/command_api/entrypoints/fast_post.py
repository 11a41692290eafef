"""A WSGI fast path for the hot write, ``POST /v1/contacts`` (create a contact, 202).

Flask's request context, its before/after hooks (request id, metrics, body limits,
authentication, rate limits, media type, security headers), webargs' and flask-smorest's
wrappers and the response object cost about a third of a POST's CPU in the command API
(bench/README.md, "Command API POST"). ``FastContactCreate`` sits in front of the Flask app's
view dispatch, inside ``contacts_http.bodies.init_body_limit``'s guard of the body, and answers
the plain case itself with the same observable behaviour: the same authentication
(``contacts_http.auth.plain_caller``: the app's ``Authenticator``, failure limit, scope and
workspace), the same body checks (``parse_json_body``, the route's marshmallow schema,
``normalize_contact``), the same rate-limit counters (``InlineRateLimits``, one Redis round
trip), the same use case (``handlers.create_contact``: publish, then the pending status before
the 202, so read-your-writes of ``GET /v1/operations/{id}`` holds as before), the same status,
headers in the same order and body, the same ``http_requests_total`` /
``http_request_duration_seconds`` samples and the same log context (``request_id``,
``traceparent``, ``workspace``) for gunicorn's access line.

Anything else goes to the Flask app untouched, before anything is counted: another method or
path, a query string, CORS (``Origin``), ``X-Contacts-Workspace``, ``Idempotency-Key``, a
``Content-Type`` other than exactly ``application/json``, a ``Content-Encoding``, no
``Content-Length`` or one past the body limit (a chunked body has one by then: the body guard
buffered it and set it), a caller the guard would refuse, rate limits
turned off or counted by flask-limiter (a Redis Cluster), and a body that is not a valid
contact (the Flask path then answers its 400 as before; the bytes read are handed on). Once
counted, a request past a limit or whose count Redis could not take is handed on with its
counts (``contacts_http.rate_limits.PRECOUNTED``: settled, not counted twice), and one whose
use case raised (503, 413) with its error (``contacts.FAST_PATH_ERROR``), so the app's error
handlers answer it.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask
from werkzeug.exceptions import HTTPException

from command_api.entrypoints.contacts import (
    EXTENSION,
    FAST_PATH_ERROR,
    FastPathError,
    WriteApi,
)
from command_api.entrypoints.schemas import ContactWriteSchema
from command_api.service_layer import handlers
from contacts_domain import ValidationFailed, normalize_contact
from contacts_http import JsonBodyRefused, parse_json_body
from contacts_http.auth import plain_caller
from contacts_http.auth.guard import EXTENSION as AUTH_EXTENSION
from contacts_http.bodies import FailedInput
from contacts_http.observability import HttpMetrics
from contacts_http.rate_limits import INLINE_EXTENSION, PRECOUNTED, InlineRateLimits
from contacts_http.request_id import REQUEST_ID_HEADER
from contacts_http.security_headers import NO_STORE, NOSNIFF
from contacts_telemetry.logs import bind_context, bound_context, clear_context
from contacts_telemetry.trace import valid_traceparent

ENDPOINT: Final = "contacts.Contacts"
PATH: Final = "/v1/contacts"
JSON_MEDIA_TYPE: Final = "application/json"
STATUS: Final = "202 ACCEPTED"
_VALID_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: Request headers (WSGI names) that send a POST to the Flask path.
_FLASK_HEADERS: Final = (
    "HTTP_ORIGIN",
    "HTTP_X_CONTACTS_WORKSPACE",
    "HTTP_IDEMPOTENCY_KEY",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_CONTENT_ENCODING",
    "HTTP_TRANSFER_ENCODING",
)
_WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class _Plain:
    """A plain create the fast path serves: its caller, body and normalized fields."""

    rate_limit_key: str
    workspace: str
    fields: dict[str, Any]


class FastContactCreate:
    """WSGI middleware: answers the plain ``POST /v1/contacts`` (module doc) and hands every
    other request to ``inner`` (the Flask app's dispatch). Built by ``install_fast_post``."""

    def __init__(
        self,
        inner: _WSGI,
        *,
        app: Flask,
        http_metrics: HttpMetrics,
        max_body_bytes: int,
        vary_authorization: bool,
    ) -> None:
        self._inner = inner
        self._app = app
        # The route's own body schema (an instance of its own: marshmallow keeps no per-load
        # state, so it judges a body exactly as the view's does).
        self._schema = ContactWriteSchema()
        self._http_metrics = http_metrics
        self._max_body_bytes = max_body_bytes
        self._vary = vary_authorization
        self._series: tuple[Any, Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        limits: InlineRateLimits | None = self._app.extensions.get(INLINE_EXTENSION)
        if limits is None or not self._is_plain_request(environ):
            return self._inner(environ, start_response)
        try:
            plain = self._plain(environ)
        except Exception:  # whatever surprised us here, the Flask path answers it
            plain = None
        if plain is None:
            return self._inner(environ, start_response)
        request_id = _request_id(environ)
        # A request handed to Flask below must keep this id: its answer and its log lines
        # would otherwise carry two (one made here, one by Flask's request-id hook).
        environ["HTTP_X_REQUEST_ID"] = request_id
        traceparent = valid_traceparent(environ.get("HTTP_TRACEPARENT"))
        clear_context()
        bind_context(request_id=request_id, traceparent=traceparent)
        bind_context(workspace=plain.workspace)
        counters = limits.counters_for(ENDPOINT, plain.rate_limit_key, f"ws:{plain.workspace}")
        limit_headers: dict[str, str] = {}
        if counters:
            counts = limits.count_now(counters)
            breached = None
            if counts is not None:
                limit_headers, breached = limits.answer(counters, counts)
            if counts is None or breached is not None:
                environ[PRECOUNTED] = (counters, counts)
                return self._inner(environ, start_response)
        api: WriteApi = self._app.extensions[EXTENSION]
        try:
            accepted = handlers.create_contact(
                plain.fields,
                api.context,
                workspace=plain.workspace,
                correlation_id=request_id,
                traceparent=traceparent,
            )
        except Exception as exc:  # answered by the app's error handlers, with the event's ids
            environ[PRECOUNTED] = (counters, counts) if counters else None
            environ[FAST_PATH_ERROR] = FastPathError(exc, bound_context())
            return self._inner(environ, start_response)
        body, headers = self._answer(api, accepted, limit_headers, request_id)
        start_response(STATUS, headers)
        self._observe(started)
        return [body]

    def _is_plain_request(self, environ: dict[str, Any]) -> bool:
        """The request line and headers of a plain create (the body is not read here)."""
        return (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO") == PATH
            and not environ.get("QUERY_STRING")
            and environ.get("CONTENT_TYPE") == JSON_MEDIA_TYPE
            and not any(name in environ for name in _FLASK_HEADERS)
        )

    def _plain(self, environ: dict[str, Any]) -> _Plain | None:
        """The caller and the valid contact of a plain create, or ``None`` (the Flask path
        answers; the body read is put back in ``environ`` for it)."""
        length = str(environ.get("CONTENT_LENGTH") or "")
        if not length.isdigit() or not 0 < int(length) <= self._max_body_bytes:
            return None
        principal = plain_caller(self._app.extensions[AUTH_EXTENSION], environ, ENDPOINT)
        if principal is None or principal.workspace is None:
            return None
        try:
            data = environ["wsgi.input"].read(int(length))
        except HTTPException as error:  # a cut or stalled body: the Flask path answers it
            environ["wsgi.input"] = FailedInput(error)
            return None
        environ["wsgi.input"] = io.BytesIO(data)
        fields = self._valid_contact(data)
        if fields is None:
            return None
        return _Plain(principal.rate_limit_key, principal.workspace, fields)

    def _valid_contact(self, data: bytes) -> dict[str, Any] | None:
        """The normalized fields of a body the Flask path would accept, else ``None``."""
        try:
            value = parse_json_body(data)
        except (ValueError, JsonBodyRefused):  # JSONDecodeError and UnicodeDecodeError too
            return None
        if not isinstance(value, dict) or self._schema.validate(value):
            return None
        default_region = self._app.extensions[EXTENSION].default_phone_region
        try:
            return normalize_contact(value, partial=False, default_region=default_region)
        except ValidationFailed:
            return None

    def _answer(
        self,
        api: WriteApi,
        accepted: handlers.Accepted,
        limit_headers: dict[str, str],
        request_id: str,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers of the 202, in the Flask path's order."""
        body = {"id": accepted.contact_id, "operation_id": accepted.operation_id}
        encoded = (json.dumps({**body, "status": "pending"}, separators=(",", ":")) + "\n").encode()
        base = api.query_api_base_url
        headers = [
            ("Content-Type", JSON_MEDIA_TYPE),
            ("Content-Length", str(len(encoded))),
            ("Location", f"{base}/v1/contacts/{accepted.contact_id}"),
            ("Operation-Location", f"{base}/v1/operations/{accepted.operation_id}"),
            *limit_headers.items(),
            ("X-Content-Type-Options", NOSNIFF),
            ("Cache-Control", NO_STORE),
        ]
        if self._vary:
            headers.append(("Vary", "Authorization"))
        headers.append((REQUEST_ID_HEADER, request_id))
        return encoded, headers

    def _observe(self, started: float) -> None:
        """The samples ``init_observability``'s hooks record for a 202 of this route."""
        if self._series is None:
            metrics = self._http_metrics
            labels = ("POST", PATH, "202")
            self._series = (metrics.requests.labels(*labels), metrics.latency.labels(*labels))
        self._series[0].inc()
        self._series[1].observe(time.perf_counter() - started)


def _request_id(environ: dict[str, Any]) -> str:
    incoming: str = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())


def install_fast_post(
    app: Flask,
    *,
    http_metrics: HttpMetrics,
    max_body_bytes: int,
    vary_authorization: bool,
) -> None:
    """Put ``FastContactCreate`` in front of ``app``'s dispatch (``app.wsgi_app`` as it is
    now: call before ``init_body_limit`` wraps it, so the body guard stays outermost). The
    auth and rate-limit extensions are read per request, so it may be installed before them;
    without authentication or inline rate limits every request goes to Flask."""
    app.wsgi_app = FastContactCreate(  # type: ignore[method-assign]
        app.wsgi_app,
        app=app,
        http_metrics=http_metrics,
        max_body_bytes=max_body_bytes,
        vary_authorization=vary_authorization,
    )
