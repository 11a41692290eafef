"""Migration 0005 (workspaces) on a database populated by the previous release, while writers
keep going: no write is lost and every row lands in ``default`` (issue 12, "Done when")."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from alembic import command

from contact_worker.adapters.sql import SqlUnitOfWork
from contact_worker.entrypoints.admin import alembic_config
from contact_worker.service_layer.handlers import handle_event
from support.domain_fakes import InMemoryCache, InMemoryOperationStore
from support.resources import READER_ROLE, isolated_database, new_run_id

from .test_handle_event import make_event

#: Rows of the previous release: more than one backfill batch (``BATCH`` = 5,000) per table.
ROWS = 12_000

#: How the previous release (0004) stores a contact.
OLD_RELEASE_WRITE = sa.text(
    "INSERT INTO contacts (id, first_name, email, email_key, email_keys, alive, version,"
    " created_at) VALUES (:id, 'Old', :email, :email, ARRAY[:email], true, 1, now())"
    " ON CONFLICT (id) DO UPDATE SET version = contacts.version + 1"
)


def _populate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (id, first_name, email, email_key, email_keys, alive,"
                " version, created_at) SELECT gen_random_uuid(), 'P' || g, 'p' || g ||"
                " '@example.com', 'p' || g || '@example.com', ARRAY['p' || g || '@example.com'],"
                " g % 4 <> 0, 1, now() FROM generate_series(1, :n) g"
            ),
            {"n": ROWS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO processed_events (event_id, operation_id, contact_id, event_type,"
                " sequence, status) SELECT gen_random_uuid(), gen_random_uuid(), id, 'created',"
                " 's' || id, 'applied' FROM contacts"
            )
        )


class Writer(threading.Thread):
    """Calls ``write`` with new contact ids until stopped, retrying a failed write the way the
    queue redelivers a message; keeps the ids written and how many committed while ``busy``."""

    def __init__(self, write: Callable[[str], None], busy: threading.Event) -> None:
        super().__init__(daemon=True)
        self._write = write
        self._busy = busy
        self.stop = threading.Event()
        self.written: list[str] = []
        self.during = 0
        self.failures = 0

    def run(self) -> None:
        while not self.stop.is_set():
            cid = str(uuid.uuid4())
            while not self.stop.is_set():
                try:
                    self._write(cid)
                except sa.exc.DBAPIError:
                    self.failures += 1
                    time.sleep(0.02)
                    continue
                self.written.append(cid)
                self.during += self._busy.is_set()
                break
            time.sleep(0.005)


def test_a_populated_database_migrates_while_writes_go_on() -> None:
    with isolated_database(new_run_id()) as database:
        config = alembic_config(database.url, READER_ROLE)
        command.downgrade(config, "0004")
        engine = sa.create_engine(
            database.url, pool_size=4, connect_args={"options": "-c lock_timeout=2000"}
        )
        try:
            _populate(engine)
            busy = threading.Event()

            def new_release(cid: str) -> None:
                event = make_event("created", cid, {"first_name": "New", "email": f"{cid}@x.org"})
                handle_event(
                    event,
                    unit_of_work=lambda: SqlUnitOfWork(engine),
                    cache=InMemoryCache(),
                    operations=InMemoryOperationStore(),
                )

            def old_release(cid: str) -> None:
                with engine.begin() as conn:
                    conn.execute(OLD_RELEASE_WRITE, {"id": cid, "email": f"{cid}@x.org"})

            new, old = Writer(new_release, busy), Writer(old_release, busy)
            new.start()
            old.start()
            time.sleep(0.3)
            busy.set()
            command.upgrade(config, "head")
            busy.clear()
            old.stop.set()  # the previous release is replaced now; the new one goes on
            time.sleep(0.5)
            new.stop.set()
            new.join(10)
            old.join(10)

            with engine.connect() as conn:
                ids = {
                    str(i)
                    for i in conn.execute(
                        sa.text("SELECT id FROM contacts WHERE workspace = 'default'")
                    ).scalars()
                }
                by_workspace = dict(
                    conn.execute(
                        sa.text(
                            "SELECT workspace, count(*) FROM contacts GROUP BY 1 UNION ALL"
                            " SELECT 'events:' || workspace, count(*) FROM processed_events"
                            " GROUP BY 1"
                        )
                    ).all()
                )
        finally:
            engine.dispose()
        assert old.during > 0  # the previous release wrote while the migration ran
        assert new.written  # and the new one wrote once the schema allowed it
        assert set(old.written) <= ids  # no write lost
        assert set(new.written) <= ids
        total = ROWS + len(old.written) + len(new.written)
        assert by_workspace == {"default": total, "events:default": ROWS + len(new.written)}
