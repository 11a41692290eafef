"""Imports of whole address books (``POST /v1/imports``): the report the command API keeps.

The command API reads the upload, queues each valid record as an event carrying the import's
id (``ContactEvent.import_id``) and stores an ``ImportReport`` in Redis
(``redis_keys.import_key``). The worker records each event's outcome with that id, so the
query API's ``GET /v1/imports/{id}`` adds ``applied`` and ``rejected`` from PostgreSQL to the
report's counts. Ids of the records' operations and events are derived from the import id and
the record's position (``record_ids``): a retried import (same ``Idempotency-Key``, hence the
same import id) queues the same events, which SQS and the worker's inbox drop as duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

ImportFormat = Literal["vcard", "csv"]
#: ``queuing``: the file was validated and its report stored, and the command API is still
#: sending its valid records to the queue, in the background after its ``202`` (while it does,
#: it holds the import's queuing lease, ``redis_keys.import_queuing_key``; a report still
#: ``queuing`` without that lease was interrupted: its process stopped before it was done).
#: ``queued``: every valid record is in the queue. ``failed``: the queue stopped taking events
#: part-way (``failed`` counts the valid records left out); send the same file again with the
#: same ``Idempotency-Key`` to queue the rest without duplicating the others. The state says
#: what reached the queue, not what the worker did: the query API's ``status`` (pending,
#: completed) follows the queued records, so a ``failed`` import still reaches ``completed``.
ImportState = Literal["queuing", "queued", "failed"]
FORMATS: Final[tuple[ImportFormat, ...]] = ("vcard", "csv")
STATES: Final[tuple[ImportState, ...]] = ("queuing", "queued", "failed")
#: Namespace of the UUIDv5s of an import's records (fixed forever: a retried import must
#: derive the same ids).
RECORD_ID_NAMESPACE: Final = uuid.UUID("2d8f4c1e-7b3a-5e6f-8a9b-0c1d2e3f4a5b")


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """Why one record of an import was not queued (an error), or what was dropped from or
    repaired in a record that was (a warning).

    ``position`` is the card's 1-based number (vCard) or the CSV line where the row starts;
    ``line`` the file's line where the record starts, when known; ``field`` a contact field
    path (``emails.0.value``) or ``_card`` for the whole record; ``message`` says what is wrong
    and, for a warning, what was dropped, never the value itself (personal data).
    """

    position: int
    line: int | None
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "line": self.line,
            "field": self.field,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportProblem:
        """Raises ``KeyError``/``ValueError``/``TypeError`` for a dict ``to_dict`` did not
        produce."""
        line = data.get("line")
        return cls(
            position=int(data["position"]),
            line=int(line) if line is not None else None,
            field=str(data["field"]),
            message=str(data["message"]),
        )


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What the command API knows of an import once it has read the whole upload, and (its
    ``state``) how far the queuing of its valid records has come.

    Counts are of records (cards or CSV rows): ``received`` = ``accepted`` + ``invalid`` +
    ``failed``. ``errors`` lists the problems of the invalid records (at most
    ``IMPORT_ERRORS_MAX`` entries; ``errors_truncated`` says some were left out).
    ``repaired`` counts the valid records (of ``accepted`` + ``failed``) imported with at
    least one warning: a value dropped (an invalid email, phone number, birthday...) or
    repaired (extra entries cut, a guessed charset); ``warnings`` lists those, at most
    ``IMPORT_ERRORS_MAX`` entries counted apart from ``errors`` (``warnings_truncated``).
    Reports stored before warnings existed have none: ``from_dict`` reads them as 0, ``()``
    and ``False``. ``created_at`` is when the upload was received (UTC).
    """

    import_id: str
    format: ImportFormat
    state: ImportState
    received: int
    accepted: int
    invalid: int
    failed: int
    created_at: dt.datetime
    errors: tuple[ImportProblem, ...] = field(default_factory=tuple)
    errors_truncated: bool = False
    repaired: int = 0
    warnings: tuple[ImportProblem, ...] = field(default_factory=tuple)
    warnings_truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "format": self.format,
            "state": self.state,
            "received": self.received,
            "accepted": self.accepted,
            "invalid": self.invalid,
            "failed": self.failed,
            "created_at": self.created_at.astimezone(dt.UTC).isoformat(),
            "errors": [problem.to_dict() for problem in self.errors],
            "errors_truncated": self.errors_truncated,
            "repaired": self.repaired,
            "warnings": [problem.to_dict() for problem in self.warnings],
            "warnings_truncated": self.warnings_truncated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportReport:
        """Raises ``KeyError``/``ValueError``/``TypeError`` for a dict ``to_dict`` did not
        produce."""
        if data["format"] not in FORMATS or data["state"] not in STATES:
            raise ValueError("unknown import format or state")
        return cls(
            import_id=str(data["import_id"]),
            format=data["format"],
            state=data["state"],
            received=int(data["received"]),
            accepted=int(data["accepted"]),
            invalid=int(data["invalid"]),
            failed=int(data["failed"]),
            created_at=dt.datetime.fromisoformat(str(data["created_at"])),
            errors=tuple(ImportProblem.from_dict(item) for item in data.get("errors") or ()),
            errors_truncated=bool(data.get("errors_truncated", False)),
            repaired=int(data.get("repaired", 0)),
            warnings=tuple(ImportProblem.from_dict(item) for item in data.get("warnings") or ()),
            warnings_truncated=bool(data.get("warnings_truncated", False)),
        )


@dataclass(frozen=True, slots=True)
class RecordIds:
    """The ids of one record of an import (lowercase UUIDs): the contact id it gets when it is
    created, its event id and its operation id."""

    contact_id: str
    event_id: str
    operation_id: str


def record_ids(import_id: str, position: int) -> RecordIds:
    """Return the ids of the record at ``position`` of import ``import_id``; the same on every
    call (UUIDv5 in ``RECORD_ID_NAMESPACE``)."""
    name = f"{import_id}:{position}"
    return RecordIds(
        contact_id=_uuid5(f"contact:{name}"),
        event_id=_uuid5(f"event:{name}"),
        operation_id=_uuid5(f"operation:{name}"),
    )


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(RECORD_ID_NAMESPACE, name))`` without the ``UUID`` object (1.5 instead
    of 5 µs: an import of 10,000 records makes 30,000; a test compares both)."""
    digest = bytearray(hashlib.sha1(RECORD_ID_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
