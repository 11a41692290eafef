"""The OAuth 2.0 scopes of the contacts APIs (RFC 6749 §3.3: space-delimited, case-sensitive)."""

from __future__ import annotations

from typing import Final

#: Needed by every route of the query API.
READ: Final = "contacts:read"
#: Needed by every route of the command API.
WRITE: Final = "contacts:write"
#: Reserved for bulk imports and exports (no route needs it yet).
IMPORT: Final = "contacts:import"
#: An operator: may act on any workspace named in ``X-Contacts-Workspace`` (every such request
#: is logged); it grants no route by itself (the route's own scope is still needed).
ADMIN: Final = "contacts:admin"
#: Every scope of a workspace's own client, e.g. for the local development key ``make up``
#: generates (not ``ADMIN``).
ALL: Final = frozenset({READ, WRITE, IMPORT})
