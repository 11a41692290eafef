"""Session fixtures shared by every package's tests: real PostgreSQL, Redis and SQS, isolated.

Each test run gets its own database (migrated), Redis key prefix and SQS queues, so runs cannot
see each other's data (docs/architecture.md §7). An SQS-compatible server already serving at
``TEST_SQS_ENDPOINT_URL`` (default: the one ``make up`` starts) is reused; otherwise LocalStack
is started for the session on a free port and stopped afterwards.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import settings

from support.auth import AUTH_ENV
from support.processes import Service, free_port, http_ok, sqs_server
from support.redis_cluster import RedisClusterUnavailable, redis_cluster
from support.resources import (
    TEST_WORKER_ENV,
    TestDatabase,
    delete_prefix,
    isolated_database,
    isolated_queues,
    new_run_id,
)
from support.resources import (
    sqs_client as make_sqs_client,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# No per-example deadline for property tests (hypothesis's default is 200 ms): on a loaded
# machine, with two xdist processes beside the services, one example past it failed a test
# that asserts nothing about time. Speed is measured by `make bench`, not by tests.
settings.register_profile("contacts", deadline=None)
settings.load_profile("contacts")


@pytest.fixture(scope="session")
def run_id() -> str:
    return new_run_id()


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    endpoint = os.environ.get("TEST_SQS_ENDPOINT_URL")
    if endpoint:
        if not http_ok(f"{endpoint}/_localstack/health"):
            pytest.exit(f"TEST_SQS_ENDPOINT_URL={endpoint} does not answer", returncode=3)
        yield endpoint
        return
    port = free_port()
    server: Service = sqs_server(port, tempfile.mkdtemp(prefix="localstack-")).start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: http_ok(f"{endpoint}/_localstack/health"), 90, "SQS health")
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqs_client(sqs_endpoint: str) -> Any:
    return make_sqs_client(sqs_endpoint)


@pytest.fixture(scope="session")
def queue_urls(sqs_client: Any, run_id: str) -> Iterator[Any]:
    with isolated_queues(sqs_client, f"t{run_id}") as urls:
        yield urls


@pytest.fixture(scope="session")
def database(run_id: str) -> Iterator[TestDatabase]:
    with isolated_database(run_id) as db:
        yield db


@pytest.fixture(scope="session")
def database_url(database: TestDatabase) -> str:
    return database.url


@pytest.fixture(scope="session")
def reader_database_url(database: TestDatabase) -> str:
    return database.reader_url


@pytest.fixture(scope="session")
def redis_prefix(run_id: str) -> str:
    return f"t{run_id}:"


@pytest.fixture(scope="session")
def redis_client(redis_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    delete_prefix(client, redis_prefix)
    client.close()


@pytest.fixture(scope="session")
def redis_cluster_ports() -> Iterator[list[int]]:
    """A real Redis Cluster of three primaries on loopback for the session
    (``support.redis_cluster``): the ports of its nodes. Skips when ``redis-server`` is
    missing."""
    try:
        with redis_cluster(primaries=3) as ports:
            yield ports
    except RedisClusterUnavailable as exc:
        pytest.skip(f"no Redis Cluster: {exc}")


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster_ports: list[int]) -> str:
    """``REDIS_URL`` of the session's Redis Cluster (one node; clients learn the others)."""
    return f"redis://127.0.0.1:{redis_cluster_ports[0]}/0"


@pytest.fixture(scope="session")
def stack_env(
    database: TestDatabase,
    redis_prefix: str,
    sqs_endpoint: str,
    queue_urls: Any,
    run_id: str,
) -> dict[str, str]:
    """Environment variables (docs/contracts.md) that point every service at this run; the
    APIs accept this session's API key (``support.auth``)."""
    return {
        "DATABASE_URL": database.url,
        "QUERY_DATABASE_URL": database.reader_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "SQS_ENDPOINT_URL": sqs_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "SQS_QUEUE_NAME": f"t{run_id}.fifo",
        "SQS_DLQ_NAME": f"t{run_id}-dlq.fifo",
        "SQS_QUEUE_URL": queue_urls.main,
        "DEFAULT_PHONE_REGION": "US",
        "QUERY_API_BASE_URL": "http://127.0.0.1:8002",
        **TEST_WORKER_ENV,
        **AUTH_ENV,
    }
