"""Dead-lettered events: why a message ended in the dead-letter queue, told without its data,
and the record that makes an import's report count it (docs/architecture.md, "Dead-lettered
events").

Reasons, from what the message holds (``classify``):

- ``unreadable``: the body is not a Celery message (not base64/JSON, or no task header);
- ``unknown_task``: a Celery message for another task than ``contacts.apply_event``;
- ``malformed_event``: the task's argument is not a valid contact event (``read_event`` raises
  ``MalformedEvent``): poison, it will fail again; purge it, or fix the producer;
- ``failed_event``: a valid event that kept failing (an outage longer than the retry backoff,
  or a bug): redrive it once the cause is fixed.

Only ids, types, the message group (an email-keyed group is shown as ``email-…``: its hash is
derived from an address) and the names of the data fields are ever shown, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from contact_worker.service_layer.handlers import read_event
from contacts_domain import MalformedEvent
from contacts_domain.workspaces import DEFAULT_WORKSPACE, is_workspace
from contacts_infra.messaging import APPLY_EVENT_TASK

Reason = Literal["unreadable", "unknown_task", "malformed_event", "failed_event"]
REASONS: Final[tuple[Reason, ...]] = (
    "unreadable",
    "unknown_task",
    "malformed_event",
    "failed_event",
)
#: What to do about each reason (the ``dlq list`` legend and the runbooks).
ADVICE: Final[Mapping[Reason, str]] = {
    "unreadable": "not a Celery message: purge it (and find its producer)",
    "unknown_task": "another task's message on this queue: purge it",
    "malformed_event": "invalid event, it will fail again: purge it (fix the producer)",
    "failed_event": "valid event that kept failing: redrive it once the cause is fixed",
}


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """What may be shown of one dead-lettered message's content: its reason, task, the event's
    ids and type when readable, and the names (never the values) of its data fields."""

    reason: Reason
    task: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    operation_id: str | None = None
    import_id: str | None = None
    data_fields: tuple[str, ...] = ()
    workspace: str = DEFAULT_WORKSPACE


class ImportDeadLetterLog(Protocol):
    """Where the dead-lettered events of imports are recorded
    (``contacts_infra.import_dead_letters.RedisImportDeadLetters``)."""

    def record(self, workspace: str, import_id: str, event_id: str) -> bool:
        """Record ``event_id`` of ``import_id`` in ``workspace``; ``False`` when the import is
        unknown."""


def classify(task: str | None, args: Sequence[Any] | None) -> DeadLetterSummary:
    """Summarize a message whose Celery ``task`` header and positional ``args`` were decoded
    (``None`` when the body was not a Celery message)."""
    if task is None or args is None:
        return DeadLetterSummary("unreadable", task)
    if task != APPLY_EVENT_TASK:
        return DeadLetterSummary("unknown_task", task)
    envelope = args[0] if len(args) == 1 else None
    ids = envelope_ids(envelope)
    data = envelope.get("data") if isinstance(envelope, Mapping) else None
    try:
        read_event(envelope)
        reason: Reason = "failed_event"
    except MalformedEvent:
        reason = "malformed_event"
    return DeadLetterSummary(
        reason,
        task,
        event_id=ids.get("id"),
        event_type=ids.get("type"),
        operation_id=ids.get("operationid"),
        import_id=ids.get("importid"),
        data_fields=tuple(sorted(str(k) for k in data)) if isinstance(data, Mapping) else (),
        workspace=ids.get("workspace", DEFAULT_WORKSPACE),
    )


def envelope_ids(envelope: object) -> dict[str, str]:
    """The ``id``, ``type``, ``operationid``, ``importid`` and ``workspace`` attributes of a
    CloudEvents envelope that are short strings (an unreadable envelope may lack any of them;
    a workspace that is no workspace id is left out)."""
    if not isinstance(envelope, Mapping):
        return {}
    names = ("id", "type", "operationid", "importid", "workspace")
    found = {
        name: value
        for name in names
        if isinstance(value := envelope.get(name), str) and 0 < len(value) <= 100
    }
    if not is_workspace(found.get("workspace")):
        found.pop("workspace", None)
    return found


def record_dead_letter(envelope: object, log: ImportDeadLetterLog) -> bool:
    """Record the event of ``envelope`` as dead-lettered when it belongs to an import (its
    ``importid``) and has an ``id``; returns whether something was recorded. Raises what
    ``log`` raises."""
    ids = envelope_ids(envelope)
    if "importid" not in ids or "id" not in ids:
        return False
    return log.record(ids.get("workspace", DEFAULT_WORKSPACE), ids["importid"], ids["id"])


def shown_group(group_id: str | None) -> str:
    """The message group as ``dlq`` commands print it: a contact id as is, an email-keyed group
    (``email-`` + SHA-256 of the address) as ``email-…``."""
    if not group_id:
        return "-"
    return "email-…" if group_id.startswith("email-") else group_id
