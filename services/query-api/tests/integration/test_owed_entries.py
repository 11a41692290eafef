"""Entries the worker owes the cache (case C18, ``cache_repairs``) on real PostgreSQL and
Redis: while the worker owes a contact's entry, every process reads that contact from
PostgreSQL whatever Redis holds, whether or not it saw the outage itself; once the worker's
repair settles the debt, the cache is served again."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import sqlalchemy as sa

from contacts_domain.workspaces import DEFAULT_WORKSPACE
from query_api.adapters.sql_owed_entries import PolledOwedEntries
from query_api.bootstrap import build_engine

POLL_S = 0.05


def owe(engine: sa.Engine, cache: str, contact_id: str, version: int) -> None:
    """What the worker records when its cache write of ``version`` fails after the commit."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO cache_repairs (cache, workspace, contact_id, version)"
                " VALUES (:cache, :ws, :id, :version)"
            ),
            {"cache": cache, "ws": DEFAULT_WORKSPACE, "id": contact_id, "version": version},
        )


def settle(engine: sa.Engine, cache: str) -> None:
    """What the worker's repair does last."""
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM cache_repairs WHERE cache = :c"), {"c": cache})


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(POLL_S)


@pytest.fixture
def polled_app(make_app, settings):
    return make_app(settings.model_copy(update={"owed_entries_poll_s": POLL_S}))


def test_an_owed_entry_is_read_from_postgresql_until_the_debt_is_settled(
    polled_app, settings, seed, writer_engine, worker_cache_write
) -> None:
    client = polled_app.test_client()
    contact_id = seed.contact(version=2, first_name="Ada2")
    worker_cache_write(contact_id, 1, json.dumps({"id": contact_id, "first_name": "Ada"}).encode())
    owe(writer_engine, settings.redis_prefix, contact_id, 2)

    # A new process's poller reads at once, in the background (no request waits for it).
    wait_for(lambda: client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "bypass")
    got = client.get(f"/v1/contacts/{contact_id}")

    assert (got.status_code, got.headers["X-Cache"], got.headers["ETag"]) == (200, "bypass", '"2"')
    assert got.json["first_name"] == "Ada2"

    # Settled without the repair's write, to show what the owed list alone protects from.
    settle(writer_engine, settings.redis_prefix)
    wait_for(lambda: client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "hit")
    assert client.get(f"/v1/contacts/{contact_id}").json["first_name"] == "Ada"


def test_an_owed_deleted_contact_is_not_found_though_redis_still_has_it(
    polled_app, settings, seed, writer_engine, worker_cache_write
) -> None:
    contact_id = seed.contact(version=2, alive=False)
    worker_cache_write(contact_id, 1, json.dumps({"id": contact_id}).encode())
    owe(writer_engine, settings.redis_prefix, contact_id, 2)

    client = polled_app.test_client()
    wait_for(lambda: client.get(f"/v1/contacts/{contact_id}").status_code == 404)
    assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "bypass"
    settle(writer_engine, settings.redis_prefix)


def test_the_poller_reads_with_the_select_only_role_and_only_its_own_cache(
    settings, writer_engine
) -> None:
    engine = build_engine(settings)
    mine, theirs = f"{settings.redis_prefix}mine:", f"{settings.redis_prefix}theirs:"
    owed = PolledOwedEntries(engine, mine, interval_s=60)
    contact_id = str(uuid.uuid4())
    try:
        owe(writer_engine, theirs, contact_id, 3)
        assert owed.poll_once() == 0
        assert not owed.owes(DEFAULT_WORKSPACE, contact_id)

        owe(writer_engine, mine, contact_id, 3)
        assert owed.poll_once() == 1
        assert owed.owes(DEFAULT_WORKSPACE, contact_id)
        assert not owed.owes("other", contact_id)
    finally:
        owed.stop()
        settle(writer_engine, mine)
        settle(writer_engine, theirs)
        engine.dispose()


def test_past_its_limit_every_entry_counts_as_owed(settings, writer_engine) -> None:
    engine = build_engine(settings)
    cache = f"{settings.redis_prefix}many:"
    owed = PolledOwedEntries(engine, cache, interval_s=60, limit=2)
    try:
        for _ in range(3):
            owe(writer_engine, cache, str(uuid.uuid4()), 1)
        assert owed.poll_once() == 3
        assert owed.owes(DEFAULT_WORKSPACE, str(uuid.uuid4()))
    finally:
        owed.stop()
        settle(writer_engine, cache)
        engine.dispose()


def test_until_its_first_read_succeeds_every_entry_counts_as_owed(settings, caplog) -> None:
    # A new process whose PostgreSQL does not answer yet: it cannot know what is owed, so it
    # serves nothing from an entry that might be (helper review of case C18).
    unreachable = settings.model_copy(
        update={"database_url": "postgresql+psycopg2://nobody@127.0.0.1:1/none"}
    )
    engine = build_engine(unreachable)
    owed = PolledOwedEntries(engine, settings.redis_prefix, interval_s=0.05)
    try:
        assert owed.owes(DEFAULT_WORKSPACE, str(uuid.uuid4()))
        wait_for(lambda: "owed cache entries not read" in caplog.text)
        assert owed.owes(DEFAULT_WORKSPACE, str(uuid.uuid4()))
    finally:
        owed.stop()
        engine.dispose()


def test_the_polling_thread_ends_with_an_app_dropped_without_close(settings) -> None:
    engine = build_engine(settings)
    owed = PolledOwedEntries(engine, settings.redis_prefix, interval_s=0.01)
    owed.owes(DEFAULT_WORKSPACE, str(uuid.uuid4()))
    thread = owed._thread
    assert thread is not None
    del owed
    thread.join(timeout=5)
    assert not thread.is_alive()
    engine.dispose()


def test_a_database_without_the_table_yet_owes_nothing(settings, caplog) -> None:
    # The query API rolled out before the worker's migration 0008 ran: no worker can have
    # recorded a debt, so the cache is served (not bypassed for every read).
    before = settings.model_copy(
        update={
            "database_url": sa.make_url(settings.database_url)
            .set(database="postgres")
            .render_as_string(hide_password=False)
        }
    )
    engine = build_engine(before)
    owed = PolledOwedEntries(engine, settings.redis_prefix, interval_s=60)
    try:
        assert owed.poll_once() == 0
        assert not owed.owes(DEFAULT_WORKSPACE, str(uuid.uuid4()))
        assert "cache_repairs not in the database yet" in caplog.text
    finally:
        owed.stop()
        engine.dispose()
