"""Opaque pagination cursors: base64url (no padding) of a small versioned JSON object.

Shape (version 1): ``{"v": 1, "s": "<sort name>", "k": "<sort key>", "i": "<contact uuid>",
"f": "<fingerprint of the filters and the workspace>"}`` (``ListFilters.fingerprint``); ``k`` is
RFC 3339 UTC with microseconds for ``created_at`` sorts and the ``last_name_key`` text for
``last_name`` sorts.

A cursor is a position, not a credential: a client that edits one can only choose where its own
listing resumes, which every value that decodes and validates here makes harmless (values are
bound as SQL parameters). Anything else (bad base64, bad JSON, unknown version, wrong types, a
sort, filters or workspace other than the cursor's) raises ``InvalidCursor``, which the API
answers with 400.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from typing import Any, Final

from contacts_domain.events import format_time
from query_api.service_layer.listing import SORT_NAMES, ListFilters, Position, Sort

VERSION: Final = 1
#: Longer tokens are refused before decoding (a version-1 cursor stays well below this).
MAX_TOKEN_LENGTH: Final = 1024
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidCursor(ValueError):
    """The cursor is not one this API issued for this query; the message says why."""


def encode(workspace: str, sort: Sort, filters: ListFilters, position: Position) -> str:
    """Return the cursor that resumes the listing ``sort``/``filters`` of ``workspace`` after
    ``position``."""
    key = position.key
    payload = {
        "v": VERSION,
        "s": sort.name,
        "k": format_time(key) if isinstance(key, dt.datetime) else key,
        "i": position.contact_id,
        "f": filters.fingerprint(workspace),
    }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(
    token: str, workspace: str, filters: ListFilters, sort: Sort | None
) -> tuple[Sort, Position]:
    """Return the sort order and position a cursor of ``workspace`` resumes from.

    ``sort`` is the order the request names (``None`` when it names none, then the cursor's
    order applies). Raises ``InvalidCursor`` when the token is malformed, or was issued for a
    different sort order, different filters or another workspace (one message for the last
    two: nothing says which, so a foreign cursor reveals nothing).
    """
    payload = _payload(token)
    if payload.get("v") != VERSION:
        raise InvalidCursor("Unknown cursor version.")
    sort_name, key, contact_id = payload.get("s"), payload.get("k"), payload.get("i")
    if not isinstance(sort_name, str) or sort_name not in SORT_NAMES:
        raise InvalidCursor("The cursor names no valid sort order.")
    cursor_sort = Sort.parse(sort_name)
    if sort is not None and sort != cursor_sort:
        raise InvalidCursor("The cursor was issued for another sort order.")
    if payload.get("f") != filters.fingerprint(workspace):
        raise InvalidCursor("The cursor was issued for other filters.")
    if not isinstance(contact_id, str) or not _is_canonical_uuid(contact_id):
        raise InvalidCursor("The cursor holds no valid contact id.")
    if not isinstance(key, str) or not _is_clean_text(key):
        raise InvalidCursor("The cursor holds no valid sort key.")
    if cursor_sort.key == "created_at":
        return cursor_sort, Position(_parse_time(key), contact_id)
    return cursor_sort, Position(key, contact_id)


def _payload(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidCursor("The cursor is too long.")
    if not _TOKEN.fullmatch(token):
        raise InvalidCursor("The cursor is not valid.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise InvalidCursor("The cursor is not valid.") from None
    if not isinstance(payload, dict):
        raise InvalidCursor("The cursor is not valid.")
    return payload


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _is_clean_text(text: str) -> bool:
    # The database refuses NUL and lone surrogates with an error, not an empty result.
    if _CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise InvalidCursor("The cursor holds no valid timestamp.") from None
    return moment.replace(tzinfo=dt.UTC)
