"""``/v1/contacts`` write endpoints: every accepted command answers ``202 Accepted``.

Each request goes: media type (415) → size (413, werkzeug's ``MAX_CONTENT_LENGTH`` while the
body streams in) → JSON, nesting depth (``contacts_http.JSON_MAX_DEPTH``) and schema (400) →
``normalize_contact`` (400) → headers (400/412) → use case → 202, or 413/422/503 from the use
case. Nothing is enqueued unless the answer is 202. Every write goes to the caller's workspace
(``contacts_http.auth.request_workspace``: the identity decides it, docs/architecture.md §10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from flask import Request, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from command_api.entrypoints import batch, headers
from command_api.entrypoints.contact_input import upsert_fields
from command_api.entrypoints.query_string import refuse_query_parameters
from command_api.entrypoints.route_docs import alt_responses, decorated
from command_api.entrypoints.schemas import (
    ACCEPTED_HEADERS,
    BATCH_202,
    BATCH_207,
    BATCH_400,
    BATCH_503,
    BATCH_IDEMPOTENCY_KEY,
    CHANGE_IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY,
    IF_MATCH,
    IF_NONE_MATCH,
    MATCH_ON,
    RETRY_AFTER,
    UPSERT_HEADERS,
    AcceptedSchema,
    BatchBodySchema,
    BatchProblemSchema,
    BatchRequestSchema,
    BatchResultsSchema,
    ContactPatchSchema,
    ContactUpsertSchema,
    ContactWriteSchema,
)
from command_api.service_layer import handlers
from command_api.service_layer.batch import accept_batch
from command_api.service_layer.handlers import Accepted, Context
from contacts_domain import (
    DeleteContact,
    PatchContact,
    ReplaceContact,
    ValidationFailed,
    normalize_contact,
)
from contacts_http import PROBLEM_JSON, JsonBodyRefused, current_request_id, parse_json_body
from contacts_http.auth import request_workspace
from contacts_http.observability import current_traceparent
from contacts_telemetry.logs import bind_context

EXTENSION: Final = "command_api"
#: The WSGI environ key of the error ``handlers.create_contact`` raised in the fast path
#: (``fast_post``), which hands the request to this view to raise it again (not publish twice).
FAST_PATH_ERROR: Final = "command_api.fast_post.error"
#: The Flask endpoint of ``POST /v1/contacts/batch`` (its own body limit and rate-limit name).
BATCH_ENDPOINT: Final = "contacts.Batch"
JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
#: The message of an empty (or blank) JSON body.
EMPTY_BODY: Final = "The request body is empty; send a JSON object."
#: Statuses every write may answer besides its own (documented on each route).
COMMON_ERRORS: Final = (400, 413, 415, 503)


class _Parser(FlaskParser):
    # One status for every validation failure, whether the schema or the domain finds it.
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Request) -> Any:
        """The JSON body, at most ``JSON_MAX_DEPTH`` levels deep (webargs' hook).

        A deeper body, or one whose object names a member twice (``DuplicateJsonKey``: never
        the last one silently), aborts with 400 (``errors: {"_schema": ["JSON nested deeper
        than ... levels."]}``), like a body that is not JSON, and so does an empty body (``errors:
        {"json": [...]}``, where webargs would read it as no body and the view would then fail
        on it with a 400 naming nothing); ``missing`` when the body is not JSON.
        """
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data.strip():
            abort(400, messages={"json": [EMPTY_BODY]})
        try:
            return parse_json_body(data)
        except JsonBodyRefused as error:  # too deep, or a member named twice
            abort(400, exc=error, messages={"json": [str(error)]})


@dataclass(frozen=True, slots=True)
class FastPathError:
    """What ``handlers.create_contact`` raised in the fast path (``error``), and the log
    context it had bound (the event's ids), for the view to answer as if it had run it."""

    error: Exception
    log_context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WriteApi:
    """What the views need, stored in ``app.extensions["command_api"]`` by the app factory.

    ``query_api_base_url`` has no trailing slash; ``default_phone_region`` is ISO 3166-1.
    """

    context: Context
    query_api_base_url: str
    default_phone_region: str


def _write_api() -> WriteApi:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def _normalized(*, partial: bool) -> dict[str, Any]:
    # The schema has checked the shape; the domain's rules run on the body as sent.
    return normalize_contact(
        request.get_json(), partial=partial, default_region=_write_api().default_phone_region
    )


def _upsert_fields() -> dict[str, Any]:
    return upsert_fields(request.get_json(), default_region=_write_api().default_phone_region)


def _accepted(accepted: Accepted) -> tuple[dict[str, str], int, dict[str, str]]:
    base = _write_api().query_api_base_url
    body = {"id": accepted.contact_id, "operation_id": accepted.operation_id, "status": "pending"}
    return (
        body,
        202,
        {
            "Location": f"{base}/v1/contacts/{accepted.contact_id}",
            "Operation-Location": f"{base}/v1/operations/{accepted.operation_id}",
        },
    )


def _accept(command: Any) -> Any:
    accepted = handlers.accept_change(
        command,
        _write_api().context,
        workspace=request_workspace(),
        idempotency_key=headers.idempotency_key(request),
        correlation_id=current_request_id(),
        traceparent=current_traceparent(),
    )
    return _accepted(accepted)


def check_media_type() -> None:
    """Raise ``ProblemError`` 415 unless a POST or PUT body is JSON, or a PATCH body JSON or a
    merge patch (the blueprint's ``before_request``)."""
    if request.method in ("POST", "PUT"):
        headers.require_media_type(request, (JSON,))
    elif request.method == "PATCH":
        headers.require_media_type(request, (JSON, MERGE_PATCH))


# --- Views: registered, with their OpenAPI documentation, by ``contacts_blueprint`` -----------


def create_contact(_shape: dict[str, Any]) -> Any:
    """Create a contact under a server-assigned id."""
    fields = _normalized(partial=False)
    key = headers.idempotency_key(request)
    failed: FastPathError | None = request.environ.pop(FAST_PATH_ERROR, None)
    if failed is not None:  # the fast path ran the use case already: answer its error
        bind_context(**failed.log_context)
        raise failed.error
    accepted = handlers.create_contact(
        fields,
        _write_api().context,
        workspace=request_workspace(),
        correlation_id=current_request_id(),
        traceparent=current_traceparent(),
        idempotency_key=key,
    )
    return _accepted(accepted)


def upsert_contact(_shape: dict[str, Any]) -> Any:
    """Update the contact holding this email, or create it (upsert by email).

    The worker, in the transaction that writes, finds the live contact holding the
    primary email given (case-insensitive, any of its emails) and patches it with the
    fields sent (absent ones stay as they are), or creates a contact when none does:
    two upserts of one new email create one contact. The operation's status says
    `result: created` or `updated`, and its `contact_id` is the contact written; the
    `id` answered here is the one a created contact gets.

    A name is needed only to create: an upsert without a first or last name patches the
    contact it matches, and when it matches none its operation ends `rejected` with the
    reason `name_required` (the API cannot know which when it answers 202).
    """
    if request.args.get("match_on", "email") != "email":
        raise ValidationFailed({"match_on": ["Only 'email' is supported."]})
    fields = _upsert_fields()
    accepted = handlers.upsert_contact(
        fields,
        _write_api().context,
        workspace=request_workspace(),
        correlation_id=current_request_id(),
        traceparent=current_traceparent(),
        idempotency_key=headers.idempotency_key(request),
    )
    body, status, links = _accepted(accepted)
    return body, status, {"Operation-Location": links["Operation-Location"]}


def run_batch(body: dict[str, Any]) -> Any:
    """Run up to 100 writes in one request; a batch is NOT atomic.

    Each operation is validated, queued and answered on its own, with the rules of
    its single route: one may be `invalid` (see its `errors`) or `failed` (not
    confirmed queued: retry it, with the same `Idempotency-Key` if SQS did not
    answer, so that one it took after all is applied once) while the others are
    `accepted`. Operations on one contact keep
    their order (the order of the list); an operation that failed to queue holds
    back the later operations of the same contact (they fail too), so a contact never
    gets a later write without an earlier one. An invalid operation holds back
    nothing. `If-Match` goes in each operation's `if_match`.

    An `upsert` names no contact: it keeps its order with the other upserts of the
    same email, not with operations that name by `id` the contact it will match. To
    order the two, send them in separate requests and wait for the first operation.
    """
    key = headers.idempotency_key(request)
    api = _write_api()
    items = batch.parse_items(body["operations"], default_region=api.default_phone_region)
    results = accept_batch(
        items,
        api.context,
        workspace=request_workspace(),
        correlation_id=current_request_id(),
        traceparent=current_traceparent(),
        idempotency_key=key,
    )
    return batch.answer(results)


def replace_contact(_shape: dict[str, Any], contact_id: Any) -> Any:
    """Replace every field of a contact, creating it when absent."""
    fields = _normalized(partial=False)
    expected = headers.write_precondition(request, create_only_allowed=True)
    command = ReplaceContact(str(contact_id), fields, expected_version=expected)
    return _accept(command)


def patch_contact(_shape: dict[str, Any], contact_id: Any) -> Any:
    """Change some fields of a contact (RFC 7396 merge patch; `null` clears)."""
    changes = _normalized(partial=True)
    expected = headers.write_precondition(request, create_only_allowed=False)
    command = PatchContact(str(contact_id), changes, expected_version=expected)
    return _accept(command)


def delete_contact(contact_id: Any) -> Any:
    """Erase a contact (a tombstone with only its id remains)."""
    expected = headers.write_precondition(request, create_only_allowed=False)
    command = DeleteContact(str(contact_id), expected_version=expected)
    return _accept(command)


# --- The blueprint ------------------------------------------------------------------------------


def contacts_blueprint() -> Blueprint:
    """Return the blueprint of ``POST /v1/contacts``, ``POST /v1/contacts/upsert``,
    ``POST /v1/contacts/batch`` and ``PUT|PATCH|DELETE /v1/contacts/{id}`` (Flask endpoints
    ``contacts.Contacts``, ``contacts.Upsert``, ``contacts.Batch``, ``contacts.Contact``).

    Malformed ids answer 404 (the route only matches a UUID), whose detail says the id is not
    a contact id (``errors.NOT_A_CONTACT_ID_DETAIL``).
    """
    blp = Blueprint(
        "contacts",
        __name__,
        url_prefix="/v1/contacts",
        description="Write contacts. Every write is queued and answers 202 with the operation "
        "to poll on the query API. Validation failures answer 400 with `errors` by field path.",
    )
    blp.ARGUMENTS_PARSER = _Parser()  # type: ignore[misc]
    # Schema instances, not classes: webargs would build a schema per request from a class
    # (marshmallow's schemas hold no per-load state, so one instance serves every thread).
    blp.before_request(refuse_query_parameters)
    blp.before_request(headers.refuse_preconditions)
    blp.before_request(check_media_type)
    create = decorated(
        create_contact,
        blp.arguments(ContactWriteSchema(), description="The new contact."),
        blp.response(202, AcceptedSchema, headers=ACCEPTED_HEADERS),
        blp.doc(parameters=[IDEMPOTENCY_KEY]),
        alt_responses(blp, *COMMON_ERRORS, 422),
    )
    upsert = decorated(
        upsert_contact,
        blp.arguments(
            ContactUpsertSchema(),
            description=(
                "The contact: a primary email is required. A name is required only to create "
                "one: an upsert without a first or last name that matches no contact is "
                "rejected by the worker (operation `rejected`, reason `name_required`)."
            ),
        ),
        blp.response(202, AcceptedSchema, headers=UPSERT_HEADERS),
        blp.doc(parameters=[IDEMPOTENCY_KEY, MATCH_ON]),
        alt_responses(blp, *COMMON_ERRORS, 422),
    )
    blp.add_url_rule("", "Contacts", create, methods=["POST"])
    blp.add_url_rule("/upsert", "Upsert", upsert, methods=["POST"])
    blp.add_url_rule("/batch", "Batch", _documented_batch(blp), methods=["POST"])
    blp.add_url_rule("/<uuid:contact_id>", "Contact", _contact_view(blp))
    return blp


def _documented_batch(blp: Blueprint) -> Callable[..., Any]:
    """``run_batch`` with its arguments and its OpenAPI documentation."""
    return decorated(
        run_batch,
        blp.arguments(BatchBodySchema(), description="1 to 100 operations."),
        blp.doc(
            requestBody={"content": {JSON: {"schema": BatchRequestSchema}}},
            parameters=[BATCH_IDEMPOTENCY_KEY],
        ),
        blp.response(202, BatchResultsSchema, description=BATCH_202),
        blp.alt_response(207, schema=BatchResultsSchema, description=BATCH_207),
        blp.alt_response(
            400, schema=BatchProblemSchema, description=BATCH_400, content_type=PROBLEM_JSON
        ),
        blp.alt_response(
            503,
            schema=BatchProblemSchema,
            description=BATCH_503,
            content_type=PROBLEM_JSON,
            headers={"Retry-After": RETRY_AFTER},
        ),
        alt_responses(blp, 413, 415, 422),
    )


def _contact_view(blp: Blueprint) -> type[MethodView]:
    """The ``Contact`` view of ``/v1/contacts/{id}``: one Flask endpoint (one rate-limit name)
    whose PUT, PATCH and DELETE are ``replace_contact``, ``patch_contact`` and
    ``delete_contact``, each with its own arguments and OpenAPI documentation."""
    put = decorated(
        replace_contact,
        blp.arguments(ContactWriteSchema(), description="Every field of the contact."),
        blp.response(202, AcceptedSchema, headers=ACCEPTED_HEADERS),
        blp.doc(parameters=[IF_MATCH, IF_NONE_MATCH, CHANGE_IDEMPOTENCY_KEY]),
        alt_responses(blp, *COMMON_ERRORS, 412, 422),
    )
    patch = decorated(
        patch_contact,
        blp.arguments(
            ContactPatchSchema(),
            content_type=MERGE_PATCH,
            description="An RFC 7396 merge patch (also accepted as application/json).",
        ),
        blp.response(202, AcceptedSchema, headers=ACCEPTED_HEADERS),
        blp.doc(
            parameters=[IF_MATCH, CHANGE_IDEMPOTENCY_KEY],
            requestBody={"content": {JSON: {"schema": ContactPatchSchema}}},
        ),
        alt_responses(blp, *COMMON_ERRORS, 412, 422),
    )
    delete = decorated(
        delete_contact,
        blp.response(202, AcceptedSchema, headers=ACCEPTED_HEADERS),
        blp.doc(parameters=[IF_MATCH, CHANGE_IDEMPOTENCY_KEY]),
        alt_responses(blp, 400, 412, 422, 503),
    )
    # staticmethod: the views are plain functions, which MethodView must not pass ``self``.
    methods = {
        "put": staticmethod(put),
        "patch": staticmethod(patch),
        "delete": staticmethod(delete),
    }
    return type("Contact", (MethodView,), methods)
