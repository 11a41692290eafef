"""Direct reads of what the worker wrote, and direct sends of events, for end-to-end checks."""

from __future__ import annotations

import json
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery

from contacts_domain import DEFAULT_WORKSPACE, FIELDS, ContactEvent
from contacts_infra.messaging import APPLY_EVENT_TASK, message_group_id
from contacts_infra.redis_keys import contact_key


def stored_contact(
    engine: sa.Engine, contact_id: str, workspace: str = DEFAULT_WORKSPACE
) -> dict[str, Any] | None:
    """The visible fields and version in PostgreSQL, or ``None`` when absent or deleted."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.text("SELECT * FROM contacts WHERE workspace = :ws AND id = :id"),
                {"ws": workspace, "id": contact_id},
            )
            .mappings()
            .first()
        )
    if row is None or not row["alive"]:
        return None
    fields = {name: row[name] for name in FIELDS}
    if fields["birthday"] is not None:
        fields["birthday"] = fields["birthday"].isoformat()
    return {"version": row["version"], **fields}


def cached_contact(
    client: redis.Redis, prefix: str, contact_id: str, workspace: str = DEFAULT_WORKSPACE
) -> tuple[int, Any] | None:
    """``(version, fields or None for a tombstone)`` from the cache, or ``None`` when absent."""
    entry = client.hgetall(contact_key(prefix, workspace, contact_id))
    if not entry:
        return None
    body = json.loads(entry[b"d"]) if entry[b"d"] else None
    fields = {name: body[name] for name in FIELDS} if body else None
    return int(entry[b"v"]), fields


def cache_agrees(
    client: redis.Redis,
    prefix: str,
    engine: sa.Engine,
    contact_id: str,
    workspace: str = DEFAULT_WORKSPACE,
) -> bool:
    """Redis holds nothing for the contact, or exactly what PostgreSQL holds (docs/architecture.md
    §5.5), in ``workspace``."""
    cached = cached_contact(client, prefix, contact_id, workspace)
    if cached is None:
        return True
    stored = stored_contact(engine, contact_id, workspace)
    version, fields = cached
    if stored is None:
        return fields is None
    return (
        fields is not None
        and version == stored["version"]
        and fields == {name: stored[name] for name in FIELDS}
    )


class EventSender:
    """Puts events on the queue exactly as the command API does (a Celery producer)."""

    def __init__(self, env: dict[str, str]) -> None:
        endpoint = env["SQS_ENDPOINT_URL"].removeprefix("http://")
        self.queue = env["SQS_QUEUE_NAME"]
        self.app = Celery("e2e-sender", broker=f"sqs://{endpoint}", set_as_current=False)
        self.app.conf.broker_transport_options = {
            "region": env["AWS_REGION"],
            "is_secure": False,
            "predefined_queues": {
                self.queue: {
                    "url": env["SQS_QUEUE_URL"],
                    "access_key_id": "test",
                    "secret_access_key": "test",
                }
            },
        }

    def send(self, event: ContactEvent, dedup_id: str | None = None) -> None:
        """Send ``event``; a ``dedup_id`` other than the event id bypasses SQS deduplication,
        which is how a redelivery or a duplicate send looks to the worker. The FIFO group is
        the command API's (workspace and contact)."""
        self.app.send_task(
            APPLY_EVENT_TASK,
            args=[event.to_cloudevent()],
            queue=self.queue,
            MessageGroupId=message_group_id(event),
            MessageDeduplicationId=dedup_id or event.id,
        )
