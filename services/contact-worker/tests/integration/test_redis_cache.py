"""The worker's contact cache on real Redis: a batch's states in one pipeline of ``EVALSHA``
(``RedisContactCache.put_all``), version-guarded, and still written when Redis does not know
the script (it is loaded and the pipeline sent again); after a commit, the entries and then the
statuses in one pipeline (``put_all_then_record``), the entries by ``EVAL``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid

import pytest
import redis

from contact_worker.adapters import redis_store
from contact_worker.adapters.redis_store import RedisContactCache
from contacts_domain import ContactState, OperationStatus
from contacts_domain.contact import empty_fields
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_keys import contact_key, operation_key

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def state(version: int, name: str) -> ContactState:
    now = dt.datetime.now(dt.UTC)
    return ContactState(
        str(uuid.UUID(int=version)),
        fields={**empty_fields(), "first_name": name},
        alive=True,
        version=version,
        created_at=now,
        updated_at=now,
        workspace="w",
    )


def test_put_all_writes_every_state_and_never_an_older_version(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}cache-{uuid.uuid4().hex[:6]}:"
    cache = RedisContactCache(redis_client, prefix=prefix, ttl_s=60)
    first = [state(2, "Ada"), state(3, "Bea")]
    cache.put_all(first)
    older = dataclasses.replace(first[0], version=1)
    cache.put_all([older, state(3, "Bea")])
    for written in first:
        raw = redis_client.hgetall(contact_key(prefix, "w", written.contact_id))
        assert int(raw[b"v"]) == written.version


def cache_of_an_unknown_script(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[RedisContactCache, str]:
    """A cache, and its key prefix, whose script is a variant no Redis has seen, as after a
    restart: ``EVALSHA`` answers NOSCRIPT."""
    unknown = f"{redis_store.GUARDED_SET_LUA}-- {uuid.uuid4().hex}\n"
    monkeypatch.setattr(redis_store, "GUARDED_SET_LUA", unknown)
    prefix = f"{redis_prefix}cache-{uuid.uuid4().hex[:6]}:"
    cache = RedisContactCache(redis_client, prefix=prefix, ttl_s=60)
    assert redis_client.script_exists(cache._guarded_set.sha) == [False]
    return cache, prefix


def test_put_all_loads_a_script_redis_does_not_know(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, prefix = cache_of_an_unknown_script(redis_client, redis_prefix, monkeypatch)
    cache.put_all([state(4, "Cy"), state(5, "Di")])
    for written in (state(4, "Cy"), state(5, "Di")):
        assert redis_client.hget(contact_key(prefix, "w", written.contact_id), "v") == b"%d" % (
            written.version
        )


def status(contact_id: str, version: int) -> OperationStatus:
    return OperationStatus(str(uuid.uuid4()), contact_id, "applied", version=version)


def test_put_all_then_record_writes_the_entries_and_the_statuses_together(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One pipeline for both (the store shares the client), on a Redis that does not know the
    # script: the entries go by EVAL, so none is refused and each status follows its entry.
    cache, prefix = cache_of_an_unknown_script(redis_client, redis_prefix, monkeypatch)
    operations = RedisOperationStore(redis_client, prefix=prefix, ttl_s=90)
    assert operations.shares(redis_client)
    newer, gone = state(7, "Ed"), dataclasses.replace(state(8, "Flo"), alive=False)
    cache.put(newer)
    older = dataclasses.replace(newer, version=6, fields={**newer.fields, "first_name": "Old"})
    outcomes = [("w", status(older.contact_id, 6)), ("w", status(gone.contact_id, 8))]

    cache.put_all_then_record([older, gone], outcomes, operations)

    kept = redis_client.hgetall(contact_key(prefix, "w", newer.contact_id))
    assert int(kept[b"v"]) == 7  # the version guard held
    assert b"Ed" in kept[b"d"]
    tombstone = redis_client.hgetall(contact_key(prefix, "w", gone.contact_id))
    assert tombstone == {b"v": b"8", b"d": b""}
    for workspace, outcome in outcomes:
        assert operations.get(workspace, outcome.operation_id) == outcome
        key = operation_key(prefix, workspace, outcome.operation_id)
        assert 0 < redis_client.ttl(key) <= 90


def test_put_all_then_record_with_a_store_on_another_client_writes_both_in_turn(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}cache-{uuid.uuid4().hex[:6]}:"
    cache = RedisContactCache(redis_client, prefix=prefix, ttl_s=60)
    other = redis.Redis.from_url(REDIS_URL)
    operations = RedisOperationStore(other, prefix=prefix, ttl_s=60)
    assert not operations.shares(redis_client)
    written = state(9, "Gus")
    outcome = status(written.contact_id, 9)

    cache.put_all_then_record([written], [("w", outcome)], operations)

    assert redis_client.hget(contact_key(prefix, "w", written.contact_id), "v") == b"9"
    assert operations.get("w", outcome.operation_id) == outcome
    other.close()
