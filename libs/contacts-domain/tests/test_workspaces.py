"""Workspace ids, and the workspace in the event envelope and the ordering key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, InvalidWorkspace, check_workspace
from contacts_domain.errors import MalformedEvent
from contacts_domain.ordering import ordering_key
from contacts_domain.workspaces import is_workspace, workspace_of_identity


def _event(kind: str = "created", workspace: str = DEFAULT_WORKSPACE) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=str(uuid.uuid4()),
        sequence="0000000000000001.a",
        time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"emails": [{"value": "ada@example.com", "type": "work", "primary": True}]},
        workspace=workspace,
    )


@pytest.mark.parametrize("good", ["default", "acme", "a1", "org-42", "x" * 63])
def test_slugs_are_workspace_ids(good: str) -> None:
    assert check_workspace(good) == good


@pytest.mark.parametrize(
    "bad", ["", "a", "-acme", "Acme", "acme_corp", "x" * 64, "ac me", "acmé", "a/b", None, 7]
)
def test_anything_else_is_refused_without_echoing_it(bad: object) -> None:
    with pytest.raises(InvalidWorkspace) as caught:
        check_workspace(bad)
    # The message is the rule alone, the same for every input.
    assert str(caught.value).startswith("A workspace id is 2 to 63 characters")


@given(st.text(min_size=1, max_size=300))
def test_any_identity_claim_maps_to_one_stable_workspace(claim: str) -> None:
    workspace = workspace_of_identity(claim)
    assert is_workspace(workspace)
    assert workspace == workspace_of_identity(claim)
    if not is_workspace(claim):
        # A digest of the claim, not the claim: it reveals nothing of it.
        assert workspace.startswith("h-")
        assert len(workspace) == 42


def test_the_envelope_carries_the_workspace_and_an_old_one_reads_as_default() -> None:
    event = _event(workspace="acme")
    envelope = event.to_cloudevent()
    assert envelope["workspace"] == "acme"
    assert ContactEvent.from_cloudevent(envelope) == event
    del envelope["workspace"]
    assert ContactEvent.from_cloudevent(envelope).workspace == DEFAULT_WORKSPACE
    with pytest.raises(MalformedEvent, match="workspace"):
        ContactEvent.from_cloudevent({**envelope, "workspace": "Not A Slug"})


def test_ordering_keys_are_per_workspace() -> None:
    created = _event()
    other = dataclasses.replace(created, workspace="acme")
    assert ordering_key(created) == f"default/{created.contact_id}"
    assert ordering_key(other) == f"acme/{created.contact_id}"
    upsert = _event("upserted")
    assert ordering_key(upsert) != ordering_key(dataclasses.replace(upsert, workspace="acme"))
    assert ordering_key(upsert).startswith("email-")
    longest = dataclasses.replace(created, workspace="w" * 63)
    assert len(ordering_key(longest)) <= 128


def test_an_upserts_ordering_key_folds_case_but_keeps_sharp_s_apart_from_ss() -> None:
    def upsert(address: str) -> ContactEvent:
        emails = [{"value": address, "type": "work", "primary": True}]
        return dataclasses.replace(_event("upserted"), data={"emails": emails})

    sharp = ordering_key(upsert("stra\u00dfe@example.com"))
    assert ordering_key(upsert("STRA\u1e9eE@example.com")) == sharp  # ẞ is ß: one FIFO group
    assert ordering_key(upsert("strasse@example.com")) != sharp
