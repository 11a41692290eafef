"""Use cases on fakes: publish first, then mark pending; idempotent creates."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from command_api.service_layer import handlers
from command_api.service_layer.errors import IdempotencyKeyReused
from command_api.service_layer.handlers import Context
from command_api.service_layer.idempotency import derive_ids, derive_import, derive_item_ids
from contacts_domain import (
    DEFAULT_WORKSPACE,
    DeleteContact,
    HybridLogicalClock,
    PatchContact,
    normalize_contact,
)
from contacts_domain.ports import PublishFailed

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
WS = DEFAULT_WORKSPACE


@pytest.fixture
def context(publisher, operations, idempotency) -> Context:
    return Context(
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        clock=HybridLogicalClock(now_us=lambda: 0, node="test"),
        now=lambda: NOW,
    )


def fields(**raw):
    return normalize_contact(raw or {"first_name": "Rosa"}, partial=False, default_region="US")


def test_accept_publishes_then_marks_pending(context, publisher, operations) -> None:
    command = PatchContact(str(uuid.uuid4()), {"company": "ACME"}, expected_version=3)
    accepted = handlers.accept(command, context, workspace=WS, correlation_id="req-1")
    [event] = publisher.events
    assert event.kind == "patched"
    assert event.contact_id == command.contact_id == accepted.contact_id
    assert event.operation_id == accepted.operation_id
    assert event.expected_version == 3
    assert event.correlation_id == "req-1"
    assert event.time == NOW
    assert event.sequence == "0000000000000001.test"
    status = operations.get(WS, accepted.operation_id)
    assert status is not None
    assert status.status == "pending"
    assert status.contact_id == command.contact_id


def test_publish_failure_accepts_nothing(context, publisher, operations) -> None:
    publisher.down = True
    with pytest.raises(PublishFailed):
        handlers.accept(
            DeleteContact(str(uuid.uuid4())), context, workspace=WS, correlation_id=None
        )
    assert operations.statuses == {}


def test_operation_store_down_does_not_fail_an_accepted_command(
    context, publisher, operations
) -> None:
    operations.down = True
    accepted = handlers.accept(
        DeleteContact(str(uuid.uuid4())), context, workspace=WS, correlation_id=None
    )
    assert [e.operation_id for e in publisher.events] == [accepted.operation_id]


def test_create_without_key_gets_new_uuid4_ids(context, publisher) -> None:
    first = handlers.create_contact(fields(), context, workspace=WS, correlation_id=None)
    second = handlers.create_contact(fields(), context, workspace=WS, correlation_id=None)
    assert first.contact_id != second.contact_id
    assert uuid.UUID(first.contact_id).version == 4
    assert [e.kind for e in publisher.events] == ["created", "created"]


def test_create_with_key_derives_the_same_ids_every_time(context, publisher) -> None:
    first = handlers.create_contact(
        fields(), context, workspace=WS, correlation_id=None, idempotency_key="k1"
    )
    again = handlers.create_contact(
        fields(), context, workspace=WS, correlation_id=None, idempotency_key="k1"
    )
    ids = derive_ids(WS, "k1")
    assert first == again
    assert first.contact_id == ids.contact_id
    assert first.operation_id == ids.operation_id
    # Published twice with one event id: SQS deduplication and the worker's inbox drop one.
    assert {e.id for e in publisher.events} == {ids.event_id}


def test_create_with_key_and_another_body_is_refused_before_sending(context, publisher) -> None:
    handlers.create_contact(
        fields(), context, workspace=WS, correlation_id=None, idempotency_key="k2"
    )
    with pytest.raises(IdempotencyKeyReused):
        handlers.create_contact(
            fields(first_name="Other"),
            context,
            workspace=WS,
            correlation_id=None,
            idempotency_key="k2",
        )
    assert len(publisher.events) == 1


def test_create_with_key_fails_open_when_the_store_is_down(context, publisher, idempotency) -> None:
    idempotency.down = True
    accepted = handlers.create_contact(
        fields(), context, workspace=WS, correlation_id=None, idempotency_key="k3"
    )
    assert accepted.contact_id == derive_ids(WS, "k3").contact_id
    assert len(publisher.events) == 1


def test_events_and_statuses_carry_the_workspace(context, publisher, operations) -> None:
    accepted = handlers.accept(
        DeleteContact(str(uuid.uuid4())), context, workspace="acme", correlation_id=None
    )
    [event] = publisher.events
    assert event.workspace == "acme"
    assert event.to_cloudevent()["workspace"] == "acme"
    assert operations.get("acme", accepted.operation_id) is not None
    assert operations.get(WS, accepted.operation_id) is None


def test_the_same_key_in_two_workspaces_is_two_creates(context, publisher, idempotency) -> None:
    ours = handlers.create_contact(
        fields(), context, workspace=WS, correlation_id=None, idempotency_key="shared"
    )
    theirs = handlers.create_contact(
        fields(first_name="Other"),
        context,
        workspace="acme",
        correlation_id=None,
        idempotency_key="shared",
    )
    assert ours.contact_id != theirs.contact_id
    assert ours.operation_id != theirs.operation_id
    assert [(e.workspace, e.contact_id) for e in publisher.events] == [
        (WS, ours.contact_id),
        ("acme", theirs.contact_id),
    ]
    assert len({e.id for e in publisher.events}) == 2
    assert {workspace for workspace, _digest in idempotency.records} == {WS, "acme"}


def test_the_default_workspace_keeps_the_first_releases_ids() -> None:
    # A retry sent before and after the upgrade must get the same ids: these are the ids the
    # first release derived from the key "k" (uuid5 of "contact:<sha256>" and so on).
    assert derive_ids(WS, "k").contact_id == "b2f20958-e5cd-5d0e-b4b7-db3ef907987d"
    assert derive_item_ids(WS, "k", 0).event_id == "2e951765-d36b-53a0-92a8-45aaad413863"
    assert derive_import(WS, "k").import_id == "62e8c742-c4b4-5030-bcfb-bea664d0b65a"
    assert derive_ids("acme", "k").contact_id != derive_ids(WS, "k").contact_id
    assert derive_item_ids("acme", "k", 0).event_id != derive_item_ids(WS, "k", 0).event_id
    assert derive_import("acme", "k").import_id != derive_import(WS, "k").import_id
