"""``POST /v1/imports``: a whole address book (vCard or CSV) in one request, answered ``202``.

Issue 3, item 3. The request goes: media type (415) → ``Content-Length`` above
``IMPORT_MAX_BYTES`` (413, nothing read) → the body streamed into a spooled temporary file while
it is counted and hashed (413 past ``IMPORT_MAX_BYTES``) → ``Idempotency-Key`` (400) → a free
background slot of this process (``IMPORT_QUEUING_SLOTS``; else 503 with ``Retry-After``, but
422 when the key's stored fingerprint names another file: a busy server reads the body for it,
``refuse_reused_key``) → the use case (``service_layer.imports.import_upload``): the whole file
validated (400 not that format, 413 past ``IMPORT_MAX_RECORDS``), the key reserved (422 reused
with another file), the report stored (503 when Redis does not answer), the first chunk of valid
records queued (503 with the counts when the queue does not take it) → ``202`` with the counts,
``status`` ``queuing`` (``queued`` when that chunk held every record) and ``Location`` of the
report on the query API; the rest is queued after the answer on a background thread
(``QueuingImport.finish`` on ``adapters.background_imports.ImportSlots``). Nothing is queued
unless the file was read whole and its report stored.

The app's ``MAX_CONTENT_LENGTH`` (``MAX_REQUEST_BYTES``, 1 MiB for JSON bodies) is lifted for
this route only: the view sets Flask 3.1's per-request ``request.max_content_length`` before it
touches the body, and ``contacts_http.init_body_limit`` leaves this path's chunked bodies alone
(``IMPORTS_PATH``). An empty file (or one holding only a BOM or a CSV header) is a valid,
empty address book: ``202`` with zero records.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, cast

from flask import Response, current_app, request
from flask_smorest import Blueprint

from command_api.adapters.background_imports import ImportSlots
from command_api.entrypoints import headers
from command_api.entrypoints.errors import QUEUE_PROBLEM, QUEUE_RETRY_AFTER_S
from command_api.entrypoints.query_string import refuse_query_parameters
from command_api.entrypoints.route_docs import decorated
from command_api.entrypoints.schemas import (
    IMPORT_503,
    IMPORT_IDEMPOTENCY_KEY,
    IMPORT_LOCATION,
    ImportAcceptedSchema,
    ImportNotQueuedProblemSchema,
    import_request_body,
)
from command_api.service_layer.handlers import Context
from command_api.service_layer.idempotency import upload_hasher
from command_api.service_layer.imports import (
    ImportLimits,
    ImportNotQueued,
    QueuingImport,
    Upload,
    import_upload,
    refuse_reused_key,
)
from command_api.service_layer.ports import ImportReportWriter
from contacts_domain.imports import ImportFormat, ImportReport
from contacts_domain.ports import StoreUnavailable
from contacts_exchange import ImportFormatError, ImportTooLarge
from contacts_http import PROBLEM_JSON, ProblemError, current_request_id, problem_response
from contacts_http.auth import request_workspace
from contacts_http.observability import current_traceparent

EXTENSION: Final = "command_api.imports"
IMPORTS_PATH: Final = "/v1/imports"
#: The Flask endpoint (auth scopes, ``RATE_LIMIT_ROUTES``).
IMPORT_ENDPOINT: Final = "imports.Imports"
#: Accepted media types (any ``charset`` parameter is ignored: the readers detect encodings).
#: ``text/vcard`` is RFC 6350's; ``text/x-vcard`` and ``text/directory`` (RFC 2425) are what
#: older clients send. ``text/csv`` is RFC 4180's; ``application/csv`` is common in the wild.
MEDIA_TYPES: Final[dict[str, ImportFormat]] = {
    "text/vcard": "vcard",
    "text/x-vcard": "vcard",
    "text/directory": "vcard",
    "text/csv": "csv",
    "application/csv": "csv",
}
FORMAT_PROBLEM: Final = "urn:contacts:problem:import-format"
TOO_LARGE_PROBLEM: Final = "urn:contacts:problem:import-too-large"
REPORT_PROBLEM: Final = "urn:contacts:problem:import-report-unavailable"
BUSY_PROBLEM: Final = "urn:contacts:problem:imports-busy"
#: Seconds a client is asked to wait when this process queues as many imports as it may.
BUSY_RETRY_AFTER_S: Final = 5
#: Bytes read from the request at a time, and bytes of an upload kept in memory before the
#: spooled file moves to disk (``TMPDIR``; ``/tmp`` in the containers).
_CHUNK: Final = 64 * 1024
_SPOOL_IN_MEMORY: Final = 1024 * 1024

#: The end of the 503's detail when the queue failed part-way, with and without a key.
_RETRY_WITH_KEY: Final = (
    "Send the same file again with the same Idempotency-Key to queue the rest without duplicates."
)
_RETRY_WITHOUT_KEY: Final = (
    "This request had no Idempotency-Key, so sending the file again is a new import that "
    "queues every record again: records with an email update the same contacts, but records "
    "without an email would be created twice. Send imports with an Idempotency-Key (a new "
    "UUID per file) so that a retry queues only the rest."
)


@dataclass(frozen=True, slots=True)
class ImportApi:
    """What the import view needs, stored in ``app.extensions["command_api.imports"]``.

    ``query_api_base_url`` has no trailing slash; ``slots`` runs the imports' background
    queuing (``adapters.background_imports``).
    """

    context: Context
    reports: ImportReportWriter
    limits: ImportLimits
    query_api_base_url: str
    slots: ImportSlots


def _import_api() -> ImportApi:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def not_that_format(error: ImportFormatError) -> Response:
    """400 ``FORMAT_PROBLEM``: the file is not of its media type's format (``errors`` names
    the request ``body``, the file)."""
    return problem_response(400, str(error), type_uri=FORMAT_PROBLEM, errors={"body": [str(error)]})


def too_many(error: ImportTooLarge) -> Response:
    """413 ``TOO_LARGE_PROBLEM``: the file holds more records (or bytes) than the limits."""
    return problem_response(413, _too_large_detail(error.limit), type_uri=TOO_LARGE_PROBLEM)


def report_unavailable(_error: StoreUnavailable) -> Response:
    """503 ``REPORT_PROBLEM`` with ``Retry-After``: the report could not be stored."""
    return problem_response(
        503,
        "The import's report could not be stored; nothing was queued. Retry later.",
        type_uri=REPORT_PROBLEM,
        headers={"Retry-After": str(QUEUE_RETRY_AFTER_S)},
    )


def not_queued(error: ImportNotQueued) -> Response:
    """503 ``QUEUE_PROBLEM`` with the counts, ``Retry-After`` and the report's ``Location``:
    the queue did not take the import's first chunk whole."""
    report = error.report
    return problem_response(
        503,
        f"The queue stopped taking the import: {report.accepted} records queued, "
        f"{report.failed} not. " + (_RETRY_WITH_KEY if error.keyed else _RETRY_WITHOUT_KEY),
        type_uri=QUEUE_PROBLEM,
        headers={
            "Retry-After": str(QUEUE_RETRY_AFTER_S),
            "Location": _location(report.import_id),
        },
        extensions=_counts(report),
    )


def import_address_book() -> Any:
    """Import an address book: vCard (`text/vcard`) or CSV (`text/csv`).

    Needs the `contacts:import` scope. The whole file is read and validated first:
    a file that is not of its media type's format answers 400, one over the limits
    413, and nothing is queued. Then the report is stored and the valid records are
    queued in file order, the first 250 before the answer and the rest after it
    (`status` `queuing`; the report's `state` becomes `queued`, or `failed` with the
    counts if the queue stops taking them, or `interrupted` if this server stopped
    first: send the same file with the same `Idempotency-Key` to finish it). Each
    record is an upsert matched on its primary email (the file's
    non-empty fields patch the contact holding that email, or create it), or a create
    when the record has no email. Invalid records are skipped and listed, with their
    position (card number, or CSV line), field and reason, in the report at
    `Location` (`GET /v1/imports/{import_id}` on the query API, kept 7 days), which
    also counts what the worker applied and rejected. A valid record may lose values
    that break a rule (an invalid email, phone number or birthday is dropped, the rest
    imported): `repaired` counts those records and the report lists each dropped value
    as a warning (position, field, reason; never the value). An empty file is an empty
    address book (202, zero records). The import is not atomic: when the queue does not
    take the first records, the answer is 503 with the counts, and sending the same file
    with the same `Idempotency-Key` queues the rest (without a key, a retry queues every
    record again). A server already queuing `IMPORT_QUEUING_SLOTS` imports answers 503
    with `Retry-After` (422 all the same when the `Idempotency-Key` was used with another
    file).
    """
    file_format = _format()
    api = _import_api()
    key = headers.idempotency_key(request)
    if not api.slots.acquire():
        if key is not None:
            _refuse_reused_key(api, file_format, key)
        raise _busy(api.slots.slots)
    try:
        queuing = _accept(api, file_format, key)
    except BaseException:
        api.slots.release()
        raise
    if queuing.done:
        api.slots.release()
    else:
        api.slots.run(queuing.finish)
    report = queuing.report
    body = {**_counts(report), "status": report.state}
    return body, 202, {"Location": _location(report.import_id)}


def _accept(api: ImportApi, file_format: ImportFormat, key: str | None) -> QueuingImport:
    """Spool the body and run the use case up to its first chunk (``import_upload``)."""
    upload = _spool(file_format, api.limits.max_bytes)
    try:
        return import_upload(
            upload,
            api.context,
            api.reports,
            api.limits,
            workspace=request_workspace(),
            correlation_id=current_request_id(),
            traceparent=current_traceparent(),
            idempotency_key=key,
        )
    finally:
        upload.file.close()


def _refuse_reused_key(api: ImportApi, file_format: ImportFormat, key: str) -> None:
    """On a busy server: raise ``IdempotencyKeyReused`` (422) when ``key`` names another file,
    as an idle server would answer, so a client never retries a request that cannot succeed
    (``refuse_reused_key``). The body is read for its fingerprint (413 past the limit)."""
    upload = _spool(file_format, api.limits.max_bytes)
    try:
        refuse_reused_key(upload, api.context, workspace=request_workspace(), key=key)
    finally:
        upload.file.close()


def _busy(slots: int) -> ProblemError:
    return ProblemError(
        503,
        f"This server is already queuing {slots} imports; nothing was queued. "
        "Send the file again after Retry-After.",
        type_uri=BUSY_PROBLEM,
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
    )


def imports_blueprint() -> Blueprint:
    """Return the blueprint of ``POST /v1/imports`` (endpoint ``IMPORT_ENDPOINT``): the view
    ``import_address_book`` with its OpenAPI documentation, and the error handlers above."""
    blp = Blueprint(
        "imports",
        __name__,
        url_prefix=IMPORTS_PATH,
        description="Import a whole address book (vCard or CSV). The file is read whole "
        "before anything is queued; each valid record is queued as an upsert by its primary "
        "email (a create when it has none). Poll the report on the query API.",
    )
    blp.before_request(refuse_query_parameters)
    blp.before_request(headers.refuse_preconditions)
    blp.register_error_handler(ImportFormatError, not_that_format)
    blp.register_error_handler(ImportTooLarge, too_many)
    blp.register_error_handler(StoreUnavailable, report_unavailable)
    blp.register_error_handler(ImportNotQueued, not_queued)
    view = decorated(
        import_address_book,
        blp.response(202, ImportAcceptedSchema, headers=IMPORT_LOCATION),
        blp.doc(parameters=[IMPORT_IDEMPOTENCY_KEY], requestBody=import_request_body(MEDIA_TYPES)),
        blp.alt_response(400, response="BAD_REQUEST"),
        blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE"),
        blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE"),
        blp.alt_response(422, response="UNPROCESSABLE_ENTITY"),
        blp.alt_response(
            503,
            schema=ImportNotQueuedProblemSchema,
            content_type=PROBLEM_JSON,
            description=IMPORT_503,
        ),
    )
    blp.add_url_rule("", "Imports", view, methods=["POST"])
    return blp


def _format() -> ImportFormat:
    """The import format of the request's media type; ``ProblemError`` 415 (with
    ``Accept-Post``) for any other."""
    headers.require_media_type(request, MEDIA_TYPES)
    return MEDIA_TYPES[request.mimetype]


def _spool(file_format: ImportFormat, max_bytes: int) -> Upload:
    """Copy the body into a spooled temporary file (memory up to 1 MiB, then disk), counting
    and hashing it. Raises ``ProblemError`` 413 as soon as the body passes ``max_bytes``
    bytes, or at once when its ``Content-Length`` does (nothing read)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large()
    # One byte over the limit is read to know that the body is over it; werkzeug's own check
    # of a chunked body (is_max) then never fires before ours.
    request.max_content_length = max_bytes + 1
    hasher = upload_hasher(file_format)
    # A binary file object either way (BytesIO, then a real file); typeshed types it IO[bytes].
    spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))  # noqa: SIM115
    size = 0
    try:
        while chunk := request.stream.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large()
            hasher.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return Upload(spool, file_format, size, hasher.hexdigest())


def _too_large_detail(limit: str) -> str:
    api = _import_api()
    if limit == "max_records":
        return f"The file holds more than {api.limits.max_records} records; split it."
    return f"The file is larger than {api.limits.max_bytes} bytes; split it."


def _too_large() -> ProblemError:
    return ProblemError(413, _too_large_detail("max_bytes"), type_uri=TOO_LARGE_PROBLEM)


def _location(import_id: str) -> str:
    return f"{_import_api().query_api_base_url}/v1/imports/{import_id}"


def _counts(report: ImportReport) -> dict[str, Any]:
    return {
        "import_id": report.import_id,
        "received": report.received,
        "accepted": report.accepted,
        "invalid": report.invalid,
        "failed": report.failed,
        "repaired": report.repaired,
    }
