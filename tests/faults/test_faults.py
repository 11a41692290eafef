"""Fault-injection suite (issue 4, cases C13, C15, C18): a 202 is never lost, never applied
twice, and the read side converges to exactly what was accepted, in accepted order.

Each test starts its own stack, drives the mixed workload of ``support.workload``, injects one
fault mid-load, lets the queue drain, then checks the ledger against PostgreSQL, Redis, the
operation statuses and the dead-letter queue, and prints a one-line report.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contacts_domain import DEFAULT_WORKSPACE, FIELDS
from contacts_http.auth import format_api_key_hashes, hash_api_key, new_api_key, scopes
from support.auth import AUTH_ENV, api_session
from support.read_model import cache_agrees, stored_contact
from support.workload import Workload, expected_state

pytestmark = pytest.mark.faults

FAULT_S = 30
DRAIN_TIMEOUT_S = 240
#: Dead-letters a failing event within seconds: three receives, one second apart.
DEAD_LETTER_FAST = {"SQS_MAX_RECEIVE_COUNT": "3", "RETRY_BACKOFF_S": "1,1,1"}
ADMIN = str(Path(sys.executable).parent / "contact-worker-admin")


def outcomes(engine: sa.Engine, operation_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT operation_id, status, reason, count(*) OVER (PARTITION BY operation_id) "
                "FROM processed_events WHERE operation_id = ANY(:ids)"
            ),
            {"ids": [uuid.UUID(o) for o in operation_ids]},
        ).all()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def drain(stack: Any, engine: sa.Engine, sqs: Any, operation_ids: list[str]) -> float:
    """Wait until every accepted operation has an outcome and the queue is empty; returns the
    seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        done = outcomes(engine, operation_ids)
        if len(done) == len(operation_ids) and queue_depth(sqs, stack.env["SQS_QUEUE_URL"]) == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    missing = len(operation_ids) - len(outcomes(engine, operation_ids))
    logs = "\n".join(s.tail(30) for s in stack.services.values())
    raise AssertionError(f"{missing} accepted operations without an outcome:\n{logs}")


def run_with_fault(
    stack: Any,
    database_url: str,
    redis_client: redis.Redis,
    sqs_client: Any,
    fault: Callable[[], None],
    name: str,
    workspaces: dict[str, dict[str, str] | None] | None = None,
) -> None:
    """Drive the workload of each of ``workspaces`` (workspace -> the headers of its caller;
    default: the session's key, in ``default``) at once, inject ``fault`` mid-load, drain, and
    check every workspace's ledger on its own."""
    engine = sa.create_engine(database_url)
    books = workspaces or {DEFAULT_WORKSPACE: None}
    workloads = {
        ws: Workload(stack.command_url, seed=(hash(name) + i) % 1000, headers=headers)
        for i, (ws, headers) in enumerate(books.items())
    }
    for workload in workloads.values():
        workload.setup()
    for workload in workloads.values():
        workload.start()
    time.sleep(3)
    fault_started = time.monotonic()
    fault()
    fault_ended = time.monotonic()
    time.sleep(3)
    for workload in workloads.values():
        workload.stop()
        assert not workload.ledger.unexpected, workload.ledger.unexpected[:5]

    operation_ids = [c.operation_id for w in workloads.values() for c in w.ledger.accepted]
    drained_in = drain(stack, engine, sqs_client, operation_ids)
    recovered_in = time.monotonic() - fault_ended  # until every accepted command had landed

    found = outcomes(engine, operation_ids)
    applied = sum(1 for s, _ in found.values() if s == "applied")
    rejected = sum(1 for s, _ in found.values() if s == "rejected")
    lost = len(operation_ids) - len(found)
    mismatched: list[str] = []
    uncertain = 0
    pending: list[str] = []
    for ws, workload in workloads.items():
        ledger = workload.ledger
        unsure = ledger.uncertain(fault_started)
        uncertain += len(unsure)
        mismatched += _mismatches(stack, engine, redis_client, ws, ledger, found, unsure)
        pending += _still_pending(stack, ledger, books[ws])
    with engine.connect() as conn:
        applied_twice = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT operation_id FROM processed_events "
                "WHERE operation_id = ANY(:ids) GROUP BY operation_id HAVING count(*) > 1) d"
            ),
            {"ids": [uuid.UUID(o) for o in operation_ids]},
        ).scalar_one()
    dead = queue_depth(sqs_client, stack.dlq_url)
    engine.dispose()
    refused = sum(w.ledger.refused for w in workloads.values())
    print(
        f"\n[{name}] workspaces={len(workloads)} accepted={len(operation_ids)} "
        f"refused(503)={refused} uncertain_contacts={uncertain} "
        f"applied={applied} rejected={rejected} lost={lost} applied_twice={applied_twice} "
        f"fault={fault_ended - fault_started:.1f}s drained_after_load={drained_in:.1f}s "
        f"recovered_after_fault={recovered_in:.1f}s dlq={dead}"
    )
    assert lost == 0
    assert applied_twice == 0
    assert not mismatched, mismatched[:10]
    assert not pending
    assert dead == 0


def _mismatches(
    stack: Any,
    engine: sa.Engine,
    redis_client: redis.Redis,
    workspace: str,
    ledger: Any,
    found: dict[str, tuple[str, str | None]],
    uncertain: set[str],
) -> list[str]:
    """What in ``workspace`` differs from applying its accepted commands in order: outcomes,
    PostgreSQL, and Redis against PostgreSQL."""
    prefix = stack.env["REDIS_PREFIX"]
    mismatched: list[str] = []
    for contact_id, commands in ledger.by_contact().items():
        where = f"{workspace}/{contact_id}"
        agrees = cache_agrees(redis_client, prefix, engine, contact_id, workspace)
        if contact_id in uncertain:
            # A refused command may still have reached the queue: only check what holds
            # anyway (every accepted operation has an outcome; Redis agrees with PostgreSQL).
            if not agrees:
                mismatched.append(f"{where}: Redis differs from PostgreSQL")
            continue
        expected = expected_state(commands)
        for operation_id, outcome in expected.outcomes.items():
            if found.get(operation_id) != outcome:
                mismatched.append(f"{operation_id}: {found.get(operation_id)} != {outcome}")
        stored = stored_contact(engine, contact_id, workspace)
        if expected.fields is None:
            if stored is not None:
                mismatched.append(f"{where} should be deleted")
        elif stored is None or {k: stored[k] for k in FIELDS} != expected.fields:
            mismatched.append(f"{where}: {stored} != {expected.fields}")
        if not agrees:
            mismatched.append(f"{where}: Redis differs from PostgreSQL")
    return mismatched


def _still_pending(stack: Any, ledger: Any, headers: dict[str, str] | None) -> list[str]:
    """A sample of the ledger's operations that the query API still reports ``pending``, asked
    with the workspace's own credentials."""
    operation_ids = [c.operation_id for c in ledger.accepted]
    session = api_session()
    session.headers.update(headers or {})
    return [
        o
        for o in operation_ids[:: max(1, len(operation_ids) // 40)]
        if session.get(f"{stack.query_url}/v1/operations/{o}", timeout=5).json()["status"]
        == "pending"
    ]


def child_pids(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


@pytest.fixture
def harness(fault_stack: Any, database_url: str, redis_client: redis.Redis, sqs_client: Any):
    def run(
        fault: Callable[[], None],
        name: str,
        workspaces: dict[str, dict[str, str] | None] | None = None,
    ) -> None:
        run_with_fault(fault_stack, database_url, redis_client, sqs_client, fault, name, workspaces)

    return run


def test_c13_worker_sigkill_mid_load(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        fault_stack.services["worker"].signal(signal.SIGKILL)
        time.sleep(2)
        fault_stack.restart("worker")

    harness(fault, "worker SIGKILL")


def test_c13_prefork_child_sigkill(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        for _ in range(3):
            (celery_main,) = child_pids(fault_stack.services["worker"].pid)  # under supervise.sh
            pool = child_pids(celery_main)
            if pool:
                os.kill(pool[0], signal.SIGKILL)
            time.sleep(2)

    harness(fault, "prefork child SIGKILL")


def test_c13_worker_sigterm_graceful(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        worker = fault_stack.services["worker"]
        worker.signal(signal.SIGTERM, group=False)
        worker.process.wait(timeout=60)
        fault_stack.restart("worker")

    harness(fault, "worker SIGTERM")


def test_postgresql_unreachable_30s(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        with fault_stack.pg.fault("refuse", FAULT_S):
            pass

    harness(fault, "PostgreSQL unreachable")


def test_c18_redis_refused_30s(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        with fault_stack.redis.fault("refuse", FAULT_S):
            pass

    harness(fault, "Redis refused")


def test_c18_redis_unresponsive_30s(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        with fault_stack.redis.fault("blackhole", FAULT_S):
            pass

    harness(fault, "Redis unresponsive")


def test_c15_sqs_unreachable_then_back(fault_stack: Any, harness: Any) -> None:
    def fault() -> None:
        with fault_stack.sqs.fault("refuse", FAULT_S):
            pass

    harness(fault, "SQS unreachable")


@pytest.mark.parametrize("fault_stack", [DEAD_LETTER_FAST], indirect=True)
def test_postgresql_down_past_every_retry_then_dlq_redrive(
    fault_stack: Any, harness: Any, sqs_client: Any
) -> None:
    """An outage longer than the retries dead-letters events (issue 15); once PostgreSQL is
    back, ``contact-worker-admin dlq redrive`` puts them back and every 202 lands once, in
    order, as if nothing had happened."""

    def fault() -> None:
        with fault_stack.pg.fault("refuse", 20):
            pass
        time.sleep(5)  # events in their last retries when it ended are applied, or dead
        assert queue_depth(sqs_client, fault_stack.dlq_url) > 0, "nothing was dead-lettered"
        deadline = time.monotonic() + 120
        while queue_depth(sqs_client, fault_stack.dlq_url) > 0:
            assert time.monotonic() < deadline, "the dead-letter queue does not empty"
            subprocess.run(
                [ADMIN, "dlq", "redrive"],
                env={**os.environ, **fault_stack.env},
                check=True,
                capture_output=True,
                timeout=120,
            )
            time.sleep(2)

    harness(fault, "PostgreSQL down past every retry, then dlq redrive")


#: A second workspace's caller, for the stack of the test below.
SECOND_WORKSPACE = "faults-second"
SECOND_KEY = new_api_key()
TWO_WORKSPACES = {
    "AUTH_API_KEY_HASHES": AUTH_ENV["AUTH_API_KEY_HASHES"]
    + ";"
    + format_api_key_hashes({hash_api_key(SECOND_KEY): scopes.ALL}, SECOND_WORKSPACE)
}


@pytest.mark.parametrize("fault_stack", [TWO_WORKSPACES], indirect=True)
def test_c13_two_workspaces_writing_at_once_through_a_worker_sigkill(
    fault_stack: Any, harness: Any
) -> None:
    """Two workspaces write the same mix at once (issue 12); a worker SIGKILL mid-load loses
    nothing, applies nothing twice, and each workspace's PostgreSQL and Redis end as its own
    commands applied in order."""

    def fault() -> None:
        fault_stack.services["worker"].signal(signal.SIGKILL)
        time.sleep(2)
        fault_stack.restart("worker")

    harness(
        fault,
        "two workspaces, worker SIGKILL",
        {DEFAULT_WORKSPACE: None, SECOND_WORKSPACE: {"Authorization": f"Bearer {SECOND_KEY}"}},
    )
