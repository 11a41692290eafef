"""Payload retention of the inbox: ``processed_events.data`` may be NULL (purged).

Revision ID: 0006
Revises: 0005

``contact-worker-admin purge-inbox`` (issue 16, item 4) sets ``data`` to NULL on the rows
processed more than ``--older-than-days`` ago (``adapters.inbox_retention``): the event's
payload, personal data, goes; its ids, kind, sequence and outcome stay, which is all that
deduplication (``outcome_of``) and ordering (``last_sequence``) read. NULL is "purged by
retention", distinct from ``'{}'`` ("erased by a delete", or an event without fields), so a
late event that would need a purged payload to be put in its place is recognised (the worker
rejects it ``expired``, ``service_layer.handlers``).

``processed_events_payload_kept`` holds the rows that still have a payload, by
``processed_at``: each purge batch reads the oldest of them from it, so a purge never walks the
already purged history. The index is built ``CONCURRENTLY`` (see 0004 for why and how a failed
build is retried); dropping NOT NULL only changes the catalogue, under a bounded lock wait.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEX = "processed_events_payload_kept"
#: Bound on the wait for the table lock that changing the column needs.
LOCK_TIMEOUT = "5s"


def upgrade() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("ALTER TABLE processed_events ALTER COLUMN data DROP NOT NULL")
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.execute(
            f"CREATE INDEX CONCURRENTLY {INDEX} ON processed_events (processed_at)"
            " WHERE data IS NOT NULL"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("UPDATE processed_events SET data = '{}'::jsonb WHERE data IS NULL")
    op.execute("ALTER TABLE processed_events ALTER COLUMN data SET NOT NULL")
