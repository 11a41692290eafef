"""PostgreSQL's ``cache_repairs`` (migration 0008): the cache entries the worker owes Redis
(``service_layer.cache_repair``)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contact_worker.adapters.sql import state_from_row
from contact_worker.service_layer.cache_repair import CacheRepairs, OwedEntry
from contacts_domain import ContactState

_RECORD = sa.text(
    """
    INSERT INTO cache_repairs (cache, workspace, contact_id, version)
    SELECT :cache, * FROM unnest(CAST(:workspaces AS text[]), CAST(:ids AS uuid[]),
                         CAST(:versions AS bigint[]))
    ON CONFLICT (cache, workspace, contact_id) DO UPDATE
    SET version = GREATEST(cache_repairs.version, EXCLUDED.version), recorded_at = now()
    """
)

_OWED = sa.text(
    """
    SELECT r.workspace AS owed_workspace, r.contact_id::text AS owed_id,
           r.version AS owed_version, c.*
    FROM cache_repairs r
    LEFT JOIN contacts c ON c.workspace = r.workspace AND c.id = r.contact_id
    WHERE r.cache = :cache
    ORDER BY r.recorded_at
    LIMIT :limit
    """
)

_COUNT = sa.text("SELECT count(*) FROM cache_repairs WHERE cache = :cache")

_SETTLE = sa.text(
    """
    DELETE FROM cache_repairs r
    USING unnest(CAST(:workspaces AS text[]), CAST(:ids AS uuid[]),
                 CAST(:versions AS bigint[])) AS s(workspace, contact_id, version)
    WHERE r.cache = :cache AND r.workspace = s.workspace AND r.contact_id = s.contact_id
      AND r.version <= s.version
    """
)


class SqlCacheRepairs(CacheRepairs):
    """``CacheRepairs`` of the cache named ``cache`` (its Redis key prefix) on ``engine``: each
    call is one statement in a transaction of its own.
    Reading takes no lock: a contact changed meanwhile has a newer entry written (or owed) by
    the event that changed it, and the cache's version guard keeps the newer one."""

    def __init__(self, engine: Engine, cache: str) -> None:
        self._engine = engine
        self._cache = cache

    def record(self, states: Sequence[ContactState]) -> None:
        if not states:
            return
        with self._engine.begin() as connection:
            connection.execute(
                _RECORD,
                {
                    "cache": self._cache,
                    "workspaces": [state.workspace for state in states],
                    "ids": [state.contact_id for state in states],
                    "versions": [state.version for state in states],
                },
            )

    def owed_states(self, limit: int) -> list[tuple[OwedEntry, ContactState]]:
        with self._engine.begin() as connection:
            found = connection.execute(_OWED, {"cache": self._cache, "limit": limit})
            rows = found.mappings().all()
        owed: list[tuple[OwedEntry, ContactState]] = []
        for row in rows:
            entry = (row["owed_workspace"], row["owed_id"], row["owed_version"])
            if row["id"] is None:
                state = ContactState(entry[1], workspace=entry[0])
            else:
                state = state_from_row(entry[1], row)
            owed.append((entry, state))
        return owed

    def settle(self, entries: Sequence[OwedEntry]) -> int:
        if not entries:
            return 0
        with self._engine.begin() as connection:
            result = connection.execute(
                _SETTLE,
                {
                    "cache": self._cache,
                    "workspaces": [workspace for workspace, _, _ in entries],
                    "ids": [contact_id for _, contact_id, _ in entries],
                    "versions": [version for _, _, version in entries],
                },
            )
        return int(result.rowcount)

    def count(self) -> int:
        """How many entries this cache is owed now (for the metric: one index range count)."""
        with self._engine.connect() as connection:
            return int(connection.execute(_COUNT, {"cache": self._cache}).scalar_one())
