"""Importing an address book (``POST /v1/imports``): validate the whole file, then queue it.

Issue 3, item 3. The upload is already spooled (``Upload``: a seekable file of at most
``ImportLimits.max_bytes`` bytes). The use case parses it once, with the ``contacts_exchange``
reader of its format, and queues in a second pass over what that parse kept:

1. **Validation pass**: every record is read and counted; the problems of the invalid ones
   (errors) and what was dropped from or repaired in the valid ones (warnings, counted in
   ``repaired``) are collected, at most ``ImportLimits.errors_max`` of each kind. Each valid
   record's fields are kept serialized in a temporary file (``ValidRecords``).
   ``ImportFormatError`` (not that format) and ``ImportTooLarge`` (past ``max_bytes`` or
   ``max_records``) propagate: nothing is queued.
2. The ``Idempotency-Key`` is reserved (the fingerprint of the upload), every valid record's
   ``sequence`` is read from the clock, then the ``ImportReport`` (state ``queuing``) and its
   queuing lease are stored **before** anything is queued, so every queued event has a report
   the query API can serve (docs/architecture.md §5.1: what is accepted is reported).
3. **Queue pass**: each kept record becomes a command, in file order: ``UpsertContact``
   (matched on the primary email) when it has a primary email, else ``CreateContact``; ids
   from ``record_ids(import_id, position)``, its sequence from step 2, ``import_id`` on the
   event. Events go out in chunks of ``chunk_size`` through ``publisher.publish_batch`` (the
   SQS adapter sends the calls of disjoint message groups in parallel), two chunks of 250 at
   once when their message groups are disjoint. Events the queue did not take are sent again
   twice, after 0.5 and 1 s (``_publish``). The first chunk is sent before the answer
   (``import_upload``): when the queue does not take it, the report is rewritten ``failed`` and
   ``ImportNotQueued`` is raised (503). The rest is sent by ``QueuingImport.finish``, which the
   entrypoint runs in a background thread after its ``202`` (issue 13: the ``202`` comes after
   the parse, not after 10,000 sends): it renews the queuing lease after each chunk, stops at
   the first chunk the queue did not take whole, and rewrites the report ``queued``, or
   ``failed`` with the counts. A process that stops meanwhile leaves the report ``queuing``
   without a lease, which the query API answers as ``interrupted``; the same file sent again
   with the same ``Idempotency-Key`` queues it again without duplicates.

Keeping serialized fields rather than parsed records or events (parsed records were measured
at ~23 MB for a 3 MB file), and keeping them on disk rather than in memory (~10 MB for the
10,000 cards of ``bench/imports.py``, which the process kept after the request), bounds the
memory of an import at its chunks; and it spares the second parse that reading the file twice
cost (2.7 s of CPU of the ~11 s the request took; bench/README.md has the profile).

Operations are not marked ``pending`` one by one (10,000 Redis writes): clients poll the
import's report, which counts what the worker applied and rejected.
"""

from __future__ import annotations

import array
import collections
import concurrent.futures
import contextvars
import datetime as dt
import itertools
import logging
import marshal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Final

from command_api.service_layer.errors import IdempotencyKeyReused
from command_api.service_layer.handlers import Context
from command_api.service_layer.idempotency import derive_import
from command_api.service_layer.ports import IdempotencyRecord, ImportReportWriter
from contacts_domain import Command, ContactEvent, CreateContact, UpsertContact, to_event
from contacts_domain.contact import primary_value
from contacts_domain.imports import (
    ImportFormat,
    ImportProblem,
    ImportReport,
    RecordIds,
    record_ids,
)
from contacts_domain.ordering import ordering_key
from contacts_domain.ports import PublishFailed, StoreUnavailable
from contacts_domain.sequence import sequence_block
from contacts_exchange import FieldMessage, ImportRecord, read_csv, read_vcards

logger = logging.getLogger(__name__)

#: Events per ``publish_batch`` call: the SQS adapter sends them 10 per SendMessageBatch, the
#: calls of disjoint message groups at once; a chunk is the unit of "stop after a failure".
#: Two chunks of 250 in flight hold fewer events and messages than one of 500 did, and kept
#: less memory after a 10,000-card import (in-process: +21 MiB, against +25 for one of 500
#: and +35 for two of 500).
CHUNK_SIZE: Final = 250
_KEY_REUSED: Final = "This Idempotency-Key was used with a different request."
#: Chunks being sent at once (``_queue``); their calls share the publisher's send threads.
_CHUNKS_IN_FLIGHT: Final = 2
#: Further tries of a chunk's events the queue did not take, and the pause before the first
#: (seconds; the second waits twice as long): ``_publish``.
_RETRIES: Final = 2
_RETRY_PAUSE_S: Final = 0.5
#: Bytes per read and write of ``ValidRecords``' temporary file.
_FILE_BUFFER: Final = 256 * 1024

Reader = Callable[..., Iterator[ImportRecord]]
READERS: Final[dict[ImportFormat, Reader]] = {"vcard": read_vcards, "csv": read_csv}


class ImportNotQueued(RuntimeError):
    """The queue did not take the import's first chunk whole (``import_upload``); ``report``
    (state ``failed``) counts what was queued (``accepted``) and what was not (``failed``).

    ``keyed`` says whether the import had an ``Idempotency-Key``. With one, retrying the same
    file with the same key queues the rest: the events already queued carry the same ids and
    are dropped as duplicates. Without one, a retry is a new import that queues every record
    again: records with an email upsert the same contacts, but records without one are
    created a second time."""

    def __init__(self, report: ImportReport, *, keyed: bool) -> None:
        super().__init__(
            f"{report.failed} of {report.accepted + report.failed} valid records not queued."
        )
        self.report = report
        self.keyed = keyed


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Bounds of one import (``IMPORT_MAX_BYTES`` bytes, ``IMPORT_MAX_RECORDS`` records,
    ``IMPORT_ERRORS_MAX`` problems listed) and the region of phone numbers written without
    ``+`` (ISO 3166-1 alpha-2, ``DEFAULT_PHONE_REGION``)."""

    max_bytes: int
    max_records: int
    errors_max: int
    default_region: str


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file: ``file`` is seekable and holds ``size`` bytes; ``fingerprint`` is the
    SHA-256 hex digest of the format and the bytes (``idempotency.upload_hasher``)."""

    file: BinaryIO
    format: ImportFormat
    size: int
    fingerprint: str


class ValidRecords:
    """The valid records of one parse, in file order, as ``(position, fields)``, ``fields`` the
    record's ``data`` (a JSON-shaped dict: ``normalize_contact``'s dicts, lists, strings,
    numbers, booleans and ``None``).

    The fields are kept ``marshal``-ed (this process writes and reads them; 1.5 + 3.6 µs a
    record on the bench machine against 8 + 24 µs for compact JSON, with the same values
    back) in a temporary file (``TMPDIR``, where the upload is spooled too) and only
    each record's position and length stay in memory (16 bytes a record): held in the process
    as 10,000 ``bytes`` of ~1 KB, a 10 MB import's records raised the command API's RSS by
    ~10 MiB that stayed after the request (glibc keeps the freed blocks; bench/README.md).
    Iterate once the parse is over (each iteration reads the file from its start); ``close``
    deletes the file.
    """

    def __init__(self) -> None:
        # Large buffers: each read or write call lets go of the GIL, and getting it back
        # while the send threads run botocore can take a switch interval (5 ms).
        self._file = tempfile.TemporaryFile(buffering=_FILE_BUFFER)  # noqa: SIM115 (``close``)
        self._positions = array.array("q")
        self._lengths = array.array("q")

    def append(self, position: int, fields: dict[str, Any]) -> None:
        """Keep one record (after those appended before it)."""
        kept = marshal.dumps(fields)
        self._file.write(kept)
        self._positions.append(position)
        self._lengths.append(len(kept))

    def __len__(self) -> int:
        return len(self._positions)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        self._file.seek(0)
        block, start = b"", 0
        for position, length in zip(self._positions, self._lengths, strict=True):
            if start + length > len(block):  # one read per _FILE_BUFFER bytes, not per record
                block, start = block[start:] + self._file.read(max(length, _FILE_BUFFER)), 0
            yield position, marshal.loads(block[start : start + length])
            start += length

    def close(self) -> None:
        """Delete the temporary file."""
        self._file.close()


@dataclass(frozen=True, slots=True)
class ParsedImport:
    """What the one parse of an upload yields: its ``report`` (state ``queuing``) and its valid
    records (``ValidRecords``; the caller closes them)."""

    report: ImportReport
    valid: ValidRecords = field(default_factory=ValidRecords)


@dataclass(frozen=True, slots=True)
class _Envelope:
    """What every event of one import carries besides its record: the workspace, the request
    id, the W3C trace context and the import's id."""

    workspace: str
    correlation_id: str | None
    traceparent: str | None
    import_id: str


def import_upload(
    upload: Upload,
    context: Context,
    reports: ImportReportWriter,
    limits: ImportLimits,
    *,
    workspace: str,
    correlation_id: str | None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> QueuingImport:
    """Validate and report ``upload`` into ``workspace``, queue its first chunk of events, and
    return the import, whose ``finish`` queues the rest (``done`` when nothing is left).

    The import id is a uuid4, or with ``idempotency_key`` a UUIDv5 of the workspace and the
    key's digest (``idempotency.derive_import``), so a retry gets the same id and queues the
    same event ids again (SQS drops duplicates within 5 minutes, the worker's inbox after).
    Every event's ``sequence`` is read from the clock here, before the caller answers, so a
    command accepted after that answer orders after each of the import's records whenever
    their events reach the worker (docs/architecture.md §5.3).

    The report is stored ``queuing`` (with the queuing lease) before the first chunk is sent,
    then ``queued`` at once when that chunk held every valid record; a keyed retry's report
    keeps the ``created_at`` of the report its first attempt stored. Raises, with nothing
    queued: ``ImportFormatError`` (the file is not of its format), ``ImportTooLarge`` (over
    ``limits``), ``IdempotencyKeyReused`` (the key was used with another upload),
    ``StoreUnavailable`` (the report could not be stored). Raises ``ImportNotQueued`` (the
    report rewritten ``failed``) when the queue did not take the first chunk whole: a queue
    that is down is answered at once, not after the ``202``. An idempotency store that does
    not answer is passed over (fail open), as for creates.
    """
    derived = derive_import(workspace, idempotency_key) if idempotency_key is not None else None
    import_id = derived.import_id if derived else str(uuid.uuid4())
    parsed = parse(upload, import_id, limits, received_at=context.now())
    try:
        report = parsed.report
        first = context.clock.next()
        if derived is not None:
            report, first = _keyed(
                upload, context, reports, workspace, derived.key_digest, report, first
            )
        sequences = _sequences(context, first, report.accepted)
        reports.save(workspace, report)
        reports.hold_queuing(workspace, import_id)
        logger.info(
            "import validated: %d records, %d valid, %d invalid",
            report.received,
            report.accepted,
            report.invalid,
        )
        envelope = _Envelope(workspace, correlation_id, traceparent, import_id)
        sender = _ChunkSender(parsed.valid, sequences, context, envelope, chunk_size)
        queuing = QueuingImport(report, reports, sender, keyed=derived is not None)
    except BaseException:
        parsed.valid.close()
        raise
    queuing.start()
    return queuing


class QueuingImport:
    """An import whose report is stored and whose first chunk is queued: ``finish`` queues the
    rest of its valid records (in a background thread of the command API, after its ``202``),
    renewing the queuing lease after each chunk, then rewrites the report ``queued``, or
    ``failed`` with the counts when the queue stopped taking its events part-way.

    ``report`` is the latest report stored (``queuing`` until ``finish`` ends, ``queued`` at
    once when ``done``).
    """

    #: Tries of the final report's write (a Redis blip must not leave it ``queuing``), and the
    #: pause between them (seconds).
    SAVE_TRIES: Final = 3
    SAVE_PAUSE_S: Final = 1.0

    def __init__(
        self,
        report: ImportReport,
        reports: ImportReportWriter,
        sender: _ChunkSender,
        *,
        keyed: bool,
    ) -> None:
        self.report = report
        self._reports = reports
        self._sender = sender
        self._keyed = keyed

    @property
    def done(self) -> bool:
        """Whether every valid record was queued already (nothing for ``finish`` to do)."""
        return self.report.state != "queuing"

    def start(self) -> None:
        """Queue the first chunk; raise ``ImportNotQueued`` when the queue did not take it
        whole, and store the ``queued`` report when it held every record."""
        try:
            complete = self._sender.send(max_chunks=1)
        except BaseException:
            self._sender.close()
            raise
        if not complete:
            self._sender.close()
            self._end(complete=False)
            raise ImportNotQueued(self.report, keyed=self._keyed)
        if self._sender.exhausted:
            self._sender.close()
            self._end(complete=True)

    def finish(self) -> ImportReport:
        """Queue the remaining records and store the final report; return it. Never raises:
        what goes wrong is logged and ends in a ``failed`` report (or, when even that cannot
        be stored, in a report left ``queuing`` whose lease expires: the query API then calls
        the import interrupted)."""
        if self.done:
            return self.report
        try:
            complete = self._sender.send(on_chunk=self._renew_lease)
        except Exception:
            logger.exception("import stopped by an error while queuing")
            complete = False
        finally:
            self._sender.close()
        self._end(complete=complete, tries=self.SAVE_TRIES)
        return self.report

    def _renew_lease(self) -> None:
        try:
            self._reports.hold_queuing(self._sender.envelope.workspace, self.report.import_id)
        except StoreUnavailable:
            logger.warning("Could not renew the import's queuing lease", exc_info=True)

    def _end(self, *, complete: bool, tries: int = 1) -> None:
        queued = self._sender.queued
        if complete:
            self.report = replace(self.report, state="queued")
            logger.info("import queued: %d events", queued)
        else:
            accepted = self.report.accepted
            self.report = replace(
                self.report, state="failed", accepted=queued, failed=accepted - queued
            )
            logger.warning("import failed part-way: %d queued, %d not", queued, accepted - queued)
        for attempt in range(tries):
            if attempt:
                time.sleep(self.SAVE_PAUSE_S)
            try:
                self._reports.save(self._sender.envelope.workspace, self.report)
                return
            except StoreUnavailable:
                logger.warning("Could not store the import's report", exc_info=True)


def parse(
    upload: Upload, import_id: str, limits: ImportLimits, *, received_at: dt.datetime
) -> ParsedImport:
    """Read every record of ``upload`` once; return the report of an import about to be queued
    (state ``queuing``) and the valid records' fields.

    ``accepted`` counts the valid records, ``errors`` the invalid ones' problems (one per
    error, in file order, at most ``limits.errors_max``); ``repaired`` counts the valid
    records with warnings and ``warnings`` lists them (one per warning, in file order, at most
    ``limits.errors_max`` besides the errors). The warnings of an invalid record are not
    listed: it is not imported, and its errors say why.

    Raises ``ImportFormatError`` and ``ImportTooLarge`` as the reader does.
    """
    received = invalid = repaired = 0
    errors = _ProblemList(limits.errors_max)
    warnings = _ProblemList(limits.errors_max)
    valid = ValidRecords()
    try:
        for record in _read(upload, limits):
            received += 1
            if record.data is not None:
                repaired += bool(record.warnings)
                warnings.extend(record, record.warnings)
                valid.append(record.position, record.data)
            else:
                invalid += 1
                errors.extend(record, record.errors)
    except BaseException:
        valid.close()
        raise
    report = ImportReport(
        import_id=import_id,
        format=upload.format,
        state="queuing",
        received=received,
        accepted=received - invalid,
        invalid=invalid,
        failed=0,
        created_at=received_at,
        errors=tuple(errors.problems),
        errors_truncated=errors.truncated,
        repaired=repaired,
        warnings=tuple(warnings.problems),
        warnings_truncated=warnings.truncated,
    )
    return ParsedImport(report, valid)


class _ProblemList:
    """The first ``limit`` problems of an import, in file order; ``truncated`` once one more
    was left out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.problems: list[ImportProblem] = []
        self.truncated = False

    def extend(self, record: ImportRecord, messages: Iterable[FieldMessage]) -> None:
        for message in messages:
            if len(self.problems) < self.limit:
                self.problems.append(
                    ImportProblem(
                        record.position, record.line, message["field"], message["message"]
                    )
                )
            else:
                self.truncated = True


def command_for(import_id: str, record: ImportRecord, ids: RecordIds | None = None) -> Command:
    """The command a valid ``record`` of import ``import_id`` becomes.

    With a primary email: ``UpsertContact`` of the record's non-empty fields (a field the file
    does not have leaves the matched contact's value alone, as ``POST /v1/contacts/upsert``
    does). Without: ``CreateContact`` of every field. Either way under the contact id
    ``record_ids(import_id, record.position).contact_id`` (``ids``, when the caller has them
    already). Raises ``ValueError`` for an invalid record.
    """
    if record.data is None:
        raise ValueError("An invalid record has no command.")
    contact_id = (ids or record_ids(import_id, record.position)).contact_id
    if primary_value(record.data.get("emails")) is None:
        return CreateContact(contact_id, dict(record.data))
    present = {name: value for name, value in record.data.items() if value not in (None, "", [])}
    return UpsertContact(contact_id, present)


def _read(upload: Upload, limits: ImportLimits) -> Iterator[ImportRecord]:
    upload.file.seek(0)
    return READERS[upload.format](
        upload.file,
        max_records=limits.max_records,
        max_bytes=limits.max_bytes,
        default_region=limits.default_region,
    )


def _reserve(
    context: Context, workspace: str, key_digest: str, record: IdempotencyRecord
) -> str | None:
    """Bind the key to the upload; return the first sequence of the import's first attempt
    when this is a retry that stored one (else ``None``). Raises ``IdempotencyKeyReused``.

    The record's ids are what a replay answers: for an import, its id in both places. Its
    fingerprint (``upload_hasher``) never equals a JSON body's, so a key used for a create
    cannot name an import, nor the reverse."""
    try:
        first = context.idempotency.reserve(workspace, key_digest, record)
    except StoreUnavailable:
        logger.warning("Idempotency store unavailable; relying on derived ids", exc_info=True)
        return None
    if first is not None and first.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused(_KEY_REUSED)
    return first.sequence if first is not None else None


def _keyed(
    upload: Upload,
    context: Context,
    reports: ImportReportWriter,
    workspace: str,
    key_digest: str,
    report: ImportReport,
    first: str,
) -> tuple[ImportReport, str]:
    """A keyed import's report and first sequence: its key reserved for ``upload``
    (``_reserve``), whose first attempt's first sequence replaces ``first``; and, for a retry,
    the report rewritten with the ``created_at`` its first attempt stored."""
    import_id = report.import_id
    record = IdempotencyRecord(upload.fingerprint, import_id, import_id, first)
    first = _reserve(context, workspace, key_digest, record) or first
    created_at = reports.created_at(workspace, import_id)
    if created_at is not None:
        report = replace(report, created_at=created_at)
    return report, first


def refuse_reused_key(upload: Upload, context: Context, *, workspace: str, key: str) -> None:
    """Raise ``IdempotencyKeyReused`` when ``key`` is bound in ``workspace`` to an upload
    other than ``upload`` (its stored fingerprint differs), without reserving anything: the
    check a server too busy to run ``import_upload`` makes, so a reused key answers 422 there
    too. A key never used, or bound to this upload, passes; so does an idempotency store that
    does not answer (fail open, as ``import_upload``)."""
    digest = derive_import(workspace, key).key_digest
    try:
        first = context.idempotency.find(workspace, digest)
    except StoreUnavailable:
        logger.warning("Idempotency store unavailable; key reuse not checked", exc_info=True)
        return
    if first is not None and first.fingerprint != upload.fingerprint:
        raise IdempotencyKeyReused(_KEY_REUSED)


def _sequences(context: Context, first: str, count: int) -> list[str]:
    """The sequences of ``count`` valid records, in file order: ``sequence_block(first)``, the
    same on every attempt of a keyed import (its first attempt's ``first``), so records a
    retry queues keep their place before the writes accepted after the first ``202`` (§5.3).
    This process's clock then observes the block's last sequence, so what it accepts next sorts
    after the block (a retry's block may come from another process's clock)."""
    block = sequence_block(first, count)
    if block:
        context.clock.observe(block[-1])
    return block


class _ChunkSender:
    """Sends the events of an import's valid records in file order, a chunk of ``chunk_size``
    at a time, each record's event built with the next of ``sequences`` (one per valid record,
    read before the ``202``). ``queued`` counts the events the queue took; once a chunk
    reports a failure no further chunk is sent (those in flight finish), so a dead queue costs
    about one chunk's timeouts, not the file's.

    Chunks are built in the calling thread while up to ``_CHUNKS_IN_FLIGHT`` earlier ones are
    sent (each by a thread of its own), so one chunk's first call and last calls overlap
    another's instead of leaving the send threads idle (20 chunks of 500 were 20 such gaps). A
    chunk holding a message group of a chunk in flight waits for it: each contact's events
    (and an upserted email's) are still queued in file order.
    """

    def __init__(
        self,
        valid: ValidRecords,
        sequences: list[str],
        context: Context,
        envelope: _Envelope,
        chunk_size: int,
    ) -> None:
        self.envelope = envelope
        self.queued = 0
        self._built = 0
        self._total = len(sequences)
        self._valid = valid
        self._records = iter(valid)
        self._sequences = iter(sequences)
        self._context = context
        self._chunk_size = chunk_size

    def send(
        self, *, max_chunks: int | None = None, on_chunk: Callable[[], object] = tuple
    ) -> bool:
        """Send up to ``max_chunks`` more chunks (all that are left with ``None``) and wait for
        them; return whether the queue took every event sent so far. ``on_chunk`` runs after
        each chunk's outcome is known (the lease's renewal)."""
        failed = False
        sent = 0
        in_flight: collections.deque[tuple[set[str], concurrent.futures.Future[tuple[int, bool]]]]
        in_flight = collections.deque()
        with concurrent.futures.ThreadPoolExecutor(
            _CHUNKS_IN_FLIGHT, thread_name_prefix="import-send"
        ) as sender:
            while not failed and (max_chunks is None or sent < max_chunks):
                chunk = self._next_chunk()
                if not chunk:
                    break
                groups = {ordering_key(event) for event in chunk}
                while in_flight and (
                    len(in_flight) >= _CHUNKS_IN_FLIGHT
                    or any(not groups.isdisjoint(sending) for sending, _ in in_flight)
                ):
                    failed = not self._collect(in_flight.popleft()[1], on_chunk) or failed
                if not failed:
                    run = contextvars.copy_context().run
                    in_flight.append((groups, sender.submit(run, _publish, self._context, chunk)))
                    sent += 1
            for _, future in in_flight:
                failed = not self._collect(future, on_chunk) or failed
        return not failed

    @property
    def exhausted(self) -> bool:
        """Whether every record's event was built (and handed to a send)."""
        return self._built >= self._total

    def close(self) -> None:
        """Delete the kept records."""
        self._valid.close()

    def _collect(
        self, future: concurrent.futures.Future[tuple[int, bool]], on_chunk: Callable[[], object]
    ) -> bool:
        taken, complete = future.result()
        self.queued += taken
        on_chunk()
        return complete

    def _next_chunk(self) -> list[ContactEvent]:
        chunk = [
            _event(position, fields, next(self._sequences), self._context, self.envelope)
            for position, fields in itertools.islice(self._records, self._chunk_size)
        ]
        self._built += len(chunk)
        return chunk


def _publish(context: Context, chunk: list[ContactEvent]) -> tuple[int, bool]:
    """Publish ``chunk``; return how many events the queue took and whether it took them all.

    Events the queue did not take (``PublishFailed``: a send timeout on a busy machine, a
    throttled call) are sent again, in order, up to ``_RETRIES`` more times after a pause:
    each keeps its deduplication id, so one SQS took after all is dropped (as on a client's
    retry). A failure of another kind (``EventTooLarge``) ends the tries, since the events of
    its message group held back behind it must not go out without it."""
    pending = chunk
    for attempt in range(_RETRIES + 1):
        if attempt:
            time.sleep(_RETRY_PAUSE_S * attempt)
        results = context.publisher.publish_batch(pending)
        failed = [(event, r) for event, r in zip(pending, results, strict=True) if r is not None]
        if not failed:
            return len(chunk), True
        logger.warning(
            "import events not queued (try %d of %d): %d, first: %s",
            attempt + 1,
            _RETRIES + 1,
            len(failed),
            failed[0][1],
        )
        if not all(isinstance(failure, PublishFailed) for _, failure in failed):
            break
        pending = [event for event, _ in failed]
    return len(chunk) - len(failed), False


def _event(
    position: int,
    fields: dict[str, Any],
    sequence: str,
    context: Context,
    envelope: _Envelope,
) -> ContactEvent:
    import_id = envelope.import_id
    ids = record_ids(import_id, position)
    return to_event(
        command_for(import_id, ImportRecord(position, None, fields), ids),
        event_id=ids.event_id,
        operation_id=ids.operation_id,
        sequence=sequence,
        time=context.now(),
        correlation_id=envelope.correlation_id,
        traceparent=envelope.traceparent,
        import_id=import_id,
        workspace=envelope.workspace,
    )
