"""Owed cache entries on real PostgreSQL and Redis (case C18, migration 0008): a commit whose
cache write fails leaves a row in ``cache_repairs``; the repair pass writes the committed state
over the stale entry once Redis answers and deletes only the rows it wrote."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis
import sqlalchemy as sa

from contact_worker.adapters.cache_repairs import SqlCacheRepairs
from contact_worker.bootstrap import Runtime, build_ports
from contact_worker.service_layer.handlers import handle_event
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, ContactState, HybridLogicalClock, normalize_contact
from contacts_infra.redis_keys import contact_key

CLOCK = HybridLogicalClock()
WS = "repairs"


@pytest.fixture(scope="module")
def worker_settings(stack_env: dict[str, str], redis_prefix: str) -> Settings:
    prefix = f"{redis_prefix}repairs-{uuid.uuid4().hex[:6]}:"
    return Settings.from_env({**stack_env, "REDIS_PREFIX": prefix})


@pytest.fixture(scope="module")
def engine(worker_settings: Settings) -> sa.Engine:
    return sa.create_engine(worker_settings.database_url)


def event(kind: str, contact_id: str, first_name: str | None = None) -> ContactEvent:
    data = {} if first_name is None else {"first_name": first_name}
    if kind == "created":
        data = normalize_contact(data, partial=False, default_region="US")
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=contact_id,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data,
        workspace=WS,
    )


def owed_rows(engine: sa.Engine, cache: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT contact_id::text, version FROM cache_repairs WHERE cache = :cache"),
            {"cache": cache},
        )
        return {contact_id: version for contact_id, version in rows}


def cached_version(client: redis.Redis, prefix: str, contact_id: str) -> int | None:
    raw = client.hget(contact_key(prefix, WS, contact_id), "v")
    return None if raw is None else int(raw)


def test_an_outage_leaves_owed_rows_that_the_repair_writes_and_deletes(
    worker_settings: Settings, engine: sa.Engine, redis_client: redis.Redis
) -> None:
    prefix = worker_settings.redis_prefix
    ports = Runtime(worker_settings).ports()
    unreachable = worker_settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:1/0",
            "redis_socket_timeout_s": 0.2,
            "redis_connect_timeout_s": 0.2,
        }
    )
    down = build_ports(unreachable)
    renamed, deleted = str(uuid.uuid4()), str(uuid.uuid4())
    for contact_id in (renamed, deleted):
        handle_event(
            event("created", contact_id, "Ada"),
            unit_of_work=ports.unit_of_work,
            cache=ports.cache,
            operations=ports.operations,
        )
    for change in (event("patched", renamed, "Ada2"), event("deleted", deleted)):
        with pytest.raises(redis.RedisError):
            handle_event(
                change,
                unit_of_work=down.unit_of_work,
                cache=down.cache,
                operations=ports.operations,
            )

    # Committed as version 2; Redis still holds version 1 of both.
    assert owed_rows(engine, prefix) == {renamed: 2, deleted: 2}
    assert cached_version(redis_client, prefix, renamed) == 1
    assert down.cache_repairer is not None
    assert down.cache_repairer.recorded.is_set()  # wakes that process's repair loop
    with pytest.raises(redis.RedisError):
        down.cache_repairer.repair()  # Redis still unreachable: nothing settled
    assert owed_rows(engine, prefix) == {renamed: 2, deleted: 2}

    assert ports.cache_repairer is not None
    assert ports.cache_repairer.repair() == 2

    assert owed_rows(engine, prefix) == {}
    assert cached_version(redis_client, prefix, renamed) == 2
    assert cached_version(redis_client, prefix, deleted) == 2
    assert ports.cache_repairer.repair() == 0


def test_settling_keeps_a_debt_recorded_after_the_repair_read(
    worker_settings: Settings, engine: sa.Engine
) -> None:
    cache = f"{worker_settings.redis_prefix}settle:"
    repairs = SqlCacheRepairs(engine, cache)
    contact_id = str(uuid.uuid4())
    repairs.record([ContactState(contact_id, workspace=WS, version=1)])
    [(owed, current)] = repairs.owed_states(10)
    assert (owed, current.version) == ((WS, contact_id, 1), 0)  # no contacts row

    repairs.record([ContactState(contact_id, workspace=WS, version=3)])  # a newer failure
    repairs.record([ContactState(contact_id, workspace=WS, version=2)])  # an older one late

    assert repairs.settle([owed]) == 0
    assert owed_rows(engine, cache) == {contact_id: 3}
    assert repairs.settle([(WS, contact_id, 3)]) == 1
    assert owed_rows(engine, cache) == {}


def test_each_cache_repairs_only_its_own_debts(
    worker_settings: Settings, engine: sa.Engine
) -> None:
    mine = SqlCacheRepairs(engine, f"{worker_settings.redis_prefix}mine:")
    theirs = SqlCacheRepairs(engine, f"{worker_settings.redis_prefix}theirs:")
    contact_id = str(uuid.uuid4())
    theirs.record([ContactState(contact_id, workspace=WS, version=4)])

    assert mine.owed_states(10) == []
    assert mine.settle([(WS, contact_id, 4)]) == 0
    assert [entry for entry, _ in theirs.owed_states(10)] == [(WS, contact_id, 4)]
