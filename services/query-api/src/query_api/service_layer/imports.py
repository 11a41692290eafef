"""``GET /v1/imports/{id}``: the report of an address-book import, with its records' outcomes.

Two sources, one answer:

- the report the command API stored when it read the upload (``contacts_domain.imports.
  ImportReport``, in Redis under ``import:<workspace>/<id>`` for ``IMPORT_REPORT_TTL_S``, 7
  days): format, state, received/accepted/invalid/failed/repaired counts, the invalid
  records' problems (errors) and what was dropped from the imported ones (warnings);
- the outcomes the worker recorded for the records it has processed so far (``applied``,
  ``rejected`` and the rejections' reasons), counted in PostgreSQL by import id.

- the events the worker gave up on (``dead_lettered``: moved to the dead-letter queue after
  ``SQS_MAX_RECEIVE_COUNT`` failed receives, and not redriven since), counted in Redis next to
  the report (docs/architecture.md, "Dead-lettered events").

The records still in the queue are ``pending`` = accepted − applied − rejected − dead-lettered,
never negative; the import is ``completed`` once every accepted record has an outcome (a
dead-lettered record is one, until ``dlq redrive`` sends it back). Two words, two
questions: ``state`` says how far the valid records reached the queue (``queuing``: the
command API is still sending them, after its ``202``; ``queued``: all of them; ``failed``:
the queue stopped taking them part-way; ``interrupted``: the report still says ``queuing`` but
no process holds its queuing lease any more, so the process queuing it stopped and an unknown
part was never queued), ``status`` (``pending`` | ``completed``) whether the worker has
processed what did. A ``failed`` import's ``status`` still reaches ``completed`` (its
``accepted`` records applied or rejected) while its ``failed`` records were never queued; an
``interrupted`` one stays ``pending`` until the same file is sent again with the same
``Idempotency-Key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from contacts_domain.imports import ImportReport
from query_api.service_layer.ports import CacheUnavailable, ImportOutcomeLog, ImportReportReader
from query_api.service_layer.records import ImportOutcomes

ImportProgress = Literal["pending", "completed"]
#: What ``GET /v1/imports/{id}`` says of the queuing: the report's state, or ``interrupted``.
ShownState = Literal["queuing", "queued", "failed", "interrupted"]
SHOWN_STATES: Final[tuple[ShownState, ...]] = ("queuing", "queued", "failed", "interrupted")
#: How long the command API keeps an import's report (``IMPORT_REPORT_TTL_S``'s default), as
#: said in the 404 of an unknown or expired import.
REPORT_TTL_DAYS: Final = 7


class ImportReportUnavailable(RuntimeError):
    """Redis, which holds the import reports, is not answering (or its circuit is open): the
    import may exist, so the caller should retry later (503)."""


@dataclass(frozen=True, slots=True)
class ImportStatus:
    """An import's report and its records' outcomes, as ``GET /v1/imports/{id}`` answers."""

    report: ImportReport
    outcomes: ImportOutcomes
    dead_lettered: int = 0
    interrupted: bool = False

    @property
    def state(self) -> ShownState:
        """The report's state, or ``interrupted`` for a ``queuing`` report whose lease is
        gone."""
        return "interrupted" if self.interrupted else self.report.state

    @property
    def pending(self) -> int:
        """Accepted records without an outcome yet (≥ 0)."""
        done = self.outcomes.applied + self.outcomes.rejected + self.dead_lettered
        return max(self.report.accepted - done, 0)

    @property
    def progress(self) -> ImportProgress:
        """``completed`` once every accepted record is applied, rejected or dead-lettered, else
        ``pending``."""
        return "completed" if self.pending == 0 else "pending"

    def to_dict(self) -> dict[str, Any]:
        """The response body (``entrypoints.schemas.ImportStatusSchema``)."""
        report = self.report
        return {
            "id": report.import_id,
            "format": report.format,
            "state": self.state,
            "status": self.progress,
            "received": report.received,
            "accepted": report.accepted,
            "invalid": report.invalid,
            "failed": report.failed,
            "applied": self.outcomes.applied,
            "rejected": self.outcomes.rejected,
            "dead_lettered": self.dead_lettered,
            "pending": self.pending,
            "rejected_reasons": dict(sorted(self.outcomes.rejected_reasons.items())),
            "created_at": report.to_dict()["created_at"],
            "errors": [problem.to_dict() for problem in report.errors],
            "errors_truncated": report.errors_truncated,
            "repaired": report.repaired,
            "warnings": [problem.to_dict() for problem in report.warnings],
            "warnings_truncated": report.warnings_truncated,
        }


def get_import(
    workspace: str, import_id: str, *, reports: ImportReportReader, outcomes: ImportOutcomeLog
) -> ImportStatus | None:
    """Return the status of import ``import_id`` (a canonical lower-case UUID) of
    ``workspace``, or ``None`` when no report is stored for it there (never made, made in
    another workspace, or expired after ``REPORT_TTL_DAYS``).

    The report is read first (then, while it says ``queuing``, its lease); PostgreSQL is
    asked only for a known import. Raises
    ``ImportReportUnavailable`` when Redis does not answer (the outcomes alone cannot say
    how many records were accepted) and ``ReadModelUnavailable`` when PostgreSQL does not.
    """
    try:
        report = reports.get(workspace, import_id)
        if report is None:
            return None
        dead_lettered = reports.dead_lettered(workspace, import_id)
        interrupted = report.state == "queuing" and not reports.queuing(workspace, import_id)
    except CacheUnavailable as exc:
        raise ImportReportUnavailable(str(exc)) from None
    return ImportStatus(report, outcomes.counts(workspace, import_id), dead_lettered, interrupted)
