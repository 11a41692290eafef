"""The change feed in PostgreSQL: ``contact_changes``, written by the worker's trigger
(services/contact-worker migration 0002; the ``workspace`` column, copied by the trigger from
the contact's row, and the ``(workspace, txid, position)`` index: migration 0005), joined to
``contacts`` for current states. One workspace's feed per read (docs/architecture.md §10)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from query_api.adapters.sql_read_model import connection, record_of
from query_api.service_layer.ports import ChangeFeed
from query_api.service_layer.records import Change, ChangeBatch, FeedPosition

_BOUND = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
_HORIZON = text("SELECT txid::text, position FROM change_feed_horizon")
#: The page of changes of one workspace (exposed for EXPLAIN tests). ``txid < bound``: only
#: transactions that have ended (see the migration). The row comparison names the workspace
#: too, so it matches the (workspace, txid, position) index column for column and the walk
#: starts at the token (without it the planner walked the (txid, position) primary key and
#: filtered on the workspace: ~100 rows read per row returned for a workspace of 1 %).
CHANGES = text(
    """
    SELECT ch.txid::text AS feed_txid, ch.position AS feed_position, ch.contact_id::text AS
           feed_contact_id, ch.version AS feed_version, ch.alive AS feed_alive, c.*
    FROM contact_changes ch
    LEFT JOIN contacts c ON c.workspace = ch.workspace AND c.id = ch.contact_id
         AND c.version = ch.version AND c.alive
    WHERE ch.workspace = :workspace
      AND (ch.workspace, ch.txid, ch.position) > (:workspace, CAST(:txid AS xid8), :position)
      AND ch.txid < CAST(:bound AS xid8)
    ORDER BY ch.workspace, ch.txid, ch.position
    LIMIT :limit
    """
)


class SqlChangeFeed(ChangeFeed):
    """``ChangeFeed`` over ``contact_changes``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def bound(self) -> FeedPosition:
        """The feed's current end: before every transaction still running (or to come)."""
        with connection(self._engine) as conn:
            return FeedPosition(int(conn.execute(_BOUND).scalar_one()), 0)

    def read(self, workspace: str, after: FeedPosition, limit: int) -> ChangeBatch:
        """Up to ``limit`` changes of ``workspace`` strictly after ``after``, in feed order, and
        the purge horizon read after them (so a purge that raced the read is seen). Raises
        ``ReadModelUnavailable``."""
        with connection(self._engine) as conn:
            bound = int(conn.execute(_BOUND).scalar_one())
            rows = (
                conn.execute(
                    CHANGES,
                    {
                        "workspace": workspace,
                        "txid": str(after.txid),
                        "position": after.position,
                        "bound": str(bound),
                        "limit": limit,
                    },
                )
                .mappings()
                .all()
            )
            horizon = conn.execute(_HORIZON).first()
        return ChangeBatch(
            [_change(row) for row in rows],
            FeedPosition(bound, 0),
            FeedPosition(int(horizon[0]), int(horizon[1])) if horizon else None,
        )


def _change(row: Any) -> Change:
    alive = bool(row["feed_alive"])
    return Change(
        at=FeedPosition(int(row["feed_txid"]), int(row["feed_position"])),
        contact_id=row["feed_contact_id"],
        version=int(row["feed_version"]),
        deleted=not alive,
        contact=record_of(row) if alive and row["id"] is not None else None,
    )
