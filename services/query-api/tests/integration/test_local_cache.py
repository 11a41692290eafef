"""The per-process local contact cache (``adapters.local_contact_cache``) on the real Redis
7.0: invalidations of keys written inside scripts, fills racing an invalidation, a lost
invalidation connection, workspaces, the LRU bound, and rate limits of local hits.

(The 1,000-round race of misses and hot reads against PATCH and DELETE is
``test_read_races.py``.)
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis

from contacts_domain.workspaces import DEFAULT_WORKSPACE
from contacts_http.rate_limits import RateLimitSettings
from query_api.adapters.local_contact_cache import LocalContactCache
from query_api.service_layer.ports import CountedRead

WAIT_S = 10.0


def local_cache(app: Any) -> LocalContactCache:
    cache = app.extensions["query_api"].ports.cache
    assert isinstance(cache, LocalContactCache)
    assert cache.listener.wait_ready(WAIT_S)
    return cache


@pytest.fixture
def local_app(make_app, settings):
    return make_app(settings.model_copy(update={"local_cache_size": 100}))


def _etag(response: Any) -> str:
    return str(response.headers["ETag"]).strip('"')


def test_a_hot_read_is_served_locally_until_the_worker_writes_it(
    local_app, seed, worker_cache_write
):
    cache = local_cache(local_app)
    client = local_app.test_client()
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b'{"v":1}')

    assert _etag(client.get(f"/v1/contacts/{contact_id}")) == "1"  # read from Redis, stored
    hits = cache.local_hits
    assert _etag(client.get(f"/v1/contacts/{contact_id}")) == "1"
    assert cache.local_hits == hits + 1

    worker_cache_write(contact_id, 2, b'{"v":2}')  # GUARDED_SET_LUA: a write inside EVALSHA
    response = client.get(f"/v1/contacts/{contact_id}")
    assert _etag(response) == "2"
    assert response.get_data() == b'{"v":2}'
    assert cache.local_hits == hits + 1

    worker_cache_write(contact_id, 3, None)  # the delete's tombstone
    assert client.get(f"/v1/contacts/{contact_id}").status_code == 404


def test_a_fill_racing_an_invalidation_is_not_stored(local_app, seed, worker_cache_write):
    cache = local_cache(local_app)
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b"{}")
    inner = cache._inner
    real_read = inner.get_or_lease_counted

    def read_then_worker_writes(*args: Any) -> CountedRead:
        read = real_read(*args)
        worker_cache_write(contact_id, 2, b"{}")  # lands after the read, before the store
        return read

    inner.get_or_lease_counted = read_then_worker_writes  # type: ignore[method-assign]
    try:
        read = cache.get_or_lease_counted(DEFAULT_WORKSPACE, contact_id, [])
    finally:
        del inner.get_or_lease_counted
    assert read.entry is not None
    assert read.entry.version == 1
    fills = cache.fills

    again = cache.get_or_lease_counted(DEFAULT_WORKSPACE, contact_id, [])
    assert again.entry is not None
    assert again.entry.version == 2
    assert cache.fills == fills + 1  # read from Redis: v1 was never stored


def test_a_lost_invalidation_connection_flushes_and_disables_until_it_is_back(
    local_app, seed, worker_cache_write, redis_client: redis.Redis
):
    cache = local_cache(local_app)
    client = local_app.test_client()
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b"{}")
    client.get(f"/v1/contacts/{contact_id}")
    client.get(f"/v1/contacts/{contact_id}")
    hits = cache.local_hits
    assert hits >= 1
    epoch = cache.listener.epoch
    first_id = cache.listener.redirect_id

    redis_client.client_kill_filter(_id=first_id)
    # The next request sees the closed socket before it serves: nothing served locally.
    response = client.get(f"/v1/contacts/{contact_id}")
    assert _etag(response) == "1"
    assert cache.local_hits == hits
    assert cache.listener.epoch > epoch

    assert cache.listener.wait_ready(WAIT_S)
    assert cache.listener.redirect_id != first_id
    worker_cache_write(contact_id, 2, b"{}")
    client.get(f"/v1/contacts/{contact_id}")  # a fill under the new connection
    assert _etag(client.get(f"/v1/contacts/{contact_id}")) == "2"
    assert cache.local_hits == hits + 1


def test_workspaces_have_their_own_local_entries(
    local_app, seed, worker_cache_write, other_workspace
):
    cache = local_cache(local_app)
    client = local_app.test_client()
    _other_ws, other_headers = other_workspace
    contact_id = str(uuid.uuid4())
    seed.contact(contact_id, version=1, first_name="Default")
    worker_cache_write(contact_id, 1, b'{"ws":"default"}')
    for _ in range(2):
        assert client.get(f"/v1/contacts/{contact_id}").get_data() == b'{"ws":"default"}'
        assert client.get(f"/v1/contacts/{contact_id}", headers=other_headers).status_code == 404
    assert cache.local_hits >= 1


def test_at_most_size_entries_are_kept(make_app, settings, seed, worker_cache_write):
    app = make_app(settings.model_copy(update={"local_cache_size": 2}))
    cache = local_cache(app)
    ids = [seed.contact(version=1) for _ in range(3)]
    for contact_id in ids:
        worker_cache_write(contact_id, 1, b"{}")
        cache.get_or_lease_counted(DEFAULT_WORKSPACE, contact_id, [])
    assert len(cache._entries) == 2
    hits = cache.local_hits
    cache.get_or_lease_counted(DEFAULT_WORKSPACE, ids[0], [])  # the least recent: evicted
    assert cache.local_hits == hits
    cache.get_or_lease_counted(DEFAULT_WORKSPACE, ids[2], [])
    assert cache.local_hits == hits + 1


def test_local_hits_keep_the_rate_limit_and_its_429(make_app, settings, seed, worker_cache_write):
    limited = RateLimitSettings(default="5/minute", workspace="1000/minute")
    app = make_app(settings.model_copy(update={"local_cache_size": 100, "rate_limits": limited}))
    cache = local_cache(app)
    client = app.test_client()
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b"{}")

    answers = [client.get(f"/v1/contacts/{contact_id}") for _ in range(7)]

    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert [a.headers["RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert int(answers[5].headers["Retry-After"]) >= 1
    assert answers[5].headers["RateLimit-Limit"] == "5"
    assert cache.local_hits >= 4


def test_reads_from_many_threads_share_one_listener(local_app, seed, worker_cache_write):
    cache = local_cache(local_app)
    contact_id = seed.contact(version=1)
    worker_cache_write(contact_id, 1, b"{}")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            client = local_app.test_client()
            for _ in range(50):
                assert client.get(f"/v1/contacts/{contact_id}").status_code == 200
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert cache.local_hits >= 150
