"""Payload retention of the inbox (``processed_events``, migration 0006; issue 16, item 4).

Every processed event keeps a row forever: its ids, kind, sequence and outcome are what
deduplication (``Inbox.outcome_of``: a redelivery, or a retry with the same derived ids, is a
no-op) and ordering (``Inbox.last_sequence``) need, and they are not personal data. Its
payload (``data``: the fields the event asked for) is only needed to put a late event in its
place (``replay``). Late events come from redelivery (the visibility timeout and retry
backoff: minutes), SQS's deduplication window (5 minutes) and redrives from the dead-letter
queue, so a payload is dropped once it is ``older_than`` old: ``purge_payloads`` sets ``data``
to NULL. A late event that would need a purged payload is rejected ``expired`` by the worker
instead of being applied out of order.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa

#: Payloads younger than this are never purged, in days: longer than any redelivery and than
#: a week of dead-letter queue triage before a redrive.
MIN_PAYLOAD_RETENTION_DAYS: Final = 7
#: Rows purged per transaction, so a first purge of a long history holds no long locks.
PURGE_BATCH: Final = 5_000

_PURGE = sa.text(
    """
    UPDATE processed_events SET data = NULL
    WHERE (workspace, event_id) IN (
        SELECT workspace, event_id FROM processed_events
        WHERE data IS NOT NULL AND processed_at < now() - make_interval(days => :days)
        ORDER BY processed_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    """
)


def purge_payloads(engine: sa.Engine, older_than: dt.timedelta, *, batch: int = PURGE_BATCH) -> int:
    """Set ``data`` to NULL on the inbox rows processed more than ``older_than`` ago (whole
    days, at least ``MIN_PAYLOAD_RETENTION_DAYS``), ``batch`` rows per transaction (rows a
    worker holds locked are skipped: the next run takes them). Returns the rows purged.

    Raises ``ValueError`` for a retention shorter than ``MIN_PAYLOAD_RETENTION_DAYS``.
    """
    days = older_than.days
    if days < MIN_PAYLOAD_RETENTION_DAYS:
        raise ValueError(
            f"Event payloads are kept at least {MIN_PAYLOAD_RETENTION_DAYS} days (asked: {days})."
        )
    purged = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(_PURGE, {"days": days, "batch": batch}).rowcount
        purged += count
        if count < batch:
            return purged
