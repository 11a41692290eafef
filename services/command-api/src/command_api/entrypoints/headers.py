"""Request headers of the write API: ``If-Match``, ``Idempotency-Key``, ``Content-Type``.

``If-Match`` (RFC 9110 §13.1.1) takes exactly one strong ETag ``"<version>"``, the ETag the query
API serves. It becomes the command's ``expected_version``; the worker compares it in the
transaction that writes (docs/architecture.md §5.4). Decisions, documented in the OpenAPI document:

- a weak ETag (``W/"3"``) can never match under the strong comparison If-Match uses, and
  ``"0"`` is no version a contact ever has: both answer 412 at once, nothing enqueued;
- ``*``, a list of ETags, or anything that is not one quoted integer: 400.

``If-None-Match: *`` (RFC 9110 §13.1.2) on a PUT asks to create, never replace: the command's
``expected_version`` is then ``ABSENT_VERSION``, and the worker rejects the write
(``version_mismatch``) when a visible contact holds the id. Any other ``If-None-Match`` on a
write (a list of ETags; any value on PATCH or DELETE, which need a contact) is a 400 naming the
header, rather than a precondition silently ignored; beside ``If-Match`` it is a 412 (the two
never both hold). Create, upsert, batch and import take neither header
(``refuse_preconditions``).

``If-Match`` and ``Idempotency-Key`` sent on more than one field line are a 400 naming the
header (``contacts_http.repeated_fields``): the server joins their values with a comma, and a
comma is a valid key character, so the joined value would be taken as one key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from flask import Request
from flask import request as flask_request

from command_api.service_layer.idempotency import KEY_PATTERN
from contacts_domain import ABSENT_VERSION
from contacts_http import MEDIA_TYPE_PROBLEM, ProblemError
from contacts_http.repeated_fields import BAD_HEADER_PROBLEM, single_header

_STRONG_ETAG: Final = re.compile(r'^"(0|[1-9][0-9]{0,17})"$')
_WEAK_ETAG: Final = re.compile(r'^W/"(0|[1-9][0-9]{0,17})"$')
PRECONDITION_PROBLEM: Final = "urn:contacts:problem:precondition-failed"


class BadETag(ValueError):
    """An ``If-Match`` value that cannot be used.

    ``status`` is the answer the single routes give it: 412 when it can never match (a weak
    ETag, ``"0"``), 400 when it is malformed. The message is the reason, never the value.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def version_of_etag(value: str) -> int:
    """Return the version named by one strong ETag ``"<version>"`` (RFC 9110 §8.8.3).

    Surrounding whitespace is ignored. Raises ``BadETag`` (412) for a weak ETag or ``"0"``,
    which can never match under the strong comparison If-Match uses, and ``BadETag`` (400)
    for ``*``, a list or anything else that is not one quoted integer of at most 18 digits.
    """
    value = value.strip()
    if _WEAK_ETAG.match(value):
        raise BadETag(
            412,
            "A weak ETag never matches: If-Match uses the strong comparison (RFC 9110 §8.8.3.2).",
        )
    match = _STRONG_ETAG.match(value)
    if not match:
        raise BadETag(400, "Not a single strong ETag.")
    version = int(match.group(1))
    if version == 0:
        raise BadETag(412, "No contact is ever at version 0.")
    return version


def expected_version(request: Request) -> int | None:
    """Return the version ``If-Match`` names, or ``None`` without the header.

    Raises ``ProblemError`` 400 for a malformed value, ``*``, a list or the header sent more
    than once, and 412 for a weak ETag or ``"0"`` (neither can match); see ``version_of_etag``.
    """
    raw = single_header(request, "If-Match")
    if raw is None:
        return None
    try:
        return version_of_etag(raw)
    except BadETag as error:
        if error.status == 412:
            raise ProblemError(412, error.reason, type_uri=PRECONDITION_PROBLEM) from None
        raise ProblemError(
            400,
            'If-Match must be one strong ETag as served by the query API, e.g. "3".',
            type_uri=BAD_HEADER_PROBLEM,
            errors={"If-Match": [error.reason]},
        ) from None


def write_precondition(request: Request, *, create_only_allowed: bool) -> int | None:
    """Return the command's ``expected_version``: ``expected_version(request)`` (``If-Match``),
    or ``ABSENT_VERSION`` for ``If-None-Match: *`` where ``create_only_allowed`` (PUT).

    Raises ``ProblemError`` 400 naming ``If-None-Match`` for any other value of it, for it on
    a write that is not ``create_only_allowed`` or on two field lines; 412 beside ``If-Match``
    (the two can never both hold, RFC 9110 §13.2.2); and what ``expected_version`` raises.
    """
    raw = single_header(request, "If-None-Match")
    version = expected_version(request)
    if raw is None:
        return version
    if not create_only_allowed:
        reason = "Only a PUT takes If-None-Match (`*`: create, never replace)."
    elif raw.strip() != "*":
        reason = "A write takes only `If-None-Match: *` (create, never replace)."
    elif version is not None:
        raise ProblemError(
            412,
            "If-Match wants a visible contact and If-None-Match: * wants none: both never hold.",
            type_uri=PRECONDITION_PROBLEM,
        )
    else:
        return ABSENT_VERSION
    raise ProblemError(400, reason, type_uri=BAD_HEADER_PROBLEM, errors={"If-None-Match": [reason]})


#: The Flask endpoint whose writes take a precondition header (``write_precondition``): PUT,
#: PATCH and DELETE of ``/v1/contacts/{id}``. A batch operation takes ``if_match`` in its item.
CONDITIONAL_ENDPOINTS: Final = frozenset({"contacts.Contact"})
NO_PRECONDITION: Final = (
    "This route takes no precondition: PUT, PATCH and DELETE of a contact take If-Match "
    "(PUT also If-None-Match: *), a batch operation takes if_match."
)


def refuse_preconditions() -> None:
    """A blueprint's ``before_request``: raises ``ProblemError`` 400 naming ``If-Match`` and
    ``If-None-Match`` when sent to a route outside ``CONDITIONAL_ENDPOINTS`` (create, upsert,
    batch, import), which would otherwise queue the write as if they were not there."""
    if flask_request.endpoint in CONDITIONAL_ENDPOINTS:
        return
    sent = [name for name in ("If-Match", "If-None-Match") if name in flask_request.headers]
    if sent:
        raise ProblemError(
            400,
            NO_PRECONDITION,
            type_uri=BAD_HEADER_PROBLEM,
            errors={name: [NO_PRECONDITION] for name in sent},
        )


def idempotency_key(request: Request) -> str | None:
    """Return the ``Idempotency-Key`` header, or ``None`` without it.

    Raises ``ProblemError`` 400 unless it is 1–255 visible ASCII characters sent on one field
    line (``single_header``).
    """
    raw = single_header(request, "Idempotency-Key")
    if raw is None:
        return None
    if not KEY_PATTERN.match(raw):
        raise ProblemError(
            400,
            "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is best).",
            type_uri=BAD_HEADER_PROBLEM,
            errors={"Idempotency-Key": ["Not a valid key."]},
        )
    return raw


def require_media_type(request: Request, accepted: Iterable[str]) -> None:
    """Raise ``ProblemError`` 415 unless the body's media type is one of ``accepted``.

    The ``Accept-Patch`` (PATCH) or ``Accept-Post`` header of the problem lists them; its
    ``errors`` names the ``Content-Type`` header.
    """
    allowed = tuple(accepted)
    if request.mimetype in allowed:
        return
    header = "Accept-Patch" if request.method == "PATCH" else "Accept-Post"
    detail = f"Send the body as {' or '.join(allowed)}."
    raise ProblemError(
        415,
        detail,
        type_uri=MEDIA_TYPE_PROBLEM,
        errors={"Content-Type": [detail]},
        headers={header: ", ".join(allowed)},
    )
