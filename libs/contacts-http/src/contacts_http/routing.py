"""Answers both APIs give for what routing alone decides (docs/architecture.md §6, issue 16).

- ``OPTIONS`` on any route is ``204 No Content`` with ``Allow`` (RFC 9110 §9.3.7), instead of
  Flask's ``200`` with an empty ``text/html`` body. It needs no token (it says nothing a public
  OpenAPI document does not). Where CORS is configured (the query API's ``CORS_ALLOWED_ORIGINS``),
  a preflight from a listed origin is the same 204 with the CORS fields added by flask-cors.
- A path that only differs from a route by a trailing slash (``POST /v1/contacts/``) is a
  ``308 Permanent Redirect`` to the route's path, query string kept: a 308 keeps the method and
  body (RFC 9110 §15.4.9), so a client that follows it writes where it meant to. Before, it was
  a 404 that did not say why. Any other unknown path stays a 404 problem.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

#: Status of the answer to a path with a trailing slash that a route has without it.
CANONICAL_PATH_REDIRECT: Final = 308


def init_routing_answers(app: Flask) -> None:
    """Answer ``OPTIONS`` with 204 and redirect trailing slashes with 308 (module doc).

    Call it after every other ``before_request`` function is registered: the redirect runs
    first, before authentication, so ``POST /v1/contacts/`` without a token is a 308 too.
    """
    default_options = app.make_default_options_response

    def options_response() -> Response:
        response = default_options()
        response.status_code = 204
        response.headers.pop("Content-Type", None)
        return response

    app.make_default_options_response = options_response  # type: ignore[method-assign]
    app.before_request_funcs.setdefault(None, []).insert(0, _redirect_trailing_slash)


def _redirect_trailing_slash() -> Response | None:
    """308 to the route without the trailing slash when the request's path has one and no
    route of its own (a ``before_request`` function); ``None`` otherwise."""
    path = request.path
    if not isinstance(request.routing_exception, NotFound) or not path.endswith("/"):
        return None
    canonical = path.rstrip("/")
    adapter = current_app.create_url_adapter(request)
    if not canonical or adapter is None:
        return None
    try:
        adapter.match(canonical, method=request.method)
    except MethodNotAllowed:
        pass  # the route exists; the redirected request gets its 405
    except NotFound:
        return None
    query = request.query_string.decode("latin-1")
    # The path as sent, percent-encoded again: a decoded CR or LF (``/v1/contacts/%0D/``)
    # cannot go into a header as it is (it was a 500).
    location = quote(f"{request.script_root}{canonical}", safe="/:@!$&'()*+,;=-._~")
    target = location + (f"?{query}" if query else "")
    response = Response(status=CANONICAL_PATH_REDIRECT, headers={"Location": target})
    response.headers.pop("Content-Type", None)
    return response
