"""The Redis key layout, Lua scripts and operation store on a real three-primary Redis Cluster
(docs/architecture.md §10, "Scaling out"): every script and every multi-key round trip touches
the keys of one contact, which share the hash tag ``{<workspace>/<id>}``, so one hash slot.

The cluster is started on loopback from the machine's ``redis-server`` (``support.redis_cluster``)
and reached through redis-py's ``RedisCluster``, which routes each command to the primary of its
slot. The services' cache adapters wrap these same scripts and keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError, MovedError, RedisClusterException

from contacts_domain import OperationStatus
from contacts_domain.ports import StoreUnavailable
from contacts_infra.idempotency_index import RedisIdempotencyIndex
from contacts_infra.import_dead_letters import RedisImportDeadLetters
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis, limits_storage
from contacts_infra.redis_keys import (
    GUARDED_SET_LUA,
    RELEASE_LEASE_LUA,
    contact_key,
    idempotency_key,
    import_dead_letters_key,
    import_key,
    operation_key,
    refill_lease_key,
)
from contacts_infra.settings import RedisSettings
from support.processes import free_port
from support.redis_cluster import redis_cluster

PREFIX = "contacts:"
WORKSPACES = ("default", "acme", "h-" + "0" * 40)


@pytest.fixture(scope="module")
def node_ports(redis_cluster_ports: list[int]) -> list[int]:
    return redis_cluster_ports


@pytest.fixture(scope="module")
def cluster(node_ports: list[int]) -> Iterator[RedisCluster]:
    client = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", port) for port in node_ports],
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    yield client
    client.close()


def _node_port(cluster: RedisCluster, key: str) -> int:
    return int(cluster.get_node_from_key(key).port)


def _contacts_on_every_primary(cluster: RedisCluster, workspace: str) -> list[str]:
    """One contact id of ``workspace`` per primary, so a check covers every node."""
    by_port: dict[int, str] = {}
    while len(by_port) < 3:
        contact_id = str(uuid.uuid4())
        port = _node_port(cluster, contact_key(PREFIX, workspace, contact_id))
        by_port.setdefault(port, contact_id)
    return list(by_port.values())


def test_the_cluster_has_three_primaries_sharing_every_slot(cluster: RedisCluster) -> None:
    primaries = cluster.get_primaries()
    assert len(primaries) == 3
    assert int(cluster.cluster_info()["cluster_slots_assigned"]) == 16384


def test_every_key_of_one_contact_lands_in_one_slot(cluster: RedisCluster) -> None:
    ports = set()
    for workspace in WORKSPACES:
        for _ in range(30):
            contact_id = str(uuid.uuid4())
            data = contact_key(PREFIX, workspace, contact_id)
            lease = refill_lease_key(PREFIX, workspace, contact_id)
            # The server's own word (CLUSTER KEYSLOT), not only the client's CRC16.
            slot = cluster.cluster_keyslot(data)
            assert cluster.cluster_keyslot(lease) == slot
            assert slot == key_slot(f"{workspace}/{contact_id}".encode())
            ports.add(_node_port(cluster, data))
    # Contacts spread over every primary: the hash tag is per contact, not per workspace.
    assert len(ports) == 3


def test_the_guarded_set_keeps_the_newest_version_on_every_primary(
    cluster: RedisCluster, node_ports: list[int]
) -> None:
    guarded_set = cluster.register_script(GUARDED_SET_LUA)
    for contact_id in _contacts_on_every_primary(cluster, "acme"):
        key = contact_key(PREFIX, "acme", contact_id)
        assert guarded_set(keys=[key], args=[2, b'{"version":2}', 60]) == 1
        assert guarded_set(keys=[key], args=[1, b'{"version":1}', 60]) == 0
        assert guarded_set(keys=[key], args=[2, b'{"other":2}', 60]) == 0
        assert cluster.hmget(key, "v", "d") == [b"2", b'{"version":2}']
        assert guarded_set(keys=[key], args=[3, b"", 60]) == 1  # the tombstone wins
        assert guarded_set(keys=[key], args=[2, b'{"version":2}', 60]) == 0
        assert cluster.hmget(key, "v", "d") == [b"3", b""]
        assert 0 < cluster.ttl(key) <= 60
        # Written on the primary that owns the slot; every other primary redirects.
        owner, slot = _node_port(cluster, key), cluster.cluster_keyslot(key)
        for port in node_ports:
            with redis.Redis("127.0.0.1", port, socket_timeout=2) as node:
                if port == owner:
                    assert node.hget(key, "v") == b"3"
                else:
                    with pytest.raises(MovedError, match=f"^{slot} 127.0.0.1:{owner}$"):
                        node.hget(key, "v")


def test_the_refill_lease_is_released_by_its_holder_only(cluster: RedisCluster) -> None:
    release = cluster.register_script(RELEASE_LEASE_LUA)
    for contact_id in _contacts_on_every_primary(cluster, "default"):
        lease = refill_lease_key(PREFIX, "default", contact_id)
        assert cluster.set(lease, "token-1", nx=True, px=5000) is True
        assert cluster.set(lease, "token-2", nx=True, px=5000) is None
        assert release(keys=[lease], args=["token-2"]) == 0
        assert cluster.get(lease) == b"token-1"
        assert release(keys=[lease], args=["token-1"]) == 1
        assert cluster.exists(lease) == 0


def test_a_contacts_two_keys_go_together_in_one_script_and_one_transaction(
    cluster: RedisCluster, node_ports: list[int]
) -> None:
    both = "return {redis.call('HGET', KEYS[1], 'v'), redis.call('GET', KEYS[2])}"
    for contact_id in _contacts_on_every_primary(cluster, "acme"):
        data = contact_key(PREFIX, "acme", contact_id)
        lease = refill_lease_key(PREFIX, "acme", contact_id)
        cluster.hset(data, mapping={"v": 7, "d": b"{}"})
        cluster.set(lease, "held", px=5000)
        assert cluster.eval(both, 2, data, lease) == [b"7", b"held"]
        # What the query API's waiting request polls, here as one MULTI/EXEC on one primary.
        with cluster.pipeline(transaction=True) as pipe:
            pipe.hmget(data, "v", "d")
            pipe.exists(lease)
            assert pipe.execute() == [[b"7", b"{}"], 1]
    # Keys of two contacts may sit in two slots: the cluster refuses such a script, which is why
    # no script of ours takes them.
    first, second = _contacts_on_every_primary(cluster, "acme")[:2]
    keys = [contact_key(PREFIX, "acme", first), contact_key(PREFIX, "acme", second)]
    owner = _node_port(cluster, keys[0])
    with (
        redis.Redis("127.0.0.1", owner, socket_timeout=2) as node,
        pytest.raises(ClusterCrossSlotError),
    ):
        node.eval(both, 2, *keys)


def _status(state: str, operation_id: str) -> OperationStatus:
    return OperationStatus(operation_id=operation_id, contact_id=str(uuid.uuid4()), status=state)


def test_the_operation_store_works_through_the_cluster_client(cluster: RedisCluster) -> None:
    # RedisCluster is not a redis.Redis subclass, but it has the GET/SET the store calls, with
    # the same signatures: the store runs unchanged in cluster mode.
    store = RedisOperationStore(cast(redis.Redis, cluster), prefix=PREFIX, ttl_s=60)
    ports = set()
    for _ in range(20):
        operation_id = str(uuid.uuid4())
        applied = _status("applied", operation_id)
        store.record("acme", applied)
        store.mark_pending("acme", _status("pending", operation_id))
        assert store.get("acme", operation_id) == applied
        assert store.get("default", operation_id) is None
        key = operation_key(PREFIX, "acme", operation_id)
        assert 0 < cluster.ttl(key) <= 60
        ports.add(_node_port(cluster, key))
    assert len(ports) == 3, "single-key operation statuses spread over every primary"


def _cluster_settings(url: str, **fields: object) -> RedisSettings:
    return RedisSettings.from_env(
        {"REDIS_URL": url, "REDIS_CLUSTER_MODE": "true", **{k: str(v) for k, v in fields.items()}}
    )


def test_create_redis_in_cluster_mode_routes_to_every_primary_without_retries(
    redis_cluster_url: str, node_ports: list[int]
) -> None:
    client = create_redis(_cluster_settings(redis_cluster_url), client_name="cluster-probe")
    try:
        assert isinstance(client, RedisCluster)
        assert client.retry.get_retries() == 0
        keys = [operation_key(PREFIX, "acme", str(uuid.uuid4())) for _ in range(40)]
        for key in keys:
            client.set(key, "x", ex=60)  # a single-server client would get MOVED for 2/3
        assert all(client.get(key) == b"x" for key in keys)
        assert {_node_port(cast(RedisCluster, client), key) for key in keys} == set(node_ports)
        assert client.ping() is True
        # The same name and timeouts on each node's connections as on a single server's.
        for port in node_ports:
            with redis.Redis("127.0.0.1", port, socket_timeout=2) as node:
                names = {entry["name"] for entry in node.client_list()}
                assert "cluster-probe" in names
        node_kwargs = client.get_default_node().redis_connection.connection_pool.connection_kwargs
        assert node_kwargs["socket_timeout"] == 0.25
        assert node_kwargs["socket_connect_timeout"] == 0.25
        # redis-py's cluster client drops ``health_check_interval`` (module doc of redis_client).
        assert "health_check_interval" not in node_kwargs
    finally:
        client.close()


def test_cluster_mode_against_a_server_that_is_no_cluster_fails_at_start_up() -> None:
    # The machine's single Redis: a cluster client refuses it instead of answering MOVED later.
    with pytest.raises(RedisClusterException, match="Cluster mode is not enabled"):
        create_redis(_cluster_settings("redis://127.0.0.1:6379/0"), client_name="wrong")
    with pytest.raises(RedisClusterException, match="cannot be connected"):
        create_redis(_cluster_settings(f"redis://127.0.0.1:{free_port()}"), client_name="none")


def test_import_dead_letters_record_with_their_report_on_every_primary(
    redis_cluster_url: str,
) -> None:
    client = create_redis(_cluster_settings(redis_cluster_url), client_name="dead-letters")
    letters = RedisImportDeadLetters(client, prefix=PREFIX)
    ports = set()
    try:
        for _ in range(20):
            import_id = str(uuid.uuid4())
            report = import_key(PREFIX, "acme", import_id)
            assert letters.record("acme", import_id, "e1") is False  # no report yet
            client.set(report, "{}", ex=600)
            assert letters.record("acme", import_id, "e1") is True
            assert letters.record("acme", import_id, "e1") is True
            assert letters.record("acme", import_id, "e2") is True
            assert letters.count("acme", import_id) == 2
            assert letters.count("default", import_id) == 0
            assert letters.forget("acme", import_id, "e1") is True
            assert letters.count("acme", import_id) == 1
            dead = import_dead_letters_key(PREFIX, "acme", import_id)
            assert 0 < client.pttl(dead) <= 600_000
            ports.add(_node_port(cast(RedisCluster, client), report))
    finally:
        client.close()
    assert len(ports) == 3


def test_limits_storage_names_the_cluster_and_carries_the_bounds() -> None:
    uri, options = limits_storage(
        _cluster_settings("rediss://user:secret@cfg.example.internal:6380"), client_name="rl"
    )
    assert uri == "redis+cluster://user:secret@cfg.example.internal:6380"
    assert options["ssl"] is True
    assert options["socket_timeout"] == 0.25
    assert options["retry"].get_retries() == 0
    assert options["client_name"] == "rl"
    single, pool_options = limits_storage(RedisSettings(), client_name="rl")
    assert single == "redis://"
    assert pool_options["connection_pool"].connection_kwargs["socket_timeout"] == 0.25


def test_a_cluster_that_cannot_be_reached_is_a_connection_error() -> None:
    # Its own cluster: this test stops it. redis-py raises RedisClusterException (no RedisError)
    # when it cannot re-read the slot map; callers only know RedisError (C18 handling).
    with redis_cluster(primaries=3) as ports:
        client = create_redis(
            _cluster_settings(f"redis://127.0.0.1:{ports[0]}"), client_name="outage"
        )
        store = RedisOperationStore(client, prefix=PREFIX, ttl_s=60)
        script = client.register_script(GUARDED_SET_LUA)
        key = contact_key(PREFIX, "acme", str(uuid.uuid4()))
        assert script(keys=[key], args=[1, b"{}", 60]) == 1
    try:
        for _ in range(3):
            with pytest.raises(redis.ConnectionError):
                client.hget(key, "v")
            with pytest.raises(redis.ConnectionError):
                script(keys=[key], args=[2, b"{}", 60])
            pipe = client.pipeline(transaction=False)
            pipe.hmget(key, "v", "d")
            pipe.exists(key)
            with pytest.raises(redis.ConnectionError):
                pipe.execute()
            with pytest.raises(StoreUnavailable):
                store.get("acme", "op")
    finally:
        client.close()


def test_a_command_the_cluster_client_cannot_route_stays_a_cluster_error(
    redis_cluster_url: str,
) -> None:
    client = create_redis(_cluster_settings(redis_cluster_url), client_name="bug")
    try:
        with pytest.raises(RedisClusterException) as raised:
            client.execute_command("GET")  # no key: a bug, not an outage
        assert not isinstance(raised.value, redis.ConnectionError)
    finally:
        client.close()


def test_the_idempotency_index_works_through_the_cluster_client(cluster: RedisCluster) -> None:
    # Issue 16: the index is one key (the contact's slot); its records live in other slots.
    client = cast(redis.Redis, cluster)
    index = RedisIdempotencyIndex(client, prefix=PREFIX)
    contact, sent_for = str(uuid.uuid4()), str(uuid.uuid4())
    digests = [uuid.uuid4().hex * 2 for _ in range(8)]
    for i, digest in enumerate(digests):
        client.set(idempotency_key(PREFIX, "acme", digest), "{}", ex=60)
        index.add("acme", contact if i % 2 else sent_for, digest, ttl_s=60)
    slots = {key_slot(idempotency_key(PREFIX, "acme", d).encode()) for d in digests}
    assert len(slots) > 1  # the records are spread over the cluster
    index.merge("acme", sent_for, contact)
    assert index.forget("acme", contact) == 8
    assert sum(cluster.exists(idempotency_key(PREFIX, "acme", d)) for d in digests) == 0
