"""Workspaces (docs/architecture.md §10): every row belongs to one, every index leads with it.

Revision ID: 0005
Revises: 0004

The schema after this revision:

- ``contacts.workspace text NOT NULL DEFAULT 'default'``; primary key ``(workspace, id)``;
  unique ``(workspace, email_key) WHERE alive`` (``contacts_ws_live_email_key``); the list,
  filter and search indexes of 0001, each led by the workspace (``contacts_ws_live_*``; the GIN
  ones through the ``btree_gin`` extension).
- ``processed_events.workspace text NOT NULL DEFAULT 'default'``; primary key ``(workspace,
  event_id)``; unique ``(workspace, operation_id)``; ``(workspace, contact_id, sequence)``;
  ``(workspace, import_id, status, reason) WHERE import_id IS NOT NULL``; ``processed_at`` kept.
- ``contact_changes.workspace text NOT NULL``, copied by the trigger from the contacts row;
  ``(workspace, txid, position)`` for the change feed of one workspace (the primary key
  ``(txid, position)`` stays: the purge walks the whole feed).

Everything that exists before this revision was written by a release without workspaces, so it
all goes to ``default``. The previous release keeps writing while this runs (its rows get the
column default), so no step holds a long lock:

1. add the columns nullable, then give them the default (catalogue only; ``lock_timeout``);
2. backfill ``'default'`` in batches of ``BATCH`` rows, one transaction each, walking the
   primary keys;
3. ``CHECK (workspace IS NOT NULL) NOT VALID``, ``VALIDATE`` (writes go on), ``SET NOT NULL``
   (no scan: the valid check proves it), drop the check;
4. build the new indexes ``CONCURRENTLY`` (an INVALID leftover of a failed run is dropped
   first), swap the primary keys (``PRIMARY KEY USING INDEX``, an instant catalogue change),
   drop the old indexes ``CONCURRENTLY``.

Every step is safe to run again, so after a failure (a lock timeout) running the upgrade again
completes it. Writers of the previous release use ``ON CONFLICT (id)``: after the primary key
swap they fail (and their messages are retried) until the new release runs, which the deploy
starts right after the migration.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Rows updated per backfill transaction.
BATCH: Final = 5_000
#: Bound on the wait for each lock the revision takes.
LOCK_TIMEOUT: Final = "5s"
TABLES: Final = ("contacts", "processed_events", "contact_changes")

#: (name, definition) of the new indexes; ``*_ws_pkey`` become the primary keys.
NEW_INDEXES: Final = (
    ("contacts_ws_pkey", "UNIQUE INDEX {name} ON contacts (workspace, id)"),
    (
        "contacts_ws_live_email_key",
        "UNIQUE INDEX {name} ON contacts (workspace, email_key) WHERE alive",
    ),
    (
        "contacts_ws_live_created",
        "INDEX {name} ON contacts (workspace, created_at, id) WHERE alive",
    ),
    (
        "contacts_ws_live_last_name",
        "INDEX {name} ON contacts (workspace, last_name_key, id) WHERE alive",
    ),
    (
        "contacts_ws_live_email_keys",
        "INDEX {name} ON contacts USING gin (workspace, email_keys) WHERE alive",
    ),
    ("contacts_ws_live_tags", "INDEX {name} ON contacts USING gin (workspace, tags) WHERE alive"),
    (
        "contacts_ws_live_first_prefix",
        "INDEX {name} ON contacts (workspace, lower(first_name) text_pattern_ops) WHERE alive",
    ),
    (
        "contacts_ws_live_last_prefix",
        "INDEX {name} ON contacts (workspace, last_name_key text_pattern_ops) WHERE alive",
    ),
    (
        "contacts_ws_live_email_prefix",
        "INDEX {name} ON contacts (workspace, email_key text_pattern_ops) WHERE alive",
    ),
    ("processed_events_ws_pkey", "UNIQUE INDEX {name} ON processed_events (workspace, event_id)"),
    (
        "processed_events_ws_operation",
        "UNIQUE INDEX {name} ON processed_events (workspace, operation_id)",
    ),
    (
        "processed_events_ws_contact_sequence",
        "INDEX {name} ON processed_events (workspace, contact_id, sequence)",
    ),
    (
        "processed_events_ws_import",
        "INDEX {name} ON processed_events (workspace, import_id, status, reason)"
        " WHERE import_id IS NOT NULL",
    ),
    ("contact_changes_ws_feed", "INDEX {name} ON contact_changes (workspace, txid, position)"),
)

#: Indexes of 0001 and 0004 that the ones above replace (the primary keys are swapped).
OLD_INDEXES: Final = (
    "contacts_live_email_key",
    "contacts_live_created",
    "contacts_live_last_name",
    "contacts_live_email_keys",
    "contacts_live_tags",
    "contacts_live_first_prefix",
    "contacts_live_last_prefix",
    "contacts_live_email_prefix",
    "processed_events_operation",
    "processed_events_contact_sequence",
    "processed_events_import",
)

#: (table, primary key columns of 0001/0002) walked by the backfill.
BACKFILL: Final = (
    ("contacts", "id"),
    ("processed_events", "event_id"),
    ("contact_changes", "txid, position"),
)

RECORD_CHANGE: Final = """
    CREATE OR REPLACE FUNCTION record_contact_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO contact_changes (workspace, contact_id, version, alive)
        VALUES (coalesce(NEW.workspace, 'default'), NEW.id, NEW.version, NEW.alive);
        RETURN NULL;
    END
    $$
"""


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS workspace text")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN workspace SET DEFAULT 'default'")
        op.execute(RECORD_CHANGE)
        for table, key in BACKFILL:
            _backfill(table, key)
        for table in TABLES:
            _set_not_null(table)
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        for name, definition in NEW_INDEXES:
            _build_index(name, definition)
        _swap_primary_key("contacts", "contacts_pkey", "contacts_ws_pkey")
        _swap_primary_key("processed_events", "processed_events_pkey", "processed_events_ws_pkey")
        for name in OLD_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # The trigger names the workspace of every change; no default may hide one it forgot.
        op.execute("ALTER TABLE contact_changes ALTER COLUMN workspace DROP DEFAULT")
        op.execute("RESET lock_timeout")


def _backfill(table: str, key: str) -> None:
    """Set ``workspace = 'default'`` where NULL, ``BATCH`` rows per transaction (one statement
    each, autocommitted), walking the primary key: each batch starts after the last key of the
    one before, so none rescans done rows."""
    columns = [c.strip() for c in key.split(",")]
    types = {"id": "uuid", "event_id": "uuid", "txid": "xid8", "position": "bigint"}
    bounds = ", ".join(f"CAST(:k{i} AS {types[c]})" for i, c in enumerate(columns))
    first = _backfill_statement(table, columns, "TRUE")
    later = _backfill_statement(table, columns, f"({', '.join(columns)}) > ({bounds})")
    last: tuple[object, ...] | None = None
    while True:
        statement, params = (first, {}) if last is None else (later, dict(enumerate(last)))
        row = op.get_bind().execute(statement, {f"k{i}": v for i, v in params.items()}).first()
        if row is None or row[-1] < BATCH:
            return
        last = tuple(row[:-1])


def _backfill_statement(table: str, columns: list[str], after: str) -> sa.TextClause:
    key = ", ".join(columns)
    as_text = ", ".join(f"{c}::text" for c in columns)
    descending = ", ".join(f"{c} DESC" for c in columns)
    return sa.text(
        f"WITH batch AS (SELECT {key} FROM {table} WHERE {after} ORDER BY {key} LIMIT {BATCH}),"
        f" done AS (UPDATE {table} SET workspace = 'default' WHERE ({key}) IN"
        f" (SELECT {key} FROM batch) AND workspace IS NULL)"
        f" SELECT {as_text}, (SELECT count(*) FROM batch) FROM batch ORDER BY {descending} LIMIT 1"
    )


def _set_not_null(table: str) -> None:
    check = f"{table}_workspace_not_null"
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK (workspace IS NOT NULL) NOT VALID"
    )
    op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN workspace SET NOT NULL")
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {check}")


def _build_index(name: str, definition: str) -> None:
    """Build ``name`` concurrently unless a valid one exists (or, for a primary key's index,
    the swap already happened); an invalid leftover of a failed build is dropped first."""
    state = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
                " WHERE c.relname = :name AND c.relkind = 'i'"
            ),
            {"name": name},
        )
        .first()
    )
    if state is not None and state[0]:
        return
    if name.endswith("_ws_pkey") and _primary_key_has_workspace(name.removesuffix("_ws_pkey")):
        return
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(f"CREATE {definition.replace('INDEX', 'INDEX CONCURRENTLY', 1).format(name=name)}")


def _primary_key_has_workspace(table: str) -> bool:
    return bool(
        op.get_bind()
        .execute(
            sa.text(
                "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = i.indkey[0]"
                " WHERE i.indrelid = CAST(:table AS regclass) AND i.indisprimary"
                " AND a.attname = 'workspace'"
            ),
            {"table": table},
        )
        .first()
    )


def _swap_primary_key(table: str, constraint: str, index: str) -> None:
    """One ALTER TABLE (an instant catalogue change under a short lock): the old primary key
    goes, the built unique index becomes the new one, under the old constraint's name."""
    if _primary_key_has_workspace(table):
        return
    op.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT {constraint},"
        f" ADD CONSTRAINT {constraint} PRIMARY KEY USING INDEX {index}"
    )


def downgrade() -> None:
    """Back to one global book. Refused (an error, nothing changed) while any workspace other
    than ``default`` holds a contact or an event: ids and emails would collide."""
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM contacts WHERE workspace <> 'default')
               OR EXISTS (SELECT 1 FROM processed_events WHERE workspace <> 'default') THEN
                RAISE EXCEPTION 'workspaces other than default hold data: erase them first';
            END IF;
        END $$
        """
    )
    op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    op.execute("CREATE UNIQUE INDEX contacts_old_pkey ON contacts (id)")
    op.execute(
        "ALTER TABLE contacts DROP CONSTRAINT contacts_pkey,"
        " ADD CONSTRAINT contacts_pkey PRIMARY KEY USING INDEX contacts_old_pkey"
    )
    op.execute("CREATE UNIQUE INDEX processed_events_old_pkey ON processed_events (event_id)")
    op.execute(
        "ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey,"
        " ADD CONSTRAINT processed_events_pkey PRIMARY KEY USING INDEX processed_events_old_pkey"
    )
    for name, _definition in NEW_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    old = (
        "UNIQUE INDEX contacts_live_email_key ON contacts (email_key) WHERE alive",
        "INDEX contacts_live_created ON contacts (created_at, id) WHERE alive",
        "INDEX contacts_live_last_name ON contacts (last_name_key, id) WHERE alive",
        "INDEX contacts_live_email_keys ON contacts USING gin (email_keys) WHERE alive",
        "INDEX contacts_live_tags ON contacts USING gin (tags) WHERE alive",
        "INDEX contacts_live_first_prefix ON contacts (lower(first_name) text_pattern_ops)"
        " WHERE alive",
        "INDEX contacts_live_last_prefix ON contacts (last_name_key text_pattern_ops) WHERE alive",
        "INDEX contacts_live_email_prefix ON contacts (email_key text_pattern_ops) WHERE alive",
        "UNIQUE INDEX processed_events_operation ON processed_events (operation_id)",
        "INDEX processed_events_contact_sequence ON processed_events (contact_id, sequence)",
        "INDEX processed_events_import ON processed_events (import_id, status, reason)"
        " WHERE import_id IS NOT NULL",
    )
    for definition in old:
        op.execute(f"CREATE {definition}")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION record_contact_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO contact_changes (contact_id, version, alive)
            VALUES (NEW.id, NEW.version, NEW.alive);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN workspace")
