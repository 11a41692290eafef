"""The Contact aggregate and the rule that applies an event to it (DESIGN.md §5.3).

The stored state is a last-writer-wins map: every field remembers the ``sequence`` of the event
that last wrote it, and a change is applied per field only when its event is newer. Whether the
contact exists is one more LWW register (``alive`` with ``alive_sequence``), written by creates,
replaces and deletes, so a delete is a tombstone that a late, older update cannot undo. Creates
and replaces write every field. Together these make the visible state of a contact independent
of the order and the number of times its events are applied, and equal to applying them once in
sequence order, as long as no event is rejected for a reason that depends on order (an ``If-Match``
version, a missing name, an email held by another contact).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from contacts_domain.contact import FIELDS, NAME_FIELDS, Fields, empty_fields
from contacts_domain.events import ContactEvent
from contacts_domain.operations import OperationStatus

Status = Literal["applied", "rejected"]

NOT_FOUND: Final = "not_found"
VERSION_MISMATCH: Final = "version_mismatch"
NAME_REQUIRED: Final = "name_required"
EMAIL_CONFLICT: Final = "email_conflict"


@dataclass(frozen=True, slots=True)
class ContactState:
    """Everything stored about one contact id, visible or not.

    ``fields`` has every key of ``FIELDS``. ``field_sequences`` maps a field to the sequence that
    last wrote it. ``alive_sequence`` is the sequence of the last create, replace or delete.
    ``version`` counts visible changes (the ETag); it is 0 for an id never seen.
    """

    contact_id: str
    fields: Mapping[str, Any] = field(default_factory=empty_fields)
    field_sequences: Mapping[str, str] = field(default_factory=dict)
    alive: bool = False
    alive_sequence: str | None = None
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None

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


def apply_event(
    state: ContactState, event: ContactEvent, *, alive_before: bool | None = None
) -> Decision:
    """Apply ``event`` to ``state`` and return the decision. Pure: no I/O, no clock.

    Creates and replaces write every field (absent ones empty) and set ``alive``; a delete writes
    every field empty and clears ``alive`` (erasure: only ids and sequences remain); a patch
    writes the fields it names. Each write lands only where the event is newer than the field's
    last writer. Rejections (``status == "rejected"``): ``version_mismatch`` when
    ``expected_version`` differs from the visible version (``not_found`` if nothing is visible),
    ``not_found`` for a patch or delete of a contact that is not visible at the event's sequence,
    ``name_required`` when the result would have neither first nor last name.

    ``alive_before`` says whether the contact existed just before ``event``'s sequence. It is
    needed only for an event older than the last create, replace or delete (a late delivery),
    where ``state`` tells only the present; see ``alive_at``. By default it is taken from
    ``state``.
    """
    if event.expected_version is not None:
        if not state.alive:
            return Decision(state, "rejected", NOT_FOUND)
        if state.version != event.expected_version:
            return Decision(state, "rejected", VERSION_MISMATCH)

    newer = state.alive_sequence is None or event.sequence > state.alive_sequence
    existed = state.alive if alive_before is None else alive_before
    writes_all = event.kind != "patched"
    if event.kind == "deleted":
        source: Mapping[str, Any] = empty_fields()
    elif writes_all:
        source = {**empty_fields(), **event.data}
    else:
        source = event.data

    fields = dict(state.fields)
    sequences = dict(state.field_sequences)
    for name in FIELDS:
        if name in source and event.sequence > sequences.get(name, ""):
            fields[name] = _empty_if_none(name, source[name])
            sequences[name] = event.sequence
    alive, alive_sequence = state.alive, state.alive_sequence
    if writes_all and newer:
        alive, alive_sequence = event.kind != "deleted", event.sequence

    if alive and not any(fields[n] for n in NAME_FIELDS):
        return Decision(state, "rejected", NAME_REQUIRED)
    new_state = _evolve(state, event, fields, sequences, alive, alive_sequence)
    changed = new_state != state
    if event.kind in ("patched", "deleted") and not existed:
        # Nothing visible to change. The write is still kept (invisible) so that a create or
        # replace ordered before this event but delivered after it ends the same as in order.
        return Decision(new_state, "rejected", NOT_FOUND, changed)
    return Decision(new_state, "applied", None, changed)


@dataclass(frozen=True, slots=True)
class ProcessedEvent:
    """An event already applied to a contact, with the outcome recorded for its operation."""

    event_id: str
    kind: str
    sequence: str
    outcome: OperationStatus


def alive_at(sequence: str, processed: Iterable[ProcessedEvent]) -> bool:
    """Whether the contact existed just before ``sequence``, by the processed events: the last
    applied create, replace (alive) or delete (gone) before it; gone when there is none."""
    last = max(
        (
            p
            for p in processed
            if p.sequence < sequence
            and p.kind in ("created", "replaced", "deleted")
            and p.outcome.status == "applied"
        ),
        key=lambda p: p.sequence,
        default=None,
    )
    return last is not None and last.kind != "deleted"


def revised_outcomes(event: ContactEvent, later: Sequence[ProcessedEvent]) -> list[ProcessedEvent]:
    """Outcomes to correct now that ``event``, which sets whether the contact exists (a create,
    replace or delete), has been applied after events with later sequences.

    Whether a patch or delete finds its contact (``not_found``) depends on the last create,
    replace or delete before it in sequence order. When a redelivery or concurrent processing
    applies such an event late, the patches and the delete that follow it in sequence, up to
    the next create or replace, were judged against the wrong past; their outcomes become what
    applying everything in order would have given. The state needs no correction (the
    last-writer-wins rule already gives the in-order state). ``later`` is the contact's processed
    events with sequences after ``event``'s, in sequence order. Rejections for other reasons
    (version, name, email) stand.
    """
    alive = event.kind != "deleted"
    revised: list[ProcessedEvent] = []
    for processed in later:
        if processed.kind in ("created", "replaced"):
            break
        outcome = processed.outcome
        if outcome.status == "applied" or outcome.reason == NOT_FOUND:
            wanted = ("applied", None) if alive else ("rejected", NOT_FOUND)
            if (outcome.status, outcome.reason) != wanted:
                fixed = replace(outcome, status=wanted[0], reason=wanted[1])
                revised.append(replace(processed, outcome=fixed))
        if processed.kind == "deleted":
            break
    return revised


def _evolve(
    state: ContactState,
    event: ContactEvent,
    fields: dict[str, Any],
    sequences: dict[str, str],
    alive: bool,
    alive_sequence: str | None,
) -> ContactState:
    visible_change = alive != state.alive or (alive and fields != dict(state.fields))
    return replace(
        state,
        fields=fields,
        field_sequences=sequences,
        alive=alive,
        alive_sequence=alive_sequence,
        version=state.version + 1 if visible_change else state.version,
        created_at=event.time if alive and not state.alive else state.created_at,
        updated_at=event.time if visible_change else state.updated_at,
        deleted_at=event.time if state.alive and not alive else state.deleted_at,
    )


def _empty_if_none(name: str, value: Any) -> Any:
    if value is None and name in ("emails", "phones", "addresses", "tags"):
        return []
    return value


def visible_states(states: Mapping[str, ContactState]) -> dict[str, Fields | None]:
    """Map contact id → visible fields (``None`` if absent or deleted); handy for comparisons."""
    return {cid: s.view() for cid, s in states.items()}
