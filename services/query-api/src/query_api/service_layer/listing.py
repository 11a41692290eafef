"""The vocabulary of ``GET /v1/contacts``: sort orders, filters, keyset positions and pages.

Keyset pagination: a page is "the first ``limit`` visible contacts strictly after ``position``
in ``sort`` order", where the order is (sort key, id) and the id is the unique tie-breaker, so
pages never overlap or skip a row that existed for the whole walk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final, Literal

SortKey = Literal["created_at", "last_name"]

SORT_NAMES: Final = ("created_at", "-created_at", "last_name", "-last_name")
DEFAULT_SORT: Final = "created_at"
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class Sort:
    """A sort order: ``key`` ascending, or descending when ``descending``; ties broken by id in
    the same direction."""

    key: SortKey
    descending: bool = False

    @property
    def name(self) -> str:
        """The query-string form: ``created_at``, ``-last_name``..."""
        return f"-{self.key}" if self.descending else self.key

    @classmethod
    def parse(cls, name: str) -> Sort:
        """Raises ``ValueError`` for a name outside ``SORT_NAMES``."""
        if name not in SORT_NAMES:
            raise ValueError(f"Must be one of: {', '.join(SORT_NAMES)}.")
        key = name.removeprefix("-")
        return cls(
            key="created_at" if key == "created_at" else "last_name",
            descending=name.startswith("-"),
        )


@dataclass(frozen=True, slots=True)
class ListFilters:
    """Filters, all optional and combined with AND.

    - ``email_key``: an email's canonical key (``EmailAddress.key``, simple case folding);
      matches any of a contact's emails.
    - ``tags``: every tag must be on the contact (exact, normalized text).
    - ``q``: case-insensitive prefix of first name, last name or primary email; taken literally
      (``%`` and ``_`` are not wildcards).
    """

    email_key: str | None = None
    tags: tuple[str, ...] = ()
    q: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the sort key value and id of its last item.

    ``key`` is a timezone-aware ``datetime`` for ``created_at`` and the ``last_name_key`` text
    for ``last_name``.
    """

    key: dt.datetime | str
    contact_id: str


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One validated list request. ``after`` is ``None`` for the first page."""

    sort: Sort = field(default_factory=lambda: Sort("created_at"))
    filters: ListFilters = field(default_factory=ListFilters)
    limit: int = DEFAULT_LIMIT
    after: Position | None = None
