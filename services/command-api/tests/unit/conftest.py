"""Fakes of our own ports and an app wired with them: unit tests run without servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from command_api.adapters.sqs_publisher import message_size
from command_api.entrypoints.app import create_app
from command_api.service_layer.errors import EventTooLarge
from command_api.service_layer.ports import IdempotencyRecord, IdempotencyStore
from command_api.settings import Settings
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent, HybridLogicalClock, OperationStatus
from contacts_domain.ports import EventPublisher, OperationStore, PublishFailed, StoreUnavailable
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.messaging import SQS_MESSAGE_MAX_BYTES, message_group_id
from support.auth import TEST_AUTH, authorized


class FakePublisher(EventPublisher):
    """Keeps published events in order; ``down`` makes every publish fail like a dead queue,
    ``failing`` the publishes of those message groups (``<workspace>/<contact id>``) only, and
    ``too_large`` refuses those groups' events as too large. ``batches`` holds the event ids of each
    ``publish_batch`` call (the port's default, which sends one at a time, does the rest).

    It applies the real adapter's size rule (``message_size``), a pure function.
    """

    def __init__(self) -> None:
        self.events: list[ContactEvent] = []
        self.down = False
        #: With ``down``: fail as a call whose answer was lost (it may have been queued).
        self.unanswered = False
        self.failing: set[str] = set()
        self.too_large: set[str] = set()
        self.batches: list[list[str]] = []

    def publish(self, event: ContactEvent) -> None:
        size = message_size(event.to_cloudevent())
        if size > SQS_MESSAGE_MAX_BYTES:
            raise EventTooLarge(size, SQS_MESSAGE_MAX_BYTES)
        group = message_group_id(event)
        if group in self.too_large:
            raise EventTooLarge(SQS_MESSAGE_MAX_BYTES + 1, SQS_MESSAGE_MAX_BYTES)
        if self.down or group in self.failing:
            raise PublishFailed("queue down", may_be_queued=self.unanswered)
        self.events.append(event)

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        self.batches.append([event.id for event in events])
        return super().publish_batch(events)


class FakeOperationStore(OperationStore):
    """Statuses by workspace and operation id; ``statuses`` holds those of ``default`` (the
    workspace of the session's API key) by operation id, ``in_workspace`` every workspace's."""

    def __init__(self) -> None:
        self.in_workspace: dict[str, dict[str, OperationStatus]] = {}
        self.down = False

    @property
    def statuses(self) -> dict[str, OperationStatus]:
        return self.in_workspace.get(DEFAULT_WORKSPACE, {})

    def mark_pending(self, workspace: str, status: OperationStatus) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.in_workspace.setdefault(workspace, {}).setdefault(status.operation_id, status)

    def record(self, workspace: str, status: OperationStatus) -> None:
        self.in_workspace.setdefault(workspace, {})[status.operation_id] = status

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        return self.in_workspace.get(workspace, {}).get(operation_id)


class FakeIdempotencyStore(IdempotencyStore):
    """Records by (workspace, key digest)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}
        self.down = False

    def reserve(
        self, workspace: str, key_digest: str, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        if self.down:
            raise StoreUnavailable("down")
        first = self.records.setdefault((workspace, key_digest), record)
        return None if first is record else first

    def find(self, workspace: str, key_digest: str) -> IdempotencyRecord | None:
        if self.down:
            raise StoreUnavailable("down")
        return self.records.get((workspace, key_digest))


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def operations() -> FakeOperationStore:
    return FakeOperationStore()


@pytest.fixture
def idempotency() -> FakeIdempotencyStore:
    return FakeIdempotencyStore()


@pytest.fixture
def settings() -> Settings:
    """Default settings but the query API's URL, the session's API key, and no rate limits
    (they need Redis; the integration tests cover them)."""
    return Settings(
        query_api_base_url="http://query.test",
        max_request_bytes=1_048_576,
        auth=TEST_AUTH,
        rate_limits=RateLimitSettings(enabled=False),
    )


@pytest.fixture
def app(
    settings: Settings,
    publisher: FakePublisher,
    operations: FakeOperationStore,
    idempotency: FakeIdempotencyStore,
) -> Flask:
    clock = HybridLogicalClock(node="test")
    return authorized(
        create_app(
            settings,
            publisher=publisher,
            operations=operations,
            idempotency=idempotency,
            clock=clock,
            readiness_checks={},
        )
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def rosa() -> dict[str, Any]:
    """A contact body: first and last name, one email, one phone."""
    return {
        "first_name": "Rosa",
        "last_name": "Example",
        "email": "rosa@example.com",
        "phone": "+1 202 555 0100",
    }
