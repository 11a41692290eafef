"""The refill lease of ``RedisReadThroughContactCache`` on real Redis
(``redis_keys.refill_lease_key``)."""

from __future__ import annotations

import threading
import time

import pytest

from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import contact_key, refill_lease_key
from query_api.adapters.circuit_breaker import NoBreaker
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_contact_cache import RedisReadThroughContactCache
from query_api.adapters.redis_scripts import ScriptRunner
from query_api.service_layer.records import CachedContact


@pytest.fixture
def cache(settings):
    client = create_redis(settings, client_name="query-api")
    yield RedisReadThroughContactCache(
        RedisCalls(client, NoBreaker()), settings.redis_prefix, 60, lease_ms=3000, wait_s=1.0
    )
    client.close()


@pytest.fixture
def scripted_cache(settings):
    """The cache as the app builds it: scripts on a ``ScriptRunner``, so a refill may be sent
    without waiting for its reply (``send_refill_and_release``)."""
    client = create_redis(settings, client_name="query-api")
    scripts = ScriptRunner(client)
    calls = RedisCalls(client, NoBreaker(), scripts=scripts)
    yield RedisReadThroughContactCache(calls, settings.redis_prefix, 60, lease_ms=3000, wait_s=1.0)
    scripts.close()
    client.close()


def _eventually(check, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_holder_at_a_time_and_only_the_holder_releases(cache, redis_client, prefix):
    token = cache.take_refill_lease("default", "c1")

    assert token is not None
    assert cache.take_refill_lease("default", "c1") is None
    assert 0 < redis_client.pttl(refill_lease_key(prefix, "default", "c1")) <= 3000
    cache.release_refill_lease("default", "c1", "not the holder's token")
    assert cache.take_refill_lease("default", "c1") is None
    cache.release_refill_lease("default", "c1", token)
    assert cache.take_refill_lease("default", "c1") is not None


def test_a_waiter_gets_the_entry_as_soon_as_the_holder_refills(cache):
    token = cache.take_refill_lease("default", "c2")

    def holder() -> None:
        time.sleep(0.1)
        cache.refill("default", "c2", 7, b'{"id":"c2"}')
        cache.release_refill_lease("default", "c2", token)

    threading.Thread(target=holder).start()
    started = time.monotonic()

    assert cache.wait_for_refill("default", "c2") == CachedContact(7, b'{"id":"c2"}')
    assert time.monotonic() - started < 0.9  # woken, not given up (the bound is 1 s)


def test_a_waiter_stops_when_the_lease_ends_without_an_entry(cache):
    token = cache.take_refill_lease("default", "c3")
    threading.Timer(0.1, cache.release_refill_lease, ("default", "c3", token)).start()
    started = time.monotonic()

    assert cache.wait_for_refill("default", "c3") is None
    assert time.monotonic() - started < 0.9  # woken, not given up (the bound is 1 s)


def test_a_waiter_gives_up_after_its_bound(cache):
    cache.take_refill_lease("default", "c4")
    started = time.monotonic()

    assert cache.wait_for_refill("default", "c4") is None
    assert 1.0 <= time.monotonic() - started < 2.5  # gave up, did not hang


def test_leases_and_entries_are_per_workspace(cache, redis_client, prefix):
    held = cache.take_refill_lease("default", "c5")

    assert held is not None
    assert cache.take_refill_lease("acme", "c5") is not None  # another workspace's contact
    assert cache.refill("acme", "c5", 4, b'{"id":"c5"}')
    assert cache.get("default", "c5") is None
    assert cache.get("acme", "c5") == CachedContact(4, b'{"id":"c5"}')
    assert redis_client.hget(contact_key(prefix, "acme", "c5"), "v") == b"4"
    assert not redis_client.exists(contact_key(prefix, "default", "c5"))


def test_get_or_lease_reads_the_entry_or_takes_the_lease_in_one_call(cache, redis_client, prefix):
    first = cache.get_or_lease("default", "c6")
    second = cache.get_or_lease("default", "c6")

    assert first[0] is None
    assert first[1] is not None  # the caller holds the lease
    assert second == (None, None)  # another request holds it
    assert redis_client.get(refill_lease_key(prefix, "default", "c6")) == first[1].encode()
    assert cache.refill_and_release("default", "c6", 3, b'{"id":"c6"}', first[1])
    assert not redis_client.exists(refill_lease_key(prefix, "default", "c6"))
    assert cache.get_or_lease("default", "c6") == (CachedContact(3, b'{"id":"c6"}'), None)
    assert cache.get_or_lease("default", "c6") == (CachedContact(3, b'{"id":"c6"}'), None)


def test_a_tombstone_is_an_entry_for_get_or_lease(cache):
    cache.refill("default", "c7", 5, None)

    assert cache.get_or_lease("default", "c7") == (CachedContact(5, None), None)


def test_refill_and_release_keeps_the_version_guard_and_only_the_holders_lease(
    cache, redis_client, prefix
):
    _, token = cache.get_or_lease("default", "c8")
    assert token is not None
    assert cache.refill("default", "c8", 9, b'{"v":9}')  # the worker wrote a newer version
    redis_client.set(refill_lease_key(prefix, "default", "c8"), "someone else's")

    assert not cache.refill_and_release("default", "c8", 8, b'{"v":8}', token)
    assert cache.get("default", "c8") == CachedContact(9, b'{"v":9}')
    assert redis_client.get(refill_lease_key(prefix, "default", "c8")) == b"someone else's"


def test_a_refill_sent_without_its_reply_writes_the_entry_and_releases_the_lease(
    scripted_cache, redis_client, prefix
):
    _, token = scripted_cache.get_or_lease("default", "c9")
    assert token is not None

    scripted_cache.send_refill_and_release("default", "c9", 3, b'{"id":"c9"}', token)

    lease = refill_lease_key(prefix, "default", "c9")
    assert _eventually(lambda: not redis_client.exists(lease))
    assert scripted_cache.get_or_lease("default", "c9") == (CachedContact(3, b'{"id":"c9"}'), None)
    assert 0 < redis_client.ttl(contact_key(prefix, "default", "c9")) <= 60


def test_a_refill_sent_without_its_reply_keeps_the_version_guard_and_the_holders_lease(
    scripted_cache, redis_client, prefix
):
    _, token = scripted_cache.get_or_lease("default", "c10")
    assert token is not None
    assert scripted_cache.refill("default", "c10", 9, None)  # the worker's newer tombstone
    lease = refill_lease_key(prefix, "default", "c10")
    redis_client.set(lease, "someone else's")

    scripted_cache.send_refill_and_release("default", "c10", 8, b'{"v":8}', token)
    marker_token = scripted_cache.take_refill_lease("default", "c10-marker")
    assert marker_token is not None
    scripted_cache.send_refill_and_release("default", "c10-marker", 1, b"{}", marker_token)
    # The same connection runs its commands in order: once the second is done, so is the first.
    assert _eventually(lambda: scripted_cache.get("default", "c10-marker") is not None)

    assert scripted_cache.get("default", "c10") == CachedContact(9, None)
    assert redis_client.get(lease) == b"someone else's"
