"""The real services (both APIs under gunicorn, the worker) on a three-primary Redis Cluster
(``REDIS_CLUSTER_MODE=true``, docs/architecture.md §10 "Scaling out"): a create is applied,
its status and the contact are read back (the contact from the cache the worker wrote), an
Idempotency-Key replays, and the query API's rate limit counts in the cluster."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from contacts_infra.redis_keys import contact_key
from support.auth import api
from support.processes import command_api, free_port, query_api, worker
from support.resources import isolated_queues, queue_env
from support.stack import Stack, running_stack

pytestmark = pytest.mark.processes

#: The query API's limit on GET /v1/contacts/{id} per caller (the other routes keep theirs).
GET_LIMIT = 6


@pytest.fixture(scope="module")
def cluster_stack(
    stack_env: dict[str, str], sqs_client: Any, run_id: str, redis_cluster_url: str
) -> Iterator[Stack]:
    name = f"rc{run_id}"
    command_port, query_port = free_port(), free_port()
    with isolated_queues(sqs_client, name) as urls:
        env = {
            **stack_env,
            **queue_env(name, urls),
            "REDIS_URL": redis_cluster_url,
            "REDIS_CLUSTER_MODE": "true",
            "REDIS_PREFIX": f"{stack_env['REDIS_PREFIX']}rc:",
            "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
        }
        query_env = {
            **env,
            "RATE_LIMIT_ROUTES": json.dumps({"contacts.get_contact": f"{GET_LIMIT}/minute"}),
        }
        with running_stack(
            env,
            command_api(command_port, env),
            query_api(query_port, query_env),
            worker(env, concurrency=2),
            command_port=command_port,
            query_port=query_port,
        ) as stack:
            yield stack


@pytest.fixture(scope="module")
def cluster(redis_cluster_url: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster_url, socket_timeout=2)
    yield client
    client.close()


def test_create_applied_get_hit_and_a_rate_limit_in_cluster_mode(
    cluster_stack: Stack, cluster: RedisCluster
) -> None:
    prefix = cluster_stack.env["REDIS_PREFIX"]
    key = str(uuid.uuid4())
    email = f"cluster.{uuid.uuid4().hex[:8]}@example.com"
    posted = [
        api.post(
            f"{cluster_stack.command_url}/v1/contacts",
            json={"first_name": "Ada", "email": email},
            headers={"Idempotency-Key": key},
            timeout=10,
        )
        for _ in range(2)
    ]
    assert [answer.status_code for answer in posted] == [202, 202], posted[0].text
    body = posted[0].json()
    assert posted[1].json()["operation_id"] == body["operation_id"]  # replayed, not resent
    operation = cluster_stack.wait_operation(body["operation_id"])
    assert operation["status"] == "applied"

    # The worker writes the entry on the primary of the contact's slot just after its commit
    # (which the status may already report); then the GET is a hit.
    entry = contact_key(prefix, "default", body["id"])
    deadline = time.monotonic() + 10
    while cluster.hget(entry, "v") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cluster.hget(entry, "v") == b"1", cluster_stack.services[2].tail()
    contact_url = f"{cluster_stack.query_url}/v1/contacts/{body['id']}"
    first = api.get(contact_url, timeout=5)
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache"] == "hit"
    assert first.json()["email"] == email
    assert first.headers["RateLimit-Limit"] == str(GET_LIMIT)

    answers = [api.get(contact_url, timeout=5) for _ in range(GET_LIMIT)]
    assert [a.status_code for a in answers] == [200] * (GET_LIMIT - 1) + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    counters = list(cluster.scan_iter(match=f"{prefix}ratelimit:query-api*"))
    assert counters, "the query API counts in the cluster"
    # Other routes keep their own (generous) limit.
    status = api.get(f"{cluster_stack.query_url}/v1/operations/{body['operation_id']}", timeout=5)
    assert status.status_code == 200
