"""The Contact aggregate and the rules that apply its events (docs/architecture.md §5.3).

A contact's events must take effect in sequence order: the order in which the command API
accepted them (``sequence``, a hybrid logical clock reading). SQS FIFO delivers a contact's
messages in that order, but a redelivery can come late and Celery can run two messages of one
group at once. So the worker applies an event that is the newest of its contact with
``apply_event``, and an event that arrives after a newer one with ``replay``: the contact's
processed events, the late one included, are applied again from scratch in sequence order. In
both cases the visible state and every operation's outcome are those of applying the accepted
commands once, in order; a delete is final for every event ordered before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from contacts_domain.contact import FIELDS, NAME_FIELDS, Fields, empty_fields, primary_value
from contacts_domain.events import ABSENT_VERSION, ContactEvent
from contacts_domain.operations import OperationStatus
from contacts_domain.values import email_key
from contacts_domain.workspaces import DEFAULT_WORKSPACE

Status = Literal["applied", "rejected"]

NOT_FOUND: Final = "not_found"
VERSION_MISMATCH: Final = "version_mismatch"
NAME_REQUIRED: Final = "name_required"
EMAIL_CONFLICT: Final = "email_conflict"
#: The workspace holds its maximum of live contacts (the worker's
#: ``MAX_LIVE_CONTACTS_PER_WORKSPACE``, issue 12): the write that would make one more live is
#: rejected.
QUOTA_EXCEEDED: Final = "quota_exceeded"
#: A late event that could only be put in its place with event payloads the inbox's retention
#: has purged (``contact-worker-admin purge-inbox``, issue 16): it changes nothing.
EXPIRED: Final = "expired"


def erases(outcome: OperationStatus) -> bool:
    """Whether a delete with ``outcome`` is an erasure of its contact: applied, or rejected
    ``not_found`` (the contact was already absent, so the delete leaves it as any applied
    delete does: absent and empty). Either way the data of the contact's earlier events goes
    (issue 7, item 4; issue 16: a DELETE after a rejected create or a rejected write to an
    erased contact clears that event's payload too). A delete refused ``version_mismatch``
    erases nothing: the contact stays."""
    return outcome.status == "applied" or outcome.reason == NOT_FOUND


@dataclass(frozen=True, slots=True)
class ContactState:
    """Everything stored about one contact (a workspace and a contact id), visible or not.

    ``fields`` has every key of ``FIELDS``. ``version`` counts visible changes (the ETag); it is
    0 for an id never seen. The order of events lives in the inbox (``ProcessedEvent``).
    ``workspace`` is the contact's (``workspaces``); the same id in two workspaces is two
    contacts.
    """

    contact_id: str
    fields: Mapping[str, Any] = field(default_factory=empty_fields)
    alive: bool = False
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    workspace: str = DEFAULT_WORKSPACE

    def view(self) -> Fields | None:
        """The visible contact: its fields while alive, ``None`` when absent or deleted."""
        return dict(self.fields) if self.alive else None


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of applying one event: the new state, and the operation's outcome.

    ``changed`` says whether anything stored changed (so the repository must write ``state``);
    a superseded (older) event is ``applied`` with ``changed`` false.
    """

    state: ContactState
    status: Status
    reason: str | None = None
    changed: bool = False


def precondition_failure(state: ContactState, expected_version: int | None) -> str | None:
    """The rejection reason of a write whose precondition ``expected_version`` does not hold
    for ``state``, else ``None``. ``None`` wants nothing; ``ABSENT_VERSION`` (0,
    ``If-None-Match: *``) wants no visible contact (``version_mismatch`` when one is); any
    other version wants the visible contact at that version (``not_found`` when none is
    visible, ``version_mismatch`` at another version). RFC 9110 §13.1.1-2."""
    if expected_version is None:
        return None
    if expected_version == ABSENT_VERSION:
        return VERSION_MISMATCH if state.alive else None
    if not state.alive:
        return NOT_FOUND
    return VERSION_MISMATCH if state.version != expected_version else None


def apply_event(state: ContactState, event: ContactEvent) -> Decision:
    """Apply ``event``, the newest of its contact, to ``state``. Pure: no I/O, no clock.

    Creates and replaces write every field (absent ones empty) and make the contact visible; a
    delete erases every field (only ids and ordering data remain) and hides it; a patch writes
    the fields it names; an upsert patches a visible contact and creates an invisible one.
    Rejections (``status == "rejected"``), which change nothing:
    ``version_mismatch`` or ``not_found`` when ``expected_version`` does not hold
    (``precondition_failure``), ``not_found`` for a patch or delete of a contact that
    is not visible, ``name_required`` when the result would have neither first nor last name.
    An event older than one already applied goes through ``replay`` instead.
    """
    failure = precondition_failure(state, event.expected_version)
    if failure is not None:
        return Decision(state, "rejected", failure)
    if event.kind in ("patched", "deleted") and not state.alive:
        return Decision(state, "rejected", NOT_FOUND)

    patch = event.kind == "patched" or (event.kind == "upserted" and state.alive)
    if event.kind == "deleted":
        source: Mapping[str, Any] = empty_fields()
    elif patch:
        source = event.data
    else:
        source = {**empty_fields(), **event.data}
    fields = dict(state.fields)
    for name in FIELDS:
        if name in source:
            fields[name] = _empty_if_none(name, source[name])
    alive = state.alive if patch else event.kind != "deleted"

    if alive and not any(fields[n] for n in NAME_FIELDS):
        return Decision(state, "rejected", NAME_REQUIRED)
    new_state = _evolve(state, event.time, fields, alive)
    return Decision(new_state, "applied", None, new_state != state)


@dataclass(frozen=True, slots=True)
class ProcessedEvent:
    """An event already applied to a contact: what it asked for and the outcome recorded.

    ``data`` and ``expected_version`` are those of the event, kept so that a late event can be
    put in its place and the contact's history applied again in order (``replay``).
    ``purged``: the payload is gone with the inbox's retention (``data`` is then empty), so no
    replay can use this event any more.
    """

    event_id: str
    kind: str
    sequence: str
    outcome: OperationStatus
    data: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None
    purged: bool = False


@dataclass(frozen=True, slots=True)
class Replayed:
    """The result of ``replay``: the in-order state and every event's in-order outcome."""

    state: ContactState
    outcomes: dict[str, tuple[str, str | None]]


def replay(
    state: ContactState,
    history: Sequence[ProcessedEvent],
    *,
    email_taken: Callable[[str], bool],
    at: dt.datetime,
) -> Replayed:
    """Apply a contact's events again from scratch, in sequence order.

    Used when an event arrives after a newer one of the same contact was applied (a
    redelivery, or two messages of one FIFO group processed at once): ``history`` holds every
    event of the contact, the late one included. The result is exactly what applying the
    accepted commands once, in order, gives (docs/architecture.md §5.3): the visible fields,
    whether the contact exists, and the outcome of each event. ``email_taken(key)`` says
    whether another live contact holds a primary email of that key (``values.email_key``); a
    conditional write keeps its original verdict, since the client's ``If-Match`` spoke of
    the version it had seen then. ``state`` is the stored state, whose version grows by one if
    the visible result differs from it; ``at`` is the time of that change.
    """
    fields: dict[str, Any] = empty_fields()
    alive = False
    outcomes: dict[str, tuple[str, str | None]] = {}
    for event in sorted(history, key=lambda e: e.sequence):
        prior = event.outcome
        if event.expected_version is not None and prior.status == "rejected":
            outcomes[event.event_id] = (prior.status, prior.reason)
            continue
        if event.kind in ("patched", "deleted") and not alive:
            outcomes[event.event_id] = ("rejected", NOT_FOUND)
            continue
        patch = event.kind == "patched" or (event.kind == "upserted" and alive)
        if event.kind == "deleted":
            candidate = empty_fields()
        elif patch:
            candidate = {**fields, **{k: _empty_if_none(k, v) for k, v in event.data.items()}}
        else:
            candidate = {**empty_fields(), **event.data}
        if event.kind != "deleted":
            if not any(candidate[n] for n in NAME_FIELDS):
                outcomes[event.event_id] = ("rejected", NAME_REQUIRED)
                continue
            email = primary_value(candidate["emails"])
            before = primary_value(fields["emails"]) if alive else None
            changed_email = email and (before is None or email_key(email) != email_key(before))
            if email and changed_email and email_taken(email_key(email)):
                outcomes[event.event_id] = ("rejected", EMAIL_CONFLICT)
                continue
        fields = candidate
        if not patch:
            alive = event.kind != "deleted"
        outcomes[event.event_id] = ("applied", None)

    return Replayed(_evolve(state, at, fields, alive), outcomes)


#: Rejections that depend on an event's data (its fields, the emails of other contacts, or how
#: many contacts were live then):
#: once that data is erased they cannot be evaluated again, so the recorded verdict stands.
DATA_REASONS: Final = frozenset({NAME_REQUIRED, EMAIL_CONFLICT, QUOTA_EXCEEDED})


def replay_erased(
    history: Sequence[ProcessedEvent], late: ProcessedEvent
) -> dict[str, tuple[str, str | None]]:
    """The in-order verdicts of a contact's events up to its latest applied delete, after
    ``late`` (an event older than that delete) arrived, without the erased data. Pure.

    Used by the worker's erasure rule instead of ``replay``: ``history`` holds the processed
    events whose data is gone (every one up to and including the delete); ``late`` still has
    its data. Nothing before an applied delete can change the contact any more, so only the
    outcomes are computed, from what needs no erased data: whether the contact exists at each
    event's place follows from the kinds and the verdicts themselves, so a patch or delete of
    an absent contact is ``not_found``; otherwise a recorded data rejection (``DATA_REASONS``)
    stands, ``late`` is checked on its own fields (a create or replace without a name is
    ``name_required``) and the rest is ``applied``; a conditional write keeps a recorded
    rejection, as in ``replay``. Returns event id →
    (status, reason) for ``history`` and ``late``.
    """
    alive = False
    verdicts: dict[str, tuple[str, str | None]] = {}
    for event in sorted([*history, late], key=lambda e: e.sequence):
        prior = event.outcome
        recorded = event is not late and prior.status == "rejected"
        if recorded and event.expected_version is not None:
            verdicts[event.event_id] = (prior.status, prior.reason)
            continue
        if event.kind in ("patched", "deleted") and not alive:
            verdicts[event.event_id] = ("rejected", NOT_FOUND)
            continue
        if recorded and prior.reason in DATA_REASONS:
            verdicts[event.event_id] = (prior.status, prior.reason)
            continue
        nameless = not any(event.data.get(n) for n in NAME_FIELDS)
        if event is late and event.kind in ("created", "replaced") and nameless:
            verdicts[event.event_id] = ("rejected", NAME_REQUIRED)
            continue
        verdicts[event.event_id] = ("applied", None)
        if event.kind != "patched":
            alive = event.kind != "deleted"
    return verdicts


def _evolve(
    state: ContactState, moment: dt.datetime, fields: dict[str, Any], alive: bool
) -> ContactState:
    """``state`` with ``fields`` and ``alive``; the version and times move on a visible change."""
    visible_change = alive != state.alive or (alive and fields != dict(state.fields))
    return replace(
        state,
        fields=fields,
        alive=alive,
        version=state.version + 1 if visible_change else state.version,
        created_at=moment if alive and not state.alive else state.created_at,
        updated_at=moment if visible_change else state.updated_at,
        deleted_at=moment if state.alive and not alive else state.deleted_at,
    )


def _empty_if_none(name: str, value: Any) -> Any:
    if value is None and name in ("emails", "phones", "addresses", "tags"):
        return []
    return value
