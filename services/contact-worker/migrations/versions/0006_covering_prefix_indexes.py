"""Covering prefix indexes for ``q`` searches (issue 13 item 5: search p99 <= 20 ms at 1M).

Revision ID: 0006
Revises: 0005

The three ``text_pattern_ops`` prefix indexes of 0005 (``contacts_ws_live_{first,last,email}
_prefix``) are replaced by the same keys with the columns a search reads from them
``INCLUDE``d, so both statements of a search read them with index-only scans:

- the match counts of ``sql_read_model.prefix_counts_statement`` (up to ``SPARSE_PREFIX_CAP``
  entries per index): the first-name index includes ``first_name`` itself, as PostgreSQL
  answers ``lower(first_name) LIKE ...`` from the index only when the column is in it;
- the candidates of the sparse plan (``list_statement(..., candidates=True)``): ``id`` and both
  sort keys (``created_at``, ``last_name_key``), so the page is chosen from the indexes and
  only its rows are read from the table.

Measured at 1,000,000 contacts (bench/README.md, "Search"). The keys are those of 0005, so every
plan that used the old indexes uses these.

Online, like 0005: each new index is built ``CONCURRENTLY`` (an INVALID leftover of a failed
run is dropped first), then the old one is dropped ``CONCURRENTLY``; writes go on throughout
and the revision is safe to run again. It creates and drops indexes and nothing else (no
column, row, constraint, trigger or function; ``test_migration_0006`` checks it), hence
``CHANGES_ONLY_INDEXES``: ``make bench`` applies it to its loaded data set with ``alembic
upgrade`` instead of reloading 1,000,000 rows (bench/dataset.py, ``changes_only_indexes``).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: This revision only creates and drops indexes (bench/dataset.py reads this flag).
CHANGES_ONLY_INDEXES: Final = True
#: Bound on the wait for each lock the revision takes.
LOCK_TIMEOUT: Final = "5s"

#: (new name, definition, the 0005 index it replaces).
COVERING: Final = (
    (
        "contacts_ws_live_first_cover",
        "INDEX {name} ON contacts (workspace, lower(first_name) text_pattern_ops)"
        " INCLUDE (first_name, created_at, last_name_key, id) WHERE alive",
        "contacts_ws_live_first_prefix",
    ),
    (
        "contacts_ws_live_last_cover",
        "INDEX {name} ON contacts (workspace, last_name_key text_pattern_ops)"
        " INCLUDE (created_at, id) WHERE alive",
        "contacts_ws_live_last_prefix",
    ),
    (
        "contacts_ws_live_email_cover",
        "INDEX {name} ON contacts (workspace, email_key text_pattern_ops)"
        " INCLUDE (created_at, last_name_key, id) WHERE alive",
        "contacts_ws_live_email_prefix",
    ),
)

#: The 0005 definitions, rebuilt by ``downgrade``.
PREFIX_0005: Final = {
    "contacts_ws_live_first_prefix": "INDEX {name} ON contacts"
    " (workspace, lower(first_name) text_pattern_ops) WHERE alive",
    "contacts_ws_live_last_prefix": "INDEX {name} ON contacts"
    " (workspace, last_name_key text_pattern_ops) WHERE alive",
    "contacts_ws_live_email_prefix": "INDEX {name} ON contacts"
    " (workspace, email_key text_pattern_ops) WHERE alive",
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        for name, definition, old in COVERING:
            _build_index(name, definition)
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {old}")
        op.execute("RESET lock_timeout")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        for name, _definition, old in COVERING:
            _build_index(old, PREFIX_0005[old])
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute("RESET lock_timeout")


def _build_index(name: str, definition: str) -> None:
    """Build ``name`` concurrently unless a valid one exists; an invalid leftover of a failed
    build is dropped first."""
    valid = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
                " WHERE c.relname = :name AND c.relkind = 'i'"
            ),
            {"name": name},
        )
        .scalar()
    )
    if valid:
        return
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"CREATE {definition.replace('INDEX', 'INDEX CONCURRENTLY', 1).format(name=name)}")
