"""Ports of the command API that the domain library does not define.

``EventPublisher`` and ``OperationStore`` come from ``contacts_domain.ports``.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from contacts_domain.imports import ImportReport


class SequenceClock(Protocol):
    """This process's source of per-contact ordering keys (docs/architecture.md §5.3): a
    hybrid logical clock (``contacts_domain.HybridLogicalClock``, made per process by
    ``adapters.process_clock.ProcessClock``)."""

    def next(self) -> str:
        """A sequence (``"<µs, 16 hex>.<node>"``) strictly greater than every one this clock
        returned or observed."""

    def observe(self, sequence: str) -> None:
        """Move the clock past ``sequence`` (a sequence of ``contacts_domain.sequence``), so
        what ``next`` returns afterwards sorts after it. Raises ``ValueError`` for a malformed
        one."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a first ``POST`` with an ``Idempotency-Key`` answered.

    ``fingerprint`` is the SHA-256 hex digest of the normalized body (see
    ``idempotency.fingerprint``); ``contact_id`` and ``operation_id`` are the ids it returned.
    ``sequence``, for an import, is the first of its records' sequences (``service_layer.
    imports``): a retry of the import derives the same ones from it, so its records keep their
    place among the writes accepted after the first answer (``None`` for other writes and for
    records stored before it existed).
    """

    fingerprint: str
    contact_id: str
    operation_id: str
    sequence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "fingerprint": self.fingerprint,
            "id": self.contact_id,
            "operation_id": self.operation_id,
        }
        if self.sequence is not None:
            data["sequence"] = self.sequence
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdempotencyRecord:
        """Raises ``KeyError`` for a dict ``to_dict`` did not produce."""
        sequence = data.get("sequence")
        return cls(
            str(data["fingerprint"]),
            str(data["id"]),
            str(data["operation_id"]),
            str(sequence) if sequence is not None else None,
        )


class IdempotencyStore(abc.ABC):
    """Idempotency records, kept ``IDEMPOTENCY_TTL_S`` seconds (24 h by contract), per
    workspace: the same key in two workspaces is two records."""

    @abc.abstractmethod
    def reserve(
        self, workspace: str, key_digest: str, record: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """Store ``record`` under ``key_digest`` in ``workspace`` unless a record is already
        there.

        Returns ``None`` when this call stored it, else the record stored first (atomic: of two
        concurrent calls exactly one gets ``None``). Raises ``StoreUnavailable`` when the store
        does not answer in time.
        """

    @abc.abstractmethod
    def find(self, workspace: str, key_digest: str) -> IdempotencyRecord | None:
        """The record stored under ``key_digest`` in ``workspace``, or ``None`` (never stored,
        or expired). Raises ``StoreUnavailable`` when the store does not answer in time."""


class ImportReportWriter(abc.ABC):
    """Writes import reports, kept ``IMPORT_REPORT_TTL_S`` seconds (7 days by default) under
    ``redis_keys.import_key`` (per workspace); the query API's ``GET /v1/imports/{id}`` reads
    them (its own port, ``query_api.service_layer.ports``), in the caller's workspace only."""

    @abc.abstractmethod
    def save(self, workspace: str, report: ImportReport) -> None:
        """Store ``report`` of an import of ``workspace`` (replacing any report of the same
        import there), resetting its TTL.

        Raises ``StoreUnavailable`` when the store does not answer in time.
        """

    @abc.abstractmethod
    def created_at(self, workspace: str, import_id: str) -> dt.datetime | None:
        """The ``created_at`` of the report stored for an import of ``workspace``, or ``None``
        when none is (never stored, or expired): a retry with the same ``Idempotency-Key``
        keeps its first attempt's.

        Raises ``StoreUnavailable`` when the store does not answer in time.
        """

    @abc.abstractmethod
    def hold_queuing(self, workspace: str, import_id: str) -> None:
        """Take or renew the queuing lease of an import of ``workspace`` (``redis_keys.
        import_queuing_key``) for the adapter's lease time (``IMPORT_QUEUING_LEASE_S``): the
        process queuing the import's records renews it after each chunk, so a report still
        ``queuing`` without a lease was interrupted.

        Raises ``StoreUnavailable`` when the store does not answer in time.
        """
