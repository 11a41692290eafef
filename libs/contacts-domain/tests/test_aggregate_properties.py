"""Property: a contact's final state does not depend on delivery order or duplicates.

DESIGN.md §5.2–5.3. Whatever order SQS and Celery deliver a contact's events in, and however
often, the visible state equals applying each event once in the order the command API accepted
them (its ``sequence`` order).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contacts_domain import (
    ContactEvent,
    ContactState,
    OperationStatus,
    ProcessedEvent,
    alive_at,
    apply_event,
    empty_fields,
    revised_outcomes,
)
from contacts_domain.contact import FIELDS

CONTACT = str(uuid.UUID(int=1))
T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)

names = st.sampled_from(["Ada", "Grace", "Rosa", "Alan"])
optional_text = st.none() | st.sampled_from(["Acme", "Initech", "Globex"])
emails = st.lists(st.sampled_from(["a@example.com", "b@example.com"]), max_size=2, unique=True).map(
    lambda vs: [{"value": v, "type": "other", "primary": i == 0} for i, v in enumerate(vs)]
)
tags = st.lists(st.sampled_from(["vip", "lead", "friend"]), max_size=3, unique=True)

full_fields = st.fixed_dictionaries(
    {"first_name": names, "last_name": st.none() | names},
    optional={"company": optional_text, "job_title": optional_text, "emails": emails, "tags": tags},
).map(lambda f: {**empty_fields(), **f})
# Patches never clear a name: the name rule rejects by order, which the property excludes.
patch_fields = st.fixed_dictionaries(
    {},
    optional={
        "first_name": names,
        "last_name": names,
        "company": optional_text,
        "notes": optional_text,
        "emails": emails,
        "tags": tags,
    },
).filter(bool)

command = st.one_of(
    st.tuples(st.just("replaced"), full_fields),
    st.tuples(st.just("patched"), patch_fields),
    st.tuples(st.just("deleted"), st.just({})),
)
history = st.tuples(
    st.tuples(st.sampled_from(["created", "replaced"]), full_fields),
    st.lists(command, max_size=8),
).map(lambda h: [h[0], *h[1]])


def to_events(commands: list[tuple[str, dict[str, Any]]]) -> list[ContactEvent]:
    return [
        ContactEvent(
            id=str(uuid.UUID(int=1000 + i)),
            kind=kind,  # type: ignore[arg-type]
            contact_id=CONTACT,
            sequence=f"{1_000_000 + i * 10:016x}.n{i % 3}",
            time=T0 + dt.timedelta(milliseconds=i),
            operation_id=str(uuid.UUID(int=2000 + i)),
            data=data,
        )
        for i, (kind, data) in enumerate(commands)
    ]


def apply_all(events: list[ContactEvent]) -> ContactState:
    state = ContactState(CONTACT)
    for event in events:
        state = apply_event(state, event).state
    return state


@settings(max_examples=400, deadline=None)
@given(data=st.data(), commands=history)
def test_any_delivery_order_with_duplicates_gives_the_in_order_state(
    data: st.DataObject, commands: list[tuple[str, dict[str, Any]]]
) -> None:
    events = to_events(commands)
    expected = apply_all(events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivered = data.draw(st.permutations(events + duplicates))

    actual = apply_all(delivered)

    assert actual.alive == expected.alive
    assert actual.view() == expected.view()


@settings(max_examples=200, deadline=None)
@given(commands=history)
def test_in_order_application_matches_a_plain_replay(
    commands: list[tuple[str, dict[str, Any]]],
) -> None:
    """The LWW rule, applied in order, is ordinary last-write semantics."""
    model: dict[str, Any] | None = None
    for kind, data in commands:
        if kind in ("created", "replaced"):
            model = dict(data)
        elif kind == "deleted":
            model = None
        elif model is not None:
            model.update(data)
    state = apply_all(to_events(commands))
    view = state.view()
    if model is None:
        assert view is None
    else:
        assert view == {name: model.get(name, empty_fields()[name]) for name in FIELDS}


def process(events: list[ContactEvent]) -> tuple[ContactState, dict[str, tuple[str, Any]]]:
    """What the worker does: an inbox skips duplicates; an event delivered late is judged by the
    existence at its sequence (``alive_at``); and a create, replace or delete applied late
    corrects the outcomes of the events after it (``revised_outcomes``)."""
    state = ContactState(CONTACT)
    inbox: dict[str, ProcessedEvent] = {}
    for event in events:
        if event.id in inbox:
            continue
        late = state.alive_sequence is not None and event.sequence < state.alive_sequence
        alive_before = alive_at(event.sequence, inbox.values()) if late else None
        decision = apply_event(state, event, alive_before=alive_before)
        state = decision.state
        outcome = OperationStatus(event.operation_id, CONTACT, decision.status, decision.reason)
        inbox[event.id] = ProcessedEvent(event.id, event.kind, event.sequence, outcome)
        if event.kind != "patched" and decision.status == "applied":
            later = sorted(
                (p for p in inbox.values() if p.sequence > event.sequence),
                key=lambda p: p.sequence,
            )
            for fixed in revised_outcomes(event, later):
                inbox[fixed.event_id] = fixed
    return state, {p.event_id: (p.outcome.status, p.outcome.reason) for p in inbox.values()}


@settings(max_examples=400, deadline=None)
@given(data=st.data(), commands=history)
def test_any_delivery_order_gives_the_in_order_outcomes(
    data: st.DataObject, commands: list[tuple[str, dict[str, Any]]]
) -> None:
    """Every operation reports what applying the accepted commands in order gives (applied, or
    rejected not_found), however late its create, replace or delete was delivered."""
    events = to_events(commands)
    expected_state, expected_outcomes = process(events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivered = data.draw(st.permutations(events + duplicates))

    state, outcomes = process(delivered)

    assert state.view() == expected_state.view()
    assert outcomes == expected_outcomes
