"""The query API's Redis adapters on a real three-primary Redis Cluster
(``REDIS_CLUSTER_MODE=true``, docs/architecture.md §10 "Scaling out"): the read-through cache
(``GUARDED_SET_LUA``, the refill lease, ``RELEASE_LEASE_LUA`` and the waiter's two-key poll,
each on the keys of one contact, one slot), operation statuses and import reports."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from contacts_domain import OperationStatus
from contacts_infra.import_dead_letters import RedisImportDeadLetters
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import contact_key, import_key
from contacts_infra.settings import RedisSettings
from query_api.adapters.circuit_breaker import CircuitBreaker, NoBreaker
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_contact_cache import RedisReadThroughContactCache
from query_api.adapters.redis_import_report_reader import RedisImportReportReader
from query_api.adapters.redis_operation_status import RedisOperationStatusCache
from query_api.service_layer.ports import CacheUnavailable
from query_api.service_layer.records import CachedContact
from support.redis_cluster import redis_cluster

PREFIX = "t-cluster-query:"


@pytest.fixture(scope="module")
def cluster(redis_cluster_url: str) -> Iterator[RedisCluster]:
    settings = RedisSettings(redis_url=redis_cluster_url, redis_cluster_mode=True)
    client = create_redis(settings, client_name="query-api")
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


@pytest.fixture(scope="module")
def calls(cluster: RedisCluster) -> RedisCalls:
    return RedisCalls(cluster, NoBreaker())  # type: ignore[arg-type]


def _one_per_primary(cluster: RedisCluster, workspace: str) -> list[str]:
    by_node: dict[str, str] = {}
    while len(by_node) < len(cluster.get_primaries()):
        cid = str(uuid.uuid4())
        by_node.setdefault(cluster.get_node_from_key(contact_key(PREFIX, workspace, cid)).name, cid)
    return list(by_node.values())


def test_the_read_through_cache_on_every_primary(calls: RedisCalls, cluster: RedisCluster) -> None:
    cache = RedisReadThroughContactCache(calls, PREFIX, 60, lease_ms=3000, wait_s=2.0)
    for cid in _one_per_primary(cluster, "acme"):
        assert cache.get("acme", cid) is None
        assert cache.refill("acme", cid, 2, b'{"v":2}') is True
        assert cache.refill("acme", cid, 1, b'{"v":1}') is False  # the guarded script
        assert cache.get("acme", cid) == CachedContact(2, b'{"v":2}')
        assert cache.get("other", cid) is None
        assert cache.refill("acme", cid, 3, None) is True  # a tombstone
        assert cache.get("acme", cid) == CachedContact(3, None)
        token = cache.take_refill_lease("acme", cid)
        assert token is not None
        assert cache.take_refill_lease("acme", cid) is None
        cache.release_refill_lease("acme", cid, "not the holder's")
        assert cache.take_refill_lease("acme", cid) is None
        cache.release_refill_lease("acme", cid, token)
        assert cache.take_refill_lease("acme", cid) is not None


def test_a_waiter_polls_the_entry_and_lease_of_one_slot(
    calls: RedisCalls, cluster: RedisCluster
) -> None:
    cache = RedisReadThroughContactCache(calls, PREFIX, 60, lease_ms=3000, wait_s=5.0)
    for cid in _one_per_primary(cluster, "acme"):
        token = cache.take_refill_lease("acme", cid)
        assert token is not None

        def holder(cid: str = cid, token: str = token) -> None:
            cache.refill("acme", cid, 7, b"{}")
            cache.release_refill_lease("acme", cid, token)

        timer = threading.Timer(0.05, holder)
        timer.start()
        assert cache.wait_for_refill("acme", cid) == CachedContact(7, b"{}")
        timer.join()
        other = str(uuid.uuid4())
        other_token = cache.take_refill_lease("acme", other)
        assert other_token is not None
        threading.Timer(0.05, cache.release_refill_lease, ("acme", other, other_token)).start()
        assert cache.wait_for_refill("acme", other) is None  # the lease ended without an entry


def test_statuses_and_import_reports_read_through_the_cluster(
    calls: RedisCalls, cluster: RedisCluster
) -> None:
    store = RedisOperationStore(cluster, prefix=PREFIX, ttl_s=60)  # type: ignore[arg-type]
    statuses = RedisOperationStatusCache(calls, PREFIX)
    reports = RedisImportReportReader(calls, PREFIX)
    letters = RedisImportDeadLetters(cluster, prefix=PREFIX)  # type: ignore[arg-type]
    for _ in range(10):
        operation_id, import_id = str(uuid.uuid4()), str(uuid.uuid4())
        applied = OperationStatus(operation_id=operation_id, contact_id="c", status="applied")
        store.record("acme", applied)
        assert statuses.get("acme", operation_id) == applied
        assert statuses.get("other", operation_id) is None
        assert reports.get("acme", import_id) is None
        cluster.set(import_key(PREFIX, "acme", import_id), b"not json", ex=60)
        assert reports.get("acme", import_id) is None  # unreadable: absent
        assert letters.record("acme", import_id, "e1") is True
        assert reports.dead_lettered("acme", import_id) == 1
        assert reports.dead_lettered("other", import_id) == 0


def test_a_cluster_outage_is_cache_unavailable_and_opens_the_circuit() -> None:
    with redis_cluster(primaries=3) as ports:
        settings = RedisSettings(redis_url=f"redis://127.0.0.1:{ports[0]}", redis_cluster_mode=True)
        client = create_redis(settings, client_name="query-api")
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=60)
    cache = RedisReadThroughContactCache(RedisCalls(client, breaker), PREFIX, 60, wait_s=0.05)
    try:
        for _ in range(3):
            with pytest.raises(CacheUnavailable):
                cache.get("acme", str(uuid.uuid4()))
        assert breaker.admit() is None, "outages counted: the circuit is open"
    finally:
        client.close()


def test_the_repair_refills_entries_of_every_primary(
    calls: RedisCalls, cluster: RedisCluster
) -> None:
    """``refill_many`` on a cluster: the entries' keys are in many slots, each refilled with
    the guarded script on its own primary."""
    cache = RedisReadThroughContactCache(calls, PREFIX, 60)
    ids = _one_per_primary(cluster, "acme")
    assert cache.refill("acme", ids[0], 9, b'{"v":9}') is True

    written = cache.refill_many([("acme", cid, 2, b'{"v":2}') for cid in ids])

    assert written == len(ids) - 1
    assert cache.get("acme", ids[0]) == CachedContact(9, b'{"v":9}')
    assert [cache.get("acme", cid) for cid in ids[1:]] == [CachedContact(2, b'{"v":2}')] * (
        len(ids) - 1
    )
