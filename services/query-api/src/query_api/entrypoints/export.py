"""``GET /v1/contacts/export``: every matching contact as vCard 4.0 or Google Contacts CSV,
streamed (``service_layer.export``, ``contacts_exchange`` writers)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context

from contacts_exchange import csv_chunks, vcard_chunks
from contacts_http.auth import request_workspace
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.contacts import list_filters
from query_api.entrypoints.context import current
from query_api.service_layer.export import export_resources

#: Media type (RFC 6350 §10.1 for vCard, RFC 4180 §3 for CSV), writer and file name per format.
FORMATS = {
    "vcard": ("text/vcard; charset=utf-8", vcard_chunks, "contacts.vcf"),
    "csv": ("text/csv; charset=utf-8; header=present", csv_chunks, "contacts.csv"),
}


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
    spreadsheet shows it instead of running it as a formula (E.164 phone numbers are
    written as they are); the import removes that `'`.

    Streamed in constant memory, 500 contacts per database read; not a snapshot (a contact
    written meanwhile may appear in either state). A database outage before the first
    byte is a 503; during the transfer it ends the response early (the client sees a
    truncated body, no final `END:VCARD`).
    """
    filters = list_filters(args)
    media_type, chunks, filename = FORMATS[args["format"]]
    resources = export_resources(request_workspace(), filters, contacts=current().ports.contacts)
    first = list(itertools.islice(resources, 1))  # a 503 now, not after the headers
    body: Iterator[bytes] = chunks(itertools.chain(first, resources))
    return Response(
        stream_with_context(body),
        status=200,
        content_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
