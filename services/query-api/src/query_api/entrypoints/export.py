"""``GET /v1/contacts/export``: every matching contact as vCard 4.0 or Google Contacts CSV,
streamed (``service_layer.export``, ``contacts_exchange`` writers).

A thread writes an export until the client has taken all of it. The worker cuts a client that
stops reading (``contacts_http.request_buffering``: the response deadlines), but until then
the thread is its: so one process streams ``QUERY_STREAM_SLOTS`` exports at most (1), and
answers another meanwhile with 503 and ``Retry-After`` before reading anything, leaving its
other threads to the other routes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any, Final

from flask import Response, stream_with_context

from contacts_exchange import csv_chunks, vcard_chunks
from contacts_http import ProblemError
from contacts_http.auth import request_workspace
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.contacts import list_filters
from query_api.entrypoints.context import current
from query_api.service_layer.export import export_resources
from query_api.settings import Settings

#: Media type (RFC 6350 §10.1 for vCard, RFC 4180 §3 for CSV), writer and file name per format.
FORMATS = {
    "vcard": ("text/vcard; charset=utf-8", vcard_chunks, "contacts.vcf"),
    "csv": ("text/csv; charset=utf-8; header=present", csv_chunks, "contacts.csv"),
}
#: ``type`` of the 503 answered while the process streams as many exports as it may.
BUSY_PROBLEM: Final = "urn:contacts:problem:exports-busy"


def export_blueprint() -> QueryBlueprint:
    """Build the export blueprint (a new one per app) with its view."""
    blp = QueryBlueprint(
        "export", __name__, url_prefix="/v1/contacts/export", description="Export contacts."
    )
    blp.add_view("", export_contacts, schemas.EXPORT_CONTACTS)
    return blp


def export_contacts(args: dict[str, Any]) -> Response:
    """Every contact matching the filters (`email`, `tag`, `q`, as for the list), oldest
    first, as one vCard 4.0 file (`format=vcard`, the default) or a Google Contacts CSV
    (`format=csv`); both import back through `POST /v1/imports`. In the CSV a text
    starting with `=`, `+`, `-`, `@`, TAB or CR is written after a `'` so that a
    spreadsheet shows it instead of running it as a formula (phone numbers as stored,
    E.164 and an optional `;ext=` extension, are written as they are); the import removes
    that `'`. A vCard TEL is a `tel:` URI, its extension in the `ext` parameter.

    Streamed in constant memory, 500 contacts per database read; not a snapshot (a contact
    written meanwhile may appear in either state). A database outage before the first
    byte is a 503; during the transfer it ends the response early (the client sees a
    truncated body, no final `END:VCARD`). A server already streaming as many exports as
    it may (`QUERY_STREAM_SLOTS` per process) answers 503
    (`urn:contacts:problem:exports-busy`) with `Retry-After`. A client that stops reading
    the export (by default: no byte taken for 10 s, or less than 500 bytes a second) has
    its connection closed.
    """
    context = current()
    slots = context.stream_slots
    if not slots.acquire(blocking=False):
        raise _busy(context.settings)
    try:
        filters = list_filters(args)
        media_type, chunks, filename = FORMATS[args["format"]]
        resources = export_resources(request_workspace(), filters, contacts=context.ports.contacts)
        first = list(itertools.islice(resources, 1))  # a 503 now, not after the headers
        body = _releasing(chunks(itertools.chain(first, resources)), slots)
    except BaseException:
        slots.release()
        raise
    return Response(
        stream_with_context(body),
        status=200,
        content_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


def _releasing(chunks: Iterator[bytes], slots: threading.BoundedSemaphore) -> Iterator[bytes]:
    """``chunks``; the slot goes back to ``slots`` when they end, or when the response is
    closed or dropped unsent (started here, so that its ``finally`` runs in every case)."""

    def held() -> Iterator[bytes]:
        try:
            yield b""
            yield from chunks
        finally:
            slots.release()

    body = held()
    next(body)
    return body


def _busy(settings: Settings) -> ProblemError:
    return ProblemError(
        503,
        "This server is already streaming as many exports as it may at once "
        f"({settings.stream_slots}); retry after Retry-After seconds.",
        type_uri=BUSY_PROBLEM,
        headers={"Retry-After": str(settings.retry_after_s)},
    )
