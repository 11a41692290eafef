"""What the read model and the cache hand to the use cases.

Shapes only; no I/O. ``fields`` mappings have the keys of ``contacts_domain.contact.FIELDS``
with ``birthday`` as ``YYYY-MM-DD`` text, which is what ``contacts_domain.resource`` expects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One visible (alive) contact as stored in PostgreSQL.

    ``version`` is the contact's ETag value. ``last_name_key`` is the database's
    ``lower(coalesce(last_name, ''))``, kept because a cursor must carry the exact sort key the
    database compared, not a Python re-computation of it.
    """

    contact_id: str
    fields: Mapping[str, Any]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime | None
    last_name_key: str


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A stored contact that is not visible (deleted, or only ever written out of order).

    ``version`` is its last version, so a cache refill of the tombstone is version-guarded too.
    """

    contact_id: str
    version: int


@dataclass(frozen=True, slots=True)
class CachedContact:
    """A ``contact:{id}`` cache entry: ``body`` is the resource JSON (UTF-8 bytes), ``None`` for
    a tombstone."""

    version: int
    body: bytes | None
