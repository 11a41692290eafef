"""Migration 0009 (email keys by simple case folding) on a database populated by the previous
release: the keys of rows with a non-ASCII email are recomputed, and nothing else changes (no
ASCII row, no other column, no change-feed row), across more than one batch of the walk; the
new release can then store ``strasse@`` beside ``straße@``; the downgrade refuses, naming the
contact, while both are live, and restores the old keys once one is gone."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.entrypoints.admin import alembic_config
from contact_worker.service_layer.handlers import handle_event
from contacts_domain.values import email_key
from support.domain_fakes import InMemoryCache, InMemoryOperationStore
from support.resources import READER_ROLE, isolated_database, new_run_id

from .test_handle_event import make_event

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "migrations/versions/0009_simple_case_folded_email_keys.py"
)
#: ASCII rows of the previous release: more than one batch of the walk (``BATCH`` = 5,000).
ROWS = 6_000
SHARP = "stra\u00dfe@example.com"

#: Rows of the previous release with a non-ASCII email: (workspace, emails). ``aa-first`` sorts
#: before the ASCII rows' workspaces (the first batch), ``zz-last`` after them (the last one).
SPECIAL: list[tuple[str, list[str]]] = [
    ("aa-first", [SHARP]),
    ("default", ["Ada@X.com", "\ufb01le@example.com"]),  # ﬁ: full folding made it "fi"
    ("zz-last", ["\u0130pek@example.com"]),  # İ: full folding made it "i̇"
    ("zz-last", ["\u03a3\u039f\u03a6\u0399\u0391@example.com"]),  # ΣΟΦΙΑ: both rules agree
    ("zz-last", ["STRA\u1e9eE@example.org", "gro\u00df@example.org"]),  # ẞ, ß
]

INSERT = sa.text(
    "INSERT INTO contacts (workspace, id, first_name, email, email_key, email_keys, emails,"
    " alive, version, created_at) VALUES (:ws, :id, 'Special', :email, :key, :keys,"
    " CAST(:emails AS jsonb), true, 1, now())"
)
KEYS = sa.text("SELECT workspace, id::text, emails::text, email_key, email_keys FROM contacts")
#: A digest of the rows, every column as text, of the rows whose emails are ASCII.
ASCII_DIGEST = sa.text(
    "SELECT md5(string_agg(c::text, '|' ORDER BY c.workspace, c.id)) FROM contacts c"
    " WHERE octet_length(c.emails::text) = length(c.emails::text)"
)
CHANGES = sa.text("SELECT count(*) FROM contact_changes")


def _old_row(workspace: str, values: list[str]) -> dict[str, Any]:
    """A contact as the previous release stored it: keys by ``str.casefold``."""
    emails = [{"value": v, "type": "work", "primary": i == 0} for i, v in enumerate(values)]
    return {
        "ws": workspace,
        "id": str(uuid.uuid4()),
        "email": values[0],
        "key": values[0].casefold(),
        "keys": [v.casefold() for v in values],
        "emails": json.dumps(emails),
    }


def _populate(engine: sa.Engine) -> list[dict[str, Any]]:
    special = [_old_row(ws, values) for ws, values in SPECIAL]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (workspace, id, first_name, email, email_key, email_keys,"
                " emails, alive, version, created_at) SELECT CASE WHEN g % 2 = 0 THEN 'default'"
                " ELSE 'ws-' || g % 7 END, gen_random_uuid(), 'P' || g, 'P' || g ||"
                " '@example.com', 'p' || g || '@example.com', ARRAY['p' || g || '@example.com'],"
                " jsonb_build_array(jsonb_build_object('value', 'P' || g || '@example.com',"
                " 'type', 'work', 'primary', true)), true, 1, now()"
                " FROM generate_series(1, :n) g"
            ),
            {"n": ROWS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO contacts (workspace, id, alive, version, created_at, deleted_at)"
                " VALUES ('default', gen_random_uuid(), false, 2, now(), now())"
            )
        )
        conn.execute(INSERT, special)
    return special


def _keys(engine: sa.Engine) -> dict[str, tuple[str | None, list[str]]]:
    """Contact id → ``(email_key, email_keys)`` of every row."""
    with engine.connect() as conn:
        return {row[1]: (row[3], list(row[4])) for row in conn.execute(KEYS)}


def _expected(engine: sa.Engine) -> dict[str, tuple[str | None, list[str]]]:
    """Contact id → the keys the current code (``values.email_key``) gives its emails."""
    expected = {}
    with engine.connect() as conn:
        for _, contact_id, emails_text, _, _ in conn.execute(KEYS):
            emails = json.loads(emails_text)
            primary = next((e["value"] for e in emails if e["primary"]), None)
            keys = [email_key(e["value"]) for e in emails]
            expected[contact_id] = (email_key(primary) if primary else None, keys)
    return expected


def _scalar(engine: sa.Engine, statement: sa.TextClause) -> Any:
    with engine.connect() as conn:
        return conn.execute(statement).scalar_one()


def _write(engine: sa.Engine, kind: str, contact_id: str, data: dict[str, Any], **kw: Any) -> str:
    """Apply one event as the new release does; its outcome as ``"<status> <reason>"``."""
    status = handle_event(
        make_event(kind, contact_id, data, **kw),
        unit_of_work=lambda: SqlUnitOfWork(engine),
        cache=InMemoryCache(),
        operations=InMemoryOperationStore(),
    )
    return f"{status.status} {status.reason or ''}".strip()


def test_0009_refolds_the_non_ascii_keys_and_nothing_else() -> None:
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0008")
        engine = sa.create_engine(database.url)
        try:
            special = _populate(engine)
            before = _keys(engine)
            digest, changes = _scalar(engine, ASCII_DIGEST), _scalar(engine, CHANGES)
            command.upgrade(config, "0009")
            after, expected = _keys(engine), _expected(engine)
            after_digest, after_changes = _scalar(engine, ASCII_DIGEST), _scalar(engine, CHANGES)
            double = {"first_name": "S", "email": "strasse@example.com"}
            created = _write(engine, "created", str(uuid.uuid4()), double, workspace="aa-first")
        finally:
            engine.dispose()
    assert after == expected
    assert (after_digest, after_changes) == (digest, changes)  # ASCII rows and feed untouched
    changed = {cid for cid in after if after[cid] != before[cid]}
    assert changed == {row["id"] for row in special} - {special[3]["id"]}  # ΣΟΦΙΑ: same key
    assert after[special[0]["id"]] == (SHARP, [SHARP])
    assert after[special[1]["id"]] == ("ada@x.com", ["ada@x.com", "\ufb01le@example.com"])
    assert created == "applied"  # strasse@ beside straße@: the unique index split them


def test_0009_downgrade_refuses_while_full_folding_would_merge_two_live_contacts() -> None:
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        engine = sa.create_engine(database.url)
        sharp_id, double_id = str(uuid.uuid4()), str(uuid.uuid4())
        try:
            _write(engine, "created", sharp_id, {"first_name": "A", "email": SHARP})
            double = {"first_name": "B", "email": "strasse@example.com"}
            _write(engine, "created", double_id, double)
            with pytest.raises(RuntimeError) as refused:
                command.downgrade(config, "0008")
            _write(engine, "deleted", double_id, {})
            command.downgrade(config, "0008")
            restored = _keys(engine)
        finally:
            engine.dispose()
    message = str(refused.value)
    assert sharp_id in message or double_id in message
    assert "stra" not in message  # names the contact, never the email
    assert restored[sharp_id] == ("strasse@example.com", ["strasse@example.com"])


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0009", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_0009_reads_a_row_again_when_a_writer_changed_it_meanwhile(database_url: str) -> None:
    migration = _migration()
    engine = sa.create_engine(database_url)
    contact_id = str(uuid.uuid4())
    try:
        _write(engine, "created", contact_id, {"first_name": "A", "email": "gro\u00df@example.com"})
        with engine.begin() as conn:
            current = conn.execute(
                sa.text("SELECT workspace, id::text, emails::text FROM contacts WHERE id = :id"),
                {"id": contact_id},
            ).one()
            # Read before a writer changed the emails: the guarded update matches nothing.
            stale: tuple[Any, ...] = (
                current[0],
                current[1],
                current[2].replace("gro", "k"),
                None,
                [],
            )
            conn.execute(
                sa.text("UPDATE contacts SET email_key = 'old' WHERE id = :id"), {"id": contact_id}
            )
            migration._refold(conn, stale, migration.simple_case_fold)
            keys = conn.execute(
                sa.text("SELECT email_key, email_keys FROM contacts WHERE id = :id"),
                {"id": contact_id},
            ).one()
    finally:
        engine.dispose()
    assert tuple(keys) == ("gro\u00df@example.com", ["gro\u00df@example.com"])


@pytest.mark.parametrize(
    "value", ["Ada@X.COM", "\u1e9e\u00df\u03c2\u03a3\ufb01\u0130\u212a\u1f88", SHARP.upper()]
)
def test_0009_folds_as_the_domain_does_today(value: str) -> None:
    assert _migration().simple_case_fold(value) == email_key(value)
