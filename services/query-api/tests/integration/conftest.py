"""Real PostgreSQL and Redis behind the real app.

The database, its reader role and the Redis prefix of the run come from the repository's root
conftest (``database``, ``database_url``, ``reader_database_url``, ``redis_client``,
``redis_prefix``): one migrated database per run, created with the worker's own alembic setup.
Each test gets a Redis sub-prefix of its own; list tests filter on a tag of their own, since the
run's database is shared with the other packages' tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from contacts_domain import normalize_contact
from contacts_domain.contact import FIELDS, primary_value
from contacts_domain.values import EmailAddress
from contacts_domain.workspaces import DEFAULT_WORKSPACE
from contacts_http.auth import ApiKeyEntry, AuthSettings, hash_api_key, new_api_key, scopes
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.redis_keys import GUARDED_SET_LUA, contact_key
from query_api.entrypoints.app import create_app
from query_api.settings import Settings
from support.auth import GENEROUS_LIMIT, TEST_API_KEY, TEST_AUTH, authorized

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
_JSON_FIELDS = ("emails", "phones", "addresses")
#: A second workspace of this session's own (the run's database is shared with other packages'
#: tests: nothing else writes in it, so a test may expect everything it holds), and an API key
#: bound to it; the session's key is in ``default``.
OTHER_WS = f"q-{uuid.uuid4().hex[:12]}"
OTHER_WS_API_KEY = new_api_key()
TWO_WORKSPACES_AUTH = AuthSettings(
    api_keys=(
        ApiKeyEntry(hash_api_key(TEST_API_KEY), scopes.ALL),
        ApiKeyEntry(hash_api_key(OTHER_WS_API_KEY), scopes.ALL, OTHER_WS),
    ),
    failure_limit=TEST_AUTH.failure_limit,
)


class Seeder:
    """Writes rows the way the contact worker does (``contact_worker.adapters.sql``): normalized
    fields, the primary email and phone, the canonical ``email_key`` and every address's key in
    ``email_keys``, ``alive``, ``version`` and the ``workspace`` (``default`` unless named).
    Uses the writer role."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def contact(
        self,
        contact_id: str | None = None,
        *,
        version: int = 1,
        alive: bool = True,
        created_at: dt.datetime = T0,
        workspace: str = DEFAULT_WORKSPACE,
        **raw: Any,
    ) -> str:
        """Insert a contact of ``workspace`` from client-style input (``first_name``, ``email``,
        ``tags``...); returns its id. ``alive=False`` stores a tombstone (fields erased, as a
        delete does)."""
        contact_id = contact_id or str(uuid.uuid4())
        fields = normalize_contact({"first_name": "Ada", **raw}, partial=False, default_region="US")
        if not alive:
            fields = {name: [] if name in (*_JSON_FIELDS, "tags") else None for name in FIELDS}
        row = self._row(contact_id, fields, version, alive, created_at)
        self.rows([{**row, "workspace": workspace}])
        return contact_id

    def rows(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            self.rows_in(conn, rows)

    @staticmethod
    def rows_in(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (``_row``/``row_of`` shapes) in the caller's transaction."""
        columns = list(rows[0])
        placeholders = [f"CAST(:{c} AS jsonb)" if c in _JSON_FIELDS else f":{c}" for c in columns]
        statement = sa.text(
            f"INSERT INTO contacts ({', '.join(columns)}) VALUES ({', '.join(placeholders)})"
        )
        conn.execute(statement, rows)

    def row_of(self, contact_id: str, *, version: int = 1, **raw: Any) -> dict[str, Any]:
        """The row ``contact`` would insert for client-style input ``raw``, without writing."""
        fields = normalize_contact({"first_name": "Ada", **raw}, partial=False, default_region="US")
        return self._row(contact_id, fields, version, True, T0)

    @staticmethod
    def _row(
        contact_id: str,
        fields: dict[str, Any],
        version: int,
        alive: bool,
        created_at: dt.datetime,
    ) -> dict[str, Any]:
        emails = fields["emails"] or []
        primary = primary_value(emails)
        return {
            "id": contact_id,
            **{name: fields[name] for name in FIELDS if name not in _JSON_FIELDS},
            **{name: json.dumps(fields[name] or []) for name in _JSON_FIELDS},
            "email": primary,
            "email_key": EmailAddress(primary).key if primary else None,
            "email_keys": [EmailAddress(e["value"]).key for e in emails],
            "phone": primary_value(fields["phones"]),
            "version": version,
            "alive": alive,
            "created_at": created_at,
            "updated_at": created_at,
            "deleted_at": None if alive else created_at,
        }

    def outcome(
        self,
        operation_id: str,
        contact_id: str,
        status: str,
        reason: str | None = None,
        version: int | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """Record a processed event of ``workspace``, as the worker's inbox does."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO processed_events (workspace, event_id, operation_id, contact_id,"
                    " event_type, sequence, status, reason, version)"
                    " VALUES (:w, :e, :o, :c, 'contacts.contact.created.v1', '0', :s, :r, :v)"
                ),
                {
                    "w": workspace,
                    "e": str(uuid.uuid4()),
                    "o": operation_id,
                    "c": contact_id,
                    "s": status,
                    "r": reason,
                    "v": version,
                },
            )


class StandInServer:
    """A TCP stand-in for a server (Redis, PostgreSQL) on 127.0.0.1, in one of two modes:

    - ``silent``: accepts connections and never answers (a hung or packet-dropping server,
      what a client without a socket timeout waits on forever);
    - ``forward``: relays bytes to ``upstream`` (the server is back).

    A connection keeps the mode it was accepted in.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "silent"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="stand-in-server", daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(conn)
            if self.mode == "forward":
                upstream = socket.create_connection(self.upstream, timeout=2)
                self._sockets.append(upstream)
                for source, sink in ((conn, upstream), (upstream, conn)):
                    relay = threading.Thread(target=self._relay, args=(source, sink), daemon=True)
                    self._threads.append(relay)
                    relay.start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()
        self._listener.close()


@pytest.fixture(scope="session")
def writer_engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def seed(writer_engine: sa.Engine) -> Seeder:
    return Seeder(writer_engine)


@pytest.fixture
def make_seeder() -> type[Seeder]:
    """``make_seeder(engine)``: a ``Seeder`` for a database of a test's own."""
    return Seeder


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """A Redis prefix of this test's own (under the run's prefix, which the root conftest
    deletes at the end of the session)."""
    return f"{redis_prefix}q{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def settings(reader_database_url: str, prefix: str) -> Settings:
    return Settings(
        database_url=reader_database_url,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        auth=TWO_WORKSPACES_AUTH,
        rate_limits=RateLimitSettings(default=GENEROUS_LIMIT),
    )


@pytest.fixture
def make_app() -> Iterator[Any]:
    """``make_app(settings, **ports)`` → a real app; its pools are closed after the test."""
    apps: list[Flask] = []

    def make(settings: Settings, **ports: Any) -> Flask:
        app = authorized(create_app(settings, **ports))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["query_api"].ports.close()


@pytest.fixture
def app(make_app: Any, settings: Settings) -> Flask:
    return make_app(settings)


@pytest.fixture
def other_workspace() -> tuple[str, dict[str, str]]:
    """The second workspace's id, and the headers of a caller of it (an API key bound to it)."""
    return OTHER_WS, {"Authorization": f"Bearer {OTHER_WS_API_KEY}"}


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def worker_cache_write(redis_client: redis.Redis, prefix: str) -> Any:
    """``write(contact_id, version, body_or_None, workspace="default")``: the worker's guarded
    cache write."""
    script = redis_client.register_script(GUARDED_SET_LUA)

    def write(
        contact_id: str, version: int, body: bytes | None, workspace: str = DEFAULT_WORKSPACE
    ) -> int:
        key = contact_key(prefix, workspace, contact_id)
        return int(script(keys=[key], args=[version, body or b"", 60]))

    return write


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A silent server that a test can switch to forwarding to the real Redis."""
    url = redis.connection.parse_url(REDIS_URL)
    server = StandInServer((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    yield server
    server.close()


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
