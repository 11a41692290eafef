"""The process's SQLAlchemy engine for the read-only role, safe across ``fork``.

Time bounds (from ``Settings``): libpq ``connect_timeout`` when PostgreSQL does not accept,
``pool_timeout`` when every pooled connection is busy, and a server-side ``statement_timeout``;
past any of them the adapters raise ``ReadModelUnavailable`` and the API answers 503.
"""

from __future__ import annotations

import functools
import os
import weakref

from sqlalchemy import Engine, create_engine

from query_api.settings import Settings


def build_engine(settings: Settings) -> Engine:
    """Create the engine (it connects lazily, on first use).

    Every connection is read-only and autocommit: a request runs one SELECT, so there is no
    transaction to open or roll back. gunicorn ``--preload`` forks workers after the app (and
    maybe a pooled connection) exists, and a socket shared by two processes corrupts both
    (cases C21), so a child drops the inherited pool without closing the parent's sockets.
    """
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        isolation_level="AUTOCOMMIT",
        # Search and filter values are personal data: never in an exception's text or a log.
        hide_parameters=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": "query-api",
            "options": (
                f"-c statement_timeout={settings.db_statement_timeout_ms}"
                " -c default_transaction_read_only=on"
            ),
        },
    )
    os.register_at_fork(after_in_child=functools.partial(_forget_pool, weakref.ref(engine)))
    return engine


def _forget_pool(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)
