"""RFC 9457 problem details (``application/problem+json``) for a Flask app and flask-smorest Api.

Every error an API answers has the body ``{"type", "title", "status", "detail"}``, plus ``errors``
(field path → list of messages, e.g. ``{"emails.0.value": ["..."]}``) for validation problems and
any extension member a caller adds. Sources of errors and how they are turned into problems:

- ``werkzeug.exceptions.HTTPException`` (``abort(404)``, routing 404/405, 413 from
  ``MAX_CONTENT_LENGTH``): status, title and description of the exception; headers it carries
  are kept (``Allow`` on 405, ``Retry-After`` when set).
- webargs/flask-smorest validation (``abort(status, messages={location: {...}})``): the nested
  marshmallow messages are flattened into ``errors`` keyed by dotted path.
- ``ProblemError``: raised by our own code with a type, detail, errors and headers.
- Any other exception: a 500 problem whose detail says nothing about the internals; the
  traceback goes to the app logger.

A 503 or 429 without ``Retry-After`` gets ``Retry-After: DEFAULT_RETRY_AFTER_S``.

A problem body may echo what a client sent (an unknown member's name in an ``errors`` path,
a value in a message). JSON lets a client send text that UTF-8 cannot encode (an unpaired
surrogate, ``"\\ud800"``); every string of the body, keys included, is made encodable by
writing such a character as its Python escape (``\\ud800``), so serializing a problem never
fails on client input.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any, Final, NoReturn

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, Response, current_app
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from contacts_http.openapi import SchemaExtras

PROBLEM_JSON: Final = "application/problem+json"
#: ``type`` of a problem that is fully described by its status code (RFC 9457 §4.2.1).
ABOUT_BLANK: Final = "about:blank"
#: ``type`` of every validation problem (a body or parameter broke a rule); carries ``errors``.
VALIDATION_PROBLEM: Final = "urn:contacts:problem:validation"
#: ``type`` of a 415: the body's media type or content coding is not one the route reads.
MEDIA_TYPE_PROBLEM: Final = "urn:contacts:problem:unsupported-media-type"
#: Seconds a client should wait before retrying a 503/429 that named no other delay.
DEFAULT_RETRY_AFTER_S: Final = 1
_RETRY_STATUSES: Final = frozenset({429, 503})
_SKIPPED_HEADERS: Final = frozenset({"content-type", "content-length"})
#: Statuses any request may get before its route runs, whatever the route: a request line
#: longer than gunicorn reads (414), header fields more or larger than it reads (431)
#: (``contacts_http.gunicorn_workers``). Documented on every operation.
EVERY_ROUTE_REFUSALS: Final = (414, 431)


class ProblemError(HTTPException):
    """An error our code raises to answer with a problem.

    ``status`` is the HTTP status code; ``type_uri`` the problem type (``about:blank`` by
    default); ``detail`` a human-readable explanation of this occurrence; ``errors`` maps a field
    path to messages; ``headers`` are added to the response (e.g. ``Retry-After``); ``extensions``
    are extra top-level members of the body.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        type_uri: str = ABOUT_BLANK,
        title: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.type_uri = type_uri
        self.title = title or _phrase(status)
        self.errors = dict(errors) if errors else None
        self.extra_headers = dict(headers or {})
        self.extensions = dict(extensions or {})


def abort_problem(
    status: int,
    detail: str | None = None,
    *,
    type_uri: str = ABOUT_BLANK,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> NoReturn:
    """Raise ``ProblemError`` (the problem twin of ``flask.abort``)."""
    raise ProblemError(status, detail, type_uri=type_uri, errors=errors, headers=headers)


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    type_uri: str = ABOUT_BLANK,
    title: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """Return an ``application/problem+json`` response.

    The body is ``{"type", "title", "status", "detail"}`` (``detail`` defaults to the title),
    plus ``errors`` when given and every member of ``extensions``. A 429/503 without a
    ``Retry-After`` header gets ``DEFAULT_RETRY_AFTER_S``. Unpaired surrogates in any string or
    key (client input echoed in a path or a message) are written as ``\\udXXX`` escapes, so
    this never raises ``UnicodeEncodeError``.
    """
    title = title or _phrase(status)
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail or title,
    }
    if errors:
        body["errors"] = {path: list(messages) for path, messages in errors.items()}
    response = Response(
        json.dumps(_encodable(body), ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype=PROBLEM_JSON,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status in _RETRY_STATUSES and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(DEFAULT_RETRY_AFTER_S)
    return response


def _encodable(value: Any) -> Any:
    """``value`` with every string (dict keys too) encodable as UTF-8.

    A character UTF-8 cannot encode (an unpaired surrogate U+D800-U+DFFF, which JSON's
    ``\\uXXXX`` escapes let a client send) becomes its backslash escape, e.g. ``\\ud800``;
    all other text is unchanged. Dicts, lists and tuples are copied; other values are returned
    as they are.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow/webargs messages into ``{"emails.0.value": ["..."]}``.

    ``messages`` is a nested dict (keys are field names or list indexes) whose leaves are
    strings or lists of strings. A list at the top level is keyed ``_schema``.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for sub_path, sub_messages in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple):
        leaves = [str(m) for m in messages if not isinstance(m, Mapping | list | tuple)]
        if leaves:
            flat[prefix or "_schema"] = leaves
        for item in messages:
            if isinstance(item, Mapping | list | tuple):
                for sub_path, sub_messages in flatten_errors(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def problem_from_http_exception(error: HTTPException) -> Response:
    """Turn any ``HTTPException`` (werkzeug, webargs abort, ``ProblemError``) into a problem."""
    status = error.code or 500
    if isinstance(error, ProblemError):
        return problem_response(
            status,
            error.description,
            type_uri=error.type_uri,
            title=error.title,
            errors=error.errors,
            headers=error.extra_headers,
            extensions=error.extensions,
        )
    headers = {
        name: value for name, value in error.get_headers() if name.lower() not in _SKIPPED_HEADERS
    }
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    errors = _validation_errors(data)
    if errors:
        return problem_response(
            status,
            "The request does not satisfy the schema; see errors.",
            type_uri=VALIDATION_PROBLEM,
            errors=errors,
            headers=headers,
        )
    detail = data.get("message") or error.description
    return problem_response(status, detail, headers=headers)


def _validation_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    if "errors" in data:
        return flatten_errors(data["errors"])
    messages = data.get("messages")
    if not isinstance(messages, Mapping):
        return {}
    # webargs keys messages by location ({"json": {...}, "query": {...}}); the field paths
    # are unique enough across one request's locations, so the location is dropped.
    flat: dict[str, list[str]] = {}
    for location_messages in messages.values():
        for path, items in flatten_errors(location_messages).items():
            flat.setdefault(path, []).extend(items)
    return flat


def _internal_error(error: Exception) -> Response:
    current_app.logger.exception("Unhandled exception", exc_info=error)
    return problem_response(500, "The server failed to process the request.")


def init_problem_handlers(app: Flask) -> None:
    """Make ``app`` answer every error as a problem.

    Call it after ``flask_smorest.Api(app)`` (which registers its own ``HTTPException``
    handler), or use ``ProblemApi``, which does both.
    """
    app.register_error_handler(HTTPException, problem_from_http_exception)
    app.register_error_handler(Exception, _internal_error)


class ProblemSchema(ma.Schema):
    """The OpenAPI description of a problem body (RFC 9457); not used to serialize."""

    type = ma.fields.String(metadata={"description": "URI reference identifying the problem type."})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type."})
    status = ma.fields.Integer(metadata={"description": "The HTTP status code."})
    detail = ma.fields.String(metadata={"description": "Explanation of this occurrence."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={
            "description": "Validation problems only: field path (e.g. `emails.0.value`, "
            "`_schema` for the whole body) → messages."
        },
    )


class RefusalResponses(BasePlugin):  # type: ignore[misc]
    """An apispec plugin documenting ``EVERY_ROUTE_REFUSALS`` on every operation, with the
    shared problem responses ``ProblemApi`` registers (``URI_TOO_LONG``...)."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status in EVERY_ROUTE_REFUSALS:
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = http.HTTPStatus(status).name


class ProblemApi(flask_smorest.Api):
    """A flask-smorest ``Api`` whose errors are problems documented as ``application/problem+json``.

    Use it instead of ``flask_smorest.Api``; it also installs ``init_problem_handlers`` and
    documents ``EVERY_ROUTE_REFUSALS`` (414, 431) on every operation and the cross-field
    rules of schemas (``contacts_http.openapi.SchemaExtras``).
    """

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, **kwargs: Any) -> None:
        plugins = [*(kwargs.pop("extra_plugins", None) or ()), RefusalResponses(), SchemaExtras()]
        super()._init_spec(extra_plugins=plugins, **kwargs)

    def _register_error_handlers(self) -> None:
        init_problem_handlers(self._app)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_JSON
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
