"""Workspaces: every piece of data belongs to exactly one (docs/architecture.md §10).

A workspace id is a short slug, ``WORKSPACE_PATTERN``: 2 to 63 characters of lower-case ASCII
letters, digits and ``-``, starting with a letter or a digit (a DNS label's alphabet, so it fits
keys, URLs, log fields and SQS group ids unchanged). ``DEFAULT_WORKSPACE`` holds everything that
names no workspace: API keys configured without one, events queued before workspaces existed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

DEFAULT_WORKSPACE: Final = "default"
WORKSPACE_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{1,62}$"
_WORKSPACE: Final = re.compile(WORKSPACE_PATTERN)
#: Prefix of a workspace id derived from an identity that is not a slug itself.
DERIVED_PREFIX: Final = "h-"


class InvalidWorkspace(ValueError):
    """A text that is not a workspace id; the message says the rule (never echoes the text)."""


def is_workspace(value: object) -> bool:
    """Whether ``value`` is a valid workspace id (``WORKSPACE_PATTERN``)."""
    return isinstance(value, str) and _WORKSPACE.fullmatch(value) is not None


def check_workspace(value: object) -> str:
    """``value`` itself when it is a workspace id. Raises ``InvalidWorkspace``."""
    if not is_workspace(value):
        raise InvalidWorkspace(
            "A workspace id is 2 to 63 characters of a-z, 0-9 and '-', starting with a letter "
            "or a digit."
        )
    return str(value)


def workspace_of_identity(value: str) -> str:
    """The workspace of an identity claim (a JWT's ``org_id``, or its ``sub`` for a book per
    user): the claim itself when it is a workspace id, else ``h-`` and the first 40 hex digits
    of its SHA-256, so any claim value (``auth0|5f7c...``, an email) maps to one stable id that
    reveals nothing of it. Raises ``InvalidWorkspace`` for an empty claim."""
    if not value:
        raise InvalidWorkspace("The identity names no workspace.")
    if is_workspace(value):
        return value
    return DERIVED_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]
