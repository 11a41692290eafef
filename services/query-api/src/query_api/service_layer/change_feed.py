"""The change feed: what changed after a token, in commit-safe order (issue 3, item 6).

A **token** is an opaque position in one workspace's feed: base64url (no padding) of
``{"v": 1, "x": <txid>, "p": <position>, "w": <digest>}``, the ``(transaction id, position)``
of the last change returned (services/contact-worker migration 0002 says why a transaction id
orders the feed). ``w`` is the keyed digest (``TokenKey``, ``QUERY_TOKEN_SECRET``) of the
workspace and the position: it binds the token to the workspace it was issued in without
showing the workspace or letting anyone confirm a guess of it (an unkeyed hash of the name,
as ``w`` was before, did); presented in another workspace, edited, or issued before the key
(its ``w`` is the old hash), a token is refused exactly like a malformed one (400,
docs/architecture.md §10); one signed with ``QUERY_TOKEN_PREVIOUS_SECRET`` while the secret is
rotated is still valid (``token_key``). The ``default`` workspace's tokens carry no ``w``, so
tokens issued before workspaces existed stay valid there.
A token is a position, not a credential: an edited one of ``default`` can only move where its own
reader resumes (elsewhere ``w`` refuses it). Tokens do not expire by age: one stays valid until the
changes after it are purged (``contact-worker-admin purge-changes``, at least
``CHANGE_RETENTION_DAYS`` = 7 days after they were written); then it is refused with
``TokenExpired`` (410). A token ahead of the feed's end (``TokenAhead``, also 410) was issued by a
database that has since gone back in time (restored from a backup): the changes it stands after no
longer exist, so the reader must list everything again, exactly as after a purge. The feed's end
(``pg_snapshot_xmin``) never moves back on one server, so no token this server issued is ever ahead
of it.

Each change is one new version of one contact: ``deleted`` for a deletion, otherwise the
contact as it is now when that version is still its current one, or ``None`` when a later
change (later in the feed) superseded it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from contacts_domain.workspaces import DEFAULT_WORKSPACE
from query_api.service_layer.ports import ChangeFeed
from query_api.service_layer.records import Change, ChangeBatch, FeedPosition
from query_api.service_layer.token_key import TokenKey

VERSION: Final = 1
#: Longer tokens are refused before decoding.
MAX_TOKEN_LENGTH: Final = 256
#: Largest ``x``/``p`` a token may hold: PostgreSQL's ``xid8`` and ``bigint`` fit below 2**63.
_MAX_INT: Final = 2**63 - 1
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")
#: Page sizes of ``GET /v1/contacts/changes``.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


INVALID: Final = "The token is not valid."
_PURPOSE: Final = "change-feed"


class InvalidToken(ValueError):
    """The token is not one this API issued; the message says why (400)."""


class TokenExpired(LookupError):
    """Changes after the token were purged: the reader must list everything again (410)."""


class TokenAhead(TokenExpired):
    """The token is ahead of the feed's end (the database was restored from a backup): the
    reader must list everything again (410, like ``TokenExpired``)."""


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of the feed: ``next_token`` resumes after it; ``has_more`` says whether more
    changes could be read right away."""

    changes: list[Change]
    next_token: str
    has_more: bool


def encode_token(workspace: str, at: FeedPosition, *, key: TokenKey) -> str:
    """The token that resumes the feed of ``workspace`` after ``at``."""
    payload: dict[str, Any] = {"v": VERSION, "x": at.txid, "p": at.position}
    if workspace != DEFAULT_WORKSPACE:
        payload["w"] = key.digest(_PURPOSE, workspace, at.txid, at.position)
    raw = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_token(token: str, workspace: str, *, key: TokenKey) -> FeedPosition:
    """The position a token of ``workspace`` resumes after. Raises ``InvalidToken`` for a
    malformed token and for one issued in another workspace (the same message)."""
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise InvalidToken(INVALID)
    try:
        payload: Any = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken(INVALID) from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise InvalidToken(INVALID)
    txid, position = payload.get("x"), payload.get("p")
    if not (_is_token_int(txid) and _is_token_int(position)):
        raise InvalidToken(INVALID)
    if workspace == DEFAULT_WORKSPACE:
        bound = "w" not in payload
    else:
        bound = key.verify(payload.get("w"), _PURPOSE, workspace, txid, position)
    if not bound:
        raise InvalidToken(INVALID)
    return FeedPosition(txid, position)


def _is_token_int(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= _MAX_INT


def page_of(
    workspace: str, batch: ChangeBatch, after: FeedPosition, limit: int, *, key: TokenKey
) -> ChangePage:
    """The page for a reader of ``workspace`` resuming after ``after`` from ``batch`` (read
    with ``limit + 1``
    changes, to learn whether more follow). Raises ``TokenExpired`` when the purge horizon is
    past ``after`` and ``TokenAhead`` when ``after`` is past the feed's end (``batch.bound``).

    The next token is the last change returned; when nothing more is readable, it moves up to
    ``bound`` (every transaction below it has ended, and nothing between was found), so an idle
    reader's token follows the purge horizon instead of falling behind it.
    """
    if batch.horizon is not None and after < batch.horizon:
        raise TokenExpired("Changes after this token were purged; list the contacts again.")
    if after > batch.bound:
        raise TokenAhead(
            "This token is ahead of the change feed (the database was restored from a backup?): "
            "the changes it follows are gone; list the contacts again, then take a new token."
        )
    changes = batch.changes[:limit]
    has_more = len(batch.changes) > limit
    resume = changes[-1].at if changes else after
    if not has_more:
        resume = max(resume, batch.bound)
    return ChangePage(changes, encode_token(workspace, resume, key=key), has_more)


def read_changes(
    workspace: str, since: str | None, limit: int, *, feed: ChangeFeed, key: TokenKey
) -> ChangePage:
    """The page of ``GET /v1/contacts/changes`` for a caller of ``workspace``: without
    ``since``, no changes and a token for "now"; with it, up to ``limit`` changes of the
    workspace after it. Raises ``InvalidToken`` (a token of another workspace included),
    ``TokenExpired`` and ``ReadModelUnavailable``."""
    if since is None:
        return ChangePage([], encode_token(workspace, feed.bound(), key=key), False)
    after = decode_token(since, workspace, key=key)
    return page_of(workspace, feed.read(workspace, after, limit + 1), after, limit, key=key)
