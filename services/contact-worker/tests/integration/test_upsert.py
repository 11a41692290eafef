"""Upsert by email in the worker: match or create in the writing transaction, on the in-memory
fakes and on real PostgreSQL + Redis (the ``backend`` fixture of ``test_handle_event``)."""

from __future__ import annotations

from typing import Any

import pytest

from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.handlers import read_event
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, MalformedEvent, normalize_contact

from .test_handle_event import (
    Backend,
    backend,
    handle_concurrently,
    make_event,
    new_id,
    runtime,
    worker_settings,
)

__all__ = ["backend", "runtime", "worker_settings"]  # fixtures used here


def upsert(data: dict[str, Any], cid: str | None = None) -> ContactEvent:
    fields = normalize_contact(data, partial=True, default_region="US")
    return make_event("upserted", cid or new_id(), fields)


def test_an_upsert_of_a_new_email_creates_the_contact(backend: Backend) -> None:
    email = f"{new_id()}@example.com"
    event = upsert({"first_name": "Ada", "email": email, "company": "Acme"})

    outcome = backend.handle(event)

    assert (outcome.status, outcome.result, outcome.version) == ("applied", "created", 1)
    assert outcome.contact_id == event.contact_id
    stored = backend.stored(event.contact_id)
    assert (stored.fields["first_name"], stored.fields["company"]) == ("Ada", "Acme")


def test_an_upsert_of_a_held_email_patches_its_holder(backend: Backend) -> None:
    cid, email = new_id(), f"{new_id()}@Example.com"
    backend.handle(
        make_event("created", cid, {"first_name": "Ada", "email": email, "notes": "kept"})
    )

    event = upsert({"first_name": "Adah", "email": email.upper(), "company": "Acme"})
    outcome = backend.handle(event)

    assert (outcome.status, outcome.result, outcome.version) == ("applied", "updated", 2)
    assert outcome.contact_id == cid  # the holder, not the id the upsert proposed
    stored = backend.stored(cid)
    assert stored.fields["first_name"] == "Adah"
    assert stored.fields["company"] == "Acme"
    assert stored.fields["notes"] == "kept"  # absent from the upsert: untouched
    assert not backend.stored(event.contact_id).alive
    assert backend.operations.get(DEFAULT_WORKSPACE, event.operation_id) == outcome


def test_a_secondary_email_matches_too(backend: Backend) -> None:
    cid, other = new_id(), f"{new_id()}@example.com"
    backend.handle(
        make_event(
            "created",
            cid,
            {
                "first_name": "Ada",
                "emails": [
                    {"value": f"{cid}@example.com", "type": "work", "primary": True},
                    {"value": other, "type": "home", "primary": False},
                ],
            },
        )
    )

    outcome = backend.handle(upsert({"last_name": "L", "email": other}))

    assert (outcome.contact_id, outcome.result) == (cid, "updated")


def test_a_redelivered_upsert_reports_what_it_did_the_first_time(backend: Backend) -> None:
    event = upsert({"first_name": "Ada", "email": f"{new_id()}@example.com"})

    first = backend.handle(event)
    second = backend.handle(event)

    assert first == second
    assert first.result == "created"
    assert backend.stored(event.contact_id).version == 1


def test_concurrent_upserts_of_one_new_email_create_one_contact(runtime: Runtime) -> None:
    email = f"{new_id()}@example.com"
    events = [upsert({"first_name": name, "email": email}) for name in ("A", "B", "C")]

    outcomes = handle_concurrently(runtime, events)

    assert sorted(o.result for o in outcomes) == ["created", "updated", "updated"]
    assert len({o.contact_id for o in outcomes}) == 1
    assert {o.status for o in outcomes} == {"applied"}


def test_an_upsert_without_email_is_poison() -> None:
    envelope = upsert({"first_name": "No email"}).to_cloudevent()

    with pytest.raises(MalformedEvent):
        read_event(envelope)


def test_a_nameless_upsert_that_matches_patches_and_keeps_the_name(backend: Backend) -> None:
    # Issue 16: only an upsert that creates a contact needs a name.
    cid, email = new_id(), f"{new_id()}@example.com"
    backend.handle(make_event("created", cid, {"first_name": "Ada", "email": email}))

    event = upsert({"email": email, "company": "Acme"})
    outcome = backend.handle(read_event(event.to_cloudevent()))

    assert (outcome.status, outcome.result, outcome.contact_id) == ("applied", "updated", cid)
    stored = backend.stored(cid)
    assert (stored.fields["first_name"], stored.fields["company"]) == ("Ada", "Acme")


def test_a_nameless_upsert_that_matches_nothing_is_rejected_name_required(
    backend: Backend,
) -> None:
    event = upsert({"email": f"{new_id()}@example.com", "company": "Acme"})

    outcome = backend.handle(read_event(event.to_cloudevent()))

    assert (outcome.status, outcome.reason) == ("rejected", "name_required")
    assert backend.operations.get(DEFAULT_WORKSPACE, event.operation_id) == outcome


def test_sharp_s_and_ss_are_two_mailboxes_and_an_upsert_of_one_leaves_the_other(
    backend: Backend,
) -> None:
    # Review finding: str.casefold() made straße@ and strasse@ one key, so the second create
    # was rejected email_conflict and an upsert of strasse@ overwrote straße@'s contact.
    suffix = new_id()
    sharp, double = f"stra\u00dfe.{suffix}@example.com", f"strasse.{suffix}@example.com"
    first, second = new_id(), new_id()
    created = backend.handle(
        make_event("created", first, {"first_name": "Rosa", "email": sharp, "company": "Acme"})
    )
    other = backend.handle(make_event("created", second, {"first_name": "Sam", "email": double}))

    event = upsert({"email": double, "first_name": "Double", "company": "Wrong Co"})
    outcome = backend.handle(event)

    assert (created.status, other.status) == ("applied", "applied")
    assert (outcome.status, outcome.result, outcome.contact_id) == ("applied", "updated", second)
    kept = backend.stored(first).fields
    assert (kept["first_name"], kept["company"], kept["emails"][0]["value"]) == (
        "Rosa",
        "Acme",
        sharp,
    )
    assert backend.stored(second).fields["company"] == "Wrong Co"
    capital = upsert({"email": f"STRA\u1e9eE.{suffix}@Example.com", "company": "Right Co"})
    assert backend.handle(capital).contact_id == first  # ẞ folds to ß: case alone


def test_emails_differing_only_in_case_are_one_mailbox(backend: Backend) -> None:
    local = new_id()
    first = new_id()
    backend.handle(make_event("created", first, {"first_name": "Ada", "email": f"{local}@X.com"}))

    clash = backend.handle(
        make_event("created", new_id(), {"first_name": "Eve", "email": f"{local.upper()}@x.com"})
    )
    matched = backend.handle(upsert({"email": f"{local.upper()}@x.COM", "company": "Acme"}))

    assert (clash.status, clash.reason) == ("rejected", "email_conflict")
    assert (matched.result, matched.contact_id) == ("updated", first)
