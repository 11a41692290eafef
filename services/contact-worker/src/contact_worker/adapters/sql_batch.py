"""Set-based SQL for a batch of events applied in one transaction (issue 13; docs/architecture.md
§8 "Batches").

Applied alone, a created event costs five round trips to PostgreSQL: the contact's locks and
row (``get_for_update``), the inbox's ``outcome_of`` and ``last_sequence``, the ``save`` and the
inbox ``record``. A batch unit of work (``SqlUnitOfWork.prepare_batch``) asks them per batch
instead, and answers the per-event calls of ``handlers._apply_in`` from what it read:

1. ``prefetch``, when the batch holds upserts (``lock_emails``, one round trip): takes the
   advisory locks of their emails in the byte order of the names, then, under them, finds each
   email's holder with the single-event look-up; an upsert's contact is its email's holder, or
   the id it was sent with (``upsert_target``). Emails before contacts, as an upsert alone.
2. ``prefetch`` (one round trip, two statements): takes the advisory locks of every contact of
   the batch's events (the upserts' from step 1), one after the other in the byte order of
   their names, so two batches never wait for each other in a cycle on contact locks; then,
   under those locks, locks and reads the contacts' rows (``FOR UPDATE``), the recorded
   outcomes of every event of the batch and the highest processed sequence of every locked
   contact.
3. ``BatchContacts`` answers ``get_for_update`` from the rows read until this transaction saves
   the contact, and ``holder_of_email`` from the holders found until it saves the contact
   that held the email or one that holds it now; then, and for a contact or email not
   prefetched, it runs the single-event statements.
   With deferred saves (the batch's first attempt) it also buffers ``save``: the buffer is
   written with one multi-row upsert before any statement that reads or locks contacts
   (``get_for_update`` of a contact not answered from the prefetch, ``holder_of_email``,
   ``email_taken``, ``live_contacts_for_update``) and at commit, so every statement sees the
   rows the single-event path would have written by then. The upsert runs the rows' writes in
   the order saved, with the unique checks of each row made when it is written, as the saves
   one after the other would; an email held by another live contact fails the whole statement
   instead of one save (``DeferredSavesRefused``): the batch is then rolled back and applied
   again with a savepoint per save (``handlers.handle_batch``).
4. ``BatchInbox`` answers ``outcome_of`` and ``last_sequence`` from what it read, overlaid with
   the records of this transaction, and buffers ``record``: the buffer is written with one
   multi-row ``INSERT`` at commit, and before any statement that reads or writes the inbox
   (``history``, ``last_erasure``, ``erase_data``, ``revise``, a question not prefetched), so
   every statement sees exactly the rows the single-event path would have written by then.
5. At commit both buffers are written in one round trip (``write``).

Statements are sent as the driver's text (``exec_driver_sql``, built once per row count):
building and compiling a SQLAlchemy ``text`` of a few hundred parameters per statement cost
more CPU than PostgreSQL spent running it.

The answers are those of the single-event statements at the same point of the transaction:
every contact read is locked (the advisory lock serializes all its writers) from the prefetch to
the commit, every email looked up too (its lock serializes the upserts that could create a
holder), and nothing but this transaction writes its inbox rows meanwhile.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from contacts_domain import FIELDS, ContactEvent, ContactState, OperationStatus, ProcessedEvent
from contacts_domain.contact import primary_email_key, primary_value
from contacts_domain.ports import ContactRepository, DeferredSavesRefused, Inbox
from contacts_domain.values import EmailAddress
from contacts_infra.contact_rows import JSON_FIELDS, operation_status

#: ``(workspace, id)`` of a contact, ``(workspace, event_id)`` of an event.
Key = tuple[str, str]

#: Every advisory lock of the batch, one after the other in the order of the ordered subquery
#: (``OFFSET 0`` keeps the planner from flattening it into the outer query); then the rows and
#: the inbox, read under them. psycopg2 returns the rows of the last statement.
_PREFETCH = """
SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0)))
  FROM (SELECT name FROM unnest(CAST(%(names)s AS text[])) AS name
        ORDER BY name COLLATE "C" OFFSET 0) AS ordered;
SELECT inbox.known, inbox.last, c.*
  FROM (SELECT
          (SELECT coalesce(json_agg(json_build_object(
                    'workspace', e.ws, 'event_id', e.id,
                    'operation_id', p.operation_id, 'contact_id', p.contact_id,
                    'status', p.status, 'reason', p.reason, 'version', p.version,
                    'result', p.result)), '[]')
             FROM unnest(CAST(%(event_ws)s AS text[]), CAST(%(event_ids)s AS text[])) AS e(ws, id)
             JOIN processed_events p
               ON p.workspace = e.ws AND p.event_id = CAST(e.id AS uuid)) AS known,
          (SELECT coalesce(json_agg(json_build_object(
                    'workspace', k.ws, 'contact_id', k.id, 'sequence',
                    (SELECT max(p.sequence) FROM processed_events p
                      WHERE p.workspace = k.ws AND p.contact_id = CAST(k.id AS uuid)))), '[]')
             FROM unnest(CAST(%(contact_ws)s AS text[]), CAST(%(contact_ids)s AS text[]))
                  AS k(ws, id)) AS last
       ) AS inbox
  LEFT JOIN LATERAL (
       SELECT k.ws AS key_workspace, k.id AS key_id, contacts.*
         FROM unnest(CAST(%(contact_ws)s AS text[]), CAST(%(contact_ids)s AS text[])) AS k(ws, id)
         JOIN contacts ON contacts.workspace = k.ws AND contacts.id = CAST(k.id AS uuid)
        ORDER BY k.ws COLLATE "C", k.id COLLATE "C"
          FOR UPDATE OF contacts) AS c ON true
"""

#: The email locks of a batch's upserts, one after the other in the byte order of their names
#: (as ``_PREFETCH``'s contact locks); then, under them, each email's holder as
#: ``SqlContactRepository.holder_of_email`` finds it (the same ``ORDER BY``, per email).
_EMAIL_HOLDERS = """
SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0)))
  FROM (SELECT name FROM unnest(CAST(%(names)s AS text[])) AS name
        ORDER BY name COLLATE "C" OFFSET 0) AS ordered;
SELECT k.ws, k.key, h.id::text AS holder
  FROM unnest(CAST(%(ws)s AS text[]), CAST(%(keys)s AS text[])) AS k(ws, key)
  LEFT JOIN LATERAL (
       SELECT id FROM contacts
        WHERE workspace = k.ws AND alive AND email_keys @> ARRAY[k.key]
        ORDER BY email_key IS NOT DISTINCT FROM k.key DESC, created_at, id LIMIT 1) AS h ON true
"""

#: The unique index of live primary emails per workspace (migration 0005).
EMAIL_UNIQUE_INDEX = "contacts_ws_live_email_key"

#: The columns of a ``contacts`` row written by an upsert, in order (``contact_row``).
CONTACT_COLUMNS = (
    "workspace",
    "id",
    *(name for name in FIELDS if name not in JSON_FIELDS),
    *JSON_FIELDS,
    "email",
    "email_key",
    "email_keys",
    "phone",
    "version",
    "alive",
    "created_at",
    "updated_at",
    "deleted_at",
)

#: The primary key of ``contacts``: never overwritten by an upsert.
_KEY = frozenset({"workspace", "id"})

_RECORD_COLUMNS = (
    "workspace",
    "event_id",
    "operation_id",
    "contact_id",
    "event_type",
    "sequence",
    "data",
    "expected_version",
    "status",
    "reason",
    "version",
    "result",
    "import_id",
)


class Prefetched:
    """What ``prefetch`` read for a batch: ``holders`` of the upserts' emails (``(workspace,
    email key)`` -> the id ``holder_of_email`` answers, ``None``: no live contact holds it),
    ``states`` of the locked contacts (an empty state for an absent one), ``outcomes`` of every
    event of the batch (``None``: never processed) and ``last`` sequences of the locked
    contacts (``None``: none processed)."""

    def __init__(self) -> None:
        self.holders: dict[Key, str | None] = {}
        self.states: dict[Key, ContactState] = {}
        self.outcomes: dict[Key, OperationStatus | None] = {}
        self.last: dict[Key, str | None] = {}


def prefetch(
    connection: Connection,
    events: Sequence[ContactEvent],
    state_of: Callable[[str, Any], ContactState],
) -> Prefetched:
    """Lock and read, in one round trip, what applying ``events`` will ask first (module doc).
    ``state_of(contact_id, row)`` turns a ``contacts`` row into a ``ContactState``.

    Raises SQLAlchemy's errors (a lock timeout, a deadlock, an id that is not a UUID): the
    caller's transaction is then unusable, as after any failed statement."""
    holders = lock_emails(connection, events)
    contacts = sorted(
        {
            (e.workspace, upsert_target(e, holders) if e.kind == "upserted" else e.contact_id)
            for e in events
        }
    )
    event_keys = sorted({(e.workspace, e.id) for e in events})
    rows = (
        connection.exec_driver_sql(
            _PREFETCH,
            {
                "names": [contact_lock_name(ws, cid) for ws, cid in contacts],
                "event_ws": [ws for ws, _ in event_keys],
                "event_ids": [eid for _, eid in event_keys],
                "contact_ws": [ws for ws, _ in contacts],
                "contact_ids": [cid for _, cid in contacts],
            },
        )
        .mappings()
        .all()
    )
    found = Prefetched()
    found.holders = holders
    found.outcomes = dict.fromkeys(event_keys)
    found.states = {(ws, cid): ContactState(cid, workspace=ws) for ws, cid in contacts}
    for known in rows[0]["known"]:
        found.outcomes[(known["workspace"], known["event_id"])] = operation_status(known)
    for last in rows[0]["last"]:
        found.last[(last["workspace"], last["contact_id"])] = last["sequence"]
    for row in rows:
        if row["key_id"] is not None:
            key = (row["key_workspace"], row["key_id"])
            found.states[key] = state_of(key[1], row)
    return found


def contact_lock_name(workspace: str, contact_id: str) -> str:
    """The advisory lock name that serializes the writers of one contact, batched or not:
    ``<workspace>/<id>``."""
    return f"{workspace}/{contact_id}"


def email_lock_name(workspace: str, email_key: str) -> str:
    """The advisory lock name that serializes the upserts of one email of a workspace, batched
    or not: ``email:<workspace>/<key>``, a name no contact lock can have."""
    return f"email:{workspace}/{email_key}"


def lock_emails(connection: Connection, events: Sequence[ContactEvent]) -> dict[Key, str | None]:
    """Lock the emails of the upserts among ``events`` and find their holders, in one round trip
    (none without upserts): ``{(workspace, email key): holder id or None}`` (``Prefetched``).
    Raises SQLAlchemy's errors, as ``prefetch``."""
    emails = sorted(
        {
            (e.workspace, key)
            for e in events
            if e.kind == "upserted" and (key := primary_email_key(e.data))
        }
    )
    if not emails:
        return {}
    rows = connection.exec_driver_sql(
        _EMAIL_HOLDERS,
        {
            "names": [email_lock_name(ws, key) for ws, key in emails],
            "ws": [ws for ws, _ in emails],
            "keys": [key for _, key in emails],
        },
    ).all()
    return {(ws, key): holder for ws, key, holder in rows}


def upsert_target(event: ContactEvent, holders: dict[Key, str | None]) -> str:
    """The contact an upsert will aim at by ``holders`` (``lock_emails``): its email's holder,
    or the id it was sent with."""
    return holders.get((event.workspace, primary_email_key(event.data) or "")) or event.contact_id


class BatchContacts(ContactRepository):
    """``inner`` (the single-event repository), with ``get_for_update`` answered from the
    prefetched rows until this transaction saves the contact, ``holder_of_email`` from the
    prefetched holders until it saves a contact that holds or gets the email, and with
    ``defer_saves`` the saves buffered (module doc)."""

    def __init__(
        self,
        inner: ContactRepository,
        connection: Connection,
        found: Prefetched,
        *,
        defer_saves: bool = False,
    ) -> None:
        self._inner = inner
        self._connection = connection
        self._states = found.states
        self._holders = dict(found.holders)
        self._defer = defer_saves
        self._buffer: dict[Key, ContactState] = {}

    def get_for_update(self, workspace: str, contact_id: str) -> ContactState:
        state = self._states.get((workspace, contact_id))
        if state is not None:
            return state
        self.flush()
        return self._inner.get_for_update(workspace, contact_id)

    def holder_of_email(self, workspace: str, email_key: str) -> str | None:
        key = (workspace, email_key)
        if key in self._holders:  # its lock was taken by the prefetch
            return self._holders[key]
        self.flush()
        return self._inner.holder_of_email(workspace, email_key)

    def email_taken(self, workspace: str, email_key: str, contact_id: str) -> bool:
        self.flush()
        return self._inner.email_taken(workspace, email_key, contact_id)

    def live_contacts_for_update(self, workspace: str) -> int:
        self.flush()
        return self._inner.live_contacts_for_update(workspace)

    def save(self, state: ContactState) -> None:
        """The single-event ``save``, or buffered with ``defer_saves`` (then never raises
        ``EmailConflict``); the contact is read again by its next ``get_for_update`` (the stored
        row, as the single-event path reads it)."""
        key = (state.workspace, state.contact_id)
        self._states.pop(key, None)
        self._forget_holders(state)
        if not self._defer:
            self._inner.save(state)
            return
        if key in self._buffer:  # one statement may write a row once
            self.flush()
        self._buffer[key] = state

    def _forget_holders(self, state: ContactState) -> None:
        """Drop the prefetched holders ``state``'s save may change: those of the emails it
        holds now, and those it was the holder of. Saving a contact that held an email without
        being its holder and no longer does cannot change that email's holder (the first
        match of the look-up stays first)."""
        ws = state.workspace
        for email in state.fields.get("emails") or []:
            self._holders.pop((ws, EmailAddress(email["value"]).key), None)
        for key in [k for k, holder in self._holders.items() if holder == state.contact_id]:
            if key[0] == ws:
                del self._holders[key]

    def take(self) -> tuple[str, dict[str, Any]] | None:
        """The upsert of the buffered saves (statement, parameters), emptying the buffer;
        ``None`` when nothing is buffered."""
        if not self._buffer:
            return None
        states, self._buffer = list(self._buffer.values()), {}
        return upsert_contacts(states)

    def flush(self) -> None:
        """Write the buffered saves, in the order saved, with one statement. Raises
        ``DeferredSavesRefused`` when PostgreSQL refuses one (``write``)."""
        part = self.take()
        if part is not None:
            write(self._connection, [part])


class BatchInbox(Inbox):
    """``inner`` (the single-event inbox) with prefetched answers and buffered records (module
    doc). ``flush`` writes the buffer; the unit of work calls it before its commit."""

    def __init__(self, inner: Inbox, connection: Connection, found: Prefetched) -> None:
        self._inner = inner
        self._connection = connection
        self._outcomes = found.outcomes
        self._last = found.last
        self._buffer: list[dict[str, Any]] = []

    def outcome_of(self, workspace: str, event_id: str) -> OperationStatus | None:
        key = (workspace, event_id)
        if key in self._outcomes:
            return self._outcomes[key]
        self.flush()
        return self._inner.outcome_of(workspace, event_id)

    def last_sequence(self, workspace: str, contact_id: str) -> str | None:
        key = (workspace, contact_id)
        if key in self._last:
            return self._last[key]
        self.flush()
        return self._inner.last_sequence(workspace, contact_id)

    def record(self, event: ContactEvent, outcome: OperationStatus) -> None:
        """Buffer the row ``SqlInbox.record`` would insert; the answers see it at once."""
        self._buffer.append(record_values(event, outcome))
        self._outcomes[(event.workspace, event.id)] = outcome
        contact = (event.workspace, outcome.contact_id)
        if contact in self._last:
            last = self._last[contact]
            self._last[contact] = event.sequence if last is None else max(last, event.sequence)

    def history(
        self, workspace: str, contact_id: str, *, after: str | None = None
    ) -> list[ProcessedEvent]:
        self.flush()
        return self._inner.history(workspace, contact_id, after=after)

    def last_erasure(self, workspace: str, contact_id: str) -> str | None:
        self.flush()
        return self._inner.last_erasure(workspace, contact_id)

    def erase_data(self, workspace: str, contact_id: str, *, before: str) -> None:
        self.flush()
        self._inner.erase_data(workspace, contact_id, before=before)

    def revise(self, workspace: str, event_id: str, outcome: OperationStatus) -> None:
        """The single-event ``revise``; the revised event's outcome is read again when asked."""
        self.flush()
        self._outcomes.pop((workspace, event_id), None)
        self._inner.revise(workspace, event_id, outcome)

    def take(self) -> tuple[str, dict[str, Any]] | None:
        """The insert of the buffered records (statement, parameters), emptying the buffer;
        ``None`` when nothing is buffered."""
        if not self._buffer:
            return None
        rows, self._buffer = self._buffer, []
        return insert_records_statement(rows)

    def flush(self) -> None:
        """Insert the buffered records, in the order recorded, with one statement."""
        part = self.take()
        if part is not None:
            write(self._connection, [part])


def write(connection: Connection, parts: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Run the statements of ``parts`` (each ``(statement, parameters)`` with parameter names
    of its own) in one round trip, in order. Raises ``DeferredSavesRefused`` when a contact's
    write breaks the unique index of live primary emails, SQLAlchemy's errors otherwise; the
    transaction is then unusable (the caller rolls back)."""
    if not parts:
        return
    statement = "; ".join(text for text, _ in parts)
    params: dict[str, Any] = {}
    for _, values in parts:
        params.update(values)
    try:
        connection.exec_driver_sql(statement, params)
    except IntegrityError as exc:
        if refused_email(exc):
            raise DeferredSavesRefused(str(len(parts))) from None
        raise


def refused_email(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a write refused by the unique index of live primary emails."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == EMAIL_UNIQUE_INDEX


def insert_records(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (``record_values`` dicts, at least one) into ``processed_events`` with
    one statement, in order (``SqlInbox.record``: one row)."""
    connection.exec_driver_sql(*insert_records_statement(rows))


def insert_records_statement(rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The ``INSERT`` of ``rows`` (``record_values`` dicts, at least one) into
    ``processed_events``, in order: (statement, parameters named ``e<n>_<column>``)."""
    params: dict[str, Any] = {}
    for n, row in enumerate(rows):
        params.update({f"e{n}_{column}": row[column] for column in _RECORD_COLUMNS})
    return _insert_records_sql(len(rows)), params


@functools.lru_cache(maxsize=64)
def _insert_records_sql(count: int) -> str:
    tuples = (
        "("
        + ", ".join(
            f"CAST(%(e{n}_{column})s AS jsonb)" if column == "data" else f"%(e{n}_{column})s"
            for column in _RECORD_COLUMNS
        )
        + ")"
        for n in range(count)
    )
    return f"INSERT INTO processed_events ({', '.join(_RECORD_COLUMNS)}) VALUES {', '.join(tuples)}"


def upsert_contacts(states: Sequence[ContactState]) -> tuple[str, dict[str, Any]]:
    """The upsert of ``states`` (at least one, distinct contacts) into ``contacts``, in order:
    (statement, parameters named ``c<n>_<column>``)."""
    params: dict[str, Any] = {}
    for n, state in enumerate(states):
        params.update(contact_row(state, n))
    return upsert_contacts_sql(len(states)), params


def contact_row(state: ContactState, n: int) -> dict[str, Any]:
    """The ``contacts`` row of ``state`` as the parameters ``c<n>_<column>`` of
    ``upsert_contacts_sql`` (``CONTACT_COLUMNS``; the JSON arrays as text)."""
    fields = state.fields
    emails = fields["emails"] or []
    values: dict[str, Any] = {
        "workspace": state.workspace,
        "id": state.contact_id,
        **{name: fields[name] for name in FIELDS if name not in JSON_FIELDS},
        **{name: json.dumps(fields[name] or []) for name in JSON_FIELDS},
        "email": primary_value(emails),
        "email_key": primary_email_key(fields),
        "email_keys": [EmailAddress(e["value"]).key for e in emails],
        "phone": primary_value(fields["phones"]),
        "version": state.version,
        "alive": state.alive,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "deleted_at": state.deleted_at,
    }
    return {f"c{n}_{column}": values[column] for column in CONTACT_COLUMNS}


@functools.lru_cache(maxsize=64)
def upsert_contacts_sql(count: int) -> str:
    """``INSERT INTO contacts ... ON CONFLICT (workspace, id) DO UPDATE`` of ``count`` rows in
    the driver's parameter style (``contact_row`` of row 0 to ``count - 1``)."""
    json_columns = set(JSON_FIELDS)
    tuples = (
        "("
        + ", ".join(
            f"CAST(%(c{n}_{c})s AS jsonb)" if c in json_columns else f"%(c{n}_{c})s"
            for c in CONTACT_COLUMNS
        )
        + ")"
        for n in range(count)
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in CONTACT_COLUMNS if c not in _KEY)
    return (
        f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES {', '.join(tuples)}"
        f" ON CONFLICT (workspace, id) DO UPDATE SET {updates}"
    )


def record_values(event: ContactEvent, outcome: OperationStatus) -> dict[str, Any]:
    """The ``processed_events`` row of ``event`` with ``outcome``: a column name -> value dict,
    ``data`` as JSON text (``insert_records``)."""
    return {
        "workspace": event.workspace,
        "event_id": event.id,
        "import_id": event.import_id,
        "data": json.dumps(dict(event.data)),
        "expected_version": event.expected_version,
        "sequence": event.sequence,
        "operation_id": outcome.operation_id,
        "contact_id": outcome.contact_id,
        "event_type": event.kind,
        "status": outcome.status,
        "reason": outcome.reason,
        "version": outcome.version,
        "result": outcome.result,
    }
