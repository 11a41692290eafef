"""contacts_domain: the Contact aggregate, value objects, commands, events and ports.

Pure Python: no Flask, Celery, SQLAlchemy, redis or boto3 (docs/architecture.md §1).
"""

from contacts_domain.aggregate import (
    EMAIL_CONFLICT,
    EXPIRED,
    NAME_REQUIRED,
    NOT_FOUND,
    QUOTA_EXCEEDED,
    VERSION_MISMATCH,
    ContactState,
    Decision,
    ProcessedEvent,
    Replayed,
    apply_event,
    erases,
    precondition_failure,
    replay,
    replay_erased,
)
from contacts_domain.commands import (
    Command,
    CreateContact,
    DeleteContact,
    PatchContact,
    ReplaceContact,
    UpsertContact,
    to_event,
)
from contacts_domain.contact import FIELDS, Fields, empty_fields, normalize_contact, represent
from contacts_domain.errors import MalformedEvent, ValidationFailed
from contacts_domain.events import ABSENT_VERSION, ContactEvent, event_type
from contacts_domain.operations import OperationStatus
from contacts_domain.sequence import HybridLogicalClock
from contacts_domain.workspaces import DEFAULT_WORKSPACE, InvalidWorkspace, check_workspace

__all__ = [
    "ABSENT_VERSION",
    "DEFAULT_WORKSPACE",
    "EMAIL_CONFLICT",
    "EXPIRED",
    "FIELDS",
    "NAME_REQUIRED",
    "NOT_FOUND",
    "QUOTA_EXCEEDED",
    "VERSION_MISMATCH",
    "Command",
    "ContactEvent",
    "ContactState",
    "CreateContact",
    "Decision",
    "DeleteContact",
    "Fields",
    "HybridLogicalClock",
    "InvalidWorkspace",
    "MalformedEvent",
    "OperationStatus",
    "PatchContact",
    "ProcessedEvent",
    "ReplaceContact",
    "Replayed",
    "UpsertContact",
    "ValidationFailed",
    "apply_event",
    "check_workspace",
    "empty_fields",
    "erases",
    "event_type",
    "normalize_contact",
    "precondition_failure",
    "replay",
    "replay_erased",
    "represent",
    "to_event",
]
