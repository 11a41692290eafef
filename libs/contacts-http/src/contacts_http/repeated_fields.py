"""Request header fields sent on more than one field line, which WSGI cannot show.

A WSGI server puts each request header in the environ once: gunicorn joins the values of a
field sent on several lines with ``","`` (``HTTP_IDEMPOTENCY_KEY = "k1,k2"``), and Werkzeug's
``request.headers.getlist`` then returns that one joined value. For a field that takes one
value (``Authorization``, ``Idempotency-Key``, ``If-Match``, ``X-Contacts-Workspace``) the
app cannot tell two lines from one value holding a comma, and would use the joined value, or
one part of it, as if the client had sent it. The worker that reads the request does see the lines
(``contacts_http.request_buffering.BufferingThreadWorker``): it puts the names of the fields
it saw more than once in the environ under ``REPEATED_FIELDS``, and ``single_header`` refuses
them. Under another server (Flask's test client, which joins with ``", "``) the key is absent
and only the value is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from flask import Request

from contacts_http.problems import ProblemError

#: WSGI environ key: a ``frozenset`` of the upper-case names (``"IDEMPOTENCY-KEY"``) of the
#: header fields the request carried on more than one field line.
REPEATED_FIELDS: Final = "contacts.repeated_fields"
#: The type of a request header the API cannot read (the same as ``auth.guard``'s).
BAD_HEADER_PROBLEM: Final = "urn:contacts:problem:bad-header"


_NONE: Final[frozenset[str]] = frozenset()


def repeated_names(fields: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The upper-case names that occur more than once in ``fields`` (name, value pairs).

    Runs on every request the worker serves: the usual one, without a repeated field, costs
    one list and one set (about 1 µs for 8 fields here)."""
    names = [name.upper() for name, _value in fields]
    if len(set(names)) == len(names):
        return _NONE
    return frozenset(name for name in names if names.count(name) > 1)


def single_header(request: Request, name: str) -> str | None:
    """The value of the header field ``name``, or ``None`` without it.

    Raises ``ProblemError`` 400 (``BAD_HEADER_PROBLEM``, ``errors`` naming the field, never
    its values) when the request carried it on more than one field line (``REPEATED_FIELDS``).
    """
    if name.upper() in request.environ.get(REPEATED_FIELDS, ()):
        raise ProblemError(
            400,
            f"Send {name} once: this request has it more than once.",
            type_uri=BAD_HEADER_PROBLEM,
            errors={name: ["Sent more than once."]},
        )
    return request.headers.get(name)
