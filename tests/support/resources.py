"""Isolated resources of one test run: a database, a Redis prefix and SQS queues of its own."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import boto3
import redis
import sqlalchemy as sa
from botocore.config import Config

from contact_worker.adapters.queues import QueueUrls, ensure_queues
from contact_worker.entrypoints.admin import create_database, migrate

SERVER_URL = "postgresql+psycopg2://root@127.0.0.1:5432"
READER_ROLE = "contacts_reader"

#: Worker time bounds for tests: same order as production, scaled down so redelivery and
#: dead-lettering happen within seconds.
TEST_WORKER_ENV = {
    "SQS_VISIBILITY_TIMEOUT_S": "12",
    "SQS_MAX_RECEIVE_COUNT": "3",
    "RETRY_BACKOFF_S": "1,1,1,1,1",
    "DB_LOCK_TIMEOUT_MS": "2000",
    "DB_STATEMENT_TIMEOUT_MS": "4000",
    "TASK_SOFT_TIME_LIMIT_S": "6",
    "TASK_TIME_LIMIT_S": "8",
    "SQS_WAIT_TIME_S": "10",
    "SQS_POLLING_INTERVAL_S": "0.1",
}


@dataclasses.dataclass(frozen=True)
class TestDatabase:
    name: str

    @property
    def url(self) -> str:
        return f"{SERVER_URL}/{self.name}"

    @property
    def reader_url(self) -> str:
        return f"postgresql+psycopg2://{READER_ROLE}@127.0.0.1:5432/{self.name}"


@contextmanager
def isolated_database(run_id: str) -> Iterator[TestDatabase]:
    """Create and migrate ``contacts_t<run_id>``; drop it afterwards."""
    db = TestDatabase(f"contacts_t{run_id}")
    create_database(db.url)
    migrate(db.url, READER_ROLE)
    try:
        yield db
    finally:
        engine = sa.create_engine(f"{SERVER_URL}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)'))
        engine.dispose()


def sqs_client(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=3, read_timeout=25, retries={"max_attempts": 2}),
    )


@contextmanager
def isolated_queues(
    sqs: Any, name: str, worker_env: dict[str, str] | None = None
) -> Iterator[QueueUrls]:
    """Create the FIFO queue ``<name>.fifo`` and its DLQ with the visibility timeout and
    ``maxReceiveCount`` of ``worker_env`` (default: the test bounds); delete them after."""
    env = {**TEST_WORKER_ENV, **(worker_env or {})}
    urls = ensure_queues(
        sqs,
        name=f"{name}.fifo",
        dlq_name=f"{name}-dlq.fifo",
        visibility_timeout_s=int(env["SQS_VISIBILITY_TIMEOUT_S"]),
        max_receive_count=int(env["SQS_MAX_RECEIVE_COUNT"]),
    )
    try:
        yield urls
    finally:
        for url in (urls.main, urls.dlq):
            sqs.delete_queue(QueueUrl=url)


def queue_env(name: str, urls: QueueUrls, *, sqs_url: str | None = None) -> dict[str, str]:
    """The settings that point a stack at the queues ``isolated_queues(sqs, name)`` made, with a
    worker heartbeat file of its own. With ``sqs_url`` (a fault proxy in front of the SQS
    server), the endpoint and the queue URL go through it."""
    env = {
        "SQS_QUEUE_NAME": f"{name}.fifo",
        "SQS_DLQ_NAME": f"{name}-dlq.fifo",
        "SQS_QUEUE_URL": urls.main,
        "WORKER_HEARTBEAT_FILE": f"/tmp/{name}.heartbeat",
    }
    if sqs_url:
        proxy = urlsplit(sqs_url).netloc
        env["SQS_QUEUE_URL"] = urlsplit(urls.main)._replace(netloc=proxy).geturl()
        env["SQS_ENDPOINT_URL"] = sqs_url
    return env


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]
