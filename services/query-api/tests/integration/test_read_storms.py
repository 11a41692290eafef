"""A storm of identical list, search or export requests costs PostgreSQL what two requests
cost, and no request gets a page read before it was made (docs/architecture.md §5.7). Counted
in statements sent by the app's engine.

Statements are counted with SQLAlchemy's ``before_cursor_execute`` event on the reader role's
engines (the seeder writes as another role). To make the requests really overlap, the storm's
first statement is held there until every other request waits (``waiting`` of the app's
``CoalescingReadModel``), then released; without single flight nobody waits, the hold ends
after ``ARRIVAL_BOUND_S`` and every request runs its own statements.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

REQUESTS = 200
#: How long the held statement waits for the other requests to queue behind it.
ARRIVAL_BOUND_S = 30


class ReaderStatements:
    """Counts the statements of the engines of ``url``'s role and database. While ``held``,
    each one waits for ``release`` before it is sent; the statement numbered ``hold_after``
    (counting from 1) sets ``ran`` once it has run and waits for ``release`` (at most
    ``ARRIVAL_BOUND_S`` either way)."""

    def __init__(self, url: str) -> None:
        self._url = sa.make_url(url)
        self._lock = threading.Lock()
        self.count = 0
        self.held = False
        self.hold_after: int | None = None
        self.ran = threading.Event()
        self.release = threading.Event()

    def _ours(self, conn: sa.Connection) -> bool:
        url = conn.engine.url
        return (url.username, url.database) == (self._url.username, self._url.database)

    def before(self, conn: sa.Connection, _cursor: Any, *_args: Any) -> None:
        if not self._ours(conn):
            return
        with self._lock:
            self.count += 1
            conn.info["statement_number"] = self.count
        if self.held:
            self.release.wait(ARRIVAL_BOUND_S)

    def after(self, conn: sa.Connection, _cursor: Any, *_args: Any) -> None:
        if self._ours(conn) and conn.info.get("statement_number") == self.hold_after:
            self.ran.set()
            self.release.wait(ARRIVAL_BOUND_S)


@pytest.fixture
def statements(reader_database_url: str) -> Iterator[ReaderStatements]:
    counter = ReaderStatements(reader_database_url)
    sa.event.listen(sa.Engine, "before_cursor_execute", counter.before)
    sa.event.listen(sa.Engine, "after_cursor_execute", counter.after)
    yield counter
    sa.event.remove(sa.Engine, "before_cursor_execute", counter.before)
    sa.event.remove(sa.Engine, "after_cursor_execute", counter.after)


def get(app: Flask, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    response = app.test_client().get(url, headers=headers)
    return response.status_code, response.get_data()


def measured(statements: ReaderStatements, app: Flask, url: str, headers: dict[str, str]) -> Any:
    """One request alone: its answer, and how many statements it sent."""
    before = statements.count
    answer = get(app, url, headers)
    assert answer[0] == 200, answer
    return answer, statements.count - before


def storm(
    statements: ReaderStatements, app: Flask, calls: list[tuple[str, dict[str, str]]], reads: int
) -> tuple[list[tuple[int, bytes]], int]:
    """Send ``calls`` at once, holding the database until all but the ``reads`` first ones
    (one per distinct request) wait; return the answers in order and the statements sent."""
    contacts = app.extensions["query_api"].ports.contacts
    before = statements.count
    statements.held = True
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(get, app, url, headers) for url, headers in calls]
        for _ in range(ARRIVAL_BOUND_S * 20):
            if contacts.waiting >= len(calls) - reads:
                break
            threading.Event().wait(0.05)
        statements.release.set()
        answers = [future.result() for future in futures]
    return answers, statements.count - before


@pytest.fixture
def app(make_app: Any, settings: Any) -> Flask:
    """The app, its requests waiting for a pooled connection as long as the hold may last, so
    that without single flight every request runs (instead of a 503 after 2 s), and every
    export of a storm streaming at once (``QUERY_STREAM_SLOTS``, 1 by default, has tests of
    its own: ``test_export.py``)."""
    return make_app(
        settings.model_copy(
            update={"db_pool_timeout_s": 2 * ARRIVAL_BOUND_S, "stream_slots": REQUESTS}
        )
    )


@pytest.fixture
def prefix() -> str:
    """A search prefix no other test's contact has."""
    return f"Zq{uuid.uuid4().hex[:8]}"


@pytest.fixture
def matching(seed: Any, prefix: str) -> str:
    """Seven contacts of ``default`` whose last name starts with ``prefix``, under a tag of their
    own; returns the tag."""
    tag = f"t-{uuid.uuid4().hex[:10]}"
    for n in range(7):
        seed.contact(first_name=f"Ada{n}", last_name=f"{prefix}{n}", tags=[tag])
    return tag


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/contacts?q={prefix}&sort=last_name&limit=5", id="search"),
        pytest.param("/v1/contacts?tag={tag}&limit=5&fields=last_name", id="list"),
        pytest.param("/v1/contacts/export?q={prefix}&format=csv", id="export"),
    ],
)
def test_a_storm_of_one_request_costs_the_database_two_requests(
    app: Flask, statements: ReaderStatements, matching: str, prefix: str, path: str
) -> None:
    url = path.format(prefix=prefix, tag=matching)
    alone, cost = measured(statements, app, url, {})
    assert cost >= 1
    assert prefix.encode() in alone[1]

    answers, storm_cost = storm(statements, app, [(url, {})] * REQUESTS, reads=1)

    # The first request's read, then one for the 199 that came while it ran.
    assert storm_cost == 2 * cost, f"{REQUESTS} requests: {storm_cost} statements, one: {cost}"
    assert answers == [alone] * REQUESTS


def test_the_same_storm_in_two_workspaces_reads_each_workspace_apart(
    app: Flask,
    statements: ReaderStatements,
    seed: Any,
    matching: str,
    prefix: str,
    other_workspace: tuple[str, dict[str, str]],
) -> None:
    other, other_headers = other_workspace
    seed.contact(first_name="Other", last_name=f"{prefix}x", workspace=other)
    url = f"/v1/contacts?q={prefix}&sort=last_name&limit=5"
    default_alone, cost = measured(statements, app, url, {})
    other_alone, other_cost = measured(statements, app, url, other_headers)
    assert default_alone != other_alone
    calls = [(url, {}), (url, other_headers)] * (REQUESTS // 2)

    answers, storm_cost = storm(statements, app, calls, reads=2)

    assert storm_cost == 2 * (cost + other_cost)
    assert answers == [default_alone, other_alone] * (REQUESTS // 2)


def test_a_request_made_after_a_write_gets_it_even_while_an_older_read_runs(
    app: Flask, statements: ReaderStatements, seed: Any, matching: str, prefix: str
) -> None:
    """Read your writes: a search runs (its page statement has run, so its snapshot is taken);
    a write commits; an identical search made now must see the write, not share the running
    read's page."""
    url = f"/v1/contacts?q={prefix}&sort=last_name&limit=5"
    _alone, cost = measured(statements, app, url, {})
    contacts = app.extensions["query_api"].ports.contacts
    statements.hold_after = statements.count + cost  # the first request's page statement
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(get, app, url, {})
        assert statements.ran.wait(ARRIVAL_BOUND_S)
        written = seed.contact(first_name="Late", last_name=f"{prefix}0")  # sorts first
        later = pool.submit(get, app, url, {})
        for _ in range(ARRIVAL_BOUND_S * 20):
            if contacts.waiting == 1:
                break
            threading.Event().wait(0.05)
        statements.release.set()
        before_write, after_write = running.result(), later.result()

    assert (before_write[0], after_write[0]) == (200, 200)
    assert written.encode() not in before_write[1]  # the running read was before the write
    assert written.encode() in after_write[1]
