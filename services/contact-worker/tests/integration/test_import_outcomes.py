"""The import an event came from is recorded with its outcome (``processed_events.import_id``),
by the real handler on real PostgreSQL; and migration 0004 goes up and down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from contact_worker.bootstrap import Runtime
from contact_worker.entrypoints.admin import alembic_config
from contact_worker.service_layer.handlers import handle_event
from contacts_domain import ContactEvent, normalize_contact
from support.resources import READER_ROLE, isolated_database, new_run_id

from .test_handle_event import make_event, new_id, runtime, worker_settings

__all__ = ["runtime", "worker_settings"]  # fixtures used here

INDEX = "processed_events_import"


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def handle(runtime: Runtime, event: ContactEvent) -> Any:
    ports = runtime.ports()
    return handle_event(
        event, unit_of_work=ports.unit_of_work, cache=ports.cache, operations=ports.operations
    )


def inbox_row(engine: sa.Engine, event_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT import_id::text, status, reason, data FROM processed_events"
                " WHERE event_id = :id"
            ),
            {"id": event_id},
        ).mappings()
        return dict(row.one())


def imported(kind: str, import_id: str, data: dict[str, Any], cid: str | None = None) -> Any:
    fields = normalize_contact(data, partial=kind == "upserted", default_region="US")
    return make_event(kind, cid or new_id(), fields, import_id=import_id)


def test_an_imported_event_records_its_import_id(runtime: Runtime, engine: sa.Engine) -> None:
    import_id = new_id()
    event = imported("upserted", import_id, {"first_name": "Ada", "email": f"{new_id()}@x.org"})

    outcome = handle(runtime, event)

    assert outcome.status == "applied"
    assert inbox_row(engine, event.id)["import_id"] == import_id


def test_a_rejected_imported_event_records_its_import_id_and_reason(
    runtime: Runtime, engine: sa.Engine
) -> None:
    import_id, email = new_id(), f"{new_id()}@x.org"
    handle(runtime, make_event("created", new_id(), {"first_name": "Ada", "email": email}))
    event = imported("created", import_id, {"first_name": "Bea", "email": email})

    outcome = handle(runtime, event)

    assert (outcome.status, outcome.reason) == ("rejected", "email_conflict")
    row = inbox_row(engine, event.id)
    assert (row["import_id"], row["status"], row["reason"]) == (
        import_id,
        "rejected",
        "email_conflict",
    )


def test_an_event_without_an_import_stays_null(runtime: Runtime, engine: sa.Engine) -> None:
    event = make_event("created", new_id(), {"first_name": "Ada"})

    handle(runtime, event)

    assert inbox_row(engine, event.id)["import_id"] is None


def test_a_redelivered_imported_event_changes_nothing(runtime: Runtime, engine: sa.Engine) -> None:
    import_id = new_id()
    event = imported("upserted", import_id, {"first_name": "Ada", "email": f"{new_id()}@x.org"})
    first = handle(runtime, event)
    before = inbox_row(engine, event.id)

    again = handle(runtime, event)
    # The inbox row decides: even a copy without the import id changes nothing.
    without = handle(runtime, replace(event, import_id=None))

    assert again == first == without
    assert inbox_row(engine, event.id) == before
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT count(*) FROM processed_events WHERE import_id = :id"),
            {"id": import_id},
        ).scalar_one()
    assert rows == 1


def test_an_erasure_keeps_the_import_id_and_forgets_the_data(
    runtime: Runtime, engine: sa.Engine
) -> None:
    import_id, cid = new_id(), new_id()
    event = imported("created", import_id, {"first_name": "Ada", "notes": "private"}, cid)
    handle(runtime, event)
    assert inbox_row(engine, event.id)["data"]["notes"] == "private"

    handle(runtime, make_event("deleted", cid))

    row = inbox_row(engine, event.id)
    assert (row["import_id"], row["status"], row["data"]) == (import_id, "applied", {})


def test_the_reader_role_can_read_the_import_id(reader_database_url: str) -> None:
    engine = sa.create_engine(reader_database_url)
    try:
        with engine.connect() as conn:
            count = conn.execute(
                sa.text("SELECT count(*) FROM processed_events WHERE import_id = :id"),
                {"id": str(uuid.uuid4())},
            ).scalar_one()
    finally:
        engine.dispose()
    assert count == 0


def _schema(url: str) -> tuple[bool, str | None]:
    """Whether ``processed_events.import_id`` exists, and the definition of its index."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            column = conn.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.columns WHERE table_name ="
                    " 'processed_events' AND column_name = 'import_id'"
                )
            ).first()
            index = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                {"name": INDEX},
            ).scalar()
    finally:
        engine.dispose()
    return column is not None, index


def test_migration_0004_goes_down_and_up_again() -> None:
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0004")  # 0005 leads this index with the workspace
        exists, index = _schema(database.url)
        assert exists
        assert index is not None
        assert "(import_id, status, reason) WHERE (import_id IS NOT NULL)" in index

        command.downgrade(config, "0003")
        assert _schema(database.url) == (False, None)

        command.upgrade(config, "0004")
        assert _schema(database.url) == (exists, index)
        command.upgrade(config, "head")


def test_migration_0004_completes_after_a_failed_index_build() -> None:
    """A concurrent build that failed leaves the column and an INVALID index: running the
    revision again drops that index and builds a valid one."""
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0003")
        engine = sa.create_engine(database.url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE processed_events ADD COLUMN import_id uuid"))
                conn.execute(sa.text(f"CREATE INDEX {INDEX} ON processed_events (import_id)"))
                conn.execute(
                    sa.text(
                        "UPDATE pg_index SET indisvalid = false WHERE indexrelid ="
                        f" '{INDEX}'::regclass"
                    )
                )
            command.upgrade(config, "0004")
            with engine.connect() as conn:
                valid = conn.execute(
                    sa.text(
                        f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{INDEX}'::regclass"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        assert valid
        assert "(import_id, status, reason)" in (_schema(database.url)[1] or "")
