"""Opaque pagination cursors: base64url (no padding) of a small versioned JSON object.

Shape (version 2): ``{"v": 2, "s": "<sort name>", "k": "<sort key>", "i": "<contact uuid>",
"m": "<digest>"}``; ``k`` is RFC 3339 UTC with microseconds for ``created_at`` sorts and the
``last_name_key`` text for ``last_name`` sorts. ``m`` is the keyed digest (``TokenKey``,
``QUERY_TOKEN_SECRET``) of the workspace, the filters and the other members: it binds the
cursor to the listing it was issued for without showing the workspace or the filters, and
without letting anyone who holds a cursor confirm a guess of them.

A cursor is a position, not a credential; anything that is not a cursor this API issued for this
workspace and these filters (bad base64 or JSON, another version, an edited member, a cursor of
another workspace or of other filters, version 1 cursors issued before ``m``) raises
``InvalidCursor`` with one detail, ``INVALID``, which the API answers with 400: a cursor of
another workspace cannot be told from garbage (docs/architecture.md §10). Only a cursor of this
listing presented with another sort order is told apart (the caller issued it to itself).
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
from query_api.service_layer.token_key import TokenKey

VERSION: Final = 2
#: Longer tokens are refused before decoding (a version-2 cursor stays well below this).
MAX_TOKEN_LENGTH: Final = 1024
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The one detail of every refused cursor but one of this listing in another sort order.
INVALID: Final = (
    "The cursor is not valid: send a next_cursor as this API returned it, with the filters "
    "of the request that returned it."
)
_PURPOSE: Final = "cursor"


class InvalidCursor(ValueError):
    """The cursor is not one this API issued for this query (``INVALID``, or the sort order)."""


def encode(
    workspace: str, sort: Sort, filters: ListFilters, position: Position, *, key: TokenKey
) -> str:
    """Return the cursor that resumes the listing ``sort``/``filters`` of ``workspace`` after
    ``position``."""
    sort_key = format_time(position.key) if isinstance(position.key, dt.datetime) else position.key
    payload = {"v": VERSION, "s": sort.name, "k": sort_key, "i": position.contact_id}
    payload["m"] = _digest(key, workspace, filters, payload)
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(
    token: str, workspace: str, filters: ListFilters, sort: Sort | None, *, key: TokenKey
) -> tuple[Sort, Position]:
    """Return the sort order and position a cursor of ``workspace`` resumes from.

    ``sort`` is the order the request names (``None`` when it names none, then the cursor's
    order applies). Raises ``InvalidCursor`` with ``INVALID`` when the token is not a cursor
    issued for ``workspace`` and ``filters`` (garbage, edited, of another workspace or other
    filters: nothing says which), and with its own detail when it is one, issued for another
    sort order.
    """
    payload = _payload(token)
    if payload.get("v") != VERSION or not key.verify(
        payload.get("m"), _PURPOSE, *_signed(workspace, filters, payload)
    ):
        raise InvalidCursor(INVALID)
    sort_name, sort_key, contact_id = payload.get("s"), payload.get("k"), payload.get("i")
    # Checked although signed: a cursor holds only what this module wrote, but a bad one must
    # still be a 400, never a database error.
    if not isinstance(sort_name, str) or sort_name not in SORT_NAMES:
        raise InvalidCursor(INVALID)
    if not isinstance(contact_id, str) or not _is_canonical_uuid(contact_id):
        raise InvalidCursor(INVALID)
    if not isinstance(sort_key, str) or not _is_clean_text(sort_key):
        raise InvalidCursor(INVALID)
    cursor_sort = Sort.parse(sort_name)
    if sort is not None and sort != cursor_sort:
        raise InvalidCursor("The cursor was issued for another sort order.")
    if cursor_sort.key == "created_at":
        return cursor_sort, Position(_parse_time(sort_key), contact_id)
    return cursor_sort, Position(sort_key, contact_id)


def _signed(workspace: str, filters: ListFilters, payload: dict[str, Any]) -> list[object]:
    """What ``m`` is the digest of (after ``_PURPOSE``): the listing and the cursor's members."""
    listing = [workspace, filters.email_key, sorted(filters.tags), filters.q]
    return [listing, [payload.get("s"), payload.get("k"), payload.get("i")]]


def _digest(key: TokenKey, workspace: str, filters: ListFilters, payload: dict[str, Any]) -> str:
    return key.digest(_PURPOSE, *_signed(workspace, filters, payload))


def _payload(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise InvalidCursor(INVALID)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise InvalidCursor(INVALID) from None
    if not isinstance(payload, dict):
        raise InvalidCursor(INVALID)
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
        raise InvalidCursor(INVALID) from None
    return moment.replace(tzinfo=dt.UTC)
