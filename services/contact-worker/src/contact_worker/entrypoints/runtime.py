"""The worker's composition root: the one place where real adapters are chosen and wired."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy.engine import Engine

from contact_worker.adapters.redis_store import (
    RedisContactCache,
    RedisOperationStore,
    create_redis,
)
from contact_worker.adapters.sql import SqlUnitOfWork, create_engine
from contact_worker.settings import Settings
from contacts_domain.ports import ContactCache, OperationStore, UnitOfWork


@dataclass(frozen=True)
class Ports:
    """The adapters one worker process uses."""

    unit_of_work: Callable[[], UnitOfWork]
    cache: ContactCache
    operations: OperationStore
    engine: Engine
    redis: redis.Redis


class Runtime:
    """Builds the adapters on first use in each process.

    Connections must never cross a fork (case C21): the Celery parent may have touched them
    before forking its pool, so a child that finds ports built by another pid builds its own.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ports: Ports | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ports(self) -> Ports:
        with self._lock:
            if self._ports is None or self._pid != os.getpid():
                self._ports = self._build()
                self._pid = os.getpid()
            return self._ports

    def _build(self) -> Ports:
        s = self.settings
        engine = create_engine(
            s.database_url,
            lock_timeout_ms=s.db_lock_timeout_ms,
            statement_timeout_ms=s.db_statement_timeout_ms,
        )
        client = create_redis(
            s.redis_url,
            socket_timeout_s=s.redis_socket_timeout_s,
            connect_timeout_s=s.redis_connect_timeout_s,
        )
        return Ports(
            unit_of_work=lambda: SqlUnitOfWork(engine),
            cache=RedisContactCache(client, prefix=s.redis_prefix, ttl_s=s.contact_cache_ttl_s),
            operations=RedisOperationStore(client, prefix=s.redis_prefix, ttl_s=s.operation_ttl_s),
            engine=engine,
            redis=client,
        )
