"""The use case of the worker: apply one contact event, exactly once in effect.

Erasure rule (issue 7, item 4): ``DELETE`` is a real erasure. Once a contact's delete is
applied, the inbox forgets the data of every event of that contact ordered before it
(``Inbox.erase_data``): only ids, kinds, sequences and outcomes stay, and the contact's row is
a tombstone (id, version, times). Replay never needs that data again, because an applied delete
leaves the contact absent and empty whatever came before it, so:

- a late event ordered *after* the latest applied delete replays only the events after that
  delete (``Inbox.history(after=...)``), from the absent, empty contact;
- a late event ordered *before* it is superseded: it changes nothing (had it come in time,
  the delete would have erased its effect) and its data is not kept. Its outcome, and those
  of the events before the delete, are computed again without the erased data
  (``aggregate.replay_erased``): ``not_found`` wherever the contact did not exist, recorded
  data rejections (``name_required``, ``email_conflict``) kept, ``applied`` otherwise.

The visible state is still exactly that of applying the accepted commands in order
(docs/architecture.md
§5.3); only data-dependent outcomes of events before an applied delete may differ from the
in-order ones (a rejection that a late event would have caused or lifted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from contacts_domain import (
    EMAIL_CONFLICT,
    NOT_FOUND,
    VERSION_MISMATCH,
    ContactEvent,
    ContactState,
    MalformedEvent,
    OperationStatus,
    ProcessedEvent,
    ValidationFailed,
    apply_event,
    normalize_contact,
    replay,
    replay_erased,
)
from contacts_domain.contact import NAME_FIELDS, primary_email_key
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
            event.data,
            partial=event.kind in ("patched", "upserted"),
            default_region=_EVENT_PHONE_REGION,
        )
    except ValidationFailed as exc:
        raise MalformedEvent(f"Invalid data for {event.kind}: {exc}") from None
    if event.kind == "upserted" and (primary_email_key(data) is None or not has_name(data)):
        raise MalformedEvent("An upserted event needs a name and a primary email.")
    return dataclasses.replace(event, data=data)


def has_name(data: Mapping[str, Any]) -> bool:
    """Whether normalized ``data`` gives a first or last name."""
    return any(data.get(name) for name in NAME_FIELDS)


def handle_event(
    event: ContactEvent,
    *,
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
) -> OperationStatus:
    """Apply ``event`` in one transaction, then refresh the cache and the operation status.

    The newest event of a contact is applied directly (``apply_event``). An event older than
    one already processed for its contact (a late redelivery, or two messages of one group run
    at once) is put in its place and the contact's history applied again in order
    (``replay``): the state and every operation's outcome, including corrected outcomes of
    events processed earlier, are those of applying the accepted commands in order.

    The inbox makes a redelivered event a no-op for the database; the cache and the statuses
    are written again from the committed state, so a redelivery after a failed cache write
    (Redis down) repairs the cache. Business rejections are returned as a ``rejected`` outcome,
    not raised. Raises whatever the adapters raise for transient failures (database or Redis
    unreachable, lock timeout): the caller lets the message be redelivered.
    """
    revised: list[OperationStatus] = []
    with unit_of_work() as uow:
        known = uow.inbox.outcome_of(event.id) if event.kind == "upserted" else None
        if event.kind == "upserted" and known is None:
            event = _resolve_upsert(uow, event)
        target = known.contact_id if known is not None else event.contact_id
        state = uow.contacts.get_for_update(target)
        outcome = known or uow.inbox.outcome_of(event.id)
        if outcome is None:
            last = uow.inbox.last_sequence(event.contact_id)
            if last is not None and event.sequence < last:
                state, outcome, revised = _apply_late(uow, state, event)
                _erase_before_last_delete(uow, event.contact_id)  # a replay may apply a delete
            else:
                state, outcome = _apply_in_order(uow, state, event)
                if event.kind == "deleted" and outcome.status == "applied":
                    uow.inbox.erase_data(event.contact_id, before=event.sequence)
            uow.commit()
    if state.version > 0:
        cache.put(state)
    for status in revised:
        operations.record(status)
    operations.record(outcome)
    return outcome


def _resolve_upsert(uow: UnitOfWork, event: ContactEvent) -> ContactEvent:
    """``event`` aimed at the live contact holding its email, if one does (its ``contact_id``
    is the new contact's otherwise). The email stays locked until the transaction ends."""
    key = primary_email_key(event.data)
    holder = uow.contacts.holder_of_email(key) if key is not None else None
    return dataclasses.replace(event, contact_id=holder) if holder else event


def _apply_in_order(
    uow: UnitOfWork, state: ContactState, event: ContactEvent
) -> tuple[ContactState, OperationStatus]:
    existed = state.alive
    decision = apply_event(state, event)
    reason = decision.reason
    if decision.changed:
        try:
            uow.contacts.save(decision.state)
            state = decision.state
        except EmailConflict:
            reason = EMAIL_CONFLICT
    outcome = _outcome(event, reason, state.version, existed=existed)
    uow.inbox.record(event, outcome)
    return state, outcome


def _apply_late(
    uow: UnitOfWork, state: ContactState, event: ContactEvent
) -> tuple[ContactState, OperationStatus, list[OperationStatus]]:
    if event.expected_version is not None and state.version != event.expected_version:
        # If-Match names the version the client saw; only the present can be compared to it.
        reason = VERSION_MISMATCH if state.alive else NOT_FOUND
        outcome = _outcome(event, reason, state.version)
        uow.inbox.record(event, outcome)
        return state, outcome, []
    placeholder = _outcome(event, None, None)
    erased = uow.inbox.last_erasure(event.contact_id)
    if erased is not None and event.sequence < erased:
        # Superseded by an applied delete (module doc): nothing changes, no data is kept.
        before = [p for p in uow.inbox.history(event.contact_id) if p.sequence <= erased]
        late = ProcessedEvent(
            event.id, event.kind, event.sequence, placeholder, event.data, event.expected_version
        )
        verdicts = replay_erased(before, late)
        outcome = _outcome(event, verdicts[event.id][1], state.version)
        uow.inbox.record(dataclasses.replace(event, data={}), outcome)
        return state, outcome, _revise(uow, before, verdicts)
    history = [
        *uow.inbox.history(event.contact_id, after=erased),
        ProcessedEvent(event.id, event.kind, event.sequence, placeholder, event.data),
    ]
    moment = max(t for t in (state.updated_at, event.time) if t is not None)
    result = replay(
        state,
        history,
        email_taken=lambda key: uow.contacts.email_taken(key, event.contact_id),
        at=moment,
    )
    if result.state != state:
        try:
            uow.contacts.save(result.state)
        except EmailConflict:  # another contact took the email since the check
            outcome = _outcome(event, EMAIL_CONFLICT, state.version)
            uow.inbox.record(event, outcome)
            return state, outcome, []
        state = result.state
    # In the contact's own order an older upsert may have been the one that created it; what
    # this operation found when applied is what it reports.
    outcome = _outcome(event, result.outcomes[event.id][1], state.version, existed=True)
    uow.inbox.record(event, outcome)
    return state, outcome, _revise(uow, history[:-1], result.outcomes)


def _revise(
    uow: UnitOfWork,
    history: list[ProcessedEvent],
    verdicts: dict[str, tuple[str, str | None]],
) -> list[OperationStatus]:
    """Record the verdicts of ``history`` that changed; returns the revised statuses."""
    revised = []
    for processed in history:
        now = verdicts[processed.event_id]
        if now != (processed.outcome.status, processed.outcome.reason):
            # A verdict is ("applied", None) or ("rejected", reason): the reason says both.
            fixed = dataclasses.replace(
                processed.outcome, status="rejected" if now[1] else "applied", reason=now[1]
            )
            uow.inbox.revise(processed.event_id, fixed)
            revised.append(fixed)
    return revised


def _erase_before_last_delete(uow: UnitOfWork, contact_id: str) -> None:
    erased = uow.inbox.last_erasure(contact_id)
    if erased is not None:
        uow.inbox.erase_data(contact_id, before=erased)


def _outcome(
    event: ContactEvent, reason: str | None, version: int | None, *, existed: bool = False
) -> OperationStatus:
    applied_upsert = event.kind == "upserted" and not reason
    return OperationStatus(
        operation_id=event.operation_id,
        contact_id=event.contact_id,
        status="rejected" if reason else "applied",
        reason=reason,
        version=version,
        result=("updated" if existed else "created") if applied_upsert else None,
    )
