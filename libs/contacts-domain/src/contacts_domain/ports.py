"""Ports: the abstract interfaces the services implement with real adapters (and tests with fakes).

Nothing here knows about SQS, PostgreSQL or Redis.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType
from typing import Final

from contacts_domain.aggregate import ContactState, ProcessedEvent
from contacts_domain.events import ContactEvent
from contacts_domain.operations import OperationStatus
from contacts_domain.ordering import ordering_key

#: What ``publish_batch`` reports for an event it did not try to send because an earlier
#: event of the same ordering key (the same contact, or the same upserted email) failed.
EARLIER_EVENT_FAILED: Final = "Not sent: an earlier event of the same contact was not sent."


class StoreUnavailable(RuntimeError):
    """A short-lived store (operation statuses, idempotency records, import reports) did not
    answer in time; callers fail open where that is safe, else answer 503."""


class PublishFailed(RuntimeError):
    """The event was not confirmed as durably accepted by the queue (unreachable, timed out,
    refused).

    ``may_be_queued`` is ``True`` when the queue may have taken it all the same: the call was
    sent and its answer did not come (a timeout, a connection lost mid-call). A client must
    then not be told that nothing was accepted: a retry with the same idempotency key applies
    the command at most once, a retry without one may apply it twice.
    """

    def __init__(self, message: str, *, may_be_queued: bool = False) -> None:
        super().__init__(message)
        self.may_be_queued = may_be_queued


class EventPublisher(abc.ABC):
    """Sends events to the queue, in order per contact."""

    @abc.abstractmethod
    def publish(self, event: ContactEvent) -> None:
        """Return only once the queue has durably accepted ``event``.

        Raises ``PublishFailed`` when it did not within the adapter's time bound.
        """

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        """Send ``events`` in order and report each: ``None`` when the queue durably took it,
        else the exception that kept it out (``PublishFailed``, or the adapter's refusal of
        that one event, e.g. the command API's ``EventTooLarge``). Never raises for a failed
        event: every event gets its result, in the order given.

        Per-contact order (docs/architecture.md, "Consistency rules"): once an event of an
        ordering key (``ordering.ordering_key``) is not sent, the later events of that key in
        the call are not sent either (``PublishFailed(EARLIER_EVENT_FAILED)``), so a queue never
        holds a contact's later command without its earlier one. This default sends one
        event at a time with ``publish``; adapters override it to batch (SQS
        ``SendMessageBatch``).
        """
        results: list[Exception | None] = []
        failed_groups: set[str] = set()
        for event in events:
            group = ordering_key(event)
            if group in failed_groups:
                results.append(PublishFailed(EARLIER_EVENT_FAILED))
                continue
            try:
                self.publish(event)
            except Exception as exc:  # reported per event; one failure must not hide the rest
                failed_groups.add(group)
                results.append(exc)
            else:
                results.append(None)
        return results


class EmailConflict(Exception):
    """Another live contact already holds this contact's primary email (canonical form)."""


class DeferredSavesRefused(Exception):
    """A unit of work that deferred its contacts' saves (``UnitOfWork.prepare_batch`` with
    ``defer_saves``) found, when writing them, one its store refuses (a primary email held by
    another live contact): the outcomes already given assumed the saves would succeed, so the
    unit must be rolled back and its events applied again without deferred saves, where
    ``save`` raises ``EmailConflict`` at once."""


class ContactRepository(abc.ABC):
    """Stored contact states, read for update inside a unit of work. Every method works in one
    workspace (docs/architecture.md §10): a contact, an email or a count of another workspace
    is never seen, and the same id or email in two workspaces is two contacts."""

    @abc.abstractmethod
    def get_for_update(self, workspace: str, contact_id: str) -> ContactState:
        """Return the state of ``contact_id`` in ``workspace`` (an empty ``ContactState`` of that
        workspace if never seen), locked until the unit of work ends so no other writer
        interleaves."""

    @abc.abstractmethod
    def holder_of_email(self, workspace: str, email_key: str) -> str | None:
        """The id of the live contact of ``workspace`` holding the email whose key
        (``values.email_key``) is ``email_key`` (as its primary email first, else as any of its
        emails, the oldest first), or ``None``. Serializes callers asking for one key in one
        workspace until the unit of work ends, so two upserts of one new email cannot both
        create a contact."""

    @abc.abstractmethod
    def email_taken(self, workspace: str, email_key: str, contact_id: str) -> bool:
        """Whether a live contact of ``workspace`` other than ``contact_id`` holds the primary
        email whose key (``values.email_key``) is ``email_key``."""

    @abc.abstractmethod
    def live_contacts_for_update(self, workspace: str) -> int:
        """The number of live contacts of ``workspace``, locked until the unit of work ends
        (the per-workspace quota: two writers making contacts live cannot both pass it)."""

    @abc.abstractmethod
    def save(self, state: ContactState) -> None:
        """Store ``state`` in its workspace (``state.workspace``). Raises ``EmailConflict`` if its
        primary email is held by another live contact of that workspace; the unit of work stays
        usable after that."""


class Inbox(abc.ABC):
    """Events already processed (the inbox), with their outcome: exactly-once effect. Every
    method works in one workspace: an event or a contact of another one is unknown."""

    @abc.abstractmethod
    def outcome_of(self, workspace: str, event_id: str) -> OperationStatus | None:
        """Return the recorded outcome of ``event_id`` in ``workspace``, or ``None`` if it was
        never processed there."""

    @abc.abstractmethod
    def record(self, event: ContactEvent, outcome: OperationStatus) -> None:
        """Record that ``event`` was processed with ``outcome``, in the event's workspace
        (``event.workspace``) and the unit of work's transaction, so the effect and the record
        commit together."""

    @abc.abstractmethod
    def last_sequence(self, workspace: str, contact_id: str) -> str | None:
        """The highest sequence processed for the contact, or ``None``."""

    @abc.abstractmethod
    def history(
        self, workspace: str, contact_id: str, *, after: str | None = None
    ) -> list[ProcessedEvent]:
        """The processed events of the contact with a sequence above ``after`` (every one when
        ``None``), with their data, in sequence order."""

    @abc.abstractmethod
    def last_erasure(self, workspace: str, contact_id: str) -> str | None:
        """The sequence of the contact's latest erasure (a delete that ``aggregate.erases``:
        applied or ``not_found``), or ``None``."""

    @abc.abstractmethod
    def erase_data(self, workspace: str, contact_id: str, *, before: str) -> None:
        """Forget the data (personal data) of the contact's events with a sequence below
        ``before``; their ids, kinds, sequences and outcomes stay (see the worker's handler
        for why replay never needs that data again)."""

    @abc.abstractmethod
    def revise(self, workspace: str, event_id: str, outcome: OperationStatus) -> None:
        """Replace the recorded outcome of ``event_id`` (after a ``replay``)."""


class UnitOfWork(abc.ABC):
    """One atomic transaction over contacts and the inbox (of any workspace: each method of
    ``contacts`` and ``inbox`` names its own). Use as a context manager; changes are
    discarded unless ``commit`` is called."""

    contacts: ContactRepository
    inbox: Inbox

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def prepare_batch(self, events: Sequence[ContactEvent], *, defer_saves: bool = False) -> None:
        """Announce that ``events`` (delivery order) are about to be applied in this unit, one
        after the other (the worker's batches, issue 13). An adapter may lock and read ahead
        what they will ask, and hold its inbox records until ``commit``, as long as every
        answer stays the one the unit would give without it; this default does nothing. Raises
        what the adapter raises for a failed read (the unit is then to be rolled back).

        ``defer_saves``: the adapter may also hold the contacts' saves and write them together
        later (before any read that could see them, at the latest at ``commit``); ``save`` then
        never raises ``EmailConflict``, and a refused write raises ``DeferredSavesRefused``
        from whichever call writes them (the caller then rolls back and applies the events
        again without ``defer_saves``)."""
        return

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every change of this unit durable at once."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard uncommitted changes (a no-op after ``commit``)."""


class ContactCache(abc.ABC):
    """The read cache of contacts. Writes are version-guarded: an older version never replaces a
    newer one or a tombstone (docs/architecture.md §5.5)."""

    @abc.abstractmethod
    def put(self, state: ContactState) -> bool:
        """Cache the visible form of ``state`` (a tombstone if deleted) unless the cache holds
        the same or a newer version. Returns whether it wrote."""

    def put_all(self, states: Sequence[ContactState]) -> None:
        """``put`` each of ``states`` (an adapter may send them in one round trip)."""
        for state in states:
            self.put(state)

    def put_all_then_record(
        self,
        states: Sequence[ContactState],
        outcomes: Sequence[tuple[str, OperationStatus]],
        operations: OperationStore,
    ) -> None:
        """``put_all(states)``, then ``operations.record_all(outcomes)``: no status is written
        before the entries (docs/architecture.md §5.6: a client that reads an outcome then reads
        at least that version). An adapter may send both in one round trip when ``operations``
        lives in its store, as long as that order holds. Raises what either raises."""
        self.put_all(states)
        operations.record_all(outcomes)


class IdempotencyIndex(abc.ABC):
    """Which idempotency records (the command API's, 24 h) name which contact, per workspace, so
    that an erasure takes them along (issue 16). Every method raises ``StoreUnavailable`` when
    the store does not answer in time."""

    @abc.abstractmethod
    def merge(self, workspace: str, source_id: str, contact_id: str) -> None:
        """Make the records naming ``source_id`` name ``contact_id`` too: an upsert sent for a
        new contact ``source_id`` matched the existing ``contact_id``."""

    @abc.abstractmethod
    def forget(self, workspace: str, contact_id: str) -> int:
        """Delete the records naming ``contact_id`` and its index; returns how many records
        went."""


class OperationStore(abc.ABC):
    """Short-lived operation statuses for clients that poll (kept 24 h by contract), per
    workspace: an operation of another workspace is unknown. Every method raises
    ``StoreUnavailable`` when the store does not answer in time."""

    @abc.abstractmethod
    def mark_pending(self, workspace: str, status: OperationStatus) -> None:
        """Record ``status`` as pending unless an outcome is already recorded."""

    def mark_all_pending(self, workspace: str, statuses: Sequence[OperationStatus]) -> None:
        """``mark_pending`` each of ``statuses`` in ``workspace``, in order (an adapter may send
        them in one round trip); raises at the first that fails."""
        for status in statuses:
            self.mark_pending(workspace, status)

    @abc.abstractmethod
    def record(self, workspace: str, status: OperationStatus) -> None:
        """Record the final outcome (applied or rejected)."""

    def record_all(self, outcomes: Sequence[tuple[str, OperationStatus]]) -> None:
        """``record`` each ``(workspace, status)`` of ``outcomes``, in order (an adapter may
        send them in one round trip)."""
        for workspace, status in outcomes:
            self.record(workspace, status)

    @abc.abstractmethod
    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        """Return the status of ``operation_id`` in ``workspace``, or ``None`` when unknown,
        expired or of another workspace."""
