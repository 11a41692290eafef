"""The read model's JSON form of a contact, shared by the worker (cache writes) and the query API.

docs/architecture.md §4: the cache holds exactly what the query API would build from PostgreSQL, so
both
sides build it here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from contacts_domain.contact import represent
from contacts_domain.events import format_time


def contact_resource(
    contact_id: str,
    fields: Mapping[str, Any],
    *,
    version: int,
    created_at: dt.datetime | None,
    updated_at: dt.datetime | None,
) -> dict[str, Any]:
    """Return the JSON-ready representation served by ``GET /v1/contacts/{id}``.

    ``fields`` has the keys of ``contact.FIELDS`` (``birthday`` as ``YYYY-MM-DD`` text).
    Times are RFC 3339 UTC with microseconds.
    """
    return {
        "id": contact_id,
        "version": version,
        **represent(fields),
        "created_at": format_time(created_at) if created_at else None,
        "updated_at": format_time(updated_at) if updated_at else None,
    }


def encode_resource(document: Any) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept: the one encoding of a contact resource, so the bytes
    the worker caches and the bytes the query API builds from PostgreSQL are identical."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def etag(version: int) -> str:
    """The strong ETag of a contact version (RFC 9110 §8.8.3): ``"<version>"``."""
    return f'"{version}"'
