"""CORS for browser frontends (Fetch standard §3.2): an allowlist of origins from settings.

With no origin configured nothing is installed and no response carries a CORS header, so a
browser page from another origin cannot read the API. With an allowlist, a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is answered with the
methods and request headers the API takes, and actual responses expose the headers a frontend
needs: ``ETag`` (revalidation), ``Link`` (the next page), the ``RateLimit-*`` fields,
``Retry-After``, ``X-Cache`` and ``X-Request-ID``. A refused origin gets no
``Access-Control-Allow-Origin``; its browser then refuses the answer. Settings refuse ``*``
together with credentials (``Settings.from_env``).

Every response says ``Vary: Origin`` (flask-cors adds it only when several origins are
listed): with one listed origin the answer still differs between it and any other, and a cache
must not hand one's answer to the other (Fetch standard §3.2.5, "CORS protocol and HTTP caches").
"""

from __future__ import annotations

from typing import Final

from flask import Flask, Response
from flask_cors import CORS

from contacts_http.rate_limits import LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER
from query_api.settings import Settings

EXPOSED_HEADERS: Final = (
    "ETag",
    "Link",
    LIMIT_HEADER,
    REMAINING_HEADER,
    RESET_HEADER,
    "Retry-After",
    "X-Cache",
    "X-Request-ID",
)
ALLOWED_REQUEST_HEADERS: Final = ("Authorization", "If-None-Match", "X-Request-ID")
METHODS: Final = ("GET", "HEAD", "OPTIONS")


def init_cors(app: Flask, settings: Settings) -> None:
    """Answer CORS for ``settings.cors_allowed_origins`` (nothing when empty)."""
    if not settings.cors_allowed_origins:
        return
    # Registered before flask-cors' hook, so it runs after it (reverse order).
    app.after_request(vary_on_origin)
    CORS(
        app,
        origins=list(settings.cors_allowed_origins),
        methods=list(METHODS),
        allow_headers=list(ALLOWED_REQUEST_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        supports_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_max_age_s,
        vary_header=True,
    )


def vary_on_origin(response: Response) -> Response:
    """Add ``Origin`` to ``Vary`` (an ``after_request`` hook)."""
    response.vary.add("Origin")
    return response
