"""The mapping between rows of the worker's tables and domain values, shared by the worker
(which writes them) and the query API (which reads them). The schema itself is the worker's
(services/contact-worker/migrations).

A row is any mapping of column name to the value psycopg2 returns (a SQLAlchemy
``Row._mapping``, a ``RowMapping``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from contacts_domain import FIELDS, OperationStatus

#: ``contacts`` columns holding JSON arrays of objects (``jsonb``).
JSON_FIELDS: Final = ("emails", "phones", "addresses")


def contact_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The domain's ``Fields`` of a ``contacts`` row: every name of ``FIELDS``, lists for the
    array columns (a NULL read as ``[]``), ``birthday`` as ``YYYY-MM-DD`` text."""
    fields = {name: row[name] for name in FIELDS}
    for name in (*JSON_FIELDS, "tags"):
        fields[name] = list(fields[name] or [])
    if fields["birthday"] is not None:
        fields["birthday"] = fields["birthday"].isoformat()
    return fields


def operation_status(row: Mapping[Any, Any]) -> OperationStatus:
    """The ``OperationStatus`` of a ``processed_events`` row (ids as text)."""
    return OperationStatus(
        operation_id=str(row["operation_id"]),
        contact_id=str(row["contact_id"]),
        status=row["status"],
        reason=row["reason"],
        version=row["version"],
        result=row["result"],
    )
