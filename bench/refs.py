"""The raw references of ``make bench``: what Redis, SQS and PostgreSQL do with no service code.

Each function runs one repetition and returns its figures; ``run.py`` repeats them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import psycopg2
import psycopg2.extras
from botocore.config import Config

#: Redis database used by redis-benchmark (its one key is deleted afterwards), so the keys of
#: ``make up`` and of test runs in database 0 are never touched.
REDIS_BENCH_DB = 15


def redis_get(
    host: str, port: int, value_bytes: int, clients: int, requests: int
) -> dict[str, Any]:
    """``redis-benchmark`` SET then GET of one ``value_bytes``-byte value with ``clients``
    connections and no pipelining; returns GET req/s and latencies in ms."""
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            host,
            "-p",
            str(port),
            "--dbnum",
            str(REDIS_BENCH_DB),
            "-t",
            "set,get",
            "-d",
            str(value_bytes),
            "-c",
            str(clients),
            "-n",
            str(requests),
            "--csv",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    subprocess.run(
        [
            "redis-cli",
            "-h",
            host,
            "-p",
            str(port),
            "-n",
            str(REDIS_BENCH_DB),
            "DEL",
            "key:__rand_int__",
        ],
        check=True,
        capture_output=True,
    )
    for row in csv.DictReader(io.StringIO(out)):
        if row["test"] == "GET":
            return {
                "rps": float(row["rps"]),
                "p50_ms": float(row["p50_latency_ms"]),
                "p99_ms": float(row["p99_latency_ms"]),
            }
    raise RuntimeError(f"no GET line in redis-benchmark output:\n{out}")


def sqs_client(endpoint_url: str | None, region: str, key: str | None, secret: str | None) -> Any:
    """A boto3 SQS client like the services' (bounded timeouts, one retry mode)."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url or None,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            connect_timeout=3,
            read_timeout=10,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=64,
        ),
    )


def create_fifo_queue(client: Any, name: str) -> str:
    """Create (or find) FIFO queue ``name`` without deduplication by content; returns its URL."""
    return client.create_queue(
        QueueName=name,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": "60",
        },
    )["QueueUrl"]


def queue_depth(client: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue at ``url``."""
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def sqs_send(
    make_client: Callable[[], Any], url: str, body: str, threads: int, seconds: float
) -> dict[str, Any]:
    """Raw ``SendMessage`` from one process with ``threads`` threads (a client each) for
    ``seconds`` s; every message has its own group and deduplication id. Returns msg/s."""
    stop = time.perf_counter() + seconds
    counts = [0] * threads
    latencies: list[float] = []
    lock = threading.Lock()

    def loop(slot: int) -> None:
        client = make_client()
        mine: list[float] = []
        while time.perf_counter() < stop:
            started = time.perf_counter()
            client.send_message(
                QueueUrl=url,
                MessageBody=body,
                MessageGroupId=str(uuid.uuid4()),
                MessageDeduplicationId=uuid.uuid4().hex,
            )
            mine.append(time.perf_counter() - started)
            counts[slot] += 1
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": sum(counts) / elapsed,
        "sent": sum(counts),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else None,
    }


def sqs_fill(
    make_client: Callable[[], Any], url: str, messages: Sequence[dict[str, Any]], threads: int = 8
) -> float:
    """Put ``messages`` (``SendMessage`` arguments: body, group and deduplication ids) on the
    queue at ``url`` with ``SendMessageBatch``, 10 per call from ``threads`` threads; returns
    the seconds it took."""
    batches = [messages[i : i + 10] for i in range(0, len(messages), 10)]
    local = threading.local()

    def send(batch: Sequence[dict[str, Any]]) -> None:
        if not hasattr(local, "client"):
            local.client = make_client()
        entries = [
            {
                "Id": str(n),
                "MessageBody": m["MessageBody"],
                "MessageGroupId": m["MessageGroupId"],
                "MessageDeduplicationId": m["MessageDeduplicationId"],
            }
            for n, m in enumerate(batch)
        ]
        answer = local.client.send_message_batch(QueueUrl=url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed: {answer['Failed'][:1]}")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, batches))
    return time.perf_counter() - started


def sqs_drain(client: Any, url: str, expected: int, timeout_s: float = 120.0) -> dict[str, Any]:
    """Raw drain by one consumer: ``ReceiveMessage`` (10, long poll 1 s) then
    ``DeleteMessageBatch`` of what it got, until ``expected`` messages are deleted. Returns
    messages/s from the first receive to the last delete."""
    deleted = 0
    started = time.perf_counter()
    deadline = started + timeout_s
    while deleted < expected and time.perf_counter() < deadline:
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            continue
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )
        deleted += len(messages)
    elapsed = time.perf_counter() - started
    return {"rps": deleted / elapsed, "deleted": deleted, "seconds": elapsed}


def pg_upsert(dsn: str, rows: Sequence[dict[str, Any]], batch: int = 500) -> dict[str, Any]:
    """Batched ``INSERT … ON CONFLICT (workspace, id) DO UPDATE`` of ``rows`` (the worker's
    column values) into ``contacts`` from one connection, ``batch`` rows per statement and per
    commit; returns rows/s. The rows are deleted afterwards (not timed)."""
    columns = list(rows[0])
    json_columns = {"emails", "phones", "addresses"}
    template = (
        "("
        + ", ".join(f"%({c})s::jsonb" if c in json_columns else f"%({c})s" for c in columns)
        + ")"
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in ("workspace", "id"))
    statement = (
        f"INSERT INTO contacts ({', '.join(columns)}) VALUES %s "
        f"ON CONFLICT (workspace, id) DO UPDATE SET {updates}"
    )
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            psycopg2.extras.execute_values(
                cur, statement, rows[start : start + batch], template=template, page_size=batch
            )
            conn.commit()
        elapsed = time.perf_counter() - started
        cur.execute("DELETE FROM contacts WHERE id = ANY(%s::uuid[])", ([r["id"] for r in rows],))
        conn.commit()
    return {"rps": len(rows) / elapsed, "rows": len(rows), "seconds": elapsed}
