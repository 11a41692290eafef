"""Examples of the apply rule: tombstones, rejections, versions and erasure."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from contacts_domain import (
    ABSENT_VERSION,
    EMAIL_CONFLICT,
    NAME_REQUIRED,
    NOT_FOUND,
    VERSION_MISMATCH,
    ContactEvent,
    ContactState,
    OperationStatus,
    ProcessedEvent,
    apply_event,
    empty_fields,
    precondition_failure,
    replay,
    replay_erased,
)

CID = str(uuid.uuid4())
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(kind: str, seq: int, data: dict[str, Any] | None = None, **kw: Any) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=CID,
        sequence=f"{seq:016x}.a",
        time=T0 + dt.timedelta(seconds=seq),
        operation_id=str(uuid.uuid4()),
        data=data or {},
        **kw,
    )


def full(**fields: Any) -> dict[str, Any]:
    return {**empty_fields(), **fields}


def run(*events: ContactEvent) -> ContactState:
    state = ContactState(CID)
    for e in events:
        state = apply_event(state, e).state
    return state


def test_create_then_patch_bumps_the_version_and_keeps_other_fields() -> None:
    state = run(event("created", 1, full(first_name="Rosa", company="Acme")))
    decision = apply_event(state, event("patched", 2, {"company": None}))
    assert decision.status == "applied"
    assert decision.state.version == 2
    assert decision.state.fields["first_name"] == "Rosa"
    assert decision.state.fields["company"] is None


def test_a_late_patch_never_resurrects_a_deleted_contact() -> None:
    create, patch, delete = (
        event("created", 1, full(first_name="Rosa")),
        event("patched", 2, {"company": "Acme"}),
        event("deleted", 3),
    )
    state = run(create, delete)
    decision = apply_event(state, patch)
    assert decision.status == "rejected"
    assert decision.state.view() is None


def test_delete_erases_personal_data_and_keeps_only_ordering_data() -> None:
    state = run(event("created", 1, full(first_name="Rosa", notes="secret")), event("deleted", 2))
    assert state.fields == empty_fields()
    assert state.deleted_at == T0 + dt.timedelta(seconds=2)
    assert state.version == 2


def test_patch_and_delete_of_unknown_contact_are_rejected_not_found() -> None:
    for e in (event("patched", 1, {"company": "Acme"}), event("deleted", 1)):
        decision = apply_event(ContactState(CID), e)
        assert (decision.status, decision.reason) == ("rejected", NOT_FOUND)
        assert decision.state.view() is None


def test_replay_puts_a_late_create_before_the_patch_that_arrived_first() -> None:
    create = event("created", 1, full(first_name="Rosa", company="Old"))
    patch = event("patched", 2, {"company": "New"})
    history = [processed(patch), processed(create)]
    result = replay(ContactState(CID), history, email_taken=lambda key: False, at=T0)
    assert result.state.view()["company"] == "New"  # type: ignore[index]
    assert result.outcomes == {create.id: ("applied", None), patch.id: ("applied", None)}


def test_replay_rejects_what_in_order_would_reject() -> None:
    """Reviewer's case: a create and a patch that clears its only name, patch first."""
    create = event("created", 1, full(first_name="Rosa", emails=[]))
    clear = event("patched", 2, {"first_name": None})
    taken = event("patched", 3, {"emails": [{"value": "b@example.com", "type": "other",
                                             "primary": True}]})  # fmt: skip
    result = replay(
        ContactState(CID),
        [processed(clear), processed(taken), processed(create)],
        email_taken=lambda key: key == "b@example.com",
        at=T0,
    )
    assert result.state.view()["first_name"] == "Rosa"  # type: ignore[index]
    assert result.outcomes == {
        create.id: ("applied", None),
        clear.id: ("rejected", NAME_REQUIRED),
        taken.id: ("rejected", EMAIL_CONFLICT),
    }


def processed(e: ContactEvent) -> ProcessedEvent:
    return ProcessedEvent(
        e.id, e.kind, e.sequence, OperationStatus(e.operation_id, CID, "applied"), e.data
    )


def test_replace_after_delete_creates_the_contact_again() -> None:
    state = run(
        event("created", 1, full(first_name="Rosa")),
        event("deleted", 2),
        event("replaced", 3, full(first_name="Ada")),
    )
    assert state.alive
    assert state.fields["first_name"] == "Ada"


def test_if_match_mismatch_is_rejected_and_changes_nothing() -> None:
    state = run(event("created", 1, full(first_name="Rosa")))
    decision = apply_event(state, event("patched", 2, {"company": "X"}, expected_version=7))
    assert (decision.status, decision.reason, decision.changed) == (
        "rejected",
        VERSION_MISMATCH,
        False,
    )
    ok = apply_event(state, event("patched", 2, {"company": "X"}, expected_version=1))
    assert ok.status == "applied"


def test_if_none_match_star_creates_but_never_replaces() -> None:
    # PUT with If-None-Match: * (ABSENT_VERSION): a new id or an erased one is created, a
    # visible contact is left as it is (RFC 9110 §13.1.2).
    create_only = event("replaced", 3, full(first_name="Ada"), expected_version=ABSENT_VERSION)
    new = apply_event(ContactState(CID), create_only)
    assert (new.status, new.state.alive, new.state.version) == ("applied", True, 1)
    alive = run(event("created", 1, full(first_name="Rosa")))
    refused = apply_event(alive, create_only)
    assert (refused.status, refused.reason, refused.changed) == (
        "rejected",
        VERSION_MISMATCH,
        False,
    )
    erased = run(event("created", 1, full(first_name="Rosa")), event("deleted", 2))
    again = apply_event(erased, create_only)
    assert (again.status, again.state.fields["first_name"]) == ("applied", "Ada")


@pytest.mark.parametrize(
    ("alive", "version", "expected", "reason"),
    [
        (True, 3, None, None),
        (False, 0, None, None),
        (True, 3, 3, None),
        (True, 3, 2, VERSION_MISMATCH),
        (False, 3, 3, NOT_FOUND),
        (False, 0, 1, NOT_FOUND),
        (False, 0, ABSENT_VERSION, None),
        (False, 4, ABSENT_VERSION, None),
        (True, 1, ABSENT_VERSION, VERSION_MISMATCH),
    ],
)
def test_precondition_failure_table(
    alive: bool, version: int, expected: int | None, reason: str | None
) -> None:
    state = ContactState(CID, version=version, alive=alive)
    assert precondition_failure(state, expected) == reason


def test_clearing_the_last_name_left_is_rejected_name_required() -> None:
    state = run(event("created", 1, full(first_name="Rosa")))
    decision = apply_event(state, event("patched", 2, {"first_name": None}))
    assert (decision.status, decision.reason) == ("rejected", NAME_REQUIRED)
    assert decision.state is state


def test_duplicate_event_is_a_no_op() -> None:
    create = event("created", 1, full(first_name="Rosa"))
    state = run(create)
    decision = apply_event(state, create)
    assert decision.changed is False
    assert decision.state.version == 1


def test_an_upsert_creates_an_invisible_contact_with_every_field() -> None:
    decision = apply_event(ContactState(CID), event("upserted", 1, {"first_name": "Ada"}))

    assert decision.status == "applied"
    assert decision.state.alive
    assert decision.state.version == 1
    assert decision.state.fields == full(first_name="Ada")


def test_an_upsert_patches_a_visible_contact_leaving_absent_fields() -> None:
    state = run(event("created", 1, full(first_name="Ada", company="Acme", notes="kept")))

    decision = apply_event(state, event("upserted", 2, {"first_name": "Adah", "company": None}))

    assert decision.state.version == 2
    assert decision.state.fields == full(first_name="Adah", company=None, notes="kept")


def test_an_upsert_after_a_delete_creates_afresh() -> None:
    state = run(event("created", 1, full(first_name="Ada", notes="old")), event("deleted", 2))

    decision = apply_event(state, event("upserted", 3, {"last_name": "New"}))

    assert decision.state.alive
    assert decision.state.fields == full(last_name="New")


def test_replayed_upserts_apply_in_order_whichever_came_first() -> None:
    first = event("upserted", 1, {"first_name": "Ada", "company": "Acme"})
    second = event("upserted", 2, {"first_name": "Adah"})
    applied_second_first = run(second)
    history = [
        ProcessedEvent(
            e.id, e.kind, e.sequence, OperationStatus(e.operation_id, CID, "applied"), e.data
        )
        for e in (first, second)
    ]

    result = replay(applied_second_first, history, email_taken=lambda _key: False, at=T0)

    assert result.state.fields == full(first_name="Adah", company="Acme")


def erased(e: ContactEvent, status: str, reason: str | None = None) -> ProcessedEvent:
    """``e`` as the inbox keeps it once the erasure rule forgot its data."""
    outcome = OperationStatus(e.operation_id, CID, status, reason)  # type: ignore[arg-type]
    return ProcessedEvent(e.id, e.kind, e.sequence, outcome)


def late(e: ContactEvent) -> ProcessedEvent:
    pending = OperationStatus(e.operation_id, CID, "applied")
    return ProcessedEvent(e.id, e.kind, e.sequence, pending, e.data, e.expected_version)


def test_late_events_before_an_erasure_get_verdicts_that_need_no_erased_data() -> None:
    create, delete, recreate, erase = (
        event("created", 1, full(first_name="A")),
        event("deleted", 3),
        event("replaced", 5, full(first_name="B")),
        event("deleted", 7),
    )
    history = [erased(e, "applied") for e in (create, delete, recreate, erase)]
    cases = [
        (event("patched", 2, {"company": "X"}), ("applied", None)),
        (event("patched", 4, {"company": "X"}), ("rejected", NOT_FOUND)),
        (event("deleted", 4), ("rejected", NOT_FOUND)),
        (event("created", 4, full(company="X")), ("rejected", NAME_REQUIRED)),
        (event("replaced", 6, full(last_name="C")), ("applied", None)),
    ]
    for e, verdict in cases:
        verdicts = replay_erased(history, late(e))
        assert verdicts[e.id] == verdict, e.kind
        assert all(verdicts[p.event_id] == ("applied", None) for p in history)


def test_a_late_event_revises_the_verdicts_that_need_no_erased_data() -> None:
    create, patch, erase = (
        event("created", 1, full(first_name="A")),
        event("patched", 3, {"company": "X"}),
        event("deleted", 7),
    )
    named = event("patched", 4, {"first_name": None})
    history = [
        erased(create, "applied"),
        erased(patch, "applied"),
        erased(named, "rejected", NAME_REQUIRED),
        erased(erase, "applied"),
    ]
    early_delete = event("deleted", 2)  # late: the patch and the erasure now find nothing
    verdicts = replay_erased(history, late(early_delete))
    assert verdicts[early_delete.id] == ("applied", None)
    assert verdicts[patch.id] == ("rejected", NOT_FOUND)
    assert verdicts[named.id] == ("rejected", NOT_FOUND)  # absent first: no data needed
    assert verdicts[erase.id] == ("rejected", NOT_FOUND)
    # Without the early delete, the recorded data rejection stands.
    assert replay_erased(history, late(event("patched", 6, {"company": "Y"})))[named.id] == (
        "rejected",
        NAME_REQUIRED,
    )


def test_a_sharp_s_email_and_its_ss_spelling_are_two_addresses() -> None:
    """Another contact holds ``strasse@``: ``Straße@`` is free (simple case folding keeps ß),
    ``STRASSE@`` is not (case alone never makes two addresses)."""

    def primary(value: str) -> list[dict[str, Any]]:
        return [{"value": value, "type": "work", "primary": True}]

    create = event("created", 1, full(first_name="Rosa", emails=primary("Stra\u00dfe@example.com")))
    to_ss = event("patched", 2, {"emails": primary("STRASSE@example.com")})
    asked: list[str] = []

    def taken(key: str) -> bool:
        asked.append(key)
        return key == "strasse@example.com"

    result = replay(
        ContactState(CID), [processed(create), processed(to_ss)], email_taken=taken, at=T0
    )

    assert result.outcomes == {
        create.id: ("applied", None),
        to_ss.id: ("rejected", EMAIL_CONFLICT),
    }
    assert asked == ["stra\u00dfe@example.com", "strasse@example.com"]
