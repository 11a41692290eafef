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

Two more guards hold for every body, streamed or not, because gunicorn marks its input as
terminated (``wsgi.input_terminated``), so werkzeug reads it as it comes without checking it:

- a body that ends before its ``Content-Length`` (the client closed its side early) is a 400
  problem when the app reads past its end, never a shorter body taken for the whole (an
  import of half a file, a batch whose JSON happened to be complete);
- a client that stops sending in the middle of a body is a 408 problem after
  ``idle_timeout_s`` seconds without a byte (a socket timeout on gunicorn's connection while
  the app runs), so a stalled upload cannot hold a thread for ever. Under the APIs' worker
  (``contacts_http.request_buffering``) bodies arrive buffered, so this guard matters only for
  bodies too large to buffer and for other servers.

A body with a ``Content-Encoding`` other than ``identity`` (``gzip``, ``br``...) is refused
with a 415 problem naming the header and answering ``Accept-Encoding: identity`` (RFC 9110
§12.5.3, §15.5.16), before the body is read: the APIs decode no content coding, and decoding
one would need a bound on the decoded size (a few KiB of gzip can inflate to gigabytes).
Before, the header was ignored and the compressed bytes taken for JSON.

``parse_json_body`` bounds a JSON body's nesting depth (``JSON_MAX_DEPTH``). Python's ``json``
decoder recurses once per level of arrays/objects and raises ``RecursionError`` near the
interpreter's recursion limit (1000 frames, minus those already on the stack: the exact depth
depends on the server), and what handles the parsed value afterwards (marshmallow, error
flattening, the canonical encoding of a command) recurses as well. A fixed limit far below
that makes the answer to a deep body a deterministic 400 wherever the body would have failed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Final

from flask import Flask, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, HTTPException, RequestTimeout

from contacts_http.problems import MEDIA_TYPE_PROBLEM, ProblemError

_CHUNK: Final = 64 * 1024
#: Deepest nesting of arrays and objects accepted in a JSON body; the body itself is level 1,
#: so ``{"addresses": [{}]}`` is 3 deep (the deepest a contact needs).
JSON_MAX_DEPTH: Final = 32
#: Default seconds a request body may go without a byte before the request is answered 408.
BODY_IDLE_TIMEOUT_S: Final = 10.0


class JsonBodyRefused(ValueError):
    """A JSON body that decodes but that this API refuses; the message says why."""


class JsonTooDeep(JsonBodyRefused):
    """A JSON body nests arrays and objects deeper than ``max_depth`` levels."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels.")
        self.max_depth = max_depth


class DuplicateJsonKey(JsonBodyRefused):
    """A JSON object names ``key`` twice. RFC 8259 §4 leaves the meaning to the parser, and
    Python's keeps the last silently; the API refuses it instead of guessing."""

    def __init__(self, key: str) -> None:
        super().__init__(f"The member {key!r} appears twice in one object.")
        self.key = key


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateJsonKey(key)
            seen.add(key)
    return members


def parse_json_body(data: bytes | str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse a JSON request body (UTF-8 bytes or text) no deeper than ``max_depth`` levels.

    Raises ``UnicodeDecodeError`` (bytes that are not UTF-8) and ``json.JSONDecodeError`` (not
    JSON, ``doc == ""`` for an empty body, or an integer of more than 4,300 digits) as
    ``json.loads`` does, ``DuplicateJsonKey`` for an object naming a member twice, and
    ``JsonTooDeep`` when the
    body nests more than ``max_depth`` levels, including bodies so deep that the decoder itself
    runs out of recursion. Never raises ``RecursionError``. Cost: one pass over the parsed
    containers after ``json.loads``.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        value = json.loads(text, object_pairs_hook=_unique_members)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    except (json.JSONDecodeError, JsonBodyRefused):
        raise
    except ValueError as exc:
        # An integer longer than sys.get_int_max_str_digits() (4300): Python's guard against
        # quadratic int parsing (CVE-2020-10735), reported like any other undecodable body.
        raise json.JSONDecodeError(f"Unreadable number: {exc}", text, 0) from None
    if _deeper_than(value, max_depth):
        raise JsonTooDeep(max_depth)
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    # Iterative, so that checking a deep value cannot itself run out of recursion. Only
    # arrays and objects are pushed.
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def init_body_limit(
    app: Flask,
    *,
    endpoint_limits: Mapping[str, int] | None = None,
    own_limit_paths: Collection[str] = (),
    idle_timeout_s: float = BODY_IDLE_TIMEOUT_S,
) -> None:
    """Apply ``app.config["MAX_CONTENT_LENGTH"]`` (bytes) to streamed bodies too, guard
    every body against an early end (400) and a stalled client (408 after ``idle_timeout_s``
    seconds without a byte; under gunicorn only, through its ``gunicorn.socket``), and refuse
    a body with a content coding (415, ``refuse_content_coding``).

    ``endpoint_limits`` maps a Flask endpoint name (e.g. ``contacts.Batch``) to its own limit
    in bytes, larger or smaller, for every body it receives (Flask's per-request
    ``request.max_content_length``, set before any other ``before_request`` function runs);
    a streamed body is then read up to the largest limit and held to its endpoint's.

    Requests to ``own_limit_paths`` (exact ``PATH_INFO``s, e.g. ``/v1/imports``) are passed
    on untouched: their views set ``request.max_content_length`` and stream the body
    themselves, so it is never buffered here.
    """
    limits = dict(endpoint_limits or {})
    inner = app.wsgi_app
    exempt = frozenset(own_limit_paths)

    def bounded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        previous = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(idle_timeout_s)
        try:
            environ["wsgi.input"] = CheckedInput(
                environ["wsgi.input"], _declared_length(environ), idle_timeout_s
            )
            limit = app.config.get("MAX_CONTENT_LENGTH")
            streamed = _is_streamed(environ) and environ.get("PATH_INFO") not in exempt
            if limit is not None and streamed:
                _buffer_streamed(environ, max([limit, *limits.values()]))
            return inner(environ, start_response)
        finally:
            if sock is not None:
                sock.settimeout(previous)

    app.wsgi_app = bounded  # type: ignore[method-assign]
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_content_coding)

    if limits:

        def endpoint_limit() -> None:
            if request.endpoint in limits:
                request.max_content_length = limits[request.endpoint]

        app.before_request_funcs.setdefault(None, []).insert(0, endpoint_limit)


def _buffer_streamed(environ: dict[str, Any], limit: int) -> None:
    """Read a streamed (chunked) body of ``environ`` up to ``limit`` + 1 bytes and give the app
    a sized one: the body itself, or an empty one when it is longer than ``limit`` (its
    ``CONTENT_LENGTH`` then says ``limit`` + 1, so Flask answers 413). A read that fails (an
    early end, a stalled client) is answered as a problem once the app reads the body."""
    try:
        body = _read_at_most(environ["wsgi.input"], limit + 1)
    except HTTPException as error:
        environ["wsgi.input"] = FailedInput(error)
        body = b"?"
    else:
        environ["wsgi.input"] = io.BytesIO(b"" if len(body) > limit else body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def refuse_content_coding() -> None:
    """Raise ``ProblemError`` 415 when the request has a body with a ``Content-Encoding``
    other than ``identity`` (module doc); a ``before_request`` function."""
    codings = [
        coding.strip().lower()
        for coding in request.headers.get("Content-Encoding", "").split(",")
        if coding.strip()
    ]
    has_body = bool(request.content_length) or _is_streamed(request.environ)
    if has_body and any(coding != "identity" for coding in codings):
        raise ProblemError(
            415,
            "The request body has a Content-Encoding this API does not decode "
            f"({', '.join(codings)}); send it uncompressed, without Content-Encoding.",
            type_uri=MEDIA_TYPE_PROBLEM,
            errors={"Content-Encoding": ["Only identity is accepted."]},
            headers={"Accept-Encoding": "identity"},
        )


class CheckedInput:
    """A WSGI input stream (``wsgi.input``) that answers for its client's faults.

    ``length`` is the declared ``Content-Length`` (``None`` for a chunked body, whose framing
    the server checks). Reading raises ``BadRequest`` (400) when the stream ends before
    ``length`` bytes or the server could not read it (the connection broke, or gunicorn
    found the chunked framing broken), and ``RequestTimeout`` (408) when the socket timed out
    waiting for bytes (``idle_timeout_s``, set by ``init_body_limit``).
    """

    def __init__(self, stream: Any, length: int | None, idle_timeout_s: float) -> None:
        self._stream = stream
        self._length = length
        self._idle_timeout_s = idle_timeout_s
        self._seen = 0

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        data = self._guarded(lambda: self._stream.read() if whole else self._stream.read(size))
        return self._count(data, at_end=whole or not data)

    def readline(self, size: int | None = -1) -> bytes:
        limited = size is not None and size >= 0
        data = self._guarded(
            lambda: self._stream.readline(size) if limited else self._stream.readline()
        )
        return self._count(data, at_end=not data)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _guarded(self, read: Any) -> bytes:
        try:
            return bytes(read())
        except TimeoutError:  # socket.timeout: no byte for idle_timeout_s seconds
            raise RequestTimeout(
                f"No byte of the request body arrived for {self._idle_timeout_s:g} s."
            ) from None
        except (OSError, ParseException):
            # The client went away (gunicorn's NoMoreData, a reset) or broke the chunked
            # framing (a missing chunk terminator, a bad chunk size): never a 500.
            raise BadRequest(
                "The request body ended early or its chunked framing is broken; nothing was "
                "accepted. Send it whole."
            ) from None

    def _count(self, data: bytes, *, at_end: bool) -> bytes:
        self._seen += len(data)
        if at_end and self._length is not None and self._seen < self._length:
            raise BadRequest(
                f"The request body ended after {self._seen} of the {self._length} bytes its "
                "Content-Length declared; nothing was accepted. Send it whole."
            )
        return data


class FailedInput:
    """A WSGI input whose every read raises ``error`` (the body could not be read)."""

    def __init__(self, error: HTTPException) -> None:
        self._error = error

    def read(self, size: int | None = -1) -> bytes:
        raise self._error

    def readline(self, size: int | None = -1) -> bytes:
        raise self._error

    def __iter__(self) -> Iterator[bytes]:
        raise self._error


def _declared_length(environ: dict[str, Any]) -> int | None:
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return None
    try:
        return int(str(environ.get("CONTENT_LENGTH") or "").strip())
    except ValueError:
        return None


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
