"""The worker's owed cache entries (``cache_repairs``, migration 0008), polled from PostgreSQL.

A contact whose cache write failed after a commit (Redis down, or cut off from the worker
only) has an entry in Redis older than PostgreSQL until the worker's repair writes it (case
C18). Every query API process reads the whole (normally empty) table every ``interval_s`` and
serves none of those contacts from Redis meanwhile (``handlers.get_contact``), whether or not
it saw the outage itself.
"""

from __future__ import annotations

import logging
import os
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_OWED = sa.text(
    "SELECT workspace, contact_id::text FROM cache_repairs WHERE cache = :cache LIMIT :limit"
)


class PolledOwedEntries:
    """``ports.OwedEntries`` of the cache named ``cache`` (its Redis key prefix, as the worker
    names it) from ``engine``, read by a daemon thread of this process every ``interval_s``
    seconds, started by the first caller (it reads at once: a request never waits for it, so
    the first answers of a new process, before that read, are given with nothing owed).

    More than ``limit`` owed entries count as every entry owed (the cache is bypassed until
    the repair catches up). A failed read keeps the last list and is logged once per outage.
    A forked child starts its own thread on first use.
    """

    def __init__(self, engine: Engine, cache: str, interval_s: float, limit: int = 10_000) -> None:
        self._engine = engine
        self._cache = cache
        self._interval_s = interval_s
        self._limit = limit
        self._owed: frozenset[tuple[str, str]] = frozenset()
        self._everything = False
        self._failing = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def owes(self, workspace: str, contact_id: str) -> bool:
        if self._thread is None:
            self._start()
        if self._everything:
            return True
        owed = self._owed
        return bool(owed) and (workspace, contact_id) in owed

    def poll_once(self) -> int:
        """Read the owed entries now; returns how many there are (at most ``limit + 1``).
        Raises what SQLAlchemy raises when PostgreSQL does not answer."""
        with self._engine.connect() as connection:
            rows = connection.execute(_OWED, {"cache": self._cache, "limit": self._limit + 1}).all()
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
            self._thread = threading.Thread(target=self._run, name="owed-entries", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        self._poll_logged()
        while not self._stop.wait(self._interval_s):
            self._poll_logged()

    def _poll_logged(self) -> None:
        try:
            count = self.poll_once()
        except Exception as exc:
            if not self._failing:
                log.warning("owed cache entries not read; keeping the last list: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("owed cache entries read again: %d owed", count)
        self._failing = False

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
