"""The command API's Redis adapters on a real three-primary Redis Cluster
(``REDIS_CLUSTER_MODE=true``, docs/architecture.md §10 "Scaling out"): idempotency records,
operation statuses and import reports are single-key commands, routed to each key's primary."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from command_api.adapters.redis_import_report_writer import RedisImportReportWriter
from command_api.adapters.redis_stores import RedisIdempotencyStore
from command_api.service_layer.ports import IdempotencyRecord
from contacts_domain import OperationStatus
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import (
    idempotency_index_key,
    idempotency_key,
    import_key,
    import_queuing_key,
    operation_key,
)
from contacts_infra.settings import RedisSettings

from .test_redis_stores import report

PREFIX = "t-cluster-command:"


@pytest.fixture(scope="module")
def client(redis_cluster_url: str) -> Iterator[redis.Redis]:
    settings = RedisSettings(redis_url=redis_cluster_url, redis_cluster_mode=True)
    client = create_redis(settings, client_name="command-api")
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


def _primaries(client: redis.Redis, keys: list[str]) -> int:
    cluster = client
    assert isinstance(cluster, RedisCluster)
    return len({cluster.get_node_from_key(key).name for key in keys})


def test_idempotency_records_per_workspace_on_every_primary(client: redis.Redis) -> None:
    store = RedisIdempotencyStore(client, prefix=PREFIX, ttl_s=60)
    keys = []
    for _ in range(30):
        digest = uuid.uuid4().hex
        ours = IdempotencyRecord("f1", str(uuid.uuid4()), str(uuid.uuid4()))
        assert store.reserve("acme", digest, ours) is None
        assert store.reserve("acme", digest, IdempotencyRecord("f2", "x", "y")) == ours
        assert store.reserve("other", digest, IdempotencyRecord("f3", "x", "y")) is None
        keys.append(idempotency_key(PREFIX, "acme", digest))
        assert 0 < client.ttl(keys[-1]) <= 60
    assert _primaries(client, keys) == 3


def test_a_refused_record_is_not_left_in_its_contacts_index(client: redis.Redis) -> None:
    # In cluster mode the index is written before the record (two slots): a refused record's
    # entry is taken out again, so erasing its contact cannot delete the first record.
    store = RedisIdempotencyStore(client, prefix=PREFIX, ttl_s=60)
    digest, x, y = uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    first = IdempotencyRecord("f1", x, str(uuid.uuid4()))
    assert store.reserve("acme", digest, first) is None
    assert store.reserve("acme", digest, IdempotencyRecord("f2", y, "o")) == first
    assert client.zscore(idempotency_index_key(PREFIX, "acme", y), digest) is None
    assert client.zscore(idempotency_index_key(PREFIX, "acme", x), digest) is not None
    # A refused record of the same contact keeps the entry the first one made.
    assert store.reserve("acme", digest, IdempotencyRecord("f3", x, "o")) == first
    assert client.zscore(idempotency_index_key(PREFIX, "acme", x), digest) is not None


def test_operation_statuses_and_import_reports_on_every_primary(client: redis.Redis) -> None:
    operations = RedisOperationStore(client, prefix=PREFIX, ttl_s=60)
    reports = RedisImportReportWriter(client, prefix=PREFIX, ttl_s=600, lease_s=60)
    op_keys, report_keys, lease_keys = [], [], []
    for _ in range(30):
        operation_id, import_id = str(uuid.uuid4()), str(uuid.uuid4())
        pending = OperationStatus(operation_id=operation_id, contact_id="c", status="pending")
        operations.mark_pending("acme", pending)
        assert operations.get("acme", operation_id) == pending
        reports.save("acme", report(import_id))
        stored = json.loads(client.get(import_key(PREFIX, "acme", import_id)))  # type: ignore[arg-type]
        assert stored == report(import_id).to_dict()
        reports.hold_queuing("acme", import_id)
        lease_keys.append(import_queuing_key(PREFIX, "acme", import_id))
        assert client.exists(lease_keys[-1])
        op_keys.append(operation_key(PREFIX, "acme", operation_id))
        report_keys.append(import_key(PREFIX, "acme", import_id))
    assert _primaries(client, op_keys) == 3
    assert _primaries(client, report_keys) == 3
    # The lease shares its report's hash slot: the query API reads both on one node.
    assert [client.cluster_keyslot(k) for k in lease_keys] == [
        client.cluster_keyslot(k) for k in report_keys
    ]
    for key in op_keys + report_keys + lease_keys:
        client.delete(key)
