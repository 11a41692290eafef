"""Import reports in Redis: ``import:<workspace>/<id>`` holds ``ImportReport.to_dict()`` as JSON,
written by the command API's ``POST /v1/imports`` (``contacts_infra.redis_keys.import_key``),
``import-queuing:<workspace>/<id>`` its queuing lease, held by the command API process that
queues its records after the ``202``, and ``import-dead:<workspace>/<id>`` the set of its
dead-lettered event ids, written by the worker (``contacts_infra.import_dead_letters``)."""

from __future__ import annotations

import json
import logging

from contacts_domain.imports import ImportReport
from contacts_infra.redis_keys import import_dead_letters_key, import_key, import_queuing_key
from query_api.adapters.redis_calls import RedisCalls
from query_api.service_layer.ports import ImportReportReader

log = logging.getLogger(__name__)


class RedisImportReportReader(ImportReportReader):
    """``ImportReportReader`` over Redis, through the API's circuit breaker (``RedisCalls``).
    A value that does not parse is logged and treated as absent (there is nothing else to
    answer from)."""

    def __init__(self, calls: RedisCalls, prefix: str) -> None:
        self._calls = calls
        self._prefix = prefix

    def get(self, workspace: str, import_id: str) -> ImportReport | None:
        key = import_key(self._prefix, workspace, import_id)
        raw = self._calls.run(lambda r: r.get(key))
        if raw is None:
            return None
        try:
            return ImportReport.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable import report in Redis", extra={"key": key})
            return None

    def dead_lettered(self, workspace: str, import_id: str) -> int:
        key = import_dead_letters_key(self._prefix, workspace, import_id)
        return int(self._calls.run(lambda r: r.scard(key)))

    def queuing(self, workspace: str, import_id: str) -> bool:
        key = import_queuing_key(self._prefix, workspace, import_id)
        return bool(self._calls.run(lambda r: r.exists(key)))
