"""Workspaces as a whole, for operators (``contact-worker-admin workspace list|erase``).

``erase_workspace`` is offboarding (issue 12, item 6): every row and key of one workspace goes
(contacts, inbox rows with their data and import outcomes, change-feed entries, the usage
count; cached contacts, refill leases, operation statuses, idempotency records and import
reports in Redis). It works in batches, each its own transaction (PostgreSQL) or pipeline
(Redis), so it holds no long lock, and it is resumable: run again after an interruption, it
removes what is left. No statement or pattern can reach another workspace: every SQL
statement has ``workspace = :ws`` and every Redis pattern starts with ``<kind>:<workspace>/``
or ``<kind>:{<workspace>/`` (a slug holds no ``/``, so ``a`` never matches ``ab``).

Stop the workspace's writers first (revoke its API keys): an event applied during the erasure
may leave a contact behind; running the erasure again removes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import redis
import sqlalchemy as sa

from contacts_domain.workspaces import check_workspace

#: Rows deleted per transaction, Redis keys unlinked per pipeline.
ERASE_BATCH: Final = 1_000

#: (table, its key columns) in erasure order.
_TABLES: Final = (
    ("contacts", "id"),
    ("contact_changes", "txid, position"),
    ("processed_events", "event_id"),
    ("cache_repairs", "cache, contact_id"),
)


@dataclass
class ErasureReport:
    """What ``erase_workspace`` removed: PostgreSQL rows per table, Redis keys per kind
    (``contact``, ``refill``, ``op``, ``idem``, ``idem-index``, ``import``, ``import-dead``)."""

    workspace: str
    rows: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One human-readable line per table and key kind."""
        found = [f"{count} rows from {table}" for table, count in self.rows.items()]
        found += [f"{count} Redis {kind} keys" for kind, count in self.keys.items()]
        return [f"workspace {self.workspace}: removed {item}" for item in found]


def list_workspaces(engine: sa.Engine) -> list[tuple[str, int]]:
    """Every workspace that has contacts (live or erased), with its live contacts, by name:
    one grouped read of the contacts table (an admin command, not a hot path)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT workspace, count(*) FILTER (WHERE alive) FROM contacts"
                " GROUP BY workspace ORDER BY workspace"
            )
        ).all()
    return [(str(name), int(count)) for name, count in rows]


def erase_workspace(
    engine: sa.Engine,
    client: redis.Redis,
    *,
    prefix: str,
    workspace: str,
    batch: int = ERASE_BATCH,
    progress: Callable[[str], None] = lambda line: None,
) -> ErasureReport:
    """Remove every row and Redis key of ``workspace`` (module doc), ``batch`` at a time;
    ``progress`` gets one line per finished table or key kind. Returns the counts.

    Raises ``InvalidWorkspace`` for a name that is not a workspace id (nothing is touched),
    ``sqlalchemy.exc.DBAPIError`` or ``redis.RedisError`` when a store fails (what was removed
    stays removed: run it again).
    """
    ws = check_workspace(workspace)
    report = ErasureReport(ws)
    for table, key in _TABLES:
        report.rows[table] = _delete_rows(engine, table, key, ws, batch)
        progress(f"{table}: {report.rows[table]} rows removed")
    for kind, pattern in _key_patterns(prefix, ws).items():
        report.keys[kind] = _unlink_matching(client, pattern, batch)
        progress(f"Redis {kind}: {report.keys[kind]} keys removed")
    return report


def _delete_rows(engine: sa.Engine, table: str, key: str, workspace: str, batch: int) -> int:
    statement = sa.text(
        f"DELETE FROM {table} WHERE workspace = :ws AND ({key}) IN"
        f" (SELECT {key} FROM {table} WHERE workspace = :ws LIMIT :batch)"
    )
    removed = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(statement, {"ws": workspace, "batch": batch}).rowcount
        removed += count
        if count < batch:
            return removed


def _key_patterns(prefix: str, workspace: str) -> dict[str, str]:
    """SCAN patterns of the workspace's keys (``contacts_infra.redis_keys``), with the glob
    characters of the prefix escaped."""
    p = re.sub(r"([\\*?\[\]])", r"\\\1", prefix)
    return {
        "contact": f"{p}contact:{{{workspace}/*",
        "refill": f"{p}refill:{{{workspace}/*",
        "op": f"{p}op:{workspace}/*",
        "idem": f"{p}idem:{workspace}/*",
        "idem-index": f"{p}idem-index:{{{workspace}/*",
        "import": f"{p}import:{{{workspace}/*",
        "import-dead": f"{p}import-dead:{{{workspace}/*",
    }


def _unlink_matching(client: redis.Redis, pattern: str, batch: int) -> int:
    """UNLINK every key matching ``pattern``, one command per key in pipelines of ``batch``
    (in cluster mode the keys live in many slots, so no multi-key command), after a SCAN of
    every node (``scan_iter`` of a cluster client walks them all)."""
    removed = 0
    for keys in _chunks(client.scan_iter(match=pattern, count=batch), batch):
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            pipeline.unlink(key)
        removed += sum(int(n) for n in pipeline.execute())
    return removed


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
