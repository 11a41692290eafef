"""PostgreSQL adapters: the contacts read model and the inbox, in one unit of work; a batch's unit
asks them per batch instead of per event (``prepare_batch``, ``adapters.sql_batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from contact_worker.adapters.sql_batch import (
    BatchContacts,
    BatchInbox,
    contact_lock_name,
    contact_row,
    email_lock_name,
    insert_records,
    prefetch,
    record_values,
    refused_email,
    upsert_contacts_sql,
    write,
)
from contacts_domain import ContactEvent, ContactState, OperationStatus, ProcessedEvent
from contacts_domain.ports import ContactRepository, EmailConflict, Inbox, UnitOfWork
from contacts_infra.contact_rows import contact_fields, operation_status

#: The savepoint around one contact's upsert (``SqlContactRepository.save``).
_SAVE_SAVEPOINT = "contact_save"


class SqlContactRepository(ContactRepository):
    """Contact states in the ``contacts`` table, locked per workspace and contact for the
    transaction; every statement names the workspace."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get_for_update(self, workspace: str, contact_id: str) -> ContactState:
        """Serialize writers of one contact, existing or not: a transaction-scoped advisory
        lock on ``<workspace>/<id>``, then the row lock (so a lock held elsewhere makes us wait,
        bounded by ``lock_timeout``)."""
        # Both statements in one round trip: the server runs them in order and psycopg2
        # returns the last one's rows.
        row = (
            self._connection.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(:name, 0));"
                    " SELECT * FROM contacts WHERE workspace = :ws AND id = :id FOR UPDATE"
                ),
                {
                    "name": contact_lock_name(workspace, contact_id),
                    "ws": workspace,
                    "id": contact_id,
                },
            )
            .mappings()
            .first()
        )
        if row is None:
            return ContactState(contact_id, workspace=workspace)
        return state_from_row(contact_id, row)

    def holder_of_email(self, workspace: str, email_key: str) -> str | None:
        """Takes a transaction-scoped advisory lock on the email of the workspace first
        (``email_lock_name``), then looks in the GIN
        index of every email of the workspace."""
        # The lock and the look-up in one round trip (as in ``get_for_update``).
        return self._connection.execute(  # type: ignore[no-any-return]
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtextextended(:name, 0));"
                " SELECT id::text FROM contacts WHERE workspace = :ws AND alive"
                " AND email_keys @> ARRAY[:key]"
                " ORDER BY email_key IS NOT DISTINCT FROM :key DESC, created_at, id LIMIT 1"
            ),
            {"name": email_lock_name(workspace, email_key), "ws": workspace, "key": email_key},
        ).scalar()

    def email_taken(self, workspace: str, email_key: str, contact_id: str) -> bool:
        return bool(
            self._connection.execute(
                sa.text(
                    "SELECT 1 FROM contacts WHERE workspace = :ws AND email_key = :key AND alive"
                    " AND id <> :id"
                ),
                {"ws": workspace, "key": email_key, "id": contact_id},
            ).first()
        )

    def live_contacts_for_update(self, workspace: str) -> int:
        """Counts the workspace's live contacts under a transaction-scoped advisory lock on
        ``quota:<workspace>``, so writers that could make a contact live in the workspace wait
        for each other until commit (only while a quota is on: no counter is kept otherwise,
        and writes of one workspace never queue on a shared row). An index-only count of the
        workspace's slice of ``contacts_ws_live_created``."""
        return int(
            self._connection.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(:name, 0));"
                    " SELECT count(*) FROM contacts WHERE workspace = :ws AND alive"
                ),
                {"name": f"quota:{workspace}", "ws": workspace},
            ).scalar_one()
        )

    def save(self, state: ContactState) -> None:
        """Upsert ``state``. Raises ``EmailConflict`` when another live contact holds its primary
        email; the transaction stays usable (the write runs in a savepoint)."""
        # The savepoint, the upsert and its release in one round trip; on a failure the
        # transaction is taken back to the savepoint, so it stays usable.
        statement = (
            f"SAVEPOINT {_SAVE_SAVEPOINT}; {upsert_contacts_sql(1)};"
            f" RELEASE SAVEPOINT {_SAVE_SAVEPOINT}"
        )
        try:
            self._connection.exec_driver_sql(statement, contact_row(state, 0))
        except IntegrityError as exc:
            self._connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVE_SAVEPOINT}")
            if refused_email(exc):
                raise EmailConflict(state.contact_id) from None
            raise


class SqlInbox(Inbox):
    """The ``processed_events`` table: one row per processed event, with its outcome; every
    statement names the workspace (the key is ``(workspace, event_id)``)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def outcome_of(self, workspace: str, event_id: str) -> OperationStatus | None:
        row = (
            self._connection.execute(
                sa.text(
                    f"SELECT {_INBOX_COLUMNS} FROM processed_events"
                    " WHERE workspace = :ws AND event_id = :id"
                ),
                {"ws": workspace, "id": event_id},
            )
            .mappings()
            .first()
        )
        return _processed(row).outcome if row else None

    def last_sequence(self, workspace: str, contact_id: str) -> str | None:
        return self._connection.execute(  # type: ignore[no-any-return]
            sa.text(
                "SELECT max(sequence) FROM processed_events"
                " WHERE workspace = :ws AND contact_id = :id"
            ),
            {"ws": workspace, "id": contact_id},
        ).scalar()

    def history(
        self, workspace: str, contact_id: str, *, after: str | None = None
    ) -> list[ProcessedEvent]:
        rows = self._connection.execute(
            sa.text(
                f"SELECT {_INBOX_COLUMNS}, data, expected_version FROM processed_events "
                "WHERE workspace = :ws AND contact_id = :id"
                " AND (CAST(:after AS text) IS NULL OR sequence > :after) ORDER BY sequence"
            ),
            {"ws": workspace, "id": contact_id, "after": after},
        ).mappings()
        return [
            replace(
                _processed(row),
                data=row["data"] or {},
                expected_version=row["expected_version"],
                purged=row["data"] is None,
            )
            for row in rows
        ]

    def last_erasure(self, workspace: str, contact_id: str) -> str | None:
        return self._connection.execute(  # type: ignore[no-any-return]
            sa.text(
                "SELECT max(sequence) FROM processed_events WHERE workspace = :ws"
                " AND contact_id = :id AND event_type = 'deleted'"
                " AND (status = 'applied' OR reason = 'not_found')"
            ),
            {"ws": workspace, "id": contact_id},
        ).scalar()

    def erase_data(self, workspace: str, contact_id: str, *, before: str) -> None:
        """Set ``data`` to ``{}`` (the column's empty value) on the contact's earlier rows."""
        self._connection.execute(
            sa.text(
                "UPDATE processed_events SET data = '{}'::jsonb WHERE workspace = :ws"
                " AND contact_id = :id AND sequence < :before AND data <> '{}'::jsonb"
            ),
            {"ws": workspace, "id": contact_id, "before": before},
        )

    def revise(self, workspace: str, event_id: str, outcome: OperationStatus) -> None:
        """Store the revised ``outcome`` of a processed event: status, reason, result and the
        version it reports, so the inbox answers what Redis was told (``GET /v1/operations``
        reads the inbox once the status in Redis expires)."""
        self._connection.execute(
            sa.text(
                "UPDATE processed_events SET status = :status, reason = :reason, "
                "result = :result, version = :version WHERE workspace = :ws AND event_id = :id"
            ),
            {
                "ws": workspace,
                "id": event_id,
                "status": outcome.status,
                "reason": outcome.reason,
                "result": outcome.result,
                "version": outcome.version,
            },
        )

    def record(self, event: ContactEvent, outcome: OperationStatus) -> None:
        """Insert the event's row with ``outcome`` in the event's workspace; ``import_id`` is the
        event's import (``importid``, NULL for other events), which ``GET /v1/imports/{id}``
        counts by."""
        insert_records(self._connection, [record_values(event, outcome)])


class SqlUnitOfWork(UnitOfWork):
    """One PostgreSQL transaction (READ COMMITTED; per-contact locks give the isolation)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._batch_inbox: BatchInbox | None = None
        self._batch_contacts: BatchContacts | None = None

    def __enter__(self) -> SqlUnitOfWork:
        self._connection = self._engine.connect()
        self._connection.begin()
        self.contacts = SqlContactRepository(self._connection)
        self.inbox = SqlInbox(self._connection)
        self._batch_inbox = None
        self._batch_contacts = None
        return self

    def prepare_batch(self, events: Sequence[ContactEvent], *, defer_saves: bool = False) -> None:
        """Lock and read what ``events`` will ask in one round trip, then answer from it and
        buffer the inbox's records (and with ``defer_saves`` the contacts' saves) until
        ``commit`` (``adapters.sql_batch``).

        The engine has no ``pool_pre_ping`` (one round trip less per batch): when the pooled
        connection turns out dead here (PostgreSQL restarted, an idle connection cut), nothing
        of this transaction has happened yet, so it is read again once on a new connection
        (SQLAlchemy has then also marked every older pooled connection to be replaced). A
        second failure, or one that is not a lost connection, is raised."""
        assert self._connection is not None, "use the unit of work as a context manager"
        try:
            found = prefetch(self._connection, events, state_from_row)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._reconnect()
            assert self._connection is not None
            found = prefetch(self._connection, events, state_from_row)
        self._batch_contacts = BatchContacts(
            SqlContactRepository(self._connection),
            self._connection,
            found,
            defer_saves=defer_saves,
        )
        self.contacts = self._batch_contacts
        self._batch_inbox = BatchInbox(SqlInbox(self._connection), self._connection, found)
        self.inbox = self._batch_inbox

    def _reconnect(self) -> None:
        """Put this unit on a new connection, in a new transaction (``prepare_batch``)."""
        assert self._connection is not None
        self._connection.close()
        self.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.rollback()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def commit(self) -> None:
        """Write what a batch buffered (its contacts' saves, then its inbox records: one round
        trip), then commit. Raises ``DeferredSavesRefused`` (``sql_batch.write``) or
        SQLAlchemy's errors; the unit is then to be rolled back."""
        assert self._connection is not None, "use the unit of work as a context manager"
        parts = [
            part
            for buffer in (self._batch_contacts, self._batch_inbox)
            if buffer is not None and (part := buffer.take()) is not None
        ]
        write(self._connection, parts)
        self._connection.commit()

    def rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction():
            self._connection.rollback()
        if self._connection is not None and self._batch_inbox is not None:
            # What the batch read and buffered died with its transaction.
            self.contacts = SqlContactRepository(self._connection)
            self.inbox = SqlInbox(self._connection)
            self._batch_inbox = None
            self._batch_contacts = None


_INBOX_COLUMNS = (
    "event_id, operation_id, contact_id, event_type, sequence, status, reason, version, result"
)


def _processed(row: Any) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=str(row["event_id"]),
        kind=row["event_type"],
        sequence=row["sequence"],
        outcome=operation_status(row),
    )


def state_from_row(contact_id: str, row: Any) -> ContactState:
    """The ``ContactState`` of a ``contacts`` row (a mapping of its columns)."""
    return ContactState(
        contact_id=contact_id,
        fields=contact_fields(row),
        alive=row["alive"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
        workspace=row["workspace"],
    )
