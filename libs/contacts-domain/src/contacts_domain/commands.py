"""Commands: what a client asks for, already validated, before it becomes an event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contacts_domain.events import ContactEvent, EventKind
from contacts_domain.workspaces import DEFAULT_WORKSPACE


@dataclass(frozen=True, slots=True)
class CreateContact:
    """Create a contact under a server-assigned id; ``fields`` holds every field, normalized."""

    contact_id: str
    fields: Mapping[str, Any]
    expected_version: None = None


@dataclass(frozen=True, slots=True)
class ReplaceContact:
    """Replace every field of a contact, creating it if absent.

    ``expected_version`` comes from ``If-Match``.
    """

    contact_id: str
    fields: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class PatchContact:
    """Change the fields in ``changes`` (RFC 7396 merge patch, normalized; ``None`` clears)."""

    contact_id: str
    changes: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteContact:
    """Erase a contact: only a tombstone with its id and ordering data remains."""

    contact_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class UpsertContact:
    """Patch the live contact holding the primary email of ``fields`` (matched on its canonical
    form, any of a contact's emails), or create one under ``contact_id`` when none does.

    ``fields`` are normalized and hold a first or last name and a primary email, so either way
    the result is a valid contact; absent fields are left as they are on a match.
    """

    contact_id: str
    fields: Mapping[str, Any]
    expected_version: None = None


Command = CreateContact | ReplaceContact | PatchContact | DeleteContact | UpsertContact


def to_event(
    command: Command,
    *,
    event_id: str,
    operation_id: str,
    sequence: str,
    time: dt.datetime,
    correlation_id: str | None,
    traceparent: str | None = None,
    import_id: str | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> ContactEvent:
    """Return the event that records ``command`` as accepted at ``time`` with ``sequence``;
    ``correlation_id`` is the request id and ``traceparent`` its W3C trace context, if any;
    ``import_id`` the import the command comes from, if any; ``workspace`` the caller's
    (``workspaces.check_workspace``: the caller's identity decided it)."""
    kind: EventKind
    data: Mapping[str, Any]
    match command:
        case CreateContact(fields=fields):
            kind, data = "created", fields
        case ReplaceContact(fields=fields):
            kind, data = "replaced", fields
        case PatchContact(changes=changes):
            kind, data = "patched", changes
        case DeleteContact():
            kind, data = "deleted", {}
        case UpsertContact(fields=fields):
            kind, data = "upserted", fields
    return ContactEvent(
        id=event_id,
        kind=kind,
        contact_id=command.contact_id,
        sequence=sequence,
        time=time,
        operation_id=operation_id,
        data=dict(data),
        expected_version=command.expected_version,
        correlation_id=correlation_id,
        traceparent=traceparent,
        import_id=import_id,
        workspace=workspace,
    )
