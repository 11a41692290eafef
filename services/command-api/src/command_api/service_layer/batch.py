"""Accepting a batch of commands (``POST /v1/contacts/batch``): each item alone, one send.

A batch is not atomic. Every item was validated on its own by the entrypoint; the valid ones
become events, sequenced in item order (``Context.clock``), and go to the queue in one
``EventPublisher.publish_batch`` call, which keeps them in order per message group and holds
back the later events of a group once one of its events was not sent (docs/architecture.md §5.3).
Each
item then gets its own result: ``accepted`` (durably queued, docs/architecture.md §5.1), ``invalid``
(refused before sending, or too large for an SQS message) or ``failed`` (the queue did not take
it; retrying is safe).

Everything is in the request's ``workspace``: the events, the pending statuses, the
idempotency record. With an ``Idempotency-Key`` the ids of item ``i`` are
``idempotency.derive_item_ids(workspace, key, i)``
and the first batch's fingerprint is remembered, as for a single create: a replay sends the
same event ids again (SQS, then the worker's inbox, drop the duplicates) and answers the same
ids; the same key with another batch raises ``IdempotencyKeyReused``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from command_api.service_layer.errors import EventTooLarge
from command_api.service_layer.handlers import Context, mark_pending, reserve_key
from command_api.service_layer.idempotency import derive_item_ids, fingerprint
from contacts_domain import (
    Command,
    ContactEvent,
    CreateContact,
    DeleteContact,
    OperationStatus,
    PatchContact,
    ReplaceContact,
    UpsertContact,
    to_event,
)
from contacts_domain.ports import EARLIER_EVENT_FAILED

logger = logging.getLogger(__name__)

BatchOp = Literal["create", "replace", "patch", "delete", "upsert"]
ItemStatus = Literal["accepted", "invalid", "failed"]
#: The operations a batch item may ask for, in the order the documentation lists them.
BATCH_OPS: Final[tuple[BatchOp, ...]] = ("create", "replace", "patch", "delete", "upsert")
#: At most this many items per batch (the request is refused whole above it).
BATCH_MAX_ITEMS: Final = 100
#: The ``errors`` key of an item the queue did not take.
QUEUE_ERROR_KEY: Final = "_queue"


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One valid batch item.

    ``contact_id`` is the contact named (``None`` for ``create`` and ``upsert``: the id is
    assigned here); ``fields`` are normalized: every field for ``create``/``replace``, the
    changed ones for ``patch`` (``None`` clears), the upsert's fields, ``{}`` for ``delete``.
    ``expected_version`` comes from the item's ``if_match``.
    """

    op: BatchOp
    contact_id: str | None
    fields: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class InvalidOperation:
    """One batch item refused by validation; nothing of it is sent.

    ``errors`` maps a field path inside the item (``id``, ``data.emails.0.value``) to reasons;
    ``contact_id`` is the id the item named, when it was a valid UUID. ``digest`` is a SHA-256
    hex digest of the item as sent, so the batch's idempotency fingerprint covers it.
    """

    errors: Mapping[str, list[str]]
    digest: str
    contact_id: str | None = None


BatchItem = BatchOperation | InvalidOperation


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of item ``index`` (0-based, the order sent).

    ``contact_id`` and ``operation_id`` are ``None`` where unknown: an invalid item has no
    operation, a failed one no operation to poll (nothing was queued); ``errors`` is ``None``
    for an accepted item.
    """

    index: int
    status: ItemStatus
    contact_id: str | None
    operation_id: str | None
    errors: Mapping[str, list[str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"index", "status", "id", "operation_id", "errors"}``, as the API answers it."""
        return {
            "index": self.index,
            "status": self.status,
            "id": self.contact_id,
            "operation_id": self.operation_id,
            "errors": {path: list(reasons) for path, reasons in self.errors.items()}
            if self.errors is not None
            else None,
        }


def accept_batch(
    items: Sequence[BatchItem],
    context: Context,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
) -> list[ItemResult]:
    """Send the events of the valid ``items`` of ``workspace`` in one ``publish_batch`` call
    and report every item, in order.

    ``correlation_id`` (the request id) and ``traceparent`` travel in every event. Each
    accepted operation is marked pending, best effort (the events are durable already; after
    the first failure of the store the rest are skipped). Raises ``IdempotencyKeyReused``
    (nothing sent) when ``idempotency_key`` was used with another body; a store that does not
    answer fails open, the derived ids still making a replay a duplicate.
    """
    if idempotency_key is not None and any(isinstance(i, BatchOperation) for i in items):
        reserve_key(workspace, idempotency_key, batch_fingerprint(items), context)

    results: list[ItemResult | None] = [None] * len(items)
    sent: list[tuple[int, Command, ContactEvent]] = []
    for index, item in enumerate(items):
        if isinstance(item, InvalidOperation):
            results[index] = ItemResult(index, "invalid", item.contact_id, None, item.errors)
            continue
        ids = None
        if idempotency_key is not None:
            ids = derive_item_ids(workspace, idempotency_key, index)
        command = _command(item, ids.contact_id if ids else str(uuid.uuid4()))
        event = to_event(
            command,
            event_id=ids.event_id if ids else str(uuid.uuid4()),
            operation_id=ids.operation_id if ids else str(uuid.uuid4()),
            sequence=context.clock.next(),
            time=context.now(),
            correlation_id=correlation_id,
            traceparent=traceparent,
            workspace=workspace,
        )
        sent.append((index, command, event))

    events = [event for _index, _command, event in sent]
    outcomes = context.publisher.publish_batch(events) if events else []
    pending: list[OperationStatus] = []
    for (index, command, event), outcome in zip(sent, outcomes, strict=True):
        results[index] = _sent_result(index, command.contact_id, event.operation_id, outcome)
        if outcome is None:
            pending.append(OperationStatus(event.operation_id, command.contact_id, "pending"))
    mark_pending(workspace, pending, context)
    done = [result for result in results if result is not None]
    logger.info(
        "batch of %d: %d accepted, %d invalid, %d failed",
        len(done),
        sum(r.status == "accepted" for r in done),
        sum(r.status == "invalid" for r in done),
        sum(r.status == "failed" for r in done),
    )
    return done


def _sent_result(
    index: int, contact_id: str, operation_id: str, outcome: Exception | None
) -> ItemResult:
    """The result of the item at ``index`` whose event ``publish_batch`` reported as
    ``outcome``: ``accepted`` (``None``), ``invalid`` (``EventTooLarge``) or ``failed``."""
    if outcome is None:
        return ItemResult(index, "accepted", contact_id, operation_id)
    if isinstance(outcome, EventTooLarge):
        reason = (
            f"Too large to queue ({outcome.size} bytes encoded, at most {outcome.limit}); "
            "shorten the longest fields."
        )
        return ItemResult(index, "invalid", contact_id, None, {"data": [reason]})
    return ItemResult(index, "failed", contact_id, None, {QUEUE_ERROR_KEY: [_not_queued(outcome)]})


def _command(item: BatchOperation, new_id: str) -> Command:
    fields = dict(item.fields)
    match item.op:
        case "create":
            return CreateContact(new_id, fields)
        case "upsert":
            return UpsertContact(new_id, fields)
        case "replace":
            return ReplaceContact(_named(item), fields, expected_version=item.expected_version)
        case "patch":
            return PatchContact(_named(item), fields, expected_version=item.expected_version)
        case "delete":
            return DeleteContact(_named(item), expected_version=item.expected_version)


def _named(item: BatchOperation) -> str:
    if item.contact_id is None:
        raise ValueError(f"A {item.op} item needs the contact id.")
    return item.contact_id


def _not_queued(error: Exception) -> str:
    if str(error) == EARLIER_EVENT_FAILED:
        return (
            "Not queued: an earlier item of the same contact was not queued. "
            "Retry this item after that one."
        )
    return "Not queued: the queue did not take it in time. Retry this item."


def batch_fingerprint(items: Sequence[BatchItem]) -> str:
    """SHA-256 hex digest of the batch: each valid item's normalized operation, each invalid
    item's digest, in order (``idempotency.fingerprint``). Differs from the fingerprint of
    any single create or upsert."""
    entries: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, InvalidOperation):
            entries.append({"invalid": item.digest})
        else:
            entries.append(
                {
                    "op": item.op,
                    "id": item.contact_id,
                    "expected_version": item.expected_version,
                    "fields": dict(item.fields),
                }
            )
    return fingerprint({"__command__": "batch", "operations": entries})
