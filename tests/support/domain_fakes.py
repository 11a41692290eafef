"""In-memory fakes of the domain's ports (``contacts_domain.ports``), for unit tests.

They keep the contracts of ``ports`` (version-guarded cache, email uniqueness among live
contacts, changes visible only after ``commit``) without any server.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from contacts_domain.aggregate import ContactState, ProcessedEvent, erases
from contacts_domain.contact import primary_value
from contacts_domain.events import ContactEvent
from contacts_domain.operations import OperationStatus
from contacts_domain.ports import (
    ContactCache,
    ContactRepository,
    EmailConflict,
    Inbox,
    OperationStore,
    UnitOfWork,
)
from contacts_domain.values import email_key as email_key_of

#: A contact or an event of one workspace: ``(workspace, id)``.
Key = tuple[str, str]


class InMemoryDatabase:
    """Committed contact states and inbox rows, keyed by ``(workspace, id)``."""

    def __init__(self) -> None:
        self.contacts: dict[Key, ContactState] = {}
        self.inbox: dict[Key, ProcessedEvent] = {}


class InMemoryRepository(ContactRepository):
    def __init__(self, staged: dict[Key, ContactState]) -> None:
        self._staged = staged

    def get_for_update(self, workspace: str, contact_id: str) -> ContactState:
        return self._staged.get(
            (workspace, contact_id), ContactState(contact_id, workspace=workspace)
        )

    def holder_of_email(self, workspace: str, email_key: str) -> str | None:
        live = sorted(
            (c for c in self._in(workspace) if c.alive),
            key=lambda c: (c.created_at is None, c.created_at, c.contact_id),
        )
        for primary_only in (True, False):
            for contact in live:
                entries = contact.fields["emails"] or []
                values = [primary_value(entries)] if primary_only else [e["value"] for e in entries]
                if any(v is not None and email_key_of(v) == email_key for v in values):
                    return contact.contact_id
        return None

    def email_taken(self, workspace: str, email_key: str, contact_id: str) -> bool:
        for other in self._in(workspace):
            theirs = primary_value(other.fields["emails"])
            if (
                other.contact_id != contact_id
                and other.alive
                and theirs is not None
                and email_key_of(theirs) == email_key
            ):
                return True
        return False

    def live_contacts_for_update(self, workspace: str) -> int:
        return sum(1 for c in self._in(workspace) if c.alive)

    def save(self, state: ContactState) -> None:
        email = primary_value(state.fields["emails"])
        taken = email and self.email_taken(state.workspace, email_key_of(email), state.contact_id)
        if state.alive and taken:
            raise EmailConflict(state.contact_id)
        self._staged[(state.workspace, state.contact_id)] = state

    def _in(self, workspace: str) -> list[ContactState]:
        return [c for (ws, _), c in self._staged.items() if ws == workspace]


class InMemoryInbox(Inbox):
    def __init__(self, staged: dict[Key, ProcessedEvent]) -> None:
        self._staged = staged

    def outcome_of(self, workspace: str, event_id: str) -> OperationStatus | None:
        processed = self._staged.get((workspace, event_id))
        return processed.outcome if processed else None

    def record(self, event: ContactEvent, outcome: OperationStatus) -> None:
        self._staged[(event.workspace, event.id)] = ProcessedEvent(
            event.id,
            event.kind,
            event.sequence,
            outcome,
            dict(event.data),
            event.expected_version,
        )

    def last_sequence(self, workspace: str, contact_id: str) -> str | None:
        return max((p.sequence for p in self._mine(workspace, contact_id)), default=None)

    def history(
        self, workspace: str, contact_id: str, *, after: str | None = None
    ) -> list[ProcessedEvent]:
        mine = [p for p in self._mine(workspace, contact_id) if after is None or p.sequence > after]
        return sorted(mine, key=lambda p: p.sequence)

    def last_erasure(self, workspace: str, contact_id: str) -> str | None:
        deletes = (
            p.sequence
            for p in self._mine(workspace, contact_id)
            if p.kind == "deleted" and erases(p.outcome)
        )
        return max(deletes, default=None)

    def erase_data(self, workspace: str, contact_id: str, *, before: str) -> None:
        for p in self._mine(workspace, contact_id):
            if p.sequence < before and p.data:
                self._staged[(workspace, p.event_id)] = replace(p, data={})

    def _mine(self, workspace: str, contact_id: str) -> list[ProcessedEvent]:
        return [
            p
            for (ws, _), p in self._staged.items()
            if ws == workspace and p.outcome.contact_id == contact_id
        ]

    def revise(self, workspace: str, event_id: str, outcome: OperationStatus) -> None:
        key = (workspace, event_id)
        self._staged[key] = replace(self._staged[key], outcome=outcome)


class InMemoryUnitOfWork(UnitOfWork):
    """Stages changes on copies of the database; ``commit`` publishes them at once."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.commits = 0

    def __enter__(self) -> InMemoryUnitOfWork:
        self._contacts = copy.copy(self._db.contacts)
        self._inbox = copy.copy(self._db.inbox)
        self.contacts = InMemoryRepository(self._contacts)
        self.inbox = InMemoryInbox(self._inbox)
        return self

    def commit(self) -> None:
        self._db.contacts = self._contacts
        self._db.inbox = self._inbox
        self.commits += 1

    def rollback(self) -> None:
        self._contacts = copy.copy(self._db.contacts)
        self._inbox = copy.copy(self._db.inbox)
        self.contacts = InMemoryRepository(self._contacts)
        self.inbox = InMemoryInbox(self._inbox)


class InMemoryCache(ContactCache):
    """Version-guarded like the Redis cache, keyed by ``(workspace, id)``; set ``unavailable``
    to simulate an outage."""

    def __init__(self) -> None:
        self.entries: dict[Key, ContactState] = {}
        self.unavailable = False

    def put(self, state: ContactState) -> bool:
        if self.unavailable:
            raise ConnectionError("cache unavailable")
        key = (state.workspace, state.contact_id)
        current = self.entries.get(key)
        if current is not None and current.version >= state.version:
            return False
        self.entries[key] = state
        return True


class InMemoryOperationStore(OperationStore):
    """Statuses keyed by ``(workspace, operation id)``."""

    def __init__(self) -> None:
        self.statuses: dict[Key, OperationStatus] = {}

    def mark_pending(self, workspace: str, status: OperationStatus) -> None:
        self.statuses.setdefault((workspace, status.operation_id), status)

    def record(self, workspace: str, status: OperationStatus) -> None:
        self.statuses[(workspace, status.operation_id)] = status

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        return self.statuses.get((workspace, operation_id))
