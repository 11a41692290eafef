"""Migration 0007 (covering search indexes) on a populated database while writes go on: five
indexes keep their names and gain their ``INCLUDE`` columns, and nothing else changes (no
column, row, constraint, trigger or function), which is what its ``KEEPS_LOADED_DATA`` flag
claims to ``make bench`` (bench/dataset.py); the downgrade restores the indexes of 0005."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from alembic import command

from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.entrypoints.admin import alembic_config
from contact_worker.service_layer.handlers import handle_event
from support.domain_fakes import InMemoryCache, InMemoryOperationStore
from support.resources import READER_ROLE, isolated_database, new_run_id

from .test_handle_event import make_event
from .test_migration_0005 import Writer

ROWS = 6_000
#: The indexes 0007 redefines, and the columns each includes after it.
COVERED = {
    "contacts_ws_live_first_prefix": "INCLUDE (first_name, created_at, last_name_key, id)",
    "contacts_ws_live_last_prefix": "INCLUDE (created_at, id)",
    "contacts_ws_live_email_prefix": "INCLUDE (created_at, last_name_key, id)",
    "contacts_ws_live_created": "INCLUDE (first_name, last_name_key, email_key)",
    "contacts_ws_live_last_name": "INCLUDE (first_name, email_key)",
}

#: Everything of the schema but its indexes, as (kind, name, definition) rows.
SCHEMA = sa.text(
    """
    SELECT 'column', table_name || '.' || column_name,
           concat_ws(' ', data_type, is_nullable, column_default, generation_expression)
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid)
      FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function', proname, md5(prosrc)
      FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    ORDER BY 1, 2
    """
)
INDEXES = sa.text(
    "SELECT c.relname, i.indisvalid, pg_get_indexdef(c.oid) FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'contacts'::regclass"
)
#: A digest of the populated rows, every column as text.
ROWS_DIGEST = sa.text(
    "SELECT md5(string_agg(c::text, '|' ORDER BY c.workspace, c.id)) FROM contacts c"
    " WHERE c.first_name LIKE 'P%'"
)


def _populate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (workspace, id, first_name, last_name, email, email_key,"
                " email_keys, alive, version, created_at) SELECT CASE WHEN g % 2 = 0 THEN"
                " 'default' ELSE 'ws-' || g % 7 END, gen_random_uuid(), 'P' || g, 'L' || g % 97,"
                " 'p' || g || '@example.com', 'p' || g || '@example.com',"
                " ARRAY['p' || g || '@example.com'], g % 5 <> 0, 1, now()"
                " FROM generate_series(1, :n) g"
            ),
            {"n": ROWS},
        )


def _state(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "schema": conn.execute(SCHEMA).all(),
            "indexes": {name: (valid, d) for name, valid, d in conn.execute(INDEXES).all()},
            "rows": conn.execute(ROWS_DIGEST).scalar_one(),
        }


def test_0007_swaps_the_prefix_indexes_online_and_changes_nothing_else() -> None:
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0006")
        engine = sa.create_engine(
            database.url, pool_size=4, connect_args={"options": "-c lock_timeout=2000"}
        )
        try:
            _populate(engine)
            before = _state(engine)
            busy = threading.Event()

            def write(cid: str) -> None:
                event = make_event("created", cid, {"first_name": "New", "email": f"{cid}@x.org"})
                handle_event(
                    event,
                    unit_of_work=lambda: SqlUnitOfWork(engine),
                    cache=InMemoryCache(),
                    operations=InMemoryOperationStore(),
                )

            writer = Writer(write, busy)
            writer.start()
            time.sleep(0.2)
            busy.set()
            command.upgrade(config, "0007")
            busy.clear()
            writer.stop.set()
            writer.join(10)
            after = _state(engine)
            command.downgrade(config, "0006")
            restored = _state(engine)
            with engine.connect() as conn:
                written = set(
                    conn.execute(
                        sa.text("SELECT id::text FROM contacts WHERE first_name = 'New'")
                    ).scalars()
                )
        finally:
            engine.dispose()
        assert writer.during > 0  # writes went on while the indexes were built
        assert set(writer.written) <= written  # none lost
        assert after["schema"] == before["schema"]  # no column, constraint, trigger, function
        assert after["rows"] == before["rows"]  # no row changed
        assert set(after["indexes"]) == set(before["indexes"])  # same names, no leftover
        assert all(valid for valid, _ in after["indexes"].values())
        changed = {n for n in before["indexes"] if after["indexes"][n] != before["indexes"][n]}
        assert changed == set(COVERED)
        for name, included in COVERED.items():
            old_definition, new_definition = before["indexes"][name][1], after["indexes"][name][1]
            assert new_definition == old_definition.replace(" WHERE", f" {included} WHERE")
        assert restored["schema"] == before["schema"]
        assert restored["indexes"] == before["indexes"]


def test_0007_runs_again_after_a_failure_part_way() -> None:
    """A run that failed part way leaves a copy behind (here: an INVALID one beside one index,
    and a valid one that never took its name beside another); running the upgrade again
    completes it."""
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0006")
        engine = sa.create_engine(database.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(
                    sa.text(
                        "CREATE INDEX contacts_ws_live_last_prefix_0007 ON contacts (workspace)"
                        " WHERE alive"
                    )
                )
                conn.execute(
                    sa.text(
                        "UPDATE pg_index SET indisvalid = false"
                        " WHERE indexrelid = 'contacts_ws_live_last_prefix_0007'::regclass"
                    )
                )
                conn.execute(
                    sa.text(
                        "CREATE INDEX contacts_ws_live_created_0007 ON contacts"
                        " (workspace, created_at, id)"
                        " INCLUDE (first_name, last_name_key, email_key) WHERE alive"
                    )
                )
            command.upgrade(config, "0007")
            indexes = _state(engine)["indexes"]
        finally:
            engine.dispose()
        assert not [name for name in indexes if name.endswith("_0007")]
        assert all(valid for valid, _ in indexes.values())
        for name, included in COVERED.items():
            assert included in indexes[name][1], name
