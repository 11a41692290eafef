"""``contact-worker-admin purge-changes`` against real PostgreSQL: old changes go, the purge
horizon follows them, recent changes and young tokens stay."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from contact_worker.adapters.change_feed import purge_changes


def _insert(conn: sa.Connection, contact_id: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO contacts (id, first_name, version, alive, created_at)"
            " VALUES (:id, 'P', 1, true, now())"
        ),
        {"id": contact_id},
    )


def _changes(conn: sa.Connection, ids: list[str]) -> list[str]:
    rows = conn.execute(
        sa.text("SELECT contact_id::text FROM contact_changes WHERE contact_id::text = ANY(:ids)"),
        {"ids": ids},
    ).scalars()
    return sorted(rows)


def test_a_purge_removes_only_old_changes_and_raises_the_horizon(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        with engine.begin() as conn:
            _insert(conn, old)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE contact_changes SET changed_at = now() - interval '8 days'"
                    " WHERE contact_id = :id"
                ),
                {"id": old},
            )
            old_at = conn.execute(
                sa.text("SELECT txid::text, position FROM contact_changes WHERE contact_id = :id"),
                {"id": old},
            ).one()
            _insert(conn, recent)

        assert purge_changes(engine, dt.timedelta(days=7)) >= 1

        with engine.connect() as conn:
            assert _changes(conn, [old, recent]) == [recent]
            horizon = conn.execute(
                sa.text("SELECT txid::text, position FROM change_feed_horizon")
            ).one()
        assert (int(horizon[0]), horizon[1]) >= (int(old_at[0]), old_at[1])
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM change_feed_horizon"))
        engine.dispose()


def test_a_purge_keeps_at_least_seven_days(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with pytest.raises(ValueError, match="at least 7 days"):
            purge_changes(engine, dt.timedelta(days=6))
    finally:
        engine.dispose()


def test_the_admin_command_refuses_a_shorter_retention(database_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "contact_worker.entrypoints.admin",
            "purge-changes",
            "--older-than-days",
            "1",
        ],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "at least 7 days" in done.stderr
