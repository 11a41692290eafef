"""Properties of the apply rules (docs/architecture.md §5.3): in-order application is plain
last-write
semantics, and ``replay`` of a history collected in any order gives the in-order result.

The handler-level property (any delivery order, with duplicates, through ``handle_event``) is in
services/contact-worker/tests/unit/test_delivery_order.py.
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
    apply_event,
    empty_fields,
    replay,
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

# An upsert as the worker applies it to the contact it resolved: a patch when the contact is
# visible, a create otherwise; it always names someone (the API requires it).
upsert_fields = st.fixed_dictionaries(
    {"first_name": names},
    optional={"company": optional_text, "notes": optional_text, "emails": emails, "tags": tags},
)

command = st.one_of(
    st.tuples(st.just("replaced"), full_fields),
    st.tuples(st.just("patched"), patch_fields),
    st.tuples(st.just("deleted"), st.just({})),
    st.tuples(st.just("upserted"), upsert_fields),
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


def apply_in_order(
    events: list[ContactEvent],
) -> tuple[ContactState, dict[str, tuple[str, str | None]]]:
    state = ContactState(CONTACT)
    outcomes: dict[str, tuple[str, str | None]] = {}
    for event in sorted(events, key=lambda e: e.sequence):
        decision = apply_event(state, event)
        state = decision.state
        outcomes[event.id] = (decision.status, decision.reason)
    return state, outcomes


def as_processed(event: ContactEvent) -> ProcessedEvent:
    outcome = OperationStatus(event.operation_id, CONTACT, "applied")
    return ProcessedEvent(event.id, event.kind, event.sequence, outcome, event.data)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), commands=history)
def test_replay_of_any_arrival_order_equals_applying_in_order(
    data: st.DataObject, commands: list[tuple[str, dict[str, Any]]]
) -> None:
    """However the history was collected (any arrival order), ``replay`` gives the state and
    the outcomes of applying the events once, in sequence order."""
    events = to_events(commands)
    expected, expected_outcomes = apply_in_order(events)
    arrived = data.draw(st.permutations(events))

    result = replay(
        ContactState(CONTACT),
        [as_processed(e) for e in arrived],
        email_taken=lambda key: False,
        at=T0,
    )

    assert result.state.alive == expected.alive
    assert result.state.view() == expected.view()
    assert result.outcomes == expected_outcomes


@settings(max_examples=200, deadline=None)
@given(commands=history)
def test_in_order_application_matches_a_plain_replay(
    commands: list[tuple[str, dict[str, Any]]],
) -> None:
    """Applying events in order is ordinary last-write semantics, deletes included."""
    model: dict[str, Any] | None = None
    for kind, data in commands:
        if kind in ("created", "replaced") or (kind == "upserted" and model is None):
            model = {**empty_fields(), **data}
        elif kind == "deleted":
            model = None
        elif model is not None:
            model.update(data)
    state, _ = apply_in_order(to_events(commands))
    view = state.view()
    if model is None:
        assert view is None
    else:
        assert view == {name: model.get(name, empty_fields()[name]) for name in FIELDS}
