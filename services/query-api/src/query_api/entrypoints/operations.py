"""``GET /v1/operations/{id}``: what became of an accepted command (docs/architecture.md §5.6)."""

from __future__ import annotations

from typing import Any

from flask import Response

from contacts_http import problem_response
from contacts_http.auth import request_workspace
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.context import canonical_uuid, current
from query_api.service_layer import handlers, representation

NOT_FOUND_DETAIL = "No operation has this id (or its status has expired)."


def operations_blueprint() -> QueryBlueprint:
    """Build the operations blueprint (a new one per app) with its view."""
    blp = QueryBlueprint(
        "operations", __name__, url_prefix="/v1/operations", description="Operation status."
    )
    blp.add_view("/<operation_id>", get_operation, schemas.GET_OPERATION)
    return blp


def get_operation(_args: dict[str, Any], operation_id: str) -> Response:
    """Get the status of an operation: `pending`, `applied` or `rejected`.

    Poll it after a `202 Accepted` instead of polling the contact. `version` is the
    contact's version once applied.
    """
    canonical = canonical_uuid(operation_id)
    if canonical is None:
        return problem_response(404, NOT_FOUND_DETAIL)
    ports = current().ports
    status = handlers.get_operation(
        request_workspace(),
        canonical,
        statuses=ports.statuses,
        outcomes=ports.outcomes,
        contacts=ports.contacts,
        cache=ports.cache,
    )
    if status is None:
        return problem_response(404, NOT_FOUND_DETAIL)
    response = Response(representation.encode(status.to_dict()), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
