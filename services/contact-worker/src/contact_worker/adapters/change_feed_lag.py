"""How far the change feed trails the commits (docs/architecture.md §4): the age of the oldest
committed change the feed cannot serve yet.

The query API's change feed serves only the rows of ``contact_changes`` older than every
running transaction (``txid < pg_snapshot_xmin``), so that a change committed late is never
skipped. A long transaction therefore holds back every change committed after it began: this
lag is how long the oldest such change has waited, 0 when the feed is current. It is measured
from the writing transaction's start (``changed_at``), so it includes that transaction's own
duration.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

_LAG: Final = sa.text(
    "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(changed_at)), 0)"
    " FROM contact_changes WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())"
)


class ChangeFeedLag:
    """Reads the lag with one index range scan of ``contact_changes``' primary key."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def seconds(self) -> float:
        """The lag in seconds (0 when every committed change can be served). Raises
        ``sqlalchemy.exc.DBAPIError`` when PostgreSQL does not answer."""
        with self._engine.connect() as conn:
            return max(0.0, float(conn.execute(_LAG).scalar_one()))
