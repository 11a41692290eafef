"""Operation outcomes from ``processed_events`` (the worker's inbox), by operation id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Select, select

from contacts_domain.operations import OperationStatus
from contacts_infra.contact_rows import operation_status
from query_api.adapters.sql_read_model import connection
from query_api.adapters.sql_schema import processed_events
from query_api.service_layer.ports import OperationLog


class SqlOperationLog(OperationLog):
    """``OperationLog`` over ``processed_events`` (unique index on ``(workspace,
    operation_id)``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        with connection(self._engine) as conn:
            row = conn.execute(outcome_statement(workspace, operation_id)).first()
        return None if row is None else operation_status(row._mapping)


def outcome_statement(workspace: str, operation_id: str) -> Select[Any]:
    """The SELECT of one operation's outcome in ``workspace`` (exposed for EXPLAIN tests)."""
    t = processed_events
    return select(
        t.c.operation_id, t.c.contact_id, t.c.status, t.c.reason, t.c.version, t.c.result
    ).where(t.c.workspace == workspace, t.c.operation_id == operation_id)
