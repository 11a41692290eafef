"""The use case of the worker: apply one contact event, exactly once in effect.

Erasure rule (issue 7, item 4): ``DELETE`` is a real erasure. Once a contact's delete is
applied, or finds the contact already absent (``not_found``: after a rejected create, or a
rejected write to an erased contact, issue 16), the inbox forgets the data of every event of
that contact ordered before it (``Inbox.erase_data``; ``aggregate.erases``): only ids, kinds,
sequences and outcomes stay, and the contact's row is a tombstone (id, version, times). Replay
never needs that data again, because such a delete leaves the contact absent and empty
whatever came before it, so:

- a late event ordered *after* the latest applied delete replays only the events after that
  delete (``Inbox.history(after=...)``), from the absent, empty contact;
- a late event ordered *before* it is superseded: it changes nothing (had it come in time,
  the delete would have erased its effect) and its data is not kept. Its outcome, and those
  of the events before the delete, are computed again without the erased data
  (``aggregate.replay_erased``): ``not_found`` wherever the contact did not exist, recorded
  data rejections (``name_required``, ``email_conflict``, ``quota_exceeded``) kept, ``applied``
  otherwise.

The visible state is still exactly that of applying the accepted commands in order
(docs/architecture.md
§5.3); only data-dependent outcomes of events before an applied delete may differ from the
in-order ones (a rejection that a late event would have caused or lifted).

Retention (issue 16): ``contact-worker-admin purge-inbox`` drops the payloads of events
processed more than ``INBOX_PAYLOAD_RETENTION_DAYS`` ago (``adapters.inbox_retention``). A
late event whose replay would need one of them is rejected ``expired`` and changes nothing.

Workspaces (docs/architecture.md §10): every read and write names the event's workspace
(``event.workspace``; an event queued before workspaces existed is in ``default``), so locks,
the inbox, upsert matching by email and the quota are per workspace.

Quota (issue 12, item 5): with ``max_live_contacts`` above 0, a write that would make a contact
live (a create, a replace or upsert that creates, a replay that brings one back) while its
workspace already holds that many live contacts is rejected with ``quota_exceeded``. The count
is read under a per-workspace lock in the writing transaction (``live_contacts_for_update``),
so two writers cannot both take the last place; with the quota off nothing is counted or
locked, and writers of one workspace never wait for each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from contacts_domain import (
    EMAIL_CONFLICT,
    EXPIRED,
    QUOTA_EXCEEDED,
    ContactEvent,
    ContactState,
    MalformedEvent,
    OperationStatus,
    ProcessedEvent,
    ValidationFailed,
    apply_event,
    erases,
    normalize_contact,
    precondition_failure,
    replay,
    replay_erased,
)
from contacts_domain.contact import primary_email_key
from contacts_domain.ports import (
    ContactCache,
    DeferredSavesRefused,
    EmailConflict,
    IdempotencyIndex,
    OperationStore,
    UnitOfWork,
)
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")

#: Events carry numbers as the domain stores them (E.164, maybe ``;ext=`` and digits), which
#: parse to themselves; "ZZ" (unknown region) makes a number without "+" invalid.
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
    if event.kind == "upserted" and primary_email_key(data) is None:
        # No name needed: matching a contact keeps its name, and creating one without a name
        # is an operation rejected with ``name_required`` (``apply_event``), not poison.
        raise MalformedEvent("An upserted event needs a primary email.")
    return dataclasses.replace(event, data=data)


def handle_event(
    event: ContactEvent,
    *,
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
    max_live_contacts: int = 0,
    idempotency: IdempotencyIndex | None = None,
) -> OperationStatus:
    """Apply ``event`` in one transaction, then refresh the cache and the operation status, all
    in the event's workspace. ``max_live_contacts``: the quota of live contacts per workspace
    (0: none; module doc). ``idempotency``: the index of the command API's idempotency records
    by contact (``None``: not kept); after the commit, an erasure deletes the contact's records
    and an upsert that matched an existing contact merges the records of the id it was sent
    with into that contact's (issue 16), again on every redelivery.

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
    with unit_of_work() as uow:
        step = _apply_in(uow, event, max_live_contacts)
        uow.commit()
    _publish([step], cache, operations, idempotency)
    return step.outcome


#: What one event's step inside a unit of work produced: the contact's state after it, the
#: event's outcome and the outcomes of earlier events it revised (a late event's replay); the
#: event as applied (an upsert aimed at the contact it matched) and the id it was sent for.
@dataclasses.dataclass(frozen=True)
class _Step:
    workspace: str
    state: ContactState
    outcome: OperationStatus
    revised: list[OperationStatus]
    event: ContactEvent
    sent_for: str


def handle_batch(
    events: Sequence[ContactEvent],
    *,
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
    max_live_contacts: int = 0,
    idempotency: IdempotencyIndex | None = None,
) -> list[OperationStatus | Exception]:
    """Apply ``events`` (in the order given: delivery order, so the events of one contact or
    one email are in their accepted order) in ONE transaction, then refresh the cache and the
    statuses; returns one result per event, in order: its outcome, or the exception that kept
    it from being applied (the caller lets that event's message be redelivered).

    Each event is applied exactly as ``handle_event`` would apply it alone, one after the other
    (the same rules; the inbox seeing the earlier events of the batch), so the state and the
    outcomes are those of applying them one per transaction. The unit of work is told the
    batch first (``UnitOfWork.prepare_batch``): PostgreSQL's takes every contact's lock and
    reads what the events will ask in one round trip, and writes the contacts' rows and the
    inbox's rows with one statement each, in one round trip at commit (``adapters.sql_batch``;
    docs/architecture.md §8 "Batches"); when a deferred contact write is refused (an email
    conflict), the batch is applied again in a new transaction with each save made at once
    (``_apply_together``). When anything else fails
    (a poison event, a deadlock with another worker, the database or Redis down) the batch's
    transaction is rolled back, nothing of it is kept, and every event is applied again alone,
    one transaction each (``handle_event``): only the events that fail on their own are
    reported failed, the others are applied once (issue 13: a poison event does not hold back
    or redeliver the good ones). A batch that committed but whose Redis writes failed is
    retried the same way: the inbox makes the second pass a no-op for the database.

    A batch of one event (an idle worker's usual batch) takes the same batch unit of work: three
    round trips to PostgreSQL for a created event (the prefetch, the upsert and insert
    together, the commit; the pool's ping is gone since session 16) against six in
    ``handle_event`` (bench/README.md, "Session 15: idle freshness"), and one to Redis; when
    it fails, its exception is its result, as it was in ``handle_event``: applying it alone
    again would only repeat it.
    """
    if not events:
        return []
    try:
        return list(
            _apply_together(events, unit_of_work, cache, operations, max_live_contacts, idempotency)
        )
    except Exception as exc:
        if len(events) == 1:
            return [exc]
        log.warning(
            "batch not applied together; applying its events one by one",
            error=type(exc).__name__,
            events=len(events),
        )
    return [
        _result_alone(event, unit_of_work, cache, operations, max_live_contacts, idempotency)
        for event in events
    ]


def _result_alone(
    event: ContactEvent,
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
    max_live_contacts: int,
    idempotency: IdempotencyIndex | None,
) -> OperationStatus | Exception:
    """``handle_event`` of ``event`` in a transaction of its own: its outcome, or the exception
    that kept it from being applied (``handle_batch``'s fallback)."""
    try:
        return handle_event(
            event,
            unit_of_work=unit_of_work,
            cache=cache,
            operations=operations,
            max_live_contacts=max_live_contacts,
            idempotency=idempotency,
        )
    except Exception as exc:
        return exc


def _apply_together(
    events: Sequence[ContactEvent],
    unit_of_work: Callable[[], UnitOfWork],
    cache: ContactCache,
    operations: OperationStore,
    max_live_contacts: int,
    idempotency: IdempotencyIndex | None,
) -> list[OperationStatus]:
    """``events`` in one transaction, then the cache and the statuses (``handle_batch``).

    First with the contacts' saves deferred (written together: ``UnitOfWork.prepare_batch``);
    when the store refuses one of them (``DeferredSavesRefused``: an email conflict the
    outcomes did not foresee) that transaction is rolled back and the batch applied again in a
    new one, each save made at once (``EmailConflict`` then gives that event its rejection).
    Raises what that second attempt, or anything but the refusal, raises."""
    try:
        steps = _transaction(events, unit_of_work, max_live_contacts, defer_saves=True)
    except DeferredSavesRefused:
        steps = _transaction(events, unit_of_work, max_live_contacts, defer_saves=False)
    _publish(steps, cache, operations, idempotency)
    return [step.outcome for step in steps]


def _transaction(
    events: Sequence[ContactEvent],
    unit_of_work: Callable[[], UnitOfWork],
    max_live_contacts: int,
    *,
    defer_saves: bool,
) -> list[_Step]:
    """Apply ``events`` one after the other in one committed unit of work."""
    with unit_of_work() as uow:
        uow.prepare_batch(events, defer_saves=defer_saves)
        steps = [_apply_in(uow, event, max_live_contacts) for event in events]
        uow.commit()
    return steps


def _apply_in(uow: UnitOfWork, event: ContactEvent, max_live_contacts: int) -> _Step:
    """Apply ``event`` inside ``uow`` (not committed): the body of ``handle_event``."""
    revised: list[OperationStatus] = []
    ws = event.workspace
    sent_for = event.contact_id
    known = uow.inbox.outcome_of(ws, event.id) if event.kind == "upserted" else None
    if event.kind == "upserted" and known is None:
        event = _resolve_upsert(uow, event)
    target = known.contact_id if known is not None else event.contact_id
    state = uow.contacts.get_for_update(ws, target)
    outcome = known or uow.inbox.outcome_of(ws, event.id)
    if outcome is None:
        room = _Quota(uow, ws, max_live_contacts)
        last = uow.inbox.last_sequence(ws, event.contact_id)
        if last is not None and event.sequence < last:
            state, outcome, revised = _apply_late(uow, state, event, room)
            _erase_before_last_delete(uow, ws, event.contact_id)  # a replay may delete
        else:
            state, outcome = _apply_in_order(uow, state, event, room)
            if event.kind == "deleted" and erases(outcome):
                uow.inbox.erase_data(ws, event.contact_id, before=event.sequence)
    return _Step(ws, state, outcome, revised, event, sent_for)


def _publish(
    steps: Sequence[_Step],
    cache: ContactCache,
    operations: OperationStore,
    idempotency: IdempotencyIndex | None,
) -> None:
    """After the commit: the cache gets each contact's last state of ``steps`` (the writes are
    version-guarded, so the last is the newest), then every revised and new status is
    recorded, in order, never before the entries (``ContactCache.put_all_then_record``: one
    Redis round trip for the whole batch); then each step's idempotency records follow its
    contact (``_follow_idempotency_records``)."""
    last: dict[tuple[str, str], ContactState] = {}
    for step in steps:
        if step.state.version > 0:
            last[(step.workspace, step.state.contact_id)] = step.state
    cache.put_all_then_record(
        list(last.values()),
        [(step.workspace, status) for step in steps for status in [*step.revised, step.outcome]],
        operations,
    )
    if idempotency is not None:
        for step in steps:
            _follow_idempotency_records(idempotency, step.event, step.outcome, step.sent_for)


def _follow_idempotency_records(
    index: IdempotencyIndex, event: ContactEvent, outcome: OperationStatus, sent_for: str
) -> None:
    """Erase the idempotency records of an erased contact; give a matched upsert's records (the
    id it was sent for) to the contact it matched."""
    if event.kind == "deleted" and erases(outcome):
        index.forget(event.workspace, outcome.contact_id)
    elif event.kind == "upserted" and outcome.contact_id != sent_for:
        index.merge(event.workspace, sent_for, outcome.contact_id)


class _Quota:
    """Whether a contact of ``workspace`` may become live in this unit of work."""

    def __init__(self, uow: UnitOfWork, workspace: str, limit: int) -> None:
        self._uow = uow
        self._workspace = workspace
        self._limit = limit

    def refuses(self, before: ContactState, after: ContactState) -> bool:
        """True when ``after`` makes a contact live that ``before`` was not, and the workspace
        already holds ``limit`` live contacts (never with the quota off: no lock taken)."""
        if self._limit <= 0 or before.alive or not after.alive:
            return False
        return self._uow.contacts.live_contacts_for_update(self._workspace) >= self._limit


def _resolve_upsert(uow: UnitOfWork, event: ContactEvent) -> ContactEvent:
    """``event`` aimed at the live contact holding its email, if one does (its ``contact_id``
    is the new contact's otherwise). The email stays locked until the transaction ends."""
    key = primary_email_key(event.data)
    holder = uow.contacts.holder_of_email(event.workspace, key) if key is not None else None
    return dataclasses.replace(event, contact_id=holder) if holder else event


def _apply_in_order(
    uow: UnitOfWork, state: ContactState, event: ContactEvent, quota: _Quota
) -> tuple[ContactState, OperationStatus]:
    existed = state.alive
    decision = apply_event(state, event)
    reason = decision.reason
    if decision.changed and quota.refuses(state, decision.state):
        reason = QUOTA_EXCEEDED
    elif decision.changed:
        try:
            uow.contacts.save(decision.state)
            state = decision.state
        except EmailConflict:
            reason = EMAIL_CONFLICT
    outcome = _outcome(event, reason, state.version, existed=existed)
    uow.inbox.record(event, outcome)
    return state, outcome


def _apply_late(
    uow: UnitOfWork, state: ContactState, event: ContactEvent, quota: _Quota
) -> tuple[ContactState, OperationStatus, list[OperationStatus]]:
    ws = event.workspace
    reason = precondition_failure(state, event.expected_version)
    if reason is not None:
        # If-Match names the version the client saw (If-None-Match: none); only the present
        # can be compared to it.
        outcome = _outcome(event, reason, state.version)
        uow.inbox.record(event, outcome)
        return state, outcome, []
    placeholder = _outcome(event, None, None)
    erased = uow.inbox.last_erasure(ws, event.contact_id)
    if erased is not None and event.sequence < erased:
        outcome, revised = _apply_superseded(uow, state, event, erased)
        return state, outcome, revised
    history = [
        *uow.inbox.history(ws, event.contact_id, after=erased),
        ProcessedEvent(event.id, event.kind, event.sequence, placeholder, event.data),
    ]
    if any(processed.purged for processed in history):
        # Too late to be put in its place: the payloads a replay needs are gone (retention).
        outcome = _outcome(event, EXPIRED, state.version)
        uow.inbox.record(dataclasses.replace(event, data={}), outcome)
        return state, outcome, []
    moment = max(t for t in (state.updated_at, event.time) if t is not None)
    result = replay(
        state,
        history,
        email_taken=lambda key: uow.contacts.email_taken(ws, key, event.contact_id),
        at=moment,
    )
    if result.state != state:
        refused = QUOTA_EXCEEDED if quota.refuses(state, result.state) else None
        try:
            if not refused:
                uow.contacts.save(result.state)
        except EmailConflict:  # another contact took the email since the check
            refused = EMAIL_CONFLICT
        if refused:
            outcome = _outcome(event, refused, state.version)
            uow.inbox.record(event, outcome)
            return state, outcome, []
        state = result.state
    # In the contact's own order an older upsert may have been the one that created it; what
    # this operation found when applied is what it reports.
    outcome = _outcome(event, result.outcomes[event.id][1], state.version, existed=True)
    uow.inbox.record(event, outcome)
    return state, outcome, _revise(uow, ws, history[:-1], result.outcomes, state.version)


def _apply_superseded(
    uow: UnitOfWork, state: ContactState, event: ContactEvent, erased: str
) -> tuple[OperationStatus, list[OperationStatus]]:
    """A late event ordered before the latest applied delete (sequence ``erased``): nothing
    changes, no data is kept (module doc); returns its outcome and the revised ones."""
    ws = event.workspace
    before = [p for p in uow.inbox.history(ws, event.contact_id) if p.sequence <= erased]
    late = ProcessedEvent(
        event.id,
        event.kind,
        event.sequence,
        _outcome(event, None, None),
        event.data,
        event.expected_version,
    )
    verdicts = replay_erased(before, late)
    outcome = _outcome(event, verdicts[event.id][1], state.version)
    uow.inbox.record(dataclasses.replace(event, data={}), outcome)
    return outcome, _revise(uow, ws, before, verdicts)


def _revise(
    uow: UnitOfWork,
    workspace: str,
    history: list[ProcessedEvent],
    verdicts: dict[str, tuple[str, str | None]],
    version: int | None = None,
) -> list[OperationStatus]:
    """Record the verdicts of ``history`` that changed; returns the revised statuses. An event
    revised to ``applied`` reports ``version``, the contact's version after the replay: the
    first at which its effect shows (``None``: keep the recorded one)."""
    revised = []
    for processed in history:
        now = verdicts[processed.event_id]
        if now != (processed.outcome.status, processed.outcome.reason):
            # A verdict is ("applied", None) or ("rejected", reason): the reason says both.
            shown = version if version is not None and now[1] is None else None
            fixed = dataclasses.replace(
                processed.outcome,
                status="rejected" if now[1] else "applied",
                reason=now[1],
                version=processed.outcome.version if shown is None else shown,
            )
            uow.inbox.revise(workspace, processed.event_id, fixed)
            revised.append(fixed)
    return revised


def _erase_before_last_delete(uow: UnitOfWork, workspace: str, contact_id: str) -> None:
    erased = uow.inbox.last_erasure(workspace, contact_id)
    if erased is not None:
        uow.inbox.erase_data(workspace, contact_id, before=erased)


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
