"""The worker's contact cache on real Redis: a batch's states in one pipeline of ``EVALSHA``
(``RedisContactCache.put_all``), version-guarded, and still written when Redis does not know
the script (it is loaded and the pipeline sent again)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
import redis

from contact_worker.adapters import redis_store
from contact_worker.adapters.redis_store import RedisContactCache
from contacts_domain import ContactState
from contacts_domain.contact import empty_fields
from contacts_infra.redis_keys import contact_key


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


def test_put_all_loads_a_script_redis_does_not_know(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variant of the script no Redis has seen, as after a restart: EVALSHA answers NOSCRIPT.
    unknown = f"{redis_store.GUARDED_SET_LUA}-- {uuid.uuid4().hex}\n"
    monkeypatch.setattr(redis_store, "GUARDED_SET_LUA", unknown)
    prefix = f"{redis_prefix}cache-{uuid.uuid4().hex[:6]}:"
    cache = RedisContactCache(redis_client, prefix=prefix, ttl_s=60)
    assert redis_client.script_exists(cache._guarded_set.sha) == [False]
    cache.put_all([state(4, "Cy"), state(5, "Di")])
    for written in (state(4, "Cy"), state(5, "Di")):
        assert redis_client.hget(contact_key(prefix, "w", written.contact_id), "v") == b"%d" % (
            written.version
        )
