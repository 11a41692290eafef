"""How the use cases' exceptions become problems (RFC 9457) on the write API."""

from __future__ import annotations

from typing import Final

from flask import Flask, Response

from command_api.service_layer.errors import EventTooLarge, IdempotencyKeyReused
from contacts_domain import ValidationFailed
from contacts_domain.ports import PublishFailed
from contacts_http import VALIDATION_PROBLEM, problem_response

TOO_LARGE_PROBLEM: Final = "urn:contacts:problem:message-too-large"
IDEMPOTENCY_PROBLEM: Final = "urn:contacts:problem:idempotency-key-reused"
QUEUE_PROBLEM: Final = "urn:contacts:problem:queue-unavailable"
#: Seconds a client should wait after a 503 from the queue before retrying.
QUEUE_RETRY_AFTER_S: Final = 2


def register_error_handlers(app: Flask) -> None:
    """Map ``ValidationFailed`` → 400, ``EventTooLarge`` → 413, ``IdempotencyKeyReused`` → 422
    and ``PublishFailed`` → 503 with ``Retry-After``."""

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
            "The command could not be queued; nothing was accepted. Retry later.",
            type_uri=QUEUE_PROBLEM,
            headers={"Retry-After": str(QUEUE_RETRY_AFTER_S)},
        )
