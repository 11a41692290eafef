"""The use case of the worker: apply one contact event, exactly once in effect."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from contacts_domain import (
    EMAIL_CONFLICT,
    ContactEvent,
    MalformedEvent,
    OperationStatus,
    ProcessedEvent,
    ValidationFailed,
    apply_event,
    normalize_contact,
    revised_outcomes,
)
from contacts_domain.ports import ContactCache, EmailConflict, OperationStore, UnitOfWork

#: Events carry E.164 numbers; "ZZ" (unknown region) makes a number without "+" invalid.
_EVENT_PHONE_REGION = "ZZ"


def read_event(envelope: object) -> ContactEvent:
    """Parse and check an event envelope as the command API produced it.

    Raises ``MalformedEvent`` for anything that is not a valid contact event, including ``data``
    that breaks the contact rules for its type: such a message is poison, to be retried until
    SQS moves it to the dead-letter queue, never applied.
    """
    event = ContactEvent.from_cloudevent(envelope)
    if event.kind == "deleted":
        if event.data:
            raise MalformedEvent("A deleted event carries no data.")
        return event
    try:
        data = normalize_contact(
            event.data, partial=event.kind == "patched", default_region=_EVENT_PHONE_REGION
        )
    except ValidationFailed as exc:
        raise MalformedEvent(f"Invalid data for {event.kind}: {exc}") from None
    return dataclasses.replace(event, data=data)


def handle_event(
    event: ContactEvent,
    *,
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
) -> OperationStatus:
    """Apply ``event`` in one transaction, then refresh the cache and the operation status.

    An event that decides whether the contact exists (create, replace, delete), applied after
    events that follow it in sequence, corrects their recorded outcomes (``revised_outcomes``),
    so every operation reports what applying the accepted commands in order gives. The inbox
    makes a redelivered event a no-op for the database; the cache and the status are
    written again from the committed state, so a redelivery after a failed cache write (Redis
    down) repairs the cache. Business rejections are returned as a ``rejected`` outcome, not
    raised. Raises whatever the adapters raise for transient failures (database or Redis
    unreachable, lock timeout): the caller lets the message be redelivered.
    """
    revised: list[ProcessedEvent] = []
    with unit_of_work() as uow:
        state = uow.contacts.get_for_update(event.contact_id)
        outcome = uow.inbox.outcome_of(event.id)
        if outcome is None:
            late = state.alive_sequence is not None and event.sequence < state.alive_sequence
            alive_before = (
                uow.inbox.alive_before(event.contact_id, event.sequence) if late else None
            )
            decision = apply_event(state, event, alive_before=alive_before)
            reason = decision.reason
            if decision.changed:
                try:
                    uow.contacts.save(decision.state)
                    state = decision.state
                except EmailConflict:
                    reason = EMAIL_CONFLICT
            status = "rejected" if reason else "applied"
            outcome = OperationStatus(
                operation_id=event.operation_id,
                contact_id=event.contact_id,
                status=status,
                reason=reason,
                version=state.version,
            )
            uow.inbox.record(event, outcome)
            if event.kind != "patched" and outcome.status == "applied":
                later = uow.inbox.processed_after(event.contact_id, event.sequence)
                revised = revised_outcomes(event, later)
                for processed in revised:
                    uow.inbox.revise(processed.event_id, processed.outcome)
            uow.commit()
    if state.version > 0:
        cache.put(state)
    for processed in revised:
        operations.record(processed.outcome)
    operations.record(outcome)
    return outcome
