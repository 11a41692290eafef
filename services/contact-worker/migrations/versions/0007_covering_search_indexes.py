"""Covering list and prefix indexes for ``q`` searches (issue 13 item 5: search p99 <= 20 ms
at 1M).

Revision ID: 0007
Revises: 0006

Five indexes of 0005 keep their names and keys and gain ``INCLUDE`` columns, so a search chooses
its page from index entries alone (index-only scans) and reads only the page's 21 rows from the
table (``sql_read_model._search_page``):

- the three ``text_pattern_ops`` prefix indexes (``contacts_ws_live_{first,last,email}_prefix``)
  include ``id`` and both sort keys (``created_at``, ``last_name_key``), for the match counts
  (``prefix_counts_statement``) and the candidates plan; the first-name one also includes
  ``first_name`` itself, as PostgreSQL answers ``lower(first_name) LIKE ...`` from an index
  only when the column is in it;
- the two sort indexes (``contacts_ws_live_created``, ``contacts_ws_live_last_name``) include
  the three prefix columns (``first_name``, ``last_name_key``, ``email_key``), for the walk
  plan, which filters its way along the sort order (thousands of entries for a page of a
  prefix of average density: it read as many table rows before).

Measured at 1,000,000 contacts, 500,000 in the searched workspace (bench/README.md, "Search"):
the walk of ``q=mar`` from 432 buffers and 18 ms to 43 buffers and 1 ms, the candidates of
``q=dol`` from 7,648 buffers to 644.

Online, like 0005: for each index a copy with the new definition is built ``CONCURRENTLY``
(``<name>_0007``; an INVALID leftover of a failed run is dropped first), the old one is dropped
``CONCURRENTLY`` and the copy takes its name (``ALTER INDEX ... RENAME``, a catalogue change
under a short lock, bounded by ``lock_timeout``). Writes go on throughout; every step is safe to
run again. It changes indexes and nothing else (no column, row, constraint, trigger or
function; ``test_migration_0007`` checks it), hence ``KEEPS_LOADED_DATA``: ``make bench``
applies it to its loaded data set with ``alembic upgrade`` instead of reloading 1,000,000 rows
(bench/dataset.py, ``keeps_loaded_data``).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: This revision only creates and drops indexes (bench/dataset.py reads this flag).
KEEPS_LOADED_DATA: Final = True
#: Bound on the wait for each lock the revision takes.
LOCK_TIMEOUT: Final = "5s"

#: name: (definition of 0005, definition of 0007).
INDEXES: Final = {
    "contacts_ws_live_first_prefix": (
        "INDEX {name} ON contacts (workspace, lower(first_name) text_pattern_ops) WHERE alive",
        "INDEX {name} ON contacts (workspace, lower(first_name) text_pattern_ops)"
        " INCLUDE (first_name, created_at, last_name_key, id) WHERE alive",
    ),
    "contacts_ws_live_last_prefix": (
        "INDEX {name} ON contacts (workspace, last_name_key text_pattern_ops) WHERE alive",
        "INDEX {name} ON contacts (workspace, last_name_key text_pattern_ops)"
        " INCLUDE (created_at, id) WHERE alive",
    ),
    "contacts_ws_live_email_prefix": (
        "INDEX {name} ON contacts (workspace, email_key text_pattern_ops) WHERE alive",
        "INDEX {name} ON contacts (workspace, email_key text_pattern_ops)"
        " INCLUDE (created_at, last_name_key, id) WHERE alive",
    ),
    "contacts_ws_live_created": (
        "INDEX {name} ON contacts (workspace, created_at, id) WHERE alive",
        "INDEX {name} ON contacts (workspace, created_at, id)"
        " INCLUDE (first_name, last_name_key, email_key) WHERE alive",
    ),
    "contacts_ws_live_last_name": (
        "INDEX {name} ON contacts (workspace, last_name_key, id) WHERE alive",
        "INDEX {name} ON contacts (workspace, last_name_key, id)"
        " INCLUDE (first_name, email_key) WHERE alive",
    ),
}
#: Suffix of the copy built beside an index before it takes the index's name.
COPY_SUFFIX: Final = "_0007"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        for name, (_old, new) in INDEXES.items():
            _redefine(name, new, covering=True)
        op.execute("RESET lock_timeout")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        for name, (old, _new) in INDEXES.items():
            _redefine(name, old, covering=False)
        op.execute("RESET lock_timeout")


def _redefine(name: str, definition: str, *, covering: bool) -> None:
    """Give index ``name`` the ``definition`` (covering or not) without blocking writes: build
    a copy concurrently, drop the old index concurrently, rename the copy. Each state a failed
    run can leave behind is picked up where it stopped."""
    copy = name + COPY_SUFFIX
    current = _index_state(name)
    if current is not None and current[0] and _is_covering(current[1]) == covering:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {copy}")  # a leftover of a rerun
        return
    built = _index_state(copy)
    if built is None or not built[0]:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {copy}")
        op.execute(
            f"CREATE {definition.replace('INDEX', 'INDEX CONCURRENTLY', 1).format(name=copy)}"
        )
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"ALTER INDEX {copy} RENAME TO {name}")


def _is_covering(definition: str) -> bool:
    return " INCLUDE (" in definition


def _index_state(name: str) -> tuple[bool, str] | None:
    """(valid, definition) of index ``name``, or ``None`` if there is none."""
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT i.indisvalid, pg_get_indexdef(c.oid) FROM pg_class c"
                " JOIN pg_index i ON i.indexrelid = c.oid"
                " WHERE c.relname = :name AND c.relkind = 'i'"
            ),
            {"name": name},
        )
        .first()
    )
    return None if row is None else (bool(row[0]), str(row[1]))
