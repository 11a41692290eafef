"""The Redis adapters against the run's real Redis (and a closed port for outages)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid

import pytest

from command_api.adapters.redis_import_report_writer import RedisImportReportWriter
from command_api.adapters.redis_stores import RedisIdempotencyStore
from command_api.service_layer.ports import IdempotencyRecord
from contacts_domain import DEFAULT_WORKSPACE, OperationStatus
from contacts_domain.imports import ImportProblem, ImportReport
from contacts_domain.ports import StoreUnavailable
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

WS = DEFAULT_WORKSPACE


@pytest.fixture
def client(command_settings):
    return create_redis(command_settings, client_name="command-api-test")


@pytest.fixture
def down_client():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return create_redis(
        RedisSettings(redis_url=f"redis://127.0.0.1:{port}/0"), client_name="command-api-test"
    )


def test_mark_pending_never_overwrites_a_final_status(client, command_settings) -> None:
    store = RedisOperationStore(client, prefix=command_settings.redis_prefix, ttl_s=60)
    op, contact = str(uuid.uuid4()), str(uuid.uuid4())
    store.record(WS, OperationStatus(op, contact, "applied", version=1))
    store.mark_pending(WS, OperationStatus(op, contact, "pending"))
    assert store.get(WS, op) == OperationStatus(op, contact, "applied", version=1)


def test_mark_pending_writes_json_with_a_ttl(client, command_settings) -> None:
    store = RedisOperationStore(client, prefix=command_settings.redis_prefix, ttl_s=60)
    op, contact = str(uuid.uuid4()), str(uuid.uuid4())
    store.mark_pending(WS, OperationStatus(op, contact, "pending"))
    key = operation_key(command_settings.redis_prefix, WS, op)
    assert json.loads(client.get(key))["status"] == "pending"
    assert 0 < client.ttl(key) <= 60


def test_mark_all_pending_writes_each_with_a_ttl_and_keeps_final_statuses(
    client, command_settings
) -> None:
    # A batch's pending statuses go in one round trip, with mark_pending's rules for each.
    store = RedisOperationStore(client, prefix=command_settings.redis_prefix, ttl_s=60)
    ops = [str(uuid.uuid4()) for _ in range(3)]
    contact = str(uuid.uuid4())
    store.record(WS, OperationStatus(ops[1], contact, "applied", version=1))
    store.mark_all_pending(WS, [OperationStatus(op, contact, "pending") for op in ops])
    assert [store.get(WS, op) for op in ops] == [
        OperationStatus(ops[0], contact, "pending"),
        OperationStatus(ops[1], contact, "applied", version=1),
        OperationStatus(ops[2], contact, "pending"),
    ]
    for op in (ops[0], ops[2]):
        assert 0 < client.ttl(operation_key(command_settings.redis_prefix, WS, op)) <= 60


def test_reserve_keeps_the_first_record(client, command_settings) -> None:
    store = RedisIdempotencyStore(client, prefix=command_settings.redis_prefix, ttl_s=60)
    digest = uuid.uuid4().hex
    first = IdempotencyRecord("f1", str(uuid.uuid4()), str(uuid.uuid4()))
    assert store.reserve(WS, digest, first) is None
    assert store.reserve(WS, digest, IdempotencyRecord("f2", "x", "y")) == first
    assert client.ttl(idempotency_key(command_settings.redis_prefix, WS, digest)) > 0


def test_find_reads_the_stored_record_without_storing_one(client, command_settings) -> None:
    # A busy import server checks a key's fingerprint this way (422 before its 503).
    prefix = command_settings.redis_prefix
    store = RedisIdempotencyStore(client, prefix=prefix, ttl_s=60)
    digest = uuid.uuid4().hex
    record = IdempotencyRecord("f1", str(uuid.uuid4()), str(uuid.uuid4()), "seq-1")
    assert store.find(WS, digest) is None
    assert client.exists(idempotency_key(prefix, WS, digest)) == 0
    assert store.reserve(WS, digest, record) is None
    assert store.find(WS, digest) == record
    assert store.find("acme", digest) is None


def test_a_record_is_indexed_under_the_contact_it_names(client, command_settings) -> None:
    # Issue 16: the worker finds a contact's idempotency records there when it erases it.
    prefix = command_settings.redis_prefix
    store = RedisIdempotencyStore(client, prefix=prefix, ttl_s=60)
    digest, contact = uuid.uuid4().hex, str(uuid.uuid4())
    assert store.reserve("acme", digest, IdempotencyRecord("f", contact, "o")) is None
    index = idempotency_index_key(prefix, "acme", contact)
    assert client.zrange(index, 0, -1) == [digest.encode()]
    assert 0 < client.ttl(index) <= 60


def test_a_refused_record_is_not_indexed_under_its_contact(client, command_settings) -> None:
    # The key bound to a write of contact X, reused for contact Y (refused, 422): erasing Y
    # must not delete X's record, so Y's index must not name the key.
    prefix = command_settings.redis_prefix
    store = RedisIdempotencyStore(client, prefix=prefix, ttl_s=60)
    digest, x, y = uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    first = IdempotencyRecord("f1", x, str(uuid.uuid4()))
    assert store.reserve(WS, digest, first) is None
    assert store.reserve(WS, digest, IdempotencyRecord("f2", y, str(uuid.uuid4()))) == first
    assert client.exists(idempotency_index_key(prefix, WS, y)) == 0
    assert client.zrange(idempotency_index_key(prefix, WS, x), 0, -1) == [digest.encode()]


def test_the_same_key_digest_in_two_workspaces_is_two_records(client, command_settings) -> None:
    store = RedisIdempotencyStore(client, prefix=command_settings.redis_prefix, ttl_s=60)
    digest = uuid.uuid4().hex
    ours = IdempotencyRecord("f1", str(uuid.uuid4()), str(uuid.uuid4()))
    theirs = IdempotencyRecord("f2", str(uuid.uuid4()), str(uuid.uuid4()))
    assert store.reserve(WS, digest, ours) is None
    assert store.reserve("acme", digest, theirs) is None
    assert store.reserve("acme", digest, ours) == theirs
    stored = json.loads(client.get(idempotency_key(command_settings.redis_prefix, "acme", digest)))
    assert IdempotencyRecord.from_dict(stored) == theirs


def test_redis_down_is_store_unavailable(down_client) -> None:
    with pytest.raises(StoreUnavailable):
        RedisOperationStore(down_client, prefix="p:", ttl_s=60).mark_pending(
            WS, OperationStatus("o", "c", "pending")
        )
    with pytest.raises(StoreUnavailable):
        RedisOperationStore(down_client, prefix="p:", ttl_s=60).mark_all_pending(
            WS, [OperationStatus("o", "c", "pending"), OperationStatus("o2", "c", "pending")]
        )
    with pytest.raises(StoreUnavailable):
        RedisIdempotencyStore(down_client, prefix="p:", ttl_s=60).reserve(
            WS, "d", IdempotencyRecord("f", "c", "o")
        )
    with pytest.raises(StoreUnavailable):
        RedisIdempotencyStore(down_client, prefix="p:", ttl_s=60).find(WS, "d")


def report(import_id: str, state: str = "queued") -> ImportReport:
    return ImportReport(
        import_id=import_id,
        format="vcard",
        state=state,  # type: ignore[arg-type]
        received=3,
        accepted=2,
        invalid=1,
        failed=0,
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        errors=(ImportProblem(2, 5, "emails.0.value", "Not a valid email address."),),
    )


def test_import_reports_are_written_where_the_query_api_reads_them(
    client, command_settings
) -> None:
    writer = RedisImportReportWriter(
        client, prefix=command_settings.redis_prefix, ttl_s=60, lease_s=30
    )
    import_id = str(uuid.uuid4())
    writer.save("acme", report(import_id))
    key = import_key(command_settings.redis_prefix, "acme", import_id)
    assert ImportReport.from_dict(json.loads(client.get(key))) == report(import_id)
    assert 0 < client.ttl(key) <= 60
    assert client.get(import_key(command_settings.redis_prefix, WS, import_id)) is None


def test_a_rewritten_import_report_replaces_the_first(client, command_settings) -> None:
    writer = RedisImportReportWriter(
        client, prefix=command_settings.redis_prefix, ttl_s=60, lease_s=30
    )
    import_id = str(uuid.uuid4())
    writer.save(WS, report(import_id))
    writer.save(WS, report(import_id, "failed"))
    stored = json.loads(client.get(import_key(command_settings.redis_prefix, WS, import_id)))
    assert stored["state"] == "failed"


def test_the_created_at_of_a_stored_import_report(client, command_settings) -> None:
    writer = RedisImportReportWriter(
        client, prefix=command_settings.redis_prefix, ttl_s=60, lease_s=30
    )
    import_id = str(uuid.uuid4())
    assert writer.created_at(WS, import_id) is None
    writer.save(WS, report(import_id))
    assert writer.created_at(WS, import_id) == report(import_id).created_at
    assert writer.created_at("acme", import_id) is None


def test_the_queuing_lease_lives_lease_s_after_each_renewal(client, command_settings) -> None:
    writer = RedisImportReportWriter(
        client, prefix=command_settings.redis_prefix, ttl_s=60, lease_s=30
    )
    import_id = str(uuid.uuid4())
    key = import_queuing_key(command_settings.redis_prefix, "acme", import_id)
    writer.hold_queuing("acme", import_id)
    assert 0 < client.ttl(key) <= 30
    client.expire(key, 5)
    writer.hold_queuing("acme", import_id)  # a renewal after a chunk
    assert 5 < client.ttl(key) <= 30
    assert not client.exists(import_queuing_key(command_settings.redis_prefix, WS, import_id))


def test_redis_down_fails_the_import_report_writer(down_client) -> None:
    with pytest.raises(StoreUnavailable):
        RedisImportReportWriter(down_client, prefix="p:", ttl_s=60, lease_s=30).save(
            WS, report("i")
        )
    with pytest.raises(StoreUnavailable):
        RedisImportReportWriter(down_client, prefix="p:", ttl_s=60, lease_s=30).hold_queuing(
            WS, "i"
        )
    with pytest.raises(StoreUnavailable):
        RedisImportReportWriter(down_client, prefix="p:", ttl_s=60, lease_s=30).created_at(WS, "i")
