"""The OAuth 2.0 scopes of the contacts APIs (RFC 6749 §3.3: space-delimited, case-sensitive)."""

from __future__ import annotations

from typing import Final

#: Needed by every route of the query API.
READ: Final = "contacts:read"
#: Needed by every route of the command API.
WRITE: Final = "contacts:write"
#: Reserved for bulk imports and exports (no route needs it yet).
IMPORT: Final = "contacts:import"
#: Every scope, e.g. for the local development key ``make up`` generates.
ALL: Final = frozenset({READ, WRITE, IMPORT})
