"""Which import an event came from: ``processed_events.import_id``, counted per import.

Revision ID: 0004
Revises: 0003

``import_id`` is the ``importid`` of the event (``POST /v1/imports``), NULL for every other
event. The query API's ``GET /v1/imports/{id}`` counts an import's outcomes by status and
reason with one grouped read of ``processed_events_import``, a partial index holding import
rows only (every other event is NULL and stays out of it). The id is not personal data: an
erasure (``Inbox.erase_data``) keeps it.

``processed_events`` holds a row per event ever processed, and the worker inserts into it all
the time, so this revision takes no long lock on it:

- adding a nullable column without a default only changes the catalogue, but needs an ACCESS
  EXCLUSIVE lock for that instant; ``lock_timeout`` makes it fail fast (run it again) rather
  than queue every worker transaction behind a long reader;
- the index is built ``CONCURRENTLY``, outside the revision's transaction, so writes go on
  while it is built. A failed concurrent build leaves an INVALID index behind: it is dropped
  first, and ``IF NOT EXISTS`` on the column, so running the revision again after a failure
  completes it.

The query API's role already reads the whole table (``GRANT SELECT`` of 0001 covers new
columns).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX = "processed_events_import"
#: Bound on the wait for the table lock that adding the column needs.
LOCK_TIMEOUT = "5s"


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS import_id uuid")
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        # (import_id, status, reason): the grouped count reads the index alone, in group order.
        op.execute(
            f"CREATE INDEX CONCURRENTLY {INDEX} ON processed_events (import_id, status, reason)"
            " WHERE import_id IS NOT NULL"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE processed_events DROP COLUMN IF EXISTS import_id")
