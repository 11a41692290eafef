"""docs/architecture.md §5.3 and case C24: the final state is the in-order state, whatever the
delivery."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from contacts_domain import (
    DEFAULT_WORKSPACE,
    ContactEvent,
    HybridLogicalClock,
    empty_fields,
    normalize_contact,
)
from support.auth import api
from support.read_model import EventSender, cache_agrees, cached_contact, stored_contact
from support.stack import Stack

NAMES = ["Ada", "Grace", "Rosa", "Alan", "Edsger"]
COMPANIES = [None, "Acme", "Initech", "Globex"]


@pytest.fixture(scope="module")
def engine(database_url: str) -> Any:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def wait_processed(engine: sa.Engine, event_ids: list[str], sqs: Any, queue_url: str) -> None:
    """Until every event has an inbox row and the queue (duplicates included) is empty."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            done = conn.execute(
                sa.text("SELECT count(*) FROM processed_events WHERE event_id = ANY(:ids)"),
                {"ids": [uuid.UUID(e) for e in event_ids]},
            ).scalar_one()
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        in_queue = sum(int(v) for v in attributes.values())
        if done == len(event_ids) and in_queue == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{done}/{len(event_ids)} events processed, {in_queue} in the queue")


def random_history(rng: random.Random, cid: str) -> list[tuple[str, dict[str, Any]]]:
    def full() -> dict[str, Any]:
        return {"first_name": rng.choice(NAMES), "company": rng.choice(COMPANIES)}

    history: list[tuple[str, dict[str, Any]]] = [("created", full())]
    for _ in range(rng.randint(4, 9)):
        kind = rng.choice(["replaced", "patched", "patched", "patched", "deleted"])
        if kind == "replaced":
            history.append((kind, full()))
        elif kind == "patched":
            change = rng.choice(
                [{"company": rng.choice(COMPANIES)}, {"last_name": rng.choice(NAMES)}]
            )
            history.append((kind, change))
        else:
            history.append((kind, {}))
    return history


def in_order(history: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Plain last-write semantics, the reference the worker must match."""
    model: dict[str, Any] | None = None
    for kind, data in history:
        if kind in ("created", "replaced"):
            model = normalize_contact(data, partial=False, default_region="US")
        elif kind == "deleted":
            model = None
        elif model is not None:
            model.update(normalize_contact(data, partial=True, default_region="US"))
    return model


#: How many different races to run (each a fresh random history); `RACE_RUNS=20 make test-e2e`
#: is the "20 runs in a row" proof, CI runs the default.
RACE_RUNS = int(os.environ.get("RACE_RUNS", "3"))


#: The workspaces of the two-workspace race: the same contact ids, histories of their own.
TWO_WORKSPACES = ("race-a", "race-b")


@pytest.mark.parametrize("seed", range(RACE_RUNS))
def test_interleaved_commands_with_delays_and_redeliveries_end_in_order(
    stack: Stack,
    engine: sa.Engine,
    redis_client: redis.Redis,
    sqs_client: Any,
    seed: int,
) -> None:
    """Replace, patch and delete commands on the same contacts race through two worker
    processes (prefork), some delayed in the worker, some delivered again late and out of
    order. PostgreSQL and Redis end equal to applying the accepted commands once, in order."""
    race(stack, engine, redis_client, sqs_client, random.Random(seed), (DEFAULT_WORKSPACE,))


@pytest.mark.parametrize("seed", range(RACE_RUNS))
def test_two_workspaces_racing_on_the_same_contact_ids_each_end_in_order(
    workspace_stack: Any,
    engine: sa.Engine,
    redis_client: redis.Redis,
    sqs_client: Any,
    seed: int,
) -> None:
    """The same race in two workspaces at once, on the same contact ids with a history of
    each workspace's own, interleaved on one queue: each workspace ends in its own in-order
    state, PostgreSQL == Redis per workspace (issue 12)."""
    workspaces = tuple(f"{name}-{seed}-{uuid.uuid4().hex[:6]}" for name in TWO_WORKSPACES)
    race(workspace_stack.stack, engine, redis_client, sqs_client, random.Random(seed), workspaces)


def race(
    stack: Stack,
    engine: sa.Engine,
    redis_client: redis.Redis,
    sqs_client: Any,
    rng: random.Random,
    workspaces: tuple[str, ...],
) -> None:
    """Send random histories of 12 contacts in each of ``workspaces`` (the same ids in each),
    interleaved, some delayed, a third delivered again late; wait until all are processed and
    check each workspace's final state in PostgreSQL and Redis against ``in_order``."""
    clock = HybridLogicalClock()
    sender = EventSender(stack.env)
    histories: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    events: list[ContactEvent] = []
    for _ in range(12):
        cid = str(uuid.uuid4())
        for workspace in workspaces:
            histories[workspace, cid] = random_history(rng, cid)
    for (workspace, cid), history in histories.items():
        for kind, data in history:
            normalized = (
                {}
                if kind == "deleted"
                else normalize_contact(data, partial=kind == "patched", default_region="US")
            )
            slow = rng.random() < 0.3
            events.append(
                ContactEvent(
                    id=str(uuid.uuid4()),
                    kind=kind,  # type: ignore[arg-type]
                    contact_id=cid,
                    sequence=clock.next(),
                    time=dt.datetime.now(dt.UTC),
                    operation_id=str(uuid.uuid4()),
                    data=normalized,
                    correlation_id=("slow-" if slow else "e2e-") + uuid.uuid4().hex[:8],
                    workspace=workspace,
                )
            )
    events = interleaved(rng, events)
    deliveries = [(e, e.id) for e in events]
    for event in rng.sample(events, k=len(events) // 3):
        late = rng.randint(events.index(event), len(deliveries))
        deliveries.insert(late, (event, str(uuid.uuid4())))  # a late duplicate
    for event, dedup_id in deliveries:
        sender.send(event, dedup_id)

    wait_processed(engine, [e.id for e in events], sqs_client, stack.env["SQS_QUEUE_URL"])

    prefix = stack.env["REDIS_PREFIX"]
    for (workspace, cid), history in histories.items():
        expected = in_order(history)
        stored = stored_contact(engine, cid, workspace)
        if expected is None:
            assert stored is None, (workspace, cid)
        else:
            assert stored is not None, (workspace, cid)
            assert {k: stored[k] for k in expected} == {**empty_fields(), **expected}, cid
        assert cache_agrees(redis_client, prefix, engine, cid, workspace), (workspace, cid)


def interleaved(rng: random.Random, events: list[ContactEvent]) -> list[ContactEvent]:
    """``events`` shuffled, each contact's (per workspace) kept in their order: the merge of
    many writers, each sending its own commands in order."""
    queues: dict[tuple[str, str], list[ContactEvent]] = {}
    for event in events:
        queues.setdefault((event.workspace, event.contact_id), []).append(event)
    merged: list[ContactEvent] = []
    while queues:
        key = rng.choice(sorted(queues))
        merged.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    return merged


def test_c24_patch_delivered_after_the_delete_that_followed_it(
    stack: Stack, engine: sa.Engine, redis_client: redis.Redis, sqs_client: Any
) -> None:
    clock = HybridLogicalClock()
    cid = str(uuid.uuid4())
    sender = EventSender(stack.env)

    def event(kind: str, data: dict[str, Any]) -> ContactEvent:
        return ContactEvent(
            id=str(uuid.uuid4()),
            kind=kind,  # type: ignore[arg-type]
            contact_id=cid,
            sequence=clock.next(),
            time=dt.datetime.now(dt.UTC),
            operation_id=str(uuid.uuid4()),
            data=data,
        )

    create = event(
        "created", normalize_contact({"first_name": "Rosa"}, partial=False, default_region="US")
    )
    patch = event("patched", {"company": "Acme"})
    delete = event("deleted", {})
    for e in (create, delete, patch):
        sender.send(e)
    wait_processed(engine, [create.id, patch.id, delete.id], sqs_client, stack.env["SQS_QUEUE_URL"])
    assert stored_contact(engine, cid) is None
    cached = cached_contact(redis_client, stack.env["REDIS_PREFIX"], cid)
    assert cached is not None
    assert cached[1] is None
    assert api.get(f"{stack.query_url}/v1/contacts/{cid}", timeout=5).status_code == 404


def test_c24_second_patch_wins_when_the_first_is_delayed(
    stack: Stack, engine: sa.Engine, redis_client: redis.Redis
) -> None:
    """PATCH the phone, then 50 ms later PATCH it again, the first delayed in the worker; on
    200 contacts at once. The final phone is always the second, and Redis equals PostgreSQL."""
    first, second = "+1 202 555 0100", "+1 202 555 0199"

    def create(i: int) -> str:
        answer = api.post(
            f"{stack.command_url}/v1/contacts",
            json={"first_name": f"C24-{i}"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def race(cid: str) -> list[str]:
        url = f"{stack.command_url}/v1/contacts/{cid}"
        one = api.patch(
            url, json={"phone": first}, headers={"X-Request-ID": f"slow-{cid}"}, timeout=10
        )
        time.sleep(0.05)
        two = api.patch(url, json={"phone": second}, timeout=10)
        assert (one.status_code, two.status_code) == (202, 202)
        return [one.json()["operation_id"], two.json()["operation_id"]]

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(create, range(200)))
        operations = [op for pair in pool.map(race, ids) for op in pair]
    for operation_id in operations:
        stack.wait_operation(operation_id, timeout_s=120)

    prefix = stack.env["REDIS_PREFIX"]
    for cid in ids:
        stored = stored_contact(engine, cid)
        assert stored is not None
        assert [p["value"] for p in stored["phones"]] == ["+12025550199"], cid
        assert cache_agrees(redis_client, prefix, engine, cid), cid
