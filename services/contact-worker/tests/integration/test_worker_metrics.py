"""The worker's metrics against a real SQS server: queue depths polled with
GetQueueAttributes, and how a task's receive count and database errors are reported."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from contact_worker.adapters.cache_repairs import SqlCacheRepairs
from contact_worker.adapters.change_feed_lag import ChangeFeedLag
from contact_worker.adapters.queue_metrics import QueueDepthPoller
from contact_worker.entrypoints.celery_app import DatabaseFailure, receive_count, without_values
from contact_worker.entrypoints.metrics import WorkerMetrics
from contacts_domain import ContactState
from contacts_telemetry.metrics import MetricsRegistry
from support.resources import isolated_queues


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.registry.get_sample_value(name, labels)


def test_queue_depths_of_the_queue_and_its_dlq_are_polled(sqs_client: Any) -> None:
    metrics = WorkerMetrics(MetricsRegistry())
    with isolated_queues(sqs_client, f"m{uuid.uuid4().hex[:10]}") as urls:
        for i in range(3):
            sqs_client.send_message(
                QueueUrl=urls.main,
                MessageBody="{}",
                MessageGroupId=f"g{i}",
                MessageDeduplicationId=str(uuid.uuid4()),
            )
        sqs_client.receive_message(QueueUrl=urls.main, MaxNumberOfMessages=1)  # one in flight
        poller = QueueDepthPoller(sqs_client, {"main": urls.main, "dlq": urls.dlq}, metrics, 60)
        metrics.event_started(42.0)
        assert poller.poll_once() == {"main": (2, 1), "dlq": (0, 0)}
        assert value(metrics, "sqs_messages", queue="main", state="visible") == 2
        assert value(metrics, "sqs_messages", queue="main", state="in_flight") == 1
        assert value(metrics, "sqs_messages", queue="dlq", state="visible") == 0
        assert value(metrics, "sqs_oldest_message_age_seconds") == 42.0  # queue not empty

    with isolated_queues(sqs_client, f"e{uuid.uuid4().hex[:10]}") as urls:
        QueueDepthPoller(sqs_client, {"main": urls.main}, metrics, 60).poll_once()
        assert value(metrics, "sqs_oldest_message_age_seconds") == 0  # empty: nothing waits


def test_receive_count_comes_from_the_sqs_message_properties() -> None:
    sqs_message = {"Attributes": {"ApproximateReceiveCount": "3"}}
    request = SimpleNamespace(properties={"delivery_info": {"sqs_message": sqs_message}})
    assert receive_count(request) == 3
    assert receive_count(SimpleNamespace(properties=None)) is None
    assert receive_count(object()) is None


def test_database_errors_are_retold_without_the_values_postgresql_quotes(
    database_url: str,
) -> None:
    engine = sa.create_engine(database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as error, engine.connect() as connection:
            connection.execute(sa.text("SELECT CAST(:x AS int)"), {"x": "Quorbelvantrexi"})
    finally:
        engine.dispose()
    assert "Quorbelvantrexi" in str(error.value)  # what Celery would have logged
    safe = without_values(error.value)
    assert isinstance(safe, DatabaseFailure)
    assert str(safe) == "InvalidTextRepresentation (SQLSTATE 22P02)"


def test_the_change_feed_lag_counts_changes_a_running_transaction_holds_back(
    database_url: str,
) -> None:
    """A transaction that began first and is still running holds back a change committed
    after it (the feed serves only below the oldest running transaction): the lag is that
    change's age, and it is set on the worker's gauge (issue 15)."""
    engine = sa.create_engine(database_url)
    metrics = WorkerMetrics(MetricsRegistry())
    lag = ChangeFeedLag(engine)
    poller = QueueDepthPoller(None, {}, metrics, 60, change_feed_lag=lag.seconds)
    insert = sa.text(
        "INSERT INTO contacts (workspace, id, emails, phones, addresses, tags, email_keys,"
        " version, alive, created_at, updated_at) VALUES"
        " ('default', :id, '[]', '[]', '[]', '{}', '{}', 1, true, now(), now())"
    )
    try:
        with engine.connect() as holder:
            running = holder.begin()
            holder.execute(sa.text("SELECT pg_current_xact_id()"))  # takes a transaction id
            with engine.begin() as writer:
                writer.execute(insert, {"id": str(uuid.uuid4())})
            time.sleep(1.2)
            held = poller.poll_change_feed()
            running.rollback()
        assert held is not None
        assert held >= 1.0
        assert value(metrics, "change_feed_lag_seconds") == held
    finally:
        engine.dispose()


def test_the_owed_cache_entries_of_this_cache_are_counted_into_their_gauge(
    database_url: str,
) -> None:
    """Cache writes that failed after a commit and are not repaired yet (case C18), for the
    ``ContactsCacheEntriesOwed`` alert: only the rows of the worker's own cache count."""
    engine = sa.create_engine(database_url)
    mine, theirs = f"metrics-{uuid.uuid4().hex[:6]}:", f"metrics-{uuid.uuid4().hex[:6]}:"
    metrics = WorkerMetrics(MetricsRegistry())
    poller = QueueDepthPoller(
        None, {}, metrics, 60, owed_cache_entries=SqlCacheRepairs(engine, mine).count
    )
    owed = [ContactState(str(uuid.uuid4()), workspace="default", version=2) for _ in range(3)]
    try:
        assert poller.poll_owed_cache_entries() == 0
        SqlCacheRepairs(engine, mine).record(owed[:2])
        SqlCacheRepairs(engine, theirs).record(owed[2:])

        assert poller.poll_owed_cache_entries() == 2
        assert value(metrics, "contact_cache_owed_entries") == 2
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM cache_repairs WHERE cache IN (:a, :b)"),
                {"a": mine, "b": theirs},
            )
        engine.dispose()
