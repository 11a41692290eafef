"""Operation status: what a client polls after a ``202 Accepted`` (docs/architecture.md §5.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OperationState = Literal["pending", "applied", "rejected"]
UpsertResult = Literal["created", "updated"]


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """The outcome of one accepted command.

    ``version`` is the contact's version after the operation (``None`` while pending).
    ``reason`` names a rejection (``email_conflict``, ``version_mismatch``, ``not_found``,
    ``name_required``). ``result`` says what an applied upsert did: ``created`` (no live
    contact held the email) or ``updated``; ``None`` for every other operation.
    """

    operation_id: str
    contact_id: str
    status: OperationState
    reason: str | None = None
    version: int | None = None
    result: UpsertResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "contact_id": self.contact_id,
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
            "result": self.result,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationStatus:
        """Raises ``KeyError``/``ValueError`` for a dict that ``to_dict`` did not produce."""
        status = data["status"]
        if status not in ("pending", "applied", "rejected"):
            raise ValueError(f"unknown status {status!r}")
        version = data.get("version")
        result = data.get("result")
        if result not in (None, "created", "updated"):
            raise ValueError(f"unknown result {result!r}")
        return cls(
            operation_id=str(data["operation_id"]),
            contact_id=str(data["contact_id"]),
            status=status,
            reason=data.get("reason"),
            version=int(version) if version is not None else None,
            result=result,
        )
