"""The 1,000,000-contact data set of the scale figures, loaded with COPY into ``contacts_bench``.

Laid out as issue 12 asks: 1,000 workspaces (``WORKSPACES``), one of which, ``default``
(``LARGE_WORKSPACE``, the workspace of the benchmark's API key, so every HTTP figure is of the
large one), holds half the contacts; the other half is spread evenly over the 999 others
(``bench-001`` … ``bench-999``, ~500 each; ``workspace_of``).

Every row is what the worker would have written for a ``created`` event: the event is built as
the command API builds it (``contacts_domain.to_event``), parsed and checked by the worker's own
``read_event``, applied with ``contacts_domain.apply_event`` to an empty ``ContactState`` and
handed to the worker's ``SqlContactRepository.save``, whose statement parameters are captured
(a stand-in connection) instead of executed. Only the transport differs: the rows go to
PostgreSQL with ``COPY`` (about 20x faster than the worker's one upsert per event), with the
secondary indexes dropped during the load and rebuilt from their own definitions afterwards.

The set is deterministic (seeded) and fingerprinted with a sample of rows computed by the
current code, the migrations and the table's columns; ``ensure_loaded`` reloads only when the
fingerprint or the row count of the database differs, so the first ``make bench`` pays the load
(~4–5 min on 2 cores) and later runs reuse it. The inbox (``processed_events``) is not
filled: no read path looks at it.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import io
import itertools
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import psycopg2

from contact_worker.adapters.sql import SqlContactRepository
from contact_worker.service_layer.handlers import read_event
from contacts_domain import ContactEvent, ContactState, CreateContact, apply_event, to_event
from contacts_domain.sequence import HybridLogicalClock
from contacts_domain.workspaces import DEFAULT_WORKSPACE

#: Bump when the generator changes what it produces.
GENERATOR_VERSION = 2
#: Workspaces of the set, and the one holding half the contacts (every even index).
WORKSPACES = 1000
LARGE_WORKSPACE = DEFAULT_WORKSPACE
SEED = 20261129
#: Rows per COPY statement and per task of the generating processes.
CHUNK_ROWS = 25_000
#: Event times of the set: evenly spread over three years, in id order of generation.
FIRST_TIME = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=3 * 365)
#: Every loaded contact was created before this; rows created later are the benchmark's writes.
LOADED_BEFORE = FIRST_TIME + SPAN
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: The schema's migrations: a changed one (even edited in place) means a new database.
MIGRATIONS = Path(__file__).resolve().parents[1] / "services/contact-worker/migrations/versions"
#: Rows computed again at every run and compared, through the fingerprint, with the load's.
FINGERPRINT_ROWS = 2000

_SYLLABLES = [
    "an",
    "bar",
    "bel",
    "ber",
    "bo",
    "ca",
    "car",
    "cha",
    "da",
    "del",
    "den",
    "di",
    "do",
    "el",
    "en",
    "fa",
    "fer",
    "fi",
    "ga",
    "gar",
    "ha",
    "han",
    "hel",
    "ho",
    "is",
    "ja",
    "jo",
    "ka",
    "kar",
    "ki",
    "la",
    "lan",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "mar",
    "mel",
    "mi",
    "mo",
    "na",
    "nel",
    "ni",
    "no",
    "o",
    "ol",
    "pa",
    "per",
    "pi",
    "ra",
    "ran",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "san",
    "se",
    "si",
    "so",
    "ta",
    "ter",
    "ti",
    "to",
    "tu",
    "va",
    "ver",
    "vi",
    "wa",
    "wil",
    "ya",
    "yo",
    "za",
    "zi",
]
_TAGS = [
    "customer",
    "lead",
    "partner",
    "vendor",
    "vip",
    "press",
    "investor",
    "family",
    "friend",
    "colleague",
    "newsletter",
    "event-2025",
    "event-2026",
    "support",
    "billing",
    "emea",
    "apac",
    "americas",
    "beta",
    "churned",
]
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example")
_COMPANIES = tuple(
    f"{a.title()}{b} {c}"
    for a in _SYLLABLES[:30]
    for b in ("co", "tek", "ia")
    for c in ("Ltd", "Inc", "GmbH")
)[:200]
_TITLES = ("Engineer", "Manager", "Director", "Sales", "Designer", "Analyst", "Founder", "CTO")
_COUNTRIES = ("US", "GB", "FR", "DE", "ES", "IT", "NL", "CA")


def _names(rng: random.Random, count: int, parts: tuple[int, int]) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        n = rng.randint(*parts)
        names.add("".join(rng.choice(_SYLLABLES) for _ in range(n)).title())
    return sorted(names)


_NAME_RNG = random.Random(SEED)
FIRST_NAMES = _names(_NAME_RNG, 600, (2, 2))
LAST_NAMES = _names(_NAME_RNG, 8000, (2, 3))
#: Zipf-like popularity: the k-th name is drawn with weight 1/(k+10) (cumulative weights).
_FIRST_WEIGHTS = list(itertools.accumulate(1 / (k + 10) for k in range(len(FIRST_NAMES))))
_LAST_WEIGHTS = list(itertools.accumulate(1 / (k + 10) for k in range(len(LAST_NAMES))))


class _CapturingConnection:
    """Stands in for a SQLAlchemy connection: keeps the parameters of the last statement."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def begin_nested(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def execute(self, _statement: object, values: dict[str, Any]) -> None:
        self.values = values

    def exec_driver_sql(self, _statement: str, values: dict[str, Any]) -> None:
        """The worker's save names the row's parameters ``c0_<column>``: kept as ``<column>``."""
        self.values = {name.removeprefix("c0_"): value for name, value in values.items()}


def raw_contact(rng: random.Random, index: int) -> dict[str, Any]:
    """A contact's fields as the command API puts them in an event (phones in E.164)."""
    first = rng.choices(FIRST_NAMES, cum_weights=_FIRST_WEIGHTS)[0]
    last = rng.choices(LAST_NAMES, cum_weights=_LAST_WEIGHTS)[0]
    raw: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "emails": [
            {
                "value": f"{first.lower()}.{last.lower()}.{index}@{rng.choice(_DOMAINS)}",
                "type": rng.choice(("work", "home")),
            }
        ],
        "tags": rng.sample(_TAGS, rng.randint(0, 3)),
    }
    if rng.random() < 0.7:
        raw["phones"] = [
            {"value": f"+1212{rng.randint(2, 9)}{rng.randint(0, 999999):06d}", "type": "mobile"}
        ]
    if rng.random() < 0.6:
        raw["company"] = rng.choice(_COMPANIES)
    if rng.random() < 0.4:
        raw["job_title"] = rng.choice(_TITLES)
    if rng.random() < 0.2:
        raw["birthday"] = (
            f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    if rng.random() < 0.2:
        raw["addresses"] = [
            {
                "type": "work",
                "street": f"{rng.randint(1, 300)} {rng.choice(LAST_NAMES)} Street",
                "city": rng.choice(LAST_NAMES),
                "postal_code": f"{rng.randint(10000, 99999)}",
                "country": rng.choice(_COUNTRIES),
            }
        ]
    if rng.random() < 0.1:
        raw["notes"] = f"Met at {rng.choice(_TAGS)}; follow up in Q{rng.randint(1, 4)}."
    return raw


def workspace_of(index: int) -> str:
    """The workspace of contact ``index``: ``LARGE_WORKSPACE`` for every even index, else one
    of the ``WORKSPACES - 1`` small ones in turn (``bench-001`` … ``bench-999``)."""
    if index % 2 == 0:
        return LARGE_WORKSPACE
    return f"bench-{(index // 2) % (WORKSPACES - 1) + 1:03d}"


def small_workspace() -> str:
    """A small workspace of the set (~``total / 2 / 999`` contacts), for EXPLAIN."""
    return workspace_of(1 + 2 * 6)


def events(start: int, stop: int, total: int) -> Iterator[ContactEvent]:
    """The ``created`` events of contacts ``start`` … ``stop - 1`` of a set of ``total``, as the
    command API makes them (``to_event``), each in its ``workspace_of``; event times spread
    evenly over ``SPAN``, so indexes from ``total`` on come after the loaded set
    (``LOADED_BEFORE``)."""
    rng = random.Random(f"{SEED}:{start}")
    step_us = SPAN / dt.timedelta(microseconds=1) / total
    for index in range(start, stop):
        moment = FIRST_TIME + dt.timedelta(microseconds=int(index * step_us))
        micros = int((moment - EPOCH) / dt.timedelta(microseconds=1))
        clock = HybridLogicalClock(now_us=lambda micros=micros: micros, node="bench")
        contact_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield to_event(
            CreateContact(contact_id, raw_contact(rng, index)),
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            operation_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            sequence=clock.next(),
            time=moment,
            correlation_id=f"bench-{index}",
            workspace=workspace_of(index),
        )


def worker_rows(start: int, stop: int, total: int) -> Iterator[dict[str, Any]]:
    """The column values the worker writes for the ``events(start, stop, total)``.

    Each event, in the canonical form the command API sends (E.164 phones), goes through the
    worker's ``read_event`` (which checks and normalizes it again, as for every message),
    ``apply_event`` on an empty state of the event's workspace and
    ``SqlContactRepository.save``; the row names its workspace.
    """
    capture = _CapturingConnection()
    repository = SqlContactRepository(capture)  # type: ignore[arg-type]
    for event in events(start, stop, total):
        state = ContactState(event.contact_id, workspace=event.workspace)
        decision = apply_event(state, read_event(event.to_cloudevent()))
        if decision.status != "applied":
            raise ValueError(f"contact {event.contact_id}: {decision.reason}")
        repository.save(decision.state)
        yield {**capture.values, "workspace": decision.state.workspace}


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list):
        value = "{" + ",".join(_array_item(item) for item in value) + "}"
    elif isinstance(value, dt.datetime | dt.date):
        value = value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array_item(item: Any) -> str:
    return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'


def copy_rows(rows: Iterator[dict[str, Any]]) -> tuple[list[str], io.StringIO]:
    """The column names and a COPY text-format buffer of ``rows``."""
    buffer = io.StringIO()
    columns: list[str] = []
    for values in rows:
        if not columns:
            columns = list(values)
        buffer.write("\t".join(_copy_text(values[c]) for c in columns))
        buffer.write("\n")
    buffer.seek(0)
    return columns, buffer


def _load_chunk(args: tuple[str, int, int, int]) -> int:
    dsn, start, stop, total = args
    columns, buffer = copy_rows(worker_rows(start, stop, total))
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY contacts ({', '.join(columns)}) FROM STDIN", buffer)
        conn.commit()
    return stop - start


def fingerprint(dsn: str, total: int) -> str:
    """A digest of what a load would write: the generator's parameters, the migrations (but
    those that change nothing a load writes, ``keeps_loaded_data``), the values of the first
    ``FINGERPRINT_ROWS`` rows as the current code computes them, and the columns of the
    ``contacts`` table. A change of the worker's or the domain's code that changes the rows, or
    a schema change, changes it; any other edit does not (no reload)."""
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{SEED}:{total}".encode())
    for migration in sorted(MIGRATIONS.glob("*.py")):
        if not keeps_loaded_data(migration):
            digest.update(migration.read_bytes())
    _, sample = copy_rows(worker_rows(0, min(FINGERPRINT_ROWS, total), total))
    digest.update(sample.getvalue().encode())
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type, coalesce(generation_expression, '') "
            "FROM information_schema.columns WHERE table_name = 'contacts' "
            "ORDER BY ordinal_position"
        )
        digest.update(repr(cur.fetchall()).encode())
    return digest.hexdigest()[:16]


def keeps_loaded_data(migration: Path) -> bool:
    """Whether ``migration`` declares ``KEEPS_LOADED_DATA = True`` at module level: it changes
    nothing a load writes, i.e. it only creates or drops indexes (0007: its own integration
    test proves no column, row, constraint, trigger or function changes), or it changes only
    tables the load leaves empty (0006: ``processed_events``, truncated by ``load``; 0008: a
    new table), or it recomputes columns of a row from the row itself by the rule the current
    code writes them with, so a loaded set after it equals a fresh load (0009: the email keys;
    the sample rows of ``fingerprint`` catch a generator whose rows that rule changes), or it
    changes the catalogue only (0010: a wider ``varchar``). Such a
    migration is applied to a loaded data set by ``alembic upgrade`` (``Bench.prepare`` migrates
    before it checks the fingerprint; indexes are built ``CONCURRENTLY`` on the loaded rows), so
    it is left out of the fingerprint: adding one costs an index build, not a reload of
    1,000,000 rows."""
    for node in ast.parse(migration.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if (
            isinstance(target, ast.Name)
            and target.id == "KEEPS_LOADED_DATA"
            and isinstance(value, ast.Constant)
        ):
            return value.value is True
    return False


def loaded_fingerprint(dsn: str) -> str | None:
    """The fingerprint recorded by the last complete load of ``dsn``, if any."""
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_dataset')")
        if cur.fetchone()[0] is None:
            return None
        cur.execute("SELECT fingerprint FROM bench_dataset")
        row = cur.fetchone()
        return row[0] if row else None


def load(dsn: str, total: int, digest: str, processes: int = 2, log: Any = print) -> float:
    """Replace every contact of ``dsn`` with the ``total`` generated ones, recording their
    fingerprint ``digest`` once complete; returns the seconds it took.

    The table's secondary indexes are dropped, the rows copied by ``processes`` processes in
    chunks of ``CHUNK_ROWS``, the indexes recreated from their saved definitions, then VACUUM
    ANALYZE (statistics for the planner, visibility map for index-only scans).
    """
    started = time.perf_counter()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_dataset")
        # The feed and the live counts are the triggers' (migrations 0002, 0005): rebuilt by
        # the COPY, row by row, like the contacts' own.
        cur.execute("TRUNCATE contacts, processed_events, contact_changes")
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "JOIN pg_class c ON c.relname = i.indexname "
            "LEFT JOIN pg_constraint k ON k.conindid = c.oid "
            "WHERE i.tablename = 'contacts' AND k.oid IS NULL"
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
    chunks = [
        (dsn, start, min(start + CHUNK_ROWS, total), total) for start in range(0, total, CHUNK_ROWS)
    ]
    done = 0
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        for rows in pool.imap_unordered(_load_chunk, chunks):
            done += rows
            if done % (CHUNK_ROWS * 8) == 0 or done == total:
                log(f"    {done:>9,} rows copied ({time.perf_counter() - started:5.0f} s)")
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '256MB'")
        cur.execute("SET max_parallel_maintenance_workers = 1")
        for name, definition in indexes:
            cur.execute(definition)
            log(f"    index {name} ({time.perf_counter() - started:5.0f} s)")
        cur.execute("VACUUM ANALYZE contacts")
        cur.execute("VACUUM ANALYZE contact_changes")
        cur.execute("CREATE TABLE bench_dataset (fingerprint text NOT NULL, rows bigint NOT NULL)")
        cur.execute("INSERT INTO bench_dataset VALUES (%s, %s)", (digest, total))
    conn.close()
    return time.perf_counter() - started


#: Dead rows, as a share of live ones, past which ``vacuum_if_dead`` vacuums a table.
DEAD_SHARE: Final = 0.01


def dead_rows(conn: Any, tables: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``(dead, live)`` rows of each of ``tables`` by ``pg_stat_user_tables``, counting what
    ``conn`` (a psycopg2 connection in autocommit mode) has just written: a backend reports
    its counts at most once a second, so the rows ``clean_writes`` had just deleted were not
    counted yet, and the vacuum after a run's write figures never ran (an ``--import-only``
    run left 11,200 dead rows, over ``DEAD_SHARE``). ``pg_stat_force_next_flush()``
    (PostgreSQL 15) reports them at the end of its statement."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute(
            "SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname = ANY(%s)",
            (list(tables),),
        )
        return {table: (int(dead), int(live)) for table, dead, live in cur.fetchall()}


def vacuum_if_dead(
    conn: Any, log: Any = print, tables: Sequence[str] = ("contacts", "contact_changes")
) -> dict[str, int]:
    """``VACUUM ANALYZE`` each of ``tables`` holding more dead rows than ``DEAD_SHARE`` of its
    live ones (``dead_rows``); returns the dead rows per table vacuumed.

    Every write figure leaves dead rows behind (``clean_writes`` deletes what it wrote). On a
    server with autovacuum on, as on RDS, they are vacuumed soon after; this machine's
    PostgreSQL runs with ``autovacuum = off``, where they piled up across runs (337,769 dead
    rows in ``contacts`` after a day of runs: index-only scans turned into heap visits, and
    the prefix search p99 went from 14.8 to 23.5 ms). Fewer than ``DEAD_SHARE`` do not show:
    11,200 dead rows (1.1%) left the searches' buffers and times as they were (bench/README.md,
    "Session 15: search p99"). ``conn`` is a psycopg2 connection; it is left in autocommit mode.
    """
    conn.autocommit = True
    vacuumed: dict[str, int] = {}
    with conn.cursor() as cur:
        for table, (dead, live) in dead_rows(conn, tables).items():
            if dead > DEAD_SHARE * max(live, 1):
                started = time.perf_counter()
                cur.execute(f"VACUUM ANALYZE {table}")
                seconds = time.perf_counter() - started
                log(f"  vacuumed {table}: {dead:,} dead rows ({seconds:.0f} s)")
                vacuumed[table] = dead
    return vacuumed


def ensure_loaded(
    dsn: str, total: int, recreate: Callable[[], None], log: Any = print
) -> dict[str, Any]:
    """Load the set unless ``dsn`` already holds exactly it; returns what was done.

    ``recreate`` drops and recreates the (benchmark's own) database at the newest schema; it
    runs before a load, so a migration edited in place is applied too.
    """
    wanted = fingerprint(dsn, total)
    if loaded_fingerprint(dsn) == wanted:
        with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM contacts WHERE alive")
            if cur.fetchone()[0] == total:
                log(f"  data set {wanted} already loaded ({total:,} contacts)")
                return {"fingerprint": wanted, "rows": total, "loaded_s": None}
    log(f"  loading {total:,} contacts (data set {wanted}); the first run takes a few minutes")
    recreate()
    wanted = fingerprint(dsn, total)
    seconds = load(dsn, total, wanted, log=log)
    return {"fingerprint": wanted, "rows": total, "loaded_s": round(seconds, 1)}
