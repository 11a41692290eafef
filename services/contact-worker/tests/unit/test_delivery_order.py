"""docs/architecture.md §5.2–5.3 through the real handler: whatever order and however often a
contact's
events are delivered, the final state equals delivering each event once, in the order the
command API accepted them, and so does every operation's outcome after the contact's last
applied delete (before it, the erasure rule of ``handlers`` makes recorded outcomes final and
late events superseded; the data of those events is gone from the inbox). Runs on the
in-memory fakes of our ports; the same handler runs on PostgreSQL in the integration and
end-to-end suites."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contact_worker.service_layer.handlers import handle_event
from contacts_domain import (
    DEFAULT_WORKSPACE,
    ContactEvent,
    ContactState,
    OperationStatus,
    empty_fields,
)
from support.domain_fakes import (
    InMemoryCache,
    InMemoryDatabase,
    InMemoryInbox,
    InMemoryOperationStore,
    InMemoryUnitOfWork,
)

A = str(uuid.UUID(int=1))
B = str(uuid.UUID(int=2))
T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
TAKEN = "taken@example.com"  # contact B's primary email


def email(value: str) -> list[dict[str, Any]]:
    return [{"value": value, "type": "other", "primary": True}]


names = st.sampled_from(["Ada", "Grace", "Rosa"])
full = st.fixed_dictionaries(
    {"first_name": names},
    optional={"company": st.sampled_from([None, "Acme"]), "emails": st.just(email("a@ex.com"))},
).map(lambda f: {**empty_fields(), **f})
# Patches may break the rules: clear the only name, take B's email. In order, those are
# rejected (name_required, email_conflict) and must stay so whatever the delivery order.
patch = st.one_of(
    st.fixed_dictionaries({"company": st.sampled_from([None, "Acme", "Globex"])}),
    st.fixed_dictionaries({"first_name": st.sampled_from([None, "Alan"])}),
    st.fixed_dictionaries({"last_name": st.sampled_from([None, "Lovelace"])}),
    st.just({"emails": email(TAKEN)}),
    st.just({"emails": email("a2@ex.com")}),
)
command = st.one_of(
    st.tuples(st.just("replaced"), full),
    st.tuples(st.just("patched"), patch),
    st.tuples(st.just("deleted"), st.just({})),
)
history = st.tuples(st.tuples(st.just("created"), full), st.lists(command, max_size=7)).map(
    lambda h: [h[0], *h[1]]
)


class World:
    """The worker's ports in memory, with contact B already holding ``TAKEN``."""

    def __init__(self) -> None:
        self.db = InMemoryDatabase()
        self.cache = InMemoryCache()
        self.operations = InMemoryOperationStore()
        self.deliver(event(B, "created", 0, {**empty_fields(), "first_name": "B",
                                            "emails": email(TAKEN)}))  # fmt: skip

    def deliver(self, e: ContactEvent) -> None:
        handle_event(
            e,
            unit_of_work=lambda: InMemoryUnitOfWork(self.db),
            cache=self.cache,
            operations=self.operations,
        )

    def state(self) -> ContactState:
        return self.db.contacts.get((DEFAULT_WORKSPACE, A), ContactState(A))

    def outcomes(self, events: list[ContactEvent]) -> dict[str, tuple[str, str | None]]:
        result = {}
        for e in events:
            status = self.operations.get(DEFAULT_WORKSPACE, e.operation_id)
            assert isinstance(status, OperationStatus)
            result[e.id] = (status.status, status.reason)
        return result


def event(contact: str, kind: str, i: int, data: dict[str, Any]) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.UUID(int=1000 + i)) if contact == A else str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=contact,
        sequence=f"{1_000_000 + i * 10:016x}.n{i % 3}",
        time=T0 + dt.timedelta(milliseconds=i),
        operation_id=str(uuid.UUID(int=5000 + i)) if contact == A else str(uuid.uuid4()),
        data=data,
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data(), commands=history)
def test_any_delivery_order_with_duplicates_ends_as_in_order(
    data: st.DataObject, commands: list[tuple[str, dict[str, Any]]]
) -> None:
    events = [event(A, kind, i + 1, d) for i, (kind, d) in enumerate(commands)]
    in_order = World()
    for e in events:
        in_order.deliver(e)

    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    shuffled = World()
    for e in data.draw(st.permutations(events + duplicates)):
        shuffled.deliver(e)

    assert shuffled.state().view() == in_order.state().view()
    inbox = InMemoryInbox(shuffled.db.inbox)
    erased = inbox.last_erasure(DEFAULT_WORKSPACE, A)
    after = [e for e in events if erased is None or e.sequence > erased]
    assert shuffled.outcomes(after) == in_order.outcomes(after)
    assert set(shuffled.outcomes(events)) == {e.id for e in events}  # every one recorded
    if erased is not None:
        kept = [
            p
            for p in InMemoryInbox(shuffled.db.inbox).history(DEFAULT_WORKSPACE, A)
            if p.sequence < erased and p.data
        ]
        assert kept == []  # erasure: no data of events before the delete survives
    if shuffled.state().alive:
        cached = shuffled.cache.entries[(DEFAULT_WORKSPACE, A)]
        assert (cached.version, cached.view()) == (
            shuffled.state().version,
            shuffled.state().view(),
        )
