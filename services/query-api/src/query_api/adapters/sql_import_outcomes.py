"""Outcomes of an import's records from ``processed_events`` (the worker's inbox), counted by
``(workspace, import_id)`` with one grouped read of the partial index on ``(workspace,
import_id, status, reason)`` (migration 0005)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Select, func, select

from query_api.adapters.sql_read_model import connection
from query_api.adapters.sql_schema import processed_events
from query_api.service_layer.ports import ImportOutcomeLog
from query_api.service_layer.records import ImportOutcomes


class SqlImportOutcomeLog(ImportOutcomeLog):
    """``ImportOutcomeLog`` over ``processed_events``: an import of 10,000 records is at most
    10,000 index entries, read in index order."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def counts(self, workspace: str, import_id: str) -> ImportOutcomes:
        with connection(self._engine) as conn:
            rows = conn.execute(counts_statement(workspace, import_id)).all()
        applied = 0
        reasons: dict[str, int] = {}
        for status, reason, count in rows:
            if status == "applied":
                applied += int(count)
            elif status == "rejected":
                reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + int(count)
        return ImportOutcomes(applied, sum(reasons.values()), reasons)


def counts_statement(workspace: str, import_id: str) -> Select[Any]:
    """``(status, reason, count)`` per outcome of the records of import ``import_id`` of
    ``workspace`` (exposed for EXPLAIN tests; ``import_id = ...`` implies the partial index's
    ``import_id IS NOT NULL``)."""
    t = processed_events
    return (
        select(t.c.status, t.c.reason, func.count().label("count"))
        .where(t.c.workspace == workspace, t.c.import_id == import_id)
        .group_by(t.c.status, t.c.reason)
    )
