"""The change feed: one row per new version of a contact, in a commit-safe order.

Revision ID: 0002
Revises: 0001

Every insert of a contact, and every update that changes its version or visibility, appends a
row to ``contact_changes`` in the writing transaction (a trigger, so no write path can forget
it). Each row carries the id of that transaction (``pg_current_xact_id()``, an ``xid8``, which
never wraps) and an identity ``position``.

Why the transaction id: positions are handed out when rows are written, but transactions commit
in another order, so a reader that resumed after the highest position it saw would skip rows of
a transaction still running with a lower one. The query API reads only rows whose transaction
id is below the oldest transaction still running (``pg_snapshot_xmin`` of its snapshot): every
such transaction has ended, so no row can appear later below that bound, and ``(txid,
position)`` order is final there. The feed resumes strictly after the last ``(txid, position)``
it returned (services/query-api, ``sql_change_feed``).

``change_feed_horizon`` holds the highest ``(txid, position)`` ever purged (``contact-worker-admin
purge-changes``): a token at or below it may have missed purged rows and is refused (410).
"""

from __future__ import annotations

from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE contact_changes (
            position bigint GENERATED ALWAYS AS IDENTITY,
            txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            contact_id uuid NOT NULL,
            version bigint NOT NULL,
            alive boolean NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (txid, position)
        )
        """
    )
    op.execute("CREATE INDEX contact_changes_changed_at ON contact_changes (changed_at)")
    op.execute(
        """
        CREATE TABLE change_feed_horizon (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            txid xid8 NOT NULL,
            position bigint NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION record_contact_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO contact_changes (contact_id, version, alive)
            VALUES (NEW.id, NEW.version, NEW.alive);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER contacts_changes_insert AFTER INSERT ON contacts"
        " FOR EACH ROW EXECUTE FUNCTION record_contact_change()"
    )
    op.execute(
        "CREATE TRIGGER contacts_changes_update AFTER UPDATE ON contacts FOR EACH ROW"
        " WHEN (OLD.version IS DISTINCT FROM NEW.version OR OLD.alive IS DISTINCT FROM NEW.alive)"
        " EXECUTE FUNCTION record_contact_change()"
    )
    reader = context.get_x_argument(as_dictionary=True).get("reader_role", "contacts_reader")
    op.execute(f'GRANT SELECT ON contact_changes, change_feed_horizon TO "{reader}"')


def downgrade() -> None:
    op.execute("DROP TRIGGER contacts_changes_update ON contacts")
    op.execute("DROP TRIGGER contacts_changes_insert ON contacts")
    op.execute("DROP FUNCTION record_contact_change()")
    op.execute("DROP TABLE change_feed_horizon")
    op.execute("DROP TABLE contact_changes")
