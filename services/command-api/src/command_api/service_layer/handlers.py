"""Accepting commands: turn a validated command into an event, enqueue it, record it pending.

A command is accepted only once its event is durably in the queue (docs/architecture.md §5.1): the
publisher returns, or it raises and nothing is accepted. Recording the operation as pending
afterwards is best effort, since the event is already durable and the worker records the
outcome anyway.

Every use case takes the ``workspace`` of the request (the caller's identity decided it,
docs/architecture.md §10) and writes only there: the event's envelope, the operation status,
the idempotency record and the ids derived from an ``Idempotency-Key``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from command_api.service_layer.errors import IdempotencyKeyReused
from command_api.service_layer.idempotency import (
    DerivedIds,
    derive_change_ids,
    derive_ids,
    fingerprint,
)
from command_api.service_layer.ports import IdempotencyRecord, IdempotencyStore, SequenceClock
from contacts_domain import Command, CreateContact, OperationStatus, UpsertContact, to_event
from contacts_domain.ports import EventPublisher, OperationStore, StoreUnavailable
from contacts_telemetry.logs import bind_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a ``202 Accepted`` reports: the contact id and the operation to poll."""

    contact_id: str
    operation_id: str


@dataclass(frozen=True, slots=True)
class Context:
    """The ports and per-process services a use case needs.

    ``clock`` gives per-contact ordering keys (this process's HLC, ``contacts_domain.
    sequence``); ``now`` returns the current time in UTC.
    """

    publisher: EventPublisher
    operations: OperationStore
    idempotency: IdempotencyStore
    clock: SequenceClock
    now: Callable[[], dt.datetime]


def accept(
    command: Command,
    context: Context,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    ids: DerivedIds | None = None,
) -> Accepted:
    """Publish the event of ``command`` in ``workspace`` and mark its operation pending there.

    ``correlation_id`` (the request id) and ``traceparent`` (W3C) travel in the event.
    The event and operation ids are those of ``ids`` (derived from an ``Idempotency-Key``), else
    new uuid4s (the command names its contact). Raises ``PublishFailed`` when the
    queue did not take the event in time and ``EventTooLarge`` when it cannot fit a message;
    nothing is accepted then.
    """
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
    bind_context(operation_id=event.operation_id, contact_id=event.contact_id, event_id=event.id)
    context.publisher.publish(event)
    logger.info("command accepted: %s event queued", event.kind)
    status = OperationStatus(event.operation_id, command.contact_id, "pending")
    mark_pending(workspace, [status], context)
    return Accepted(command.contact_id, event.operation_id)


def mark_pending(workspace: str, statuses: Sequence[OperationStatus], context: Context) -> None:
    """Record ``statuses`` as pending in ``workspace``'s operations, best effort: never raises.

    Their events are durable already; a missing "pending" only means a poll answers 404 until
    the worker records the outcome, while failing the request would invite a duplicate retry.
    A single status is one ``mark_pending``; several (a batch) are one ``mark_all_pending`` (one
    Redis round trip); after the store's first failure the rest are skipped, so a store down
    costs one timeout.
    """
    if not statuses:
        return
    try:
        if len(statuses) == 1:
            context.operations.mark_pending(workspace, statuses[0])
        else:
            context.operations.mark_all_pending(workspace, statuses)
    except Exception:
        logger.warning("Could not mark the operation pending", exc_info=True)


def create_contact(
    fields: Mapping[str, Any],
    context: Context,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Accept the creation of a contact with normalized ``fields`` under a new id in
    ``workspace``.

    Without ``idempotency_key`` the id is a uuid4. With one, the ids are derived from the
    workspace and the key (``idempotency.derive_ids``) and the first body sent with it is
    remembered: the same key with another body raises ``IdempotencyKeyReused`` before
    anything is sent. When the store
    is down the request goes on (fail open): the derived ids still make a retry a duplicate
    that SQS and the worker drop. Raises what ``accept`` raises.
    """
    return _accept_new(
        CreateContact, fields, context, workspace, correlation_id, traceparent, idempotency_key
    )


def upsert_contact(
    fields: Mapping[str, Any],
    context: Context,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Accept an upsert by primary email (``UpsertContact``) of normalized ``fields``; the
    contact id reported is the one a created contact gets (the worker reports the contact it
    matched in the operation's status). ``idempotency_key`` as for ``create_contact``; a key
    used for a create cannot be reused for an upsert of the same body. Raises what
    ``create_contact`` raises."""
    return _accept_new(
        UpsertContact, fields, context, workspace, correlation_id, traceparent, idempotency_key
    )


def _accept_new(
    make: Callable[[str, dict[str, Any]], Command],
    fields: Mapping[str, Any],
    context: Context,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None,
    idempotency_key: str | None,
) -> Accepted:
    ids = None
    if idempotency_key is not None:
        ids = derive_ids(workspace, idempotency_key)
        body = fields if make is CreateContact else {"__command__": make.__name__, **fields}
        reserve_key(workspace, idempotency_key, fingerprint(body), context)
    # A replay publishes again: the event id is the same, so SQS (within 5 minutes) or the
    # worker's inbox (after) drops it, and the original send may have failed.
    command = make(ids.contact_id if ids else str(uuid.uuid4()), dict(fields))
    return accept(
        command,
        context,
        workspace=workspace,
        correlation_id=correlation_id,
        traceparent=traceparent,
        ids=ids,
    )


def accept_change(
    command: Command,
    context: Context,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Accept a write that names its contact (``ReplaceContact``, ``PatchContact``,
    ``DeleteContact``: ``PUT``, ``PATCH``, ``DELETE /v1/contacts/{id}``) in ``workspace``.

    With ``idempotency_key`` the event and operation ids are derived from the workspace, the
    key and the whole command (``idempotency.derive_change_ids``: its kind, contact, fields and
    ``If-Match``), and the first command sent with the key is remembered: a
    retry answers the same operation and its event is dropped as a duplicate by SQS or the
    worker's inbox, so a retried PATCH after a lost answer is not applied twice, nor rejected
    by its own ``If-Match``; the same key with another command raises
    ``IdempotencyKeyReused`` before anything is sent. A store that does not answer fails open
    as for ``create_contact``. Raises what ``accept`` raises.
    """
    ids = None
    if idempotency_key is not None:
        write = {"__command__": type(command).__name__, **dataclasses.asdict(command)}  # type: ignore[call-overload]
        request_fingerprint = fingerprint(write)
        ids = derive_change_ids(workspace, idempotency_key, request_fingerprint, command.contact_id)
        reserve_key(workspace, idempotency_key, request_fingerprint, context, ids=ids)
    return accept(
        command,
        context,
        workspace=workspace,
        correlation_id=correlation_id,
        traceparent=traceparent,
        ids=ids,
    )


def reserve_key(
    workspace: str,
    idempotency_key: str,
    body_fingerprint: str,
    context: Context,
    *,
    ids: DerivedIds | None = None,
) -> None:
    """Bind ``idempotency_key`` of ``workspace`` to the body whose ``idempotency.fingerprint``
    is ``body_fingerprint``, unless it is bound already (kept ``IDEMPOTENCY_TTL_S``). The same
    key in another workspace is another record. ``ids``: the ids the key names (default
    ``derive_ids``'s; the record keeps the first write's answer, keyed by ``key_digest``).

    Raises ``IdempotencyKeyReused`` when the key is bound to another body. A store that does
    not answer fails open (logged): the ids derived from the key still make a retry a
    duplicate that SQS and the worker drop.
    """
    ids = ids or derive_ids(workspace, idempotency_key)
    record = IdempotencyRecord(body_fingerprint, ids.contact_id, ids.operation_id)
    try:
        first = context.idempotency.reserve(workspace, ids.key_digest, record)
    except StoreUnavailable:
        logger.warning("Idempotency store unavailable; relying on derived ids", exc_info=True)
        return
    if first is not None and first.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with another request (another body, route, contact "
            "or If-Match); use a new key for a new request."
        )
