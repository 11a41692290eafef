"""kombu's SQS transport, plus a heartbeat: proof that the worker still receives messages.

Case C15: after a lost broker connection, workers have kept their process and logs alive while
never polling again (kombu #931, celery #6210). A timer cannot tell that apart from health, so
the heartbeat is written where only a finished ``ReceiveMessage`` call leads: the callback of
each long poll, empty or not. ``contact-worker-admin check-alive`` (the liveness probe) fails
when the heartbeat is older than a poll plus the longest a task may keep every slot busy.
"""

from __future__ import annotations

import os
from typing import Any

from kombu.transport import SQS


def beat(path: str) -> None:
    """Set the modification time of ``path`` to now, creating the file if needed."""
    try:
        os.utime(path)
    except FileNotFoundError:
        with open(path, "a"):
            pass


class HeartbeatChannel(SQS.Channel):
    """An SQS channel that beats after every completed receive."""

    def _on_messages_ready(self, queue: Any, qname: str, messages: Any) -> int:
        path = self.transport_options.get("heartbeat_file")
        if path:
            beat(path)
        return int(super()._on_messages_ready(queue, qname, messages))


class Transport(SQS.Transport):
    """Celery's ``broker_transport``: ``contact_worker.adapters.sqs_heartbeat:Transport``."""

    Channel = HeartbeatChannel
