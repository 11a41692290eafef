"""A bound on request bodies that also holds for streamed (chunked) bodies.

Flask's ``MAX_CONTENT_LENGTH`` refuses a body whose ``Content-Length`` is too large before
reading it. A body without ``Content-Length`` (``Transfer-Encoding: chunked``) is different:
werkzeug 3.1 wraps it in a ``LimitedStream`` whose ``read()`` stops at the limit and returns
the truncated bytes without an error, so a too-large JSON body surfaces as "invalid JSON" (400)
rather than 413, and only after ``MAX_CONTENT_LENGTH`` bytes were buffered.

``init_body_limit`` wraps the app's WSGI callable: a streamed body is read in 64 KiB chunks,
at most ``MAX_CONTENT_LENGTH + 1`` bytes. Within the limit it is handed on as an ordinary body
with a ``Content-Length``; past it, the rest is never read and the request is marked with a
``Content-Length`` above the limit, so werkzeug raises ``RequestEntityTooLarge`` (413, a
problem) as soon as the view touches the body.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any, Final

from flask import Flask

_CHUNK: Final = 64 * 1024


def init_body_limit(app: Flask) -> None:
    """Apply ``app.config["MAX_CONTENT_LENGTH"]`` (bytes) to streamed bodies too."""
    inner = app.wsgi_app

    def bounded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and _is_streamed(environ):
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            environ["wsgi.input"] = io.BytesIO(b"" if len(body) > limit else body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return inner(environ, start_response)

    app.wsgi_app = bounded  # type: ignore[method-assign]


def _is_streamed(environ: dict[str, Any]) -> bool:
    has_length = bool(str(environ.get("CONTENT_LENGTH") or "").strip())
    # HTTP/1.1: without Content-Length, only a chunked request has a body (RFC 9112 §6.3).
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    return not has_length and chunked


def _read_at_most(stream: Any, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(_CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer.extend(chunk)
    return bytes(buffer)
