"""Fakes of the query API's own ports, and an app wired with them (no servers needed).

Every fake keeps one book per workspace (``books[workspace][id]``), as the real adapters key
every row and Redis key by it; the attribute the tests used before workspaces (``stored``,
``entries``, ``statuses``...) is the ``default`` workspace's book."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contacts_domain.contact import empty_fields
from contacts_domain.imports import ImportReport
from contacts_domain.operations import OperationStatus
from contacts_domain.values import email_key
from contacts_domain.workspaces import DEFAULT_WORKSPACE
from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from query_api.entrypoints.app import create_app
from query_api.service_layer.listing import ListRequest
from query_api.service_layer.ports import (
    CacheUnavailable,
    ContactReadModel,
    ImportOutcomeLog,
    ImportReportReader,
    OperationLog,
    OperationStatusCache,
    ReadModelUnavailable,
    ReadThroughContactCache,
)
from query_api.service_layer.records import CachedContact, ContactRecord, ImportOutcomes, Tombstone
from query_api.settings import Settings
from support.auth import TEST_API_KEY, TEST_AUTH, authorized

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WS = DEFAULT_WORKSPACE
#: A second workspace, for the isolation cases, and an API key bound to it (the session's key
#: is in ``default``).
OTHER_WS = "acme"
OTHER_WS_API_KEY = new_api_key()
TWO_WORKSPACES_AUTH = AuthSettings(
    api_keys=(
        ApiKeyEntry(hash_api_key(TEST_API_KEY), scopes.ALL),
        ApiKeyEntry(hash_api_key(OTHER_WS_API_KEY), scopes.ALL, OTHER_WS),
    ),
    failure_limit=TEST_AUTH.failure_limit,
)


class FakeContactReadModel(ContactReadModel):
    """Contacts in a dict; ``list`` applies the same order, filters and keyset rule in Python.
    ``down`` makes every call raise ``ReadModelUnavailable``; ``reads`` counts ``get`` calls.
    ``changed`` is what ``changed_since`` yields (``(workspace, id)`` of the contacts the worker
    changed lately), and ``lookbacks`` records the seconds it was asked for."""

    def __init__(self) -> None:
        self.books: defaultdict[str, dict[str, ContactRecord | Tombstone]] = defaultdict(dict)
        self.down = False
        self.reads = 0
        self.changed: list[tuple[str, str]] = []
        self.lookbacks: list[float] = []

    @property
    def stored(self) -> dict[str, ContactRecord | Tombstone]:
        return self.books[DEFAULT_WORKSPACE]

    def add(self, record: ContactRecord | Tombstone, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.books[workspace][record.contact_id] = record

    def get(self, workspace: str, contact_id: str) -> ContactRecord | Tombstone | None:
        self.check()
        self.reads += 1
        return self.books[workspace].get(contact_id)

    def list(self, workspace: str, request: ListRequest, limit: int) -> list[ContactRecord]:
        self.check()
        sort, filters = request.sort, request.filters

        def key(r: ContactRecord) -> tuple[Any, str]:
            return (r.created_at if sort.key == "created_at" else r.last_name_key, r.contact_id)

        rows = [r for r in self.books[workspace].values() if isinstance(r, ContactRecord)]
        if filters.email_key:
            rows = [
                r
                for r in rows
                if filters.email_key in [email_key(e["value"]) for e in r.fields["emails"]]
            ]
        rows = [r for r in rows if set(filters.tags) <= set(r.fields["tags"])]
        if filters.q:
            q = filters.q.lower()
            rows = [
                r
                for r in rows
                if (r.fields["first_name"] or "").lower().startswith(q)
                or r.last_name_key.startswith(q)
            ]
        rows.sort(key=key, reverse=sort.descending)
        if request.after is not None:
            cut = (request.after.key, request.after.contact_id)
            rows = [r for r in rows if (key(r) < cut if sort.descending else key(r) > cut)]
        return rows[:limit]

    def changed_since(self, seconds: float) -> Iterator[tuple[str, ContactRecord | Tombstone]]:
        self.check()
        self.lookbacks.append(seconds)
        for workspace, contact_id in dict.fromkeys(self.changed):
            yield workspace, self.books[workspace][contact_id]

    def check(self) -> None:
        if self.down:
            raise ReadModelUnavailable("fake database is down")


class FakeReadThroughContactCache(ReadThroughContactCache):
    """A dict with the guarded-set rule of ``GUARDED_SET_LUA`` and refill leases, safe to share
    between threads (as Redis is between processes); ``down`` raises ``CacheUnavailable``;
    ``refills`` records every refill call (workspace, id, version, body); a waiter waits at
    most ``wait_s`` seconds. ``leases`` are keyed by (workspace, id)."""

    def __init__(self, wait_s: float = 1.0) -> None:
        self.books: defaultdict[str, dict[str, CachedContact]] = defaultdict(dict)
        self.leases: dict[tuple[str, str], str] = {}
        self.down = False
        self.refills: list[tuple[str, str, int, bytes | None]] = []
        self.wait_s = wait_s
        self._changed = threading.Condition()

    @property
    def entries(self) -> dict[str, CachedContact]:
        return self.books[DEFAULT_WORKSPACE]

    def get(self, workspace: str, contact_id: str) -> CachedContact | None:
        self.check()
        return self.books[workspace].get(contact_id)

    def refill(self, workspace: str, contact_id: str, version: int, body: bytes | None) -> bool:
        self.check()
        with self._changed:
            self.refills.append((workspace, contact_id, version, body))
            current = self.books[workspace].get(contact_id)
            if current is not None and current.version >= version:
                return False
            self.books[workspace][contact_id] = CachedContact(version, body)
            self._changed.notify_all()
            return True

    def take_refill_lease(self, workspace: str, contact_id: str) -> str | None:
        self.check()
        with self._changed:
            if (workspace, contact_id) in self.leases:
                return None
            token = self.leases[workspace, contact_id] = uuid.uuid4().hex
            return token

    def release_refill_lease(self, workspace: str, contact_id: str, token: str) -> None:
        self.check()
        with self._changed:
            if self.leases.get((workspace, contact_id)) == token:
                del self.leases[workspace, contact_id]
                self._changed.notify_all()

    def wait_for_refill(self, workspace: str, contact_id: str) -> CachedContact | None:
        self.check()
        book = self.books[workspace]
        with self._changed:
            self._changed.wait_for(
                lambda: contact_id in book or (workspace, contact_id) not in self.leases,
                self.wait_s,
            )
            return book.get(contact_id)

    def check(self) -> None:
        if self.down:
            raise CacheUnavailable("fake Redis is down")


class FakeOperationStatusCache(OperationStatusCache):
    def __init__(self) -> None:
        self.books: defaultdict[str, dict[str, OperationStatus]] = defaultdict(dict)
        self.down = False

    @property
    def statuses(self) -> dict[str, OperationStatus]:
        return self.books[DEFAULT_WORKSPACE]

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        if self.down:
            raise CacheUnavailable("fake Redis is down")
        return self.books[workspace].get(operation_id)


class FakeOperationLog(OperationLog):
    def __init__(self) -> None:
        self.books: defaultdict[str, dict[str, OperationStatus]] = defaultdict(dict)
        self.down = False

    @property
    def outcomes(self) -> dict[str, OperationStatus]:
        return self.books[DEFAULT_WORKSPACE]

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        if self.down:
            raise ReadModelUnavailable("fake database is down")
        return self.books[workspace].get(operation_id)


class FakeImportReportReader(ImportReportReader):
    """Reports by workspace and import id; ``leases`` the (workspace, import id) pairs whose
    queuing lease is held; ``down`` raises ``CacheUnavailable``."""

    def __init__(self) -> None:
        self.books: defaultdict[str, dict[str, ImportReport]] = defaultdict(dict)
        self.dead: defaultdict[str, dict[str, int]] = defaultdict(dict)
        self.leases: set[tuple[str, str]] = set()
        self.down = False

    @property
    def reports(self) -> dict[str, ImportReport]:
        return self.books[DEFAULT_WORKSPACE]

    def get(self, workspace: str, import_id: str) -> ImportReport | None:
        if self.down:
            raise CacheUnavailable("fake Redis is down")
        return self.books[workspace].get(import_id)

    def dead_lettered(self, workspace: str, import_id: str) -> int:
        if self.down:
            raise CacheUnavailable("fake Redis is down")
        return self.dead[workspace].get(import_id, 0)

    def queuing(self, workspace: str, import_id: str) -> bool:
        if self.down:
            raise CacheUnavailable("fake Redis is down")
        return (workspace, import_id) in self.leases


class FakeImportOutcomeLog(ImportOutcomeLog):
    """Outcomes by workspace and import id (none: all zero); ``down`` raises
    ``ReadModelUnavailable``; ``reads`` counts ``counts`` calls."""

    def __init__(self) -> None:
        self.books: defaultdict[str, dict[str, ImportOutcomes]] = defaultdict(dict)
        self.down = False
        self.reads = 0

    @property
    def outcomes(self) -> dict[str, ImportOutcomes]:
        return self.books[DEFAULT_WORKSPACE]

    def counts(self, workspace: str, import_id: str) -> ImportOutcomes:
        if self.down:
            raise ReadModelUnavailable("fake database is down")
        self.reads += 1
        return self.books[workspace].get(import_id, ImportOutcomes())


@pytest.fixture
def contacts() -> FakeContactReadModel:
    return FakeContactReadModel()


@pytest.fixture
def cache() -> FakeReadThroughContactCache:
    return FakeReadThroughContactCache()


@pytest.fixture
def statuses() -> FakeOperationStatusCache:
    return FakeOperationStatusCache()


@pytest.fixture
def outcomes() -> FakeOperationLog:
    return FakeOperationLog()


@pytest.fixture
def import_reports() -> FakeImportReportReader:
    return FakeImportReportReader()


@pytest.fixture
def import_outcomes() -> FakeImportOutcomeLog:
    return FakeImportOutcomeLog()


@pytest.fixture
def make_record() -> Callable[..., ContactRecord]:
    """Build a visible contact; keyword arguments override fields and metadata."""

    def make(
        contact_id: str | None = None,
        *,
        version: int = 1,
        created_at: dt.datetime = T0,
        **fields: Any,
    ) -> ContactRecord:
        values = {**empty_fields(), "first_name": "Ada", **fields}
        return ContactRecord(
            contact_id=contact_id or str(uuid.uuid4()),
            fields=values,
            version=version,
            created_at=created_at,
            updated_at=created_at,
            last_name_key=(values["last_name"] or "").lower(),
        )

    return make


@pytest.fixture
def app(
    contacts: FakeContactReadModel,
    cache: FakeReadThroughContactCache,
    statuses: FakeOperationStatusCache,
    outcomes: FakeOperationLog,
    import_reports: FakeImportReportReader,
    import_outcomes: FakeImportOutcomeLog,
) -> Flask:
    return authorized(
        create_app(
            Settings(auth=TWO_WORKSPACES_AUTH, rate_limits=RateLimitSettings(enabled=False)),
            contacts=contacts,
            cache=cache,
            statuses=statuses,
            outcomes=outcomes,
            import_reports=import_reports,
            import_outcomes=import_outcomes,
            required_checks={"postgresql": contacts.check},
            optional_checks={"redis": cache.check},
        )
    )


@pytest.fixture
def other_workspace() -> tuple[str, dict[str, str]]:
    """The second workspace's id, and the headers of a caller of it (an API key bound to it)."""
    return OTHER_WS, {"Authorization": f"Bearer {OTHER_WS_API_KEY}"}


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client
