"""What the ports' adapters (read model, cache, change feed, import outcome log) hand to the
use cases.

Shapes only; no I/O. ``ports`` and the use cases (``change_feed``, ``imports``...) both import
this module, and it imports neither of them. ``fields`` mappings have the keys of
``contacts_domain.contact.FIELDS`` with ``birthday`` as ``YYYY-MM-DD`` text, which is what
``contacts_domain.resource`` expects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True, order=True, slots=True)
class FeedPosition:
    """A point in the change feed (``change_feed``): ``txid`` (a PostgreSQL ``xid8``), then
    ``position``."""

    txid: int
    position: int


@dataclass(frozen=True, slots=True)
class Change:
    """One new version of one contact in the change feed. ``contact`` is its current state when
    ``version`` is still current and the contact visible, else ``None``."""

    at: FeedPosition
    contact_id: str
    version: int
    deleted: bool
    contact: ContactRecord | None


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What the feed adapter read: up to the asked number of ``changes`` after a position, in
    feed order, all below ``bound``; and the purge ``horizon`` read after them."""

    changes: list[Change]
    bound: FeedPosition
    horizon: FeedPosition | None


@dataclass(frozen=True, slots=True)
class ImportOutcomes:
    """What the worker recorded for an import's records so far: counts of records ``applied``
    and ``rejected``, and of rejections per reason (``email_conflict``: 3, ...; the reasons'
    counts add up to ``rejected``)."""

    applied: int = 0
    rejected: int = 0
    rejected_reasons: Mapping[str, int] = field(default_factory=dict)
