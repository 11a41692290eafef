"""The worker's Redis adapters and ``workspace erase`` on a real three-primary Redis Cluster
(``REDIS_CLUSTER_MODE=true``, docs/architecture.md §10 "Scaling out"): the guarded cache write
and operation statuses route to the primary of each key's slot, and the erasure finds a
workspace's keys on every primary (a SCAN sees one node) and unlinks them key by key."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
import redis
import sqlalchemy as sa
from redis.cluster import RedisCluster

from contact_worker.adapters.workspaces import erase_workspace
from contact_worker.bootstrap import Runtime
from contact_worker.settings import Settings
from contacts_domain import ContactState
from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import contact_key, operation_key

from .test_workspaces import ADMIN, _handle, _populate, _rows, engine, event_in, new_workspace

__all__ = ["engine"]  # fixtures used here


@pytest.fixture(scope="module")
def cluster_env(stack_env: dict[str, str], redis_cluster_url: str) -> dict[str, str]:
    return {**stack_env, "REDIS_URL": redis_cluster_url, "REDIS_CLUSTER_MODE": "true"}


@pytest.fixture(scope="module")
def cluster_runtime(cluster_env: dict[str, str]) -> Runtime:
    return Runtime(Settings.from_env(cluster_env))


@pytest.fixture(scope="module")
def cluster(cluster_runtime: Runtime) -> Iterator[RedisCluster]:
    client = create_redis(cluster_runtime.settings, client_name="worker-cluster-test")
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


def _ports(cluster: RedisCluster, keys: list[bytes] | list[str]) -> set[int]:
    return {int(cluster.get_node_from_key(key).port) for key in keys}


def _spread(cluster: RedisCluster, prefix: str, ws: str, per_primary: int = 3) -> list[str]:
    """Contact ids of ``ws`` whose keys sit ``per_primary`` on each primary of ``cluster``."""
    by_port: dict[int, list[str]] = {int(node.port): [] for node in cluster.get_primaries()}
    while any(len(ids) < per_primary for ids in by_port.values()):
        cid = str(uuid.uuid4())
        by_port[int(cluster.get_node_from_key(contact_key(prefix, ws, cid)).port)].append(cid)
    return [cid for ids in by_port.values() for cid in ids[:per_primary]]


def test_the_worker_writes_its_cache_and_statuses_through_the_cluster(
    cluster_runtime: Runtime, cluster: RedisCluster
) -> None:
    ports = cluster_runtime.ports()
    prefix, ws = cluster_runtime.settings.redis_prefix, new_workspace()
    cids = _spread(cluster, prefix, ws)
    for cid in cids:
        created = _handle(ports, event_in(ws, "created", cid, {"first_name": "A"}))
        assert created.status == "applied"
        assert ports.operations.get(ws, created.operation_id) == created
    keys = [contact_key(prefix, ws, cid) for cid in cids]
    assert _ports(cluster, keys) == {int(n.port) for n in cluster.get_primaries()}
    assert all(cluster.hget(key, "v") == b"1" for key in keys)
    deleted = _handle(ports, event_in(ws, "deleted", cids[1]))
    assert deleted.status == "applied"
    assert cluster.hmget(keys[1], "v", "d") == [b"2", b""]
    # An older version never replaces a newer one: the guarded script on each primary.
    for cid, key in zip(cids, keys, strict=True):
        stale = ContactState(cid, {"first_name": "Old"}, alive=True, version=1, workspace=ws)
        assert ports.cache.put(stale) is False
        assert cluster.hget(key, "v") == (b"2" if cid == cids[1] else b"1")
    assert cluster.exists(operation_key(prefix, ws, deleted.operation_id)) == 1


def test_erase_finds_a_workspace_on_every_primary_and_leaves_the_others(
    cluster_runtime: Runtime, cluster: RedisCluster, engine: sa.Engine
) -> None:
    prefix = cluster_runtime.settings.redis_prefix
    gone, kept = new_workspace(), new_workspace()
    client = cast(redis.Redis, cluster)
    _populate(cluster_runtime, client, gone, 12)
    _populate(cluster_runtime, client, kept, 3)
    gone_keys = list(cluster.scan_iter(match=f"{prefix}*{gone}/*"))
    kept_keys = sorted(cluster.scan_iter(match=f"{prefix}*{kept}/*"))
    # contacts (one deleted), ops, idem, the idempotency index of one contact, import
    assert len(gone_keys) == 13 + 14 + 3
    assert _ports(cluster, gone_keys) == {int(n.port) for n in cluster.get_primaries()}

    report = erase_workspace(engine, client, prefix=prefix, workspace=gone, batch=5)

    assert report.keys == {
        "contact": 13,
        "refill": 0,
        "op": 14,
        "idem": 1,
        "idem-index": 1,
        "import": 1,
        "import-dead": 0,
    }
    assert report.rows["contacts"] == 13
    assert list(cluster.scan_iter(match=f"{prefix}*{gone}*")) == []
    assert sorted(cluster.scan_iter(match=f"{prefix}*{kept}/*")) == kept_keys
    assert _rows(engine, kept)["contacts"] == 4


def test_the_admin_command_erases_in_cluster_mode(
    cluster_runtime: Runtime, cluster: RedisCluster, cluster_env: dict[str, str]
) -> None:
    ws = new_workspace()
    _populate(cluster_runtime, cast(redis.Redis, cluster), ws, 6)
    prefix = cluster_runtime.settings.redis_prefix
    assert list(cluster.scan_iter(match=f"{prefix}*{ws}/*"))
    erased = subprocess.run(
        [str(ADMIN), "workspace", "erase", ws, "--yes"],
        env={**os.environ, **cluster_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert erased.returncode == 0, erased.stderr[-2000:]
    assert f"workspace {ws}: removed 7 Redis contact keys" in erased.stdout
    assert f"workspace {ws}: removed 8 Redis op keys" in erased.stdout
    assert list(cluster.scan_iter(match=f"{prefix}*{ws}*")) == []
