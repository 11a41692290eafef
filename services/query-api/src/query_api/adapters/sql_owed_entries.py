"""The worker's owed cache entries (``cache_repairs``, migration 0008), polled from PostgreSQL.

A contact whose cache write failed after a commit (Redis down, or cut off from the worker
only) has an entry in Redis older than PostgreSQL until the worker's repair writes it (case
C18). Every query API process reads the whole (normally empty) table every ``interval_s`` and
serves none of those contacts from Redis meanwhile (``handlers.get_contact``), whether or not
it saw the outage itself.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

#: SQLSTATEs of a database without the table or its columns: undefined_table,
#: undefined_column.
_SCHEMA_PREDATES_THE_TABLE = frozenset({"42P01", "42703"})

_OWED = sa.text(
    "SELECT workspace, contact_id::text FROM cache_repairs WHERE cache = :cache LIMIT :limit"
)


class PolledOwedEntries:
    """``ports.OwedEntries`` of the cache named ``cache`` (its Redis key prefix, as the worker
    names it) from ``engine``, read by a daemon thread of this process every ``interval_s``
    seconds, started by the first caller. The first callers of a process (or of a forked
    child) wait for its first read, at most ``first_read_wait_s``; until a read has succeeded
    every entry counts as owed, so no request is answered from an entry that may be.

    More than ``limit`` owed entries count as every entry owed (the cache is bypassed until
    the repair catches up). A failed read keeps the last list and is logged once per outage.
    A forked child starts its own thread on first use.
    """

    def __init__(
        self,
        engine: Engine,
        cache: str,
        interval_s: float,
        *,
        limit: int = 10_000,
        first_read_wait_s: float = 0.25,
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._interval_s = interval_s
        self._limit = limit
        self._first_read_wait_s = first_read_wait_s
        self._owed: frozenset[tuple[str, str]] = frozenset()
        self._everything = True  # until the first read
        self._failing = False
        self._schema_logged = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._first_read = threading.Event()
        self._stop = threading.Event()
        # By a weak reference: the hook lives as long as the process, the engine must not.
        os.register_at_fork(after_in_child=functools.partial(_forget_after_fork, weakref.ref(self)))

    def owes(self, workspace: str, contact_id: str) -> bool:
        if self._everything:
            if self._thread is None:
                self._start()
            self._first_read.wait(self._first_read_wait_s)
            if self._everything:
                return True
        owed = self._owed
        return bool(owed) and (workspace, contact_id) in owed

    def poll_once(self) -> int:
        """Read the owed entries now; returns how many there are (at most ``limit + 1``).

        A database whose schema predates ``cache_repairs`` (the query API deployed before the
        worker's migration 0008 ran) owes nothing: no worker can have recorded a debt there.
        Raises what SQLAlchemy raises when PostgreSQL does not answer."""
        try:
            with self._engine.connect() as connection:
                found = connection.execute(_OWED, {"cache": self._cache, "limit": self._limit + 1})
                rows = found.all()
        except sa.exc.ProgrammingError as exc:
            if getattr(exc.orig, "pgcode", None) not in _SCHEMA_PREDATES_THE_TABLE:
                raise
            if not self._schema_logged:
                log.warning("cache_repairs not in the database yet (migration 0008): none owed")
            self._schema_logged = True
            rows = []
        self._owed = frozenset((str(workspace), str(contact_id)) for workspace, contact_id in rows)
        self._everything = len(rows) > self._limit
        return len(rows)

    def stop(self) -> None:
        """Stop the thread after its current wait."""
        self._stop.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=_poll_while_owned,
                args=(weakref.ref(self), self._stop, self._interval_s),
                name="owed-entries",
                daemon=True,
            )
            self._thread.start()

    def _poll_logged(self) -> None:
        try:
            count = self.poll_once()
        except Exception as exc:
            if not self._failing:
                log.warning("owed cache entries not read; keeping the last list: %s", exc)
            self._failing = True
            return
        finally:
            self._first_read.set()
        if self._failing:
            log.info("owed cache entries read again: %d owed", count)
        self._failing = False

    def _forget_in_child(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self._first_read = threading.Event()
        self._everything = True  # the parent's list may be old by now: read it again


def _forget_after_fork(owner: weakref.ref[PolledOwedEntries]) -> None:
    polled = owner()
    if polled is not None:
        polled._forget_in_child()


def _poll_while_owned(
    owner: weakref.ref[PolledOwedEntries], stop: threading.Event, interval_s: float
) -> None:
    """The thread of a ``PolledOwedEntries``: reads now, then every ``interval_s``, until
    ``stop`` or until its owner is garbage (an app dropped without ``close``: the thread must
    not keep its engine, and a pooled connection, alive)."""
    while True:
        polled = owner()
        if polled is None:
            return
        polled._poll_logged()
        del polled
        if stop.wait(interval_s):
            return
