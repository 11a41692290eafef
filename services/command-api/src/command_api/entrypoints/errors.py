"""How the use cases' exceptions become problems (RFC 9457) on the write API."""

from __future__ import annotations

import re
from typing import Final

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound

from command_api.service_layer.errors import EventTooLarge, IdempotencyKeyReused
from contacts_domain import ValidationFailed
from contacts_domain.ports import PublishFailed
from contacts_http import VALIDATION_PROBLEM, problem_from_http_exception, problem_response

TOO_LARGE_PROBLEM: Final = "urn:contacts:problem:message-too-large"
IDEMPOTENCY_PROBLEM: Final = "urn:contacts:problem:idempotency-key-reused"
QUEUE_PROBLEM: Final = "urn:contacts:problem:queue-unavailable"
NOT_QUEUED_DETAIL: Final = "The command could not be queued; nothing was accepted. Retry later."
#: The 503's detail when SQS was sent the command but its answer did not come.
UNKNOWN_OUTCOME_DETAIL: Final = (
    "SQS did not confirm the command in time: it may or may not have been queued. Retry later "
    "with the same Idempotency-Key, which applies it at most once (without one, a retried "
    "create may create a second contact)."
)
#: Seconds a client should wait after a 503 from the queue before retrying.
QUEUE_RETRY_AFTER_S: Final = 2
#: The 404's detail for ``/v1/contacts/{id}`` whose id is no UUID (the route matches UUIDs only).
NOT_A_CONTACT_ID_DETAIL: Final = (
    "The id in the path is not a contact id: contact ids are UUIDs "
    "(8-4-4-4-12 hexadecimal digits). No contact has it."
)
#: A path of one segment under ``/v1/contacts/``: a contact's, had the segment been a UUID.
_CONTACT_PATH: Final = re.compile(r"^/v1/contacts/[^/]+$")


def register_error_handlers(app: Flask) -> None:
    """Map ``ValidationFailed`` → 400, ``EventTooLarge`` → 413, ``IdempotencyKeyReused`` → 422
    and ``PublishFailed`` → 503 with ``Retry-After`` (its detail says whether the command may
    have been queued: ``PublishFailed.may_be_queued``). A 404 of ``/v1/contacts/{id}`` whose
    id is no UUID says so (``NOT_A_CONTACT_ID_DETAIL``; the query API answers such an id 404
    too); every other 404 is the generic problem."""

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> Response:
        if request.url_rule is None and _CONTACT_PATH.match(request.path):
            return problem_response(404, NOT_A_CONTACT_ID_DETAIL)
        return problem_from_http_exception(error)

    @app.errorhandler(ValidationFailed)
    def invalid(error: ValidationFailed) -> Response:
        return problem_response(
            400,
            "The contact breaks a rule; see errors.",
            type_uri=VALIDATION_PROBLEM,
            errors=error.errors,
        )

    @app.errorhandler(EventTooLarge)
    def too_large(error: EventTooLarge) -> Response:
        return problem_response(
            413,
            f"The contact is too large to queue ({error.size} bytes encoded, at most "
            f"{error.limit}); shorten the longest fields.",
            type_uri=TOO_LARGE_PROBLEM,
        )

    @app.errorhandler(IdempotencyKeyReused)
    def key_reused(error: IdempotencyKeyReused) -> Response:
        return problem_response(422, str(error), type_uri=IDEMPOTENCY_PROBLEM)

    @app.errorhandler(PublishFailed)
    def queue_unavailable(error: PublishFailed) -> Response:
        app.logger.warning("Publish failed: %s", error)
        return problem_response(
            503,
            UNKNOWN_OUTCOME_DETAIL if error.may_be_queued else NOT_QUEUED_DETAIL,
            type_uri=QUEUE_PROBLEM,
            headers={"Retry-After": str(QUEUE_RETRY_AFTER_S)},
        )
