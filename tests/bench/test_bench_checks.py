"""The checks ``make bench`` relies on to trust its own figures (bench/run.py, bench/dataset.py).

The cache-miss figure is only a miss figure if every request it timed was a miss: its access
log is parsed for that (issue 13 item 7; it broke when the logs became JSON and printed
thousands of fragments). A migration that only adds or drops indexes leaves the data-set
fingerprint alone, so adding one does not force a reload of 1,000,000 rows.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2
import pytest

from contacts_http.gunicorn_hooks import ACCESS_LOG_FORMAT
from contacts_telemetry.logs import json_formatter

BENCH = Path(__file__).resolve().parents[2] / "bench"
MIGRATIONS = BENCH.parent / "services/contact-worker/migrations/versions"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _access_line(path: str, cache: str) -> bytes:
    """An access-log line as the query API's gunicorn writes it (its format, JSON formatter)."""
    message = ACCESS_LOG_FORMAT.replace("%(m)s", "GET").replace("%(U)s", path)
    message = message.replace("%(s)s", "200").replace("%(B)s", "512").replace("%(D)s", "812")
    message = message.replace("%({x-request-id}o)s", "r-1").replace("%({x-cache}o)s", cache)
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, message, None, None)
    return json_formatter("query-api").format(record).encode() + b"\n"


def _error_line(text: str) -> bytes:
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, text, None, None)
    return json_formatter("query-api").format(record).encode() + b"\n"


def test_the_access_log_outcomes_are_counted_per_request() -> None:
    run = _bench_module("run")
    log = [
        _error_line("Booting worker with pid: 42"),
        _access_line("/readyz", "-"),
        *(_access_line(f"/v1/contacts/{n}", "miss") for n in range(3)),
        _access_line("/v1/contacts/7", "hit"),
        b"not json at all cache=hit\n",
    ]

    assert run.access_outcomes(log) == {"miss": 3, "hit": 1}


def test_a_miss_repetition_with_a_hit_or_a_missing_line_is_refused() -> None:
    run = _bench_module("run")

    assert run.check_all_misses({"miss": 12_000}, 12_000) is None
    assert "not misses" in run.check_all_misses({"miss": 11_999, "hit": 1}, 12_000)
    assert "11998 cache=miss" in run.check_all_misses({"miss": 11_998}, 12_000)


def test_only_index_only_migrations_are_left_out_of_the_fingerprint(tmp_path: Path) -> None:
    dataset = _bench_module("dataset")
    flagged = tmp_path / "0099_index.py"
    flagged.write_text('"""x"""\nfrom typing import Final\n\nKEEPS_LOADED_DATA: Final = True\n')
    unflagged = tmp_path / "0098_column.py"
    unflagged.write_text("KEEPS_LOADED_DATA = False\nCOLUMNS = True\n")

    assert dataset.keeps_loaded_data(flagged)
    assert not dataset.keeps_loaded_data(unflagged)


@pytest.mark.parametrize("migration", sorted(MIGRATIONS.glob("*.py")), ids=lambda p: p.stem)
def test_the_migrations_that_change_rows_or_columns_are_fingerprinted(migration: Path) -> None:
    dataset = _bench_module("dataset")
    # 0006 and 0008 touch only tables the load leaves empty; 0007 only indexes (its test
    # proves it); 0009 recomputes email keys as the current code writes them (its test);
    # 0010 widens a column (the catalogue only).
    keeps = ("0006_", "0007_", "0008_", "0009_", "0010_")
    assert dataset.keeps_loaded_data(migration) == migration.name.startswith(keeps)


def test_rows_the_same_connection_just_deleted_are_vacuumed(database_url) -> None:
    # clean_writes deletes a run's rows and calls vacuum_if_dead on the same connection at
    # once; a backend reports its counts at most once a second, so they were not counted and
    # the vacuum after the write figures never ran (11,200 dead rows after --import-only).
    dataset = _bench_module("dataset")
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    table = "bench_vacuum_probe_now"
    try:
        with contextlib.closing(psycopg2.connect(dsn)) as conn:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(
                    f"CREATE TABLE {table} AS SELECT g AS id FROM generate_series(1, 1000) g"
                )
                cur.execute("SELECT 1")
                conn.commit()
                cur.execute(f"DELETE FROM {table} WHERE id <= 500")
                conn.commit()
            assert dataset.vacuum_if_dead(conn, log=lambda _line: None, tables=[table]) == {
                table: 500
            }
    finally:
        with contextlib.closing(psycopg2.connect(dsn)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_dead_rows_left_by_earlier_runs_are_vacuumed_before_the_figures(database_url) -> None:
    # This machine's PostgreSQL runs without autovacuum: the rows each write figure deletes
    # again piled up across runs and slowed the read figures (search p99 14.8 -> 23.5 ms).
    dataset = _bench_module("dataset")
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    table = "bench_vacuum_probe"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} AS SELECT g AS id FROM generate_series(1, 1000) g")
        cur.execute(f"DELETE FROM {table} WHERE id <= 500")
        cur.execute("SELECT pg_stat_force_next_flush()")
    conn.close()
    try:
        with contextlib.closing(psycopg2.connect(dsn)) as conn:
            lines: list[str] = []
            assert dataset.vacuum_if_dead(conn, log=lines.append, tables=[table]) == {table: 500}
            assert [line.split(" (")[0] for line in lines] == [
                "  vacuumed bench_vacuum_probe: 500 dead rows"
            ]
            with conn.cursor() as cur:
                cur.execute("SELECT pg_stat_force_next_flush()")
        with contextlib.closing(psycopg2.connect(dsn)) as conn:
            assert dataset.vacuum_if_dead(conn, log=lines.append, tables=[table]) == {}
    finally:
        with contextlib.closing(psycopg2.connect(dsn)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE {table}")


def test_the_protocol_floor_makes_only_a_miss_round_trips(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_client: Any
) -> None:
    """``floor_app`` (the miss's protocol floor): a lease taken in Redis, the query API's own
    prepared lookup run in PostgreSQL, and the ceiling's constant document answered."""
    floor, ceiling = _bench_module("floor_app"), _bench_module("ceiling_app")
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("QUERY_DATABASE_URL", database_url)
    monkeypatch.setenv("FLOOR_WORKSPACE", "ws-floor")
    contact_id = str(uuid.uuid4())
    lease = f"{floor.PREFIX}{contact_id}:lease"
    try:
        answer = floor.app.test_client().get(f"/v1/contacts/{contact_id}")
        assert answer.status_code == 200
        assert answer.data == ceiling.BODY
        assert redis_client.get(lease) == b"token"
        with floor._local.pg.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements")
            assert ("contact_lookup",) in cursor.fetchall()
    finally:
        redis_client.delete(lease)
        if hasattr(floor._local, "pg"):
            floor._local.pg.close()
            floor._local.sock.close()
            del floor._local.pg
