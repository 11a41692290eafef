"""Purging the change feed (``contact_changes``, migration 0002).

The feed promises that a token stays valid for at least ``MIN_RETENTION_DAYS`` (issue 3): a
purge removes only changes older than that, and raises the purge horizon to the highest
``(txid, position)`` it removed, so the query API refuses (410) exactly the tokens that may have
missed a purged change.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa

#: Changes younger than this are never purged: the feed's token lifetime, in days.
MIN_RETENTION_DAYS: Final = 7
#: Changes removed per transaction, so a first purge of a long history holds no long locks.
PURGE_BATCH: Final = 10_000

_DELETE = sa.text(
    """
    DELETE FROM contact_changes
    WHERE (txid, position) IN (
        SELECT txid, position FROM contact_changes
        WHERE changed_at < now() - make_interval(days => :days)
        ORDER BY txid, position
        LIMIT :batch
    )
    RETURNING txid::text, position
    """
)
_RAISE_HORIZON = sa.text(
    """
    INSERT INTO change_feed_horizon (txid, position) VALUES (CAST(:txid AS xid8), :position)
    ON CONFLICT (singleton) DO UPDATE SET txid = EXCLUDED.txid, position = EXCLUDED.position
    WHERE (change_feed_horizon.txid, change_feed_horizon.position)
        < (EXCLUDED.txid, EXCLUDED.position)
    """
)


def purge_changes(engine: sa.Engine, older_than: dt.timedelta) -> int:
    """Delete the feed's changes written more than ``older_than`` ago (whole days, at least
    ``MIN_RETENTION_DAYS``) and raise the purge horizon past them, in batches of
    ``PURGE_BATCH`` rows per transaction. Returns the number of changes deleted.

    Raises ``ValueError`` for a retention shorter than ``MIN_RETENTION_DAYS``.
    """
    days = older_than.days
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"Changes are kept at least {MIN_RETENTION_DAYS} days (asked: {days}).")
    deleted = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(_DELETE, {"days": days, "batch": PURGE_BATCH}).all()
            if rows:
                txid, position = max((int(txid), position) for txid, position in rows)
                conn.execute(_RAISE_HORIZON, {"txid": str(txid), "position": position})
        deleted += len(rows)
        if len(rows) < PURGE_BATCH:
            return deleted
