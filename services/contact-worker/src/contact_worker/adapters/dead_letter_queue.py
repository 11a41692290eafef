"""The worker's dead-letter queue on SQS: read every message without losing it, send a message
back to the main queue, delete one (``contact-worker-admin dlq``, docs/architecture.md,
"Dead-lettered events").

SQS has no "peek": a message is read by receiving it, which hides it for a visibility timeout.
``DeadLetterQueue.scan`` therefore receives batch after batch while holding what it received
hidden (``hold_s``), until a receive comes back empty; the caller then deletes, sends back or
releases (visibility 0) each message. In a FIFO queue a message group is blocked while one of
its messages is hidden, so a scan sees the messages of a group that fit in one batch (10);
messages behind them show up once those are redriven or purged.

Redrive is receive, send, delete, in that order (LocalStack 4.13 has no StartMessageMoveTask,
and a manual move keeps the message group): a failure between the send and the delete leaves
the message in both queues, which the worker's inbox makes harmless (an event is applied once).
The ``MessageGroupId`` is kept, and so is the ``MessageDeduplicationId`` once the original send
is older than SQS's deduplication interval (5 minutes): within it, SQS would accept the copy
and silently drop it, so the copy gets ``<id>:r<milliseconds now>`` instead.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from contact_worker.service_layer.dead_letters import DeadLetterSummary, classify

#: SQS drops a FIFO message whose deduplication id it saw within this many seconds.
DEDUPLICATION_INTERVAL_S: Final = 300
#: SQS caps a deduplication id at 128 characters.
_DEDUPLICATION_ID_MAX: Final = 128


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One received dead-lettered message. ``body`` and ``receipt_handle`` are kept to send it
    back or delete it and are never printed; ``sent_at`` is when it was first sent to the main
    queue (SQS keeps the ``SentTimestamp`` when it dead-letters a message)."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str | None
    deduplication_id: str | None
    receive_count: int
    sent_at: dt.datetime
    summary: DeadLetterSummary

    def age_s(self, now: dt.datetime) -> float:
        """Seconds since the message was first sent."""
        return (now - self.sent_at).total_seconds()


def decode_celery(body: str) -> tuple[str | None, list[Any] | None]:
    """``(task name, positional args)`` of a Celery protocol-2 message as kombu's SQS transport
    puts it on the queue (base64 of a JSON envelope whose ``body`` is base64 JSON
    ``[args, kwargs, embed]``); ``(None, None)`` when ``body`` is not such a message, and
    ``(task, None)`` when only the headers read."""
    envelope = _json_object(body)
    if envelope is None or not isinstance(envelope.get("headers"), dict):
        return None, None
    task = envelope["headers"].get("task")
    if not isinstance(task, str):
        return None, None
    inner = envelope.get("body")
    if not isinstance(inner, str):
        return task, None
    if (envelope.get("properties") or {}).get("body_encoding") == "base64":
        inner = _unbase64(inner) or ""
    try:
        decoded = json.loads(inner)
    except ValueError:
        return task, None
    if isinstance(decoded, list) and decoded and isinstance(decoded[0], list):
        return task, decoded[0]
    return task, None


def _json_object(text: str) -> dict[str, Any] | None:
    for candidate in (_unbase64(text), text):
        if candidate is None:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _unbase64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def redrive_deduplication_id(dead: DeadLetter, now: dt.datetime) -> str | None:
    """The ``MessageDeduplicationId`` of the copy sent back (see the module doc)."""
    original = dead.deduplication_id
    if original is None or dead.age_s(now) >= DEDUPLICATION_INTERVAL_S:
        return original
    suffix = f":r{int(now.timestamp() * 1000)}"
    return original[: _DEDUPLICATION_ID_MAX - len(suffix)] + suffix


class DeadLetterQueue:
    """The dead-letter queue at ``dlq_url`` and the main queue at ``main_url``, through
    ``sqs`` (a boto3 SQS client from ``bootstrap.sqs_client``). ``hold_s``: seconds a scan keeps
    received messages hidden (each call of SQS is bounded by the client's timeouts)."""

    def __init__(self, sqs: Any, *, dlq_url: str, main_url: str, hold_s: int = 120) -> None:
        self._sqs = sqs
        self.dlq_url = dlq_url
        self.main_url = main_url
        self._hold_s = hold_s

    def depth(self) -> int:
        """``ApproximateNumberOfMessages`` of the dead-letter queue."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def scan(self, limit: int) -> Iterator[DeadLetter]:
        """Receive up to ``limit`` messages, holding each hidden ``hold_s`` seconds; stops at
        the first empty receive (one second of long polling)."""
        seen = 0
        while seen < limit:
            answer = self._sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(10, limit - seen),
                WaitTimeSeconds=1,
                VisibilityTimeout=self._hold_s,
                AttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                seen += 1
                yield _dead_letter(message)

    def release(self, dead: DeadLetter) -> None:
        """Make a scanned message visible again at once."""
        self._sqs.change_message_visibility(
            QueueUrl=self.dlq_url, ReceiptHandle=dead.receipt_handle, VisibilityTimeout=0
        )

    def delete(self, dead: DeadLetter) -> None:
        """Delete a scanned message from the dead-letter queue."""
        self._sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=dead.receipt_handle)

    def send_back(self, dead: DeadLetter, now: dt.datetime) -> None:
        """Send a copy of a scanned message to the main queue, same group (see module doc)."""
        extra: dict[str, str] = {}
        if dead.group_id is not None:
            extra["MessageGroupId"] = dead.group_id
        dedup = redrive_deduplication_id(dead, now)
        if dedup is not None:
            extra["MessageDeduplicationId"] = dedup
        self._sqs.send_message(QueueUrl=self.main_url, MessageBody=dead.body, **extra)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent_ms = int(attributes.get("SentTimestamp", 0))
    body = message.get("Body", "")
    return DeadLetter(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body,
        group_id=attributes.get("MessageGroupId"),
        deduplication_id=attributes.get("MessageDeduplicationId"),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at=dt.datetime.fromtimestamp(sent_ms / 1000, dt.UTC),
        summary=classify(*decode_celery(body)),
    )
