"""Query-string parsing for the query API's blueprints: errors are 400, unknown names refused,
a name or value that is not UTF-8 once percent-decoded refused, a one-value parameter given
twice refused; and how a blueprint factory registers a module-level view with its OpenAPI
description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import marshmallow as ma
from flask import Flask, Response, request
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from query_api.entrypoints.schemas import Endpoint

NOT_UTF8: Final = "Not valid UTF-8 once percent-decoded."
GIVE_ONCE: Final = "Give this parameter once: it takes one value."


class QueryStringParser(FlaskParser):
    """webargs parser that answers 400 (not webargs' 422) for a bad query string, naming each
    parameter whose name or value is not UTF-8 once percent-decoded (``not_utf8``)."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        names = not_utf8(req.query_string)
        if names:
            raise ma.ValidationError({name: [NOT_UTF8] for name in names})
        repeated = repeated_single_values(req.args, schema)
        if repeated:
            raise ma.ValidationError({name: [GIVE_ONCE] for name in repeated})
        return super().load_querystring(req, schema)


def repeated_single_values(args: Any, schema: ma.Schema) -> list[str]:
    """The names in ``args`` (a werkzeug ``MultiDict``) given more than once that ``schema``
    reads as one value, in order. webargs would take the first and drop the others silently
    (``limit=1&limit=2`` read as 1); a list parameter (``ma.fields.List``) takes them all."""
    lists = {
        field.data_key or name
        for name, field in schema.fields.items()
        if isinstance(field, ma.fields.List)
    }
    return [name for name in args if name not in lists and len(args.getlist(name)) > 1]


def not_utf8(query_string: bytes) -> list[str]:
    """The names of the parameters of a raw query string (``name=value&...``, ``+`` a space)
    whose name or value is not UTF-8 once percent-decoded, in order, each once.

    Werkzeug does not refuse them: it keeps the invalid bytes percent-encoded
    (``q=%ED%A0%80`` is the text ``%ED%A0%80``), so a search for a lone surrogate would
    silently look for that text. A name that is not UTF-8 itself is named as sent."""
    names: list[str] = []
    for pair in query_string.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decoded(raw_name)
        if name is None or _decoded(raw_value) is None:
            label = name if name is not None else raw_name.decode("ascii", "backslashreplace")
            if label not in names:
                names.append(label)
    return names


def _decoded(part: bytes) -> str | None:
    try:
        return unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


class QueryBlueprint(Blueprint):  # type: ignore[misc]  # flask-smorest ships no type hints
    """A flask-smorest blueprint whose arguments refuse unknown parameters (webargs would drop
    them from the query string by default) and fail with 400."""

    ARGUMENTS_PARSER = QueryStringParser(unknown=ma.RAISE)

    def add_view(
        self,
        rule: str,
        view: Callable[..., Response],
        endpoint: Endpoint,
        *,
        plain_without_query: bool = False,
    ) -> None:
        """Route ``GET rule`` (below the blueprint's prefix) to ``view``, a module-level
        function called with the parsed query string (a dict) and the rule's variables.

        The query string is parsed with one instance of ``endpoint.arguments``, made here and
        shared by every request, and the responses documented as ``endpoint`` says; the Flask
        endpoint is ``<blueprint name>.<view.__name__>``. The view
        itself is not changed (flask-smorest wraps a copy), so one view may serve many apps.

        ``plain_without_query``: a request with no query string calls ``view({}, ...)``
        directly, without flask-smorest's wrappers (what ``endpoint.arguments`` would load
        from nothing, for a schema with no defaults); any other goes through them. The schema
        then serves the OpenAPI document and the requests that have parameters: the hot
        ``GET /v1/contacts/{id}`` skips a marshmallow load per request.
        """
        wrapped: Any = view
        for status, description in reversed(list(endpoint.alt_responses.items())):
            wrapped = self.alt_response(status, description=description)(wrapped)
        wrapped = self.response(
            endpoint.status,
            endpoint.schema,
            description=endpoint.description,
            content_type=endpoint.content_type,
            headers=endpoint.headers,
        )(wrapped)
        # An instance, not the class: webargs would build a schema per request from a class
        # (~0.15 ms of CPU, bench/README.md "Session 16: list page CPU"). Loading keeps no
        # state in the schema (marshmallow 4 has no context), so threads may share it.
        wrapped = self.arguments(endpoint.arguments(), location="query")(wrapped)
        self.route(rule, methods=["GET"])(wrapped)
        if plain_without_query:
            name = f"{self.name}.{view.__name__}"
            self.record(lambda state: _plain_without_query(state.app, name, view))


def _plain_without_query(app: Flask, name: str, view: Callable[..., Response]) -> None:
    wrapped = app.view_functions[name]

    def plain(**variables: Any) -> Response:
        if request.query_string:
            return wrapped(**variables)  # type: ignore[return-value]
        return view({}, **variables)

    app.view_functions[name] = plain
