"""Case C18 end to end: Redis refused or unresponsive under the real processes.

A stack of its own (both APIs under gunicorn, the Celery worker, queues of its own) reaches Redis
only through a fault proxy (``support.fault_proxy``), so the machine's shared Redis is never
stopped. ``refuse`` is a stopped server; ``blackhole`` accepts connections and never answers,
like a Redis paused with SIGSTOP, and replays what it held when it comes back.

During the outage the worker commits each event to PostgreSQL, its cache write fails, and after
``SQS_MAX_RECEIVE_COUNT`` (3) receives one second apart the message is dead-lettered: nothing
left in the queue will ever write the cache again. So when Redis comes back it still holds the
entries cached before the outage, now older than PostgreSQL; the test checks they are never
served: the worker records each failed cache write as an owed entry in PostgreSQL, every query
API process reads those contacts from PostgreSQL meanwhile, and the worker's repair writes the
entries once Redis is back (``cache_repairs``, docs/architecture.md §5.5).

Prints the latencies measured during each outage (run with ``-s``).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import requests
import sqlalchemy as sa

from support.auth import api
from support.fault_proxy import FaultProxy
from support.processes import Service
from support.read_model import cache_agrees, cached_contact
from support.stack import Stack, isolated_stack

#: Seconds each outage lasts: longer than the worker's three receives of a message (1 s backoff
#: plus a 0.5 s Redis timeout each), so its cache writes are given up before Redis returns.
FAULT_S = 6.0
#: Bound on one read during the outage: a normal read (~5 ms here) plus one Redis timeout
#: (0.25 s), with slack for a loaded CI machine.
READ_BOUND_S = 1.0
#: Bound on one command during the outage: two Redis timeouts (idempotency record, pending
#: status; both fail open) plus the SQS send.
WRITE_BOUND_S = 1.5
#: How long the query API keeps Redis's circuit open before its trial call.
BREAKER_RESET_S = 1.0


@pytest.fixture(scope="module")
def outage_stack(
    stack_env: dict[str, str], sqs_client: Any, redis_prefix: str, run_id: str
) -> Iterator[tuple[Stack, FaultProxy]]:
    target = urlsplit(stack_env["REDIS_URL"])
    proxy = FaultProxy((str(target.hostname), int(target.port or 6379))).start()
    try:
        overrides = {
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{target.path.lstrip('/') or 0}",
            "REDIS_PREFIX": f"{redis_prefix}c18:",
            "REDIS_BREAKER_RESET_S": str(BREAKER_RESET_S),
        }
        with isolated_stack(stack_env, sqs_client, f"t{run_id}-c18", overrides) as stack:
            yield stack, proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def writer(stack_env: dict[str, str]) -> Iterator[sa.Engine]:
    engine = sa.create_engine(stack_env["DATABASE_URL"])
    yield engine
    engine.dispose()


def timed(call: Callable[[], requests.Response], into: list[float]) -> requests.Response:
    started = time.monotonic()
    response = call()
    into.append(time.monotonic() - started)
    return response


def send_command(call: Callable[[], requests.Response], into: list[float]) -> dict[str, Any]:
    """Send a command as a client does: a 503 (SQS slow or refusing; nothing was accepted) is
    retried after its ``Retry-After``, at most twice. ``into`` gets the time of the accepted
    attempt."""
    for _ in range(2):
        started = time.monotonic()
        response = call()
        if response.status_code != 503:
            break
        time.sleep(float(response.headers["Retry-After"]))
    else:
        started = time.monotonic()
        response = call()
    into.append(time.monotonic() - started)
    return accepted(response)


def accepted(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return dict(response.json())


def gunicorn_workers(service: Service) -> set[int]:
    """The pids of a gunicorn master's worker processes."""
    children = Path(f"/proc/{service.pid}/task/{service.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def owed_entries(engine: sa.Engine, cache: str) -> set[str]:
    """The ids of the contacts whose cache entry the worker owes ``cache`` (``cache_repairs``)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT contact_id::text FROM cache_repairs WHERE cache = :cache"),
            {"cache": cache},
        )
        return {contact_id for (contact_id,) in rows}


def outage_report(stack: Stack, got: requests.Response, after_s: float) -> str:
    """What a failed read during the outage needs to be explained: its headers, when it came,
    and the query API's log lines about Redis."""
    query_log = stack.services[1].log().splitlines()
    redis_lines = [line for line in query_log if "edis" in line][-15:]
    return f"{after_s:.2f} s into the outage: {dict(got.headers)}\n" + "\n".join(redis_lines)


def summary(name: str, seconds: list[float]) -> str:
    return (
        f"{name} n={len(seconds)} median={statistics.median(seconds) * 1000:.0f} ms"
        f" max={max(seconds) * 1000:.0f} ms"
    )


@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
def test_c18_redis_outage_reads_from_postgresql_and_serves_nothing_stale_after(
    outage_stack: tuple[Stack, FaultProxy], writer: sa.Engine, redis_client: redis.Redis, fault
) -> None:
    stack, proxy = outage_stack
    prefix = stack.env["REDIS_PREFIX"]
    command, query = stack.command_url, stack.query_url
    tag = f"c18-{fault}-{uuid.uuid4().hex[:6]}"
    ids = []
    for name in ("Ada", "Bea"):
        body = send_command(
            lambda name=name: api.post(
                f"{command}/v1/contacts", json={"first_name": name, "tags": [tag]}, timeout=10
            ),
            [],
        )
        assert stack.wait_operation(body["operation_id"])["status"] == "applied"
        ids.append(body["id"])
    renamed, deleted = ids
    for contact_id in ids:
        api.get(f"{query}/v1/contacts/{contact_id}", timeout=5)
        assert api.get(f"{query}/v1/contacts/{contact_id}", timeout=5).headers["X-Cache"] in ("hit")
    workers_before = {s.name: gunicorn_workers(s) for s in stack.services[:2]}
    reads: dict[str, list[float]] = {"contact": [], "list": [], "operation": []}
    writes: list[float] = []

    proxy.set_mode(fault)
    started = time.monotonic()
    try:
        key = f"c18-{uuid.uuid4()}"
        created = send_command(
            lambda: api.post(
                f"{command}/v1/contacts",
                json={"first_name": "Cy", "tags": [tag]},
                headers={"Idempotency-Key": key},
                timeout=10,
            ),
            writes,
        )
        patch = send_command(
            lambda: api.patch(
                f"{command}/v1/contacts/{renamed}", json={"first_name": "Ada2"}, timeout=10
            ),
            writes,
        )
        delete = send_command(
            lambda: api.delete(f"{command}/v1/contacts/{deleted}", timeout=10), writes
        )
        for operation in (created, patch, delete):
            # Redis holds no status now; the worker's outcome comes from PostgreSQL.
            assert stack.wait_operation(operation["operation_id"])["status"] == "applied"
        while time.monotonic() - started < FAULT_S:
            got = timed(
                lambda: api.get(f"{query}/v1/contacts/{renamed}", timeout=5), reads["contact"]
            )
            assert (got.status_code, got.json()["first_name"], got.headers["X-Cache"]) == (
                200,
                "Ada2",
                "bypass",
            ), outage_report(stack, got, time.monotonic() - started)
            listed = timed(
                lambda: api.get(f"{query}/v1/contacts", params={"tag": tag}, timeout=5),
                reads["list"],
            )
            assert listed.status_code == 200
            assert sorted(i["first_name"] for i in listed.json()["items"]) == ["Ada2", "Cy"]
            status = timed(
                lambda: api.get(f"{query}/v1/operations/{patch['operation_id']}", timeout=5),
                reads["operation"],
            )
            assert (status.status_code, status.json()["version"]) == (200, 2)
            assert api.get(f"{query}/v1/contacts/{deleted}", timeout=5).status_code == 404
            time.sleep(0.05)
        # The worker's cache writes failed after its commits: it owes both entries, and every
        # query API process, whether it saw the outage or not, reads them from PostgreSQL.
        assert owed_entries(writer, prefix) >= {renamed, deleted}
    finally:
        proxy.set_mode("pass")

    # What the outage left in Redis: the entries cached before it, now older than PostgreSQL.
    assert cached_contact(redis_client, prefix, renamed)[0] == 1
    assert cached_contact(redis_client, prefix, deleted)[0] == 1
    served = []
    deadline = time.monotonic() + BREAKER_RESET_S + 3.0
    while time.monotonic() < deadline:
        got = api.get(f"{query}/v1/contacts/{renamed}", timeout=5)
        served.append((got.headers["X-Cache"], got.headers["ETag"], got.json()["first_name"]))
        assert api.get(f"{query}/v1/contacts/{deleted}", timeout=5).status_code == 404
        time.sleep(0.05)

    assert {(etag, name) for _, etag, name in served} == {('"2"', "Ada2")}
    assert served[-1][0] == "hit"
    assert owed_entries(writer, prefix) == set()  # the worker's repair settled them
    for contact_id in (renamed, deleted, created["id"]):
        assert cache_agrees(redis_client, prefix, writer, contact_id)
    for service in stack.services[:2]:
        assert gunicorn_workers(service) == workers_before[service.name], service.name
        assert "WORKER TIMEOUT" not in service.log()
    for kind, seconds in reads.items():
        assert max(seconds) < READ_BOUND_S, (kind, seconds)
    assert max(writes) < WRITE_BOUND_S, writes
    after = send_command(
        lambda: api.post(f"{command}/v1/contacts", json={"first_name": "Di"}, timeout=10), []
    )
    assert stack.wait_operation(after["operation_id"])["status"] == "applied"
    print(
        f"\nC18 Redis {fault} for {FAULT_S:.0f} s: "
        + "; ".join(summary(kind, seconds) for kind, seconds in reads.items())
        + f"; {summary('commands', writes)}; after recovery {len(served)} reads, all current"
    )
