"""Operation outcomes from ``processed_events`` (the worker's inbox), by operation id."""

from __future__ import annotations

from sqlalchemy import Engine, select

from contacts_domain.operations import OperationStatus
from query_api.adapters.sql_read_model import connection
from query_api.adapters.sql_schema import processed_events
from query_api.service_layer.ports import OperationLog


class SqlOperationLog(OperationLog):
    """``OperationLog`` over ``processed_events`` (unique index on ``operation_id``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, operation_id: str) -> OperationStatus | None:
        t = processed_events
        stmt = select(t.c.operation_id, t.c.contact_id, t.c.status, t.c.reason, t.c.version).where(
            t.c.operation_id == operation_id
        )
        with connection(self._engine) as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return OperationStatus(
            operation_id=row.operation_id,
            contact_id=row.contact_id,
            status=row.status,
            reason=row.reason,
            version=row.version,
        )
