"""The set-based SQL of a batch (``adapters.sql_batch``) on real PostgreSQL: a batch applied in
one transaction leaves exactly the rows, inbox rows and outcomes of its events applied one per
transaction; it costs about one round trip per event; two batches locking the same contacts in
opposite orders never deadlock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.bootstrap import writer_engine
from contact_worker.service_layer.handlers import handle_batch, handle_event
from contact_worker.settings import Settings
from contacts_domain import ContactEvent, HybridLogicalClock, OperationStatus, normalize_contact
from support.domain_fakes import InMemoryCache, InMemoryOperationStore

CLOCK = HybridLogicalClock()
#: The live contacts a workspace may hold in the equivalence runs: low, so the quota bites.
QUOTA = 4


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = sa.create_engine(database_url, pool_size=4)
    yield engine
    engine.dispose()


class Counter:
    """Statements sent (``before_cursor_execute``: one per round trip, as the adapters send
    several statements of one call as one text) and commits of an engine."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0


@pytest.fixture
def counter(engine: Engine) -> Iterator[Counter]:
    seen = Counter()

    def statement(_c: Any, _cur: Any, text: str, *_: Any) -> None:
        seen.statements.append(text)

    def commit(_: Any) -> None:
        seen.commits += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", statement)
    sa.event.remove(engine, "commit", commit)


def make_event(
    kind: str, cid: str, workspace: str, data: dict[str, Any] | None = None
) -> ContactEvent:
    fields = normalize_contact(
        data or {}, partial=kind in ("patched", "upserted"), default_region="US"
    )
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=cid,
        sequence=CLOCK.next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={} if kind == "deleted" else fields,
        workspace=workspace,
    )


def scenario(rng: random.Random, workspaces: Sequence[str], n: int) -> list[ContactEvent]:
    """``n`` events in delivery order over a few contacts and emails of each workspace: creates
    (some without a name), patches (some moving an email), deletes, upserts by email; about one
    in eight delivered late (after a later event of its contact) and one in twenty twice."""
    ids = {ws: [str(uuid.uuid4()) for _ in range(5)] for ws in workspaces}
    emails = [f"e{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(4)]
    made: list[ContactEvent] = []
    for _ in range(n):
        ws = rng.choice(workspaces)
        kind = rng.choice(["created", "created", "patched", "patched", "deleted", "upserted"])
        data: dict[str, Any] = {"first_name": rng.choice(["Ada", "Bea", "Cy"])}
        if kind == "upserted" or rng.random() < 0.5:
            data["emails"] = [{"value": rng.choice(emails)}]
        cid = str(uuid.uuid4()) if kind == "upserted" else rng.choice(ids[ws])
        made.append(make_event(kind, cid, ws, data))
        if kind == "created" and rng.random() < 0.15:  # rejected: name_required
            made[-1] = dataclasses.replace(made[-1], data={**made[-1].data, "first_name": None})
    delivered = list(made)
    for i in range(len(delivered) - 1, 0, -1):
        if rng.random() < 0.125:  # the earlier one arrives after the later one
            j = rng.randrange(max(0, i - 6), i)
            delivered[j], delivered[i] = delivered[i], delivered[j]
    for i in sorted(rng.sample(range(len(delivered)), n // 20), reverse=True):
        delivered.insert(i + rng.randrange(1, 4), delivered[i])
    return delivered


def moved(events: Sequence[ContactEvent], prefix: str) -> list[ContactEvent]:
    """``events`` in the workspaces ``<prefix><workspace>`` (same ids, sequences and data)."""
    return [dataclasses.replace(ev, workspace=prefix + ev.workspace) for ev in events]


def stored(engine: Engine, prefix: str) -> tuple[list[Any], list[Any]]:
    """The contacts and inbox rows of the workspaces starting with ``prefix``, without the
    prefix, sorted."""
    with engine.connect() as connection:
        contacts = connection.execute(
            sa.text(
                "SELECT substr(workspace, :n) AS ws, id, first_name, company, emails, email_key,"
                " email_keys, version, alive, created_at, updated_at, deleted_at"
                " FROM contacts WHERE workspace LIKE :p ORDER BY 1, 2"
            ),
            {"n": len(prefix) + 1, "p": prefix + "%"},
        ).all()
        inbox = connection.execute(
            sa.text(
                "SELECT substr(workspace, :n) AS ws, event_id, operation_id, contact_id,"
                " event_type, sequence, data, expected_version, status, reason, version, result"
                " FROM processed_events WHERE workspace LIKE :p ORDER BY 1, 2"
            ),
            {"n": len(prefix) + 1, "p": prefix + "%"},
        ).all()
    return [tuple(r) for r in contacts], [tuple(r) for r in inbox]


def run_alone(
    engine: Engine, events: Sequence[ContactEvent], quota: int = QUOTA
) -> list[OperationStatus]:
    operations = InMemoryOperationStore()
    return [
        handle_event(
            ev,
            unit_of_work=lambda: SqlUnitOfWork(engine),
            cache=InMemoryCache(),
            operations=operations,
            max_live_contacts=quota,
        )
        for ev in events
    ]


def run_batches(
    engine: Engine,
    events: Sequence[ContactEvent],
    sizes: Callable[[], int],
    quota: int = QUOTA,
) -> tuple[list[OperationStatus | Exception], int]:
    """Apply ``events`` in consecutive batches of ``sizes()`` events; returns the results and
    the number of batches."""
    results: list[OperationStatus | Exception] = []
    batches, start = 0, 0
    while start < len(events):
        batch = events[start : start + sizes()]
        start += len(batch)
        batches += 1
        results += handle_batch(
            batch,
            unit_of_work=lambda: SqlUnitOfWork(engine),
            cache=InMemoryCache(),
            operations=InMemoryOperationStore(),
            max_live_contacts=quota,
        )
    return results, batches


@pytest.mark.parametrize("quota", [QUOTA, 0])
@pytest.mark.parametrize("seed", range(6))
def test_random_batches_leave_what_one_event_per_transaction_leaves(
    engine: Engine, counter: Counter, seed: int, quota: int
) -> None:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    events = scenario(rng, ["wa", "wb"], 60)
    alone, batched = f"s{run}-", f"b{run}-"

    expected = run_alone(engine, moved(events, alone), quota)
    counter.commits = 0
    results, batches = run_batches(
        engine, moved(events, batched), lambda: rng.randint(1, 12), quota
    )

    # Every batch committed once: none fell back to one transaction per event.
    assert counter.commits == batches
    assert not [r for r in results if isinstance(r, Exception)]
    assert results == expected
    assert stored(engine, batched) == stored(engine, alone)
    assert {r.reason for r in expected} >= ({None, "quota_exceeded"} if quota else {None})


def test_a_batch_of_creates_costs_two_round_trips(engine: Engine, counter: Counter) -> None:
    ws = f"r{uuid.uuid4().hex[:8]}"
    creates = [
        make_event("created", str(uuid.uuid4()), ws, {"first_name": f"N{i}"}) for i in range(20)
    ]
    counter.statements.clear()
    run_batches(engine, creates, lambda: 20, quota=0)
    # The prefetch; then the contacts' one upsert and the inbox's one INSERT, sent together.
    assert len(counter.statements) == 2
    assert counter.commits == 1

    patches = [make_event("patched", e.contact_id, ws, {"company": "Acme"}) for e in creates]
    late = make_event("patched", creates[0].contact_id, ws, {"company": "Late"})
    late = dataclasses.replace(late, sequence=creates[0].sequence + "0")
    counter.statements.clear()
    results, _ = run_batches(engine, [*patches, late], lambda: 21, quota=0)
    assert all(isinstance(r, OperationStatus) and r.status == "applied" for r in results)
    # The late event asks its own questions (flushing the buffered writes first).
    assert len(counter.statements) <= 2 + 8


def test_a_batch_of_upserts_costs_three_round_trips(engine: Engine, counter: Counter) -> None:
    ws = f"u{uuid.uuid4().hex[:8]}"
    emails = [email(f"x{i}") for i in range(20)]
    existing = [
        make_event("created", str(uuid.uuid4()), ws, {"first_name": f"E{i}", **emails[i]})
        for i in range(5)
    ]
    run_batches(engine, existing, lambda: 5, quota=0)
    upserts = [  # the first five match the existing contacts, the others create
        make_event("upserted", str(uuid.uuid4()), ws, {"first_name": "U", **emails[i]})
        for i in range(20)
    ]
    counter.statements.clear()
    counter.commits = 0
    results, _ = run_batches(engine, upserts, lambda: 20, quota=0)
    # The email locks and holders; the contact locks, rows and inbox; the upsert and INSERT.
    assert len(counter.statements) == 3
    assert counter.commits == 1
    assert [r.result for r in results if isinstance(r, OperationStatus)] == (
        ["updated"] * 5 + ["created"] * 15
    )
    assert [r.contact_id for r in results[:5] if isinstance(r, OperationStatus)] == [
        e.contact_id for e in existing
    ]


def email(local: str) -> dict[str, Any]:
    return {"emails": [{"value": f"{local}-{uuid.uuid4().hex[:6]}@example.com"}]}


def test_an_upsert_finds_the_holder_an_earlier_event_of_its_batch_made(engine: Engine) -> None:
    """The holders read ahead are not used for an email whose holder the batch changed."""
    ws = f"h{uuid.uuid4().hex[:8]}"
    moving, kept, erased = email("moving"), email("kept"), email("erased")
    x, y, z = (str(uuid.uuid4()) for _ in range(3))
    before = [
        make_event("created", x, ws, {"first_name": "X", **kept}),
        make_event("created", z, ws, {"first_name": "Z", **erased}),
    ]
    batch = [
        make_event("created", y, ws, {"first_name": "Y", **moving}),
        make_event("upserted", str(uuid.uuid4()), ws, {"company": "to Y", **moving}),
        make_event("patched", x, ws, {"emails": [{"value": "other@example.com"}]}),
        make_event("upserted", str(uuid.uuid4()), ws, {"first_name": "New", **kept}),
        make_event("deleted", z, ws, {"first_name": "Z"}),
        make_event("upserted", str(uuid.uuid4()), ws, {"first_name": "New", **erased}),
    ]
    expected = run_alone(engine, moved([*before, *batch], "s-"), quota=0)[2:]
    run_batches(engine, before, lambda: 2, quota=0)
    results, batches = run_batches(engine, batch, lambda: len(batch), quota=0)
    assert batches == 1
    assert [r.contact_id for r in results if isinstance(r, OperationStatus)][1::2] == [
        y,
        batch[3].contact_id,
        batch[5].contact_id,
    ]
    assert [(r.status, r.result) for r in results if isinstance(r, OperationStatus)] == [
        (r.status, r.result) for r in expected
    ]


def test_a_batch_keys_emails_by_simple_case_folding(engine: Engine) -> None:
    """straße@ and strasse@ are two holders in one batch, each upsert finds its own (case
    ignored: ẞ is ß), and the stored keys keep the ß."""
    ws = f"f{uuid.uuid4().hex[:8]}"
    x, y = str(uuid.uuid4()), str(uuid.uuid4())

    def upsert(company: str, address: str) -> ContactEvent:
        return make_event("upserted", str(uuid.uuid4()), ws, {"company": company, "email": address})

    batch = [
        make_event("created", x, ws, {"first_name": "X", "email": "Stra\u00dfe@example.com"}),
        make_event("created", y, ws, {"first_name": "Y", "email": "strasse@example.com"}),
        upsert("Y", "STRASSE@example.com"),
        upsert("X", "STRA\u1e9eE@example.com"),
    ]
    results, _ = run_batches(engine, batch, lambda: len(batch), quota=0)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id::text, company, email_key, email_keys FROM contacts"
                " WHERE workspace = :ws ORDER BY first_name"
            ),
            {"ws": ws},
        ).all()
    assert [(r.status, r.contact_id) for r in results if isinstance(r, OperationStatus)] == [
        ("applied", x),
        ("applied", y),
        ("applied", y),
        ("applied", x),
    ]
    assert [tuple(row) for row in rows] == [
        (x, "X", "stra\u00dfe@example.com", ["stra\u00dfe@example.com"]),
        (y, "Y", "strasse@example.com", ["strasse@example.com"]),
    ]


def test_an_email_conflict_of_deferred_saves_applies_the_batch_again_with_one_commit(
    engine: Engine, counter: Counter
) -> None:
    ws = f"m{uuid.uuid4().hex[:8]}"
    email = {"emails": [{"value": f"taken-{uuid.uuid4().hex[:6]}@example.com"}]}
    holder = make_event("created", str(uuid.uuid4()), ws, {"first_name": "H", **email})
    run_batches(engine, [holder], lambda: 1, quota=0)
    batch = [
        make_event("created", str(uuid.uuid4()), ws, {"first_name": "A"}),
        make_event("created", str(uuid.uuid4()), ws, {"first_name": "B", **email}),
        make_event("created", str(uuid.uuid4()), ws, {"first_name": "C"}),
    ]
    expected = run_alone(engine, moved([holder, *batch], "s-"))[1:]
    counter.commits = 0
    counter.statements.clear()
    results, _ = run_batches(engine, batch, lambda: 3, quota=0)
    # The deferred attempt was rolled back, the second one committed: no event by event.
    assert counter.commits == 1
    assert [r.reason for r in results if isinstance(r, OperationStatus)] == [
        None,
        "email_conflict",
        None,
    ]
    assert [dataclasses.replace(r, contact_id="") for r in results] == [
        dataclasses.replace(r, contact_id="") for r in expected
    ]


def at_once(engine: Engine, batches: Sequence[Sequence[ContactEvent]]) -> list[Any]:
    """Apply each of ``batches`` in its own thread, all started together; their results."""
    start = threading.Barrier(len(batches))
    results: list[Any] = [None] * len(batches)

    def apply(side: int) -> None:
        start.wait()
        results[side] = run_batches(engine, batches[side], lambda: len(batches[side]), 0)[0]

    threads = [threading.Thread(target=apply, args=(side,)) for side in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_batches_locking_the_same_contacts_in_opposite_orders_never_deadlock(
    engine: Engine, counter: Counter
) -> None:
    ws = f"d{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(6)]
    created = [make_event("created", cid, ws, {"first_name": "A"}) for cid in ids]
    run_batches(engine, created, lambda: len(ids), quota=0)
    for round_ in range(15):
        batches = [
            [make_event("patched", cid, ws, {"company": f"{round_}-{side}"}) for cid in order]
            for side, order in enumerate([ids, ids[::-1]])
        ]
        counter.commits = 0
        results = at_once(engine, batches)
        # One commit per batch: neither was rolled back by a deadlock and applied event by event.
        assert counter.commits == 2
        assert all(isinstance(r, OperationStatus) for side in results for r in side)


def advisory_locks(engine: Engine, names: Sequence[str], besides: int) -> dict[str, bool]:
    """``{name: granted}`` of the locks ``pg_advisory_xact_lock(hashtextextended(name, 0))`` of
    ``names`` that a backend other than ``besides`` (a pid) holds or waits for."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT n.name, l.granted FROM unnest(CAST(:names AS text[])) AS n(name)"
                " JOIN pg_locks l ON l.locktype = 'advisory' AND l.objsubid = 1"
                " AND l.classid::bigint = (hashtextextended(n.name, 0) >> 32) & 4294967295"
                " AND l.objid::bigint = hashtextextended(n.name, 0) & 4294967295"
                " WHERE l.pid <> :besides"
            ),
            {"names": list(names), "besides": besides},
        ).all()
    return {name: granted for name, granted in rows}


def test_a_batch_takes_its_contact_locks_in_sorted_order(engine: Engine) -> None:
    ws = f"o{uuid.uuid4().hex[:8]}"
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    names = [f"{ws}/{cid}" for cid in ids]
    batch = [make_event("created", cid, ws, {"first_name": "A"}) for cid in reversed(ids)]
    with engine.connect() as holder:
        pid = holder.execute(
            sa.text("SELECT pg_backend_pid(), pg_advisory_xact_lock(hashtextextended(:n, 0))"),
            {"n": names[1]},
        ).scalar_one()
        thread = threading.Thread(
            target=run_batches, args=(engine, batch, lambda: 3, 0), daemon=True
        )
        thread.start()
        while names[1] not in (seen := advisory_locks(engine, names, besides=pid)):
            pass  # until the batch waits for the middle lock
        holder.rollback()
    thread.join()
    # The smallest name was taken first, the middle one awaited, the largest not asked yet.
    assert seen == {names[0]: True, names[1]: False}


def test_the_writers_email_look_ups_read_a_short_pending_list(database_url: str) -> None:
    """Through the worker's engine (``bootstrap.writer_engine``) the writes keep the GIN pending
    list of ``contacts_ws_live_email_keys`` under 64 kB, so a holder look-up reads a few pages,
    not the up to 4 MB the default lets every look-up scan."""
    writer = writer_engine(Settings.from_env({"DATABASE_URL": database_url}))
    try:
        ws = f"g{uuid.uuid4().hex[:8]}"
        creates = [
            make_event("created", str(uuid.uuid4()), ws, {"first_name": "G", **email(f"g{i}")})
            for i in range(4000)
        ]
        run_batches(writer, creates, lambda: 100, quota=0)
        with writer.connect() as connection:
            # Only the GIN index answers this (a small table would rather be scanned).
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM contacts"
                " WHERE alive AND email_keys @> ARRAY['absent@example.com']"
            ).scalar_one()[0]["Plan"]
        assert plan["Plans"][0]["Index Name"] == "contacts_ws_live_email_keys"
        # 64 kB is 8 pages of pending list, plus a few of the index's own.
        assert plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] < 20
        with writer.connect() as connection:
            assert connection.exec_driver_sql("SHOW gin_pending_list_limit").scalar() == "64kB"
    finally:
        writer.dispose()
