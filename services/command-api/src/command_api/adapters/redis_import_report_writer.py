"""Redis adapter of the import report writer: ``ImportReport.to_dict`` JSON under
``redis_keys.import_key`` (``{prefix}import:<workspace>/<import id>``), the key the query API's
``GET /v1/imports/{id}`` reads (its ``adapters/redis_import_report_reader.py``).

A report is kept ``ttl_s`` seconds (``IMPORT_REPORT_TTL_S``, 7 days by default): like an
operation status it cannot be rebuilt from PostgreSQL, which holds only what the worker applied
or rejected (docs/architecture.md §4 allows such short-lived records). While the records of an
import are queued in the background, its queuing lease (``redis_keys.import_queuing_key``) lives
``lease_s`` seconds after each renewal. Every call is bounded by the
client's socket timeouts; a Redis error or timeout becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import datetime as dt
import json

import redis

from command_api.service_layer.ports import ImportReportWriter
from contacts_domain.imports import ImportReport
from contacts_infra.operation_store import bounded_call
from contacts_infra.redis_keys import import_key, import_queuing_key


class RedisImportReportWriter(ImportReportWriter):
    """Import reports in Redis, expiring ``ttl_s`` seconds after their last write; queuing
    leases expiring ``lease_s`` seconds after their last renewal."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int, lease_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._lease_s = lease_s

    def save(self, workspace: str, report: ImportReport) -> None:
        """SET with a TTL (a retried import rewrites its report). Raises ``StoreUnavailable``
        when Redis does not answer in time. At most ``IMPORT_ERRORS_MAX`` problems make the
        value a few hundred KB at worst."""
        key = import_key(self._prefix, workspace, report.import_id)
        value = json.dumps(report.to_dict(), ensure_ascii=False, separators=(",", ":"))
        with bounded_call():
            self._client.set(key, value, ex=self._ttl_s)

    def created_at(self, workspace: str, import_id: str) -> dt.datetime | None:
        """GET of the stored report, ``None`` when there is none or it cannot be read (then
        the report is written afresh). Raises ``StoreUnavailable`` when Redis does not answer
        in time."""
        key = import_key(self._prefix, workspace, import_id)
        with bounded_call():
            value = self._client.get(key)
        if value is None:
            return None
        try:
            return ImportReport.from_dict(json.loads(value)).created_at
        except (KeyError, TypeError, ValueError):
            return None

    def hold_queuing(self, workspace: str, import_id: str) -> None:
        """SET of the lease key with a TTL of ``lease_s`` seconds. Raises ``StoreUnavailable``
        when Redis does not answer in time."""
        key = import_queuing_key(self._prefix, workspace, import_id)
        with bounded_call():
            self._client.set(key, b"1", ex=self._lease_s)
