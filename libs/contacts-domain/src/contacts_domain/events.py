"""Contact events and their CloudEvents 1.0 JSON envelope (structured mode), docs/architecture.md
§3."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from contacts_domain.errors import MalformedEvent
from contacts_domain.sequence import SEQUENCE_PATTERN
from contacts_domain.workspaces import DEFAULT_WORKSPACE, is_workspace

EventKind = Literal["created", "replaced", "patched", "deleted", "upserted"]
KINDS: Final[tuple[EventKind, ...]] = ("created", "replaced", "patched", "deleted", "upserted")
TYPE_PREFIX: Final = "contacts.contact."
#: Every event type version this library can read. The worker must accept every version that was
#: ever produced, so a new version is added here and old ones are never removed.
READABLE_VERSIONS: Final = frozenset({"v1"})
CURRENT_VERSION: Final = "v1"
SPEC_VERSION: Final = "1.0"
#: The ``expected_version`` of a write that wants no visible contact (``If-None-Match: *`` on
#: a PUT, RFC 9110 §13.1.2: create, never replace). No contact is ever visible at version 0.
ABSENT_VERSION: Final = 0
_TYPE_RE = re.compile(
    r"^contacts\.contact\.(created|replaced|patched|deleted|upserted)\.(v[0-9]+)$"
)
_SEQUENCE_RE = re.compile(SEQUENCE_PATTERN)
#: W3C Trace Context ``traceparent`` (version-traceid-parentid-flags), as the CloudEvents
#: distributed-tracing extension carries it.
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def event_type(kind: EventKind) -> str:
    """Return the CloudEvents ``type`` of ``kind`` at the current version."""
    return f"{TYPE_PREFIX}{kind}.{CURRENT_VERSION}"


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds: ``2026-11-29T10:00:00.000123Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """A fact about one contact, as accepted by the command API.

    ``sequence`` is the per-contact ordering key (see ``sequence.py``). ``data`` holds the
    normalized fields: all of them for ``created``/``replaced``, the changed ones for ``patched``
    (``None`` clears), nothing for ``deleted``; for ``upserted``, the fields given (with a name
    and a primary email), and ``contact_id`` is the id the contact gets if the worker finds no
    live contact holding that email (``commands.UpsertContact``). ``expected_version`` comes
    from ``If-Match``.

    ``correlation_id`` is the ``X-Request-ID`` of the request that produced the event (the
    ``correlationid`` extension attribute): the worker logs it as ``request_id``.
    ``traceparent`` is the request's W3C ``traceparent`` header, if it sent a valid one (the
    CloudEvents distributed-tracing extension attribute of the same name). Both are optional:
    events written before they existed are read with ``None``.

    ``import_id`` (extension attribute ``importid``) is the import (``POST /v1/imports``) the
    event belongs to, so the worker can record it with the outcome and the import's report
    can count applied and rejected records; ``None`` for every other event.

    ``workspace`` (extension attribute ``workspace``) is the workspace the contact belongs to
    (``workspaces.WORKSPACE_PATTERN``); an envelope without one (queued before workspaces
    existed) belongs to ``DEFAULT_WORKSPACE``.
    """

    id: str
    kind: EventKind
    contact_id: str
    sequence: str
    time: dt.datetime
    operation_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None
    correlation_id: str | None = None
    source: str = "command-api"
    traceparent: str | None = None
    import_id: str | None = None
    workspace: str = DEFAULT_WORKSPACE

    def to_cloudevent(self) -> dict[str, Any]:
        """Return the envelope as a JSON-ready dict (docs/architecture.md §3); ``traceparent`` and
        ``importid`` only when known (CloudEvents omits absent extension attributes)."""
        envelope: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": event_type(self.kind),
            "subject": self.contact_id,
            "time": format_time(self.time),
            "datacontenttype": "application/json",
            "sequence": self.sequence,
            "correlationid": self.correlation_id,
            "operationid": self.operation_id,
            "expectedversion": self.expected_version,
            "workspace": self.workspace,
            "data": dict(self.data),
        }
        if self.traceparent is not None:
            envelope["traceparent"] = self.traceparent
        if self.import_id is not None:
            envelope["importid"] = self.import_id
        return envelope

    def to_json(self) -> str:
        """Compact UTF-8 JSON (non-ASCII kept as is, which keeps messages small)."""
        return json.dumps(self.to_cloudevent(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_cloudevent(cls, envelope: object) -> ContactEvent:
        """Read an envelope produced by any version of the command API.

        Raises ``MalformedEvent`` when ``envelope`` is not a readable contact event: wrong shape,
        unknown type or version, bad ids, time or sequence. The ``data`` fields are checked by the
        caller with ``normalize_contact``.
        """
        if not isinstance(envelope, Mapping):
            raise MalformedEvent("The event is not a JSON object.")
        if envelope.get("specversion") != SPEC_VERSION:
            raise MalformedEvent("Unsupported CloudEvents specversion.")
        match = _TYPE_RE.match(str(envelope.get("type", "")))
        if not match or match.group(2) not in READABLE_VERSIONS:
            raise MalformedEvent(f"Unknown event type {envelope.get('type')!r}.")
        kind: EventKind = match.group(1)  # type: ignore[assignment]
        sequence = envelope.get("sequence")
        if not isinstance(sequence, str) or not _SEQUENCE_RE.match(sequence):
            raise MalformedEvent("Missing or malformed sequence.")
        expected = envelope.get("expectedversion")
        if expected is not None and (type(expected) is not int or expected < 0):
            raise MalformedEvent("expectedversion must be a non-negative integer or null.")
        data = envelope.get("data") or {}
        if not isinstance(data, Mapping):
            raise MalformedEvent("data must be a JSON object.")
        correlation = envelope.get("correlationid")
        traceparent = envelope.get("traceparent")
        if traceparent is not None and (
            not isinstance(traceparent, str) or not _TRACEPARENT_RE.fullmatch(traceparent)
        ):
            traceparent = None  # a malformed trace context is dropped, never fatal
        import_id = envelope.get("importid")
        workspace = envelope.get("workspace", DEFAULT_WORKSPACE)
        if not is_workspace(workspace):
            raise MalformedEvent("workspace is not a workspace id.")
        try:
            moment = dt.datetime.fromisoformat(str(envelope.get("time")))
        except ValueError:
            raise MalformedEvent("time is not RFC 3339.") from None
        if moment.tzinfo is None:
            raise MalformedEvent("time needs a UTC offset.")
        return cls(
            id=_uuid(envelope.get("id"), "id"),
            kind=kind,
            contact_id=_uuid(envelope.get("subject"), "subject"),
            sequence=sequence,
            time=moment,
            operation_id=_uuid(envelope.get("operationid"), "operationid"),
            data=dict(data),
            expected_version=expected,
            correlation_id=str(correlation)[:200] if correlation is not None else None,
            source=str(envelope.get("source", "")),
            traceparent=traceparent,
            import_id=_uuid(import_id, "importid") if import_id is not None else None,
            workspace=str(workspace),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ContactEvent:
        """Parse JSON text. Raises ``MalformedEvent`` for invalid JSON or an unreadable event."""
        try:
            return cls.from_cloudevent(json.loads(text))
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"Not JSON: {exc}") from None


def _uuid(value: object, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise MalformedEvent(f"{name} is not a UUID.") from None
