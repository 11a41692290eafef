"""``GET /v1/imports/{id}``: the progress of an address-book import (``service_layer.imports``)."""

from __future__ import annotations

from typing import Any

from flask import Response

from contacts_http import problem_response
from contacts_http.auth import request_workspace
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.context import canonical_uuid, current
from query_api.service_layer import imports, representation

NOT_FOUND_DETAIL = (
    "No import has this id, or its report has expired (reports are kept "
    f"{imports.REPORT_TTL_DAYS} days)."
)


def imports_blueprint() -> QueryBlueprint:
    """Build the imports blueprint (a new one per app) with its view."""
    blp = QueryBlueprint(
        "imports", __name__, url_prefix="/v1/imports", description="Import progress."
    )
    blp.add_view("/<import_id>", get_import, schemas.GET_IMPORT)
    return blp


def get_import(_args: dict[str, Any], import_id: str) -> Response:
    """Get the progress of an import (`POST /v1/imports` on the command API).

    The counts of the file (`received` = `accepted` + `invalid` + `failed`), each invalid
    record's `position` (card number or CSV line), `field` and `message` (`errors`), what was
    dropped from the records imported (`warnings`, same shape; `repaired` counts those records),
    and what became of the accepted records so far: `applied`, `rejected` (per reason),
    `dead_lettered` (given up on after the worker's retries, until an operator redrives them)
    and `pending`. Read two fields: `state` says whether the valid records are still being
    queued (`queuing`), were all queued (`queued`), the queue failed part-way (`failed`:
    `failed` records will never be applied unless the file is sent again) or the server
    queuing them stopped first (`interrupted`: send the file again with the same
    `Idempotency-Key`); `status` says whether the worker has processed what was
    queued (`completed` once no accepted record is pending). A `failed` import reaches `status`
    `completed` too. Needs the scope `contacts:import`. The report is kept 7 days after the
    upload.
    """
    canonical = canonical_uuid(import_id)
    if canonical is None:
        return problem_response(404, NOT_FOUND_DETAIL)
    ports = current().ports
    status = imports.get_import(
        request_workspace(), canonical, reports=ports.import_reports, outcomes=ports.import_outcomes
    )
    if status is None:
        return problem_response(404, NOT_FOUND_DETAIL)
    response = Response(representation.encode(status.to_dict()), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"  # the counts move as records are applied
    return response
