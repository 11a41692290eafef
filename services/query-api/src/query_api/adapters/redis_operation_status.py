"""Operation statuses in Redis: ``op:<workspace>/<id>`` holds ``OperationStatus.to_dict()``
as JSON."""

from __future__ import annotations

import json
import logging

from contacts_domain.operations import OperationStatus
from contacts_infra.redis_keys import operation_key
from query_api.adapters.redis_calls import RedisCalls
from query_api.service_layer.ports import OperationStatusCache

log = logging.getLogger(__name__)


class RedisOperationStatusCache(OperationStatusCache):
    """``OperationStatusCache`` over Redis. A value that does not parse is logged and treated
    as absent, so PostgreSQL still answers for it."""

    def __init__(self, calls: RedisCalls, prefix: str) -> None:
        self._calls = calls
        self._prefix = prefix

    def get(self, workspace: str, operation_id: str) -> OperationStatus | None:
        key = operation_key(self._prefix, workspace, operation_id)
        raw = self._calls.run(lambda r: r.get(key))
        if raw is None:
            return None
        try:
            return OperationStatus.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable operation status in Redis", extra={"key": key})
            return None
