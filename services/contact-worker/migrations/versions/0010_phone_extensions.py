"""Phone numbers keep their extension: ``contacts.phone`` widens from 16 to 40 characters.

Revision ID: 0010
Revises: 0009

A stored number is E.164 (16 characters at most), then, when it has one, ``;ext=`` and the
extension's digits (``+12025550100;ext=5``, ``contacts_domain.values.PhoneNumber``), at most
``contacts_domain.limits.PHONE_MAX`` (40) characters. The ``phones`` list is jsonb and takes
them as they are; ``phone``, the primary number, needs the room.

Lengthening a ``varchar`` leaves every stored value as it is: PostgreSQL changes the catalogue
only, without rewriting the table or an index (no index holds ``phone``), under a short
ACCESS EXCLUSIVE lock whose wait is bounded. The downgrade cuts the extension off the primary
number (the ``phones`` list keeps it; the previous release reads such a number as the number
without its extension).
"""

from __future__ import annotations

from typing import Final

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: No stored value changes (the catalogue only): ``make bench`` keeps its loaded rows
#: (``bench/dataset.py``, ``keeps_loaded_data``).
KEEPS_LOADED_DATA: Final = True
#: Bound on the wait for the table lock that changing the column needs.
LOCK_TIMEOUT: Final = "5s"


def upgrade() -> None:
    # The length is the limit of contacts_domain.limits when this revision was written (a
    # migration is frozen; a test checks the live schema against the current limits).
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE contacts ALTER COLUMN phone TYPE varchar(40)")


def downgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute(
        "ALTER TABLE contacts ALTER COLUMN phone TYPE varchar(16) USING split_part(phone, ';', 1)"
    )
