"""The OpenAPI side of authentication and rate limits: the ``bearerAuth`` security scheme
(OpenAPI 3.1 §4.8.27, HTTP ``bearer``), required by every documented operation, and the 401,
403 and 429 problem responses every operation may answer."""

from __future__ import annotations

from typing import Any, Final

import flask_smorest
from apispec import BasePlugin

SCHEME_NAME: Final = "bearerAuth"
#: Status → the name flask-smorest gives the component response of that status.
GUARD_RESPONSES: Final = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "TOO_MANY_REQUESTS"}


class _GuardResponses(BasePlugin):  # type: ignore[misc]
    """Adds 401/403/429 to every operation that does not document them itself."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, component in GUARD_RESPONSES.items():
                responses.setdefault(str(status), component)


def document_bearer_auth(api: flask_smorest.Api, description: str) -> None:
    """Declare the bearer scheme in ``api``'s document, require it on every operation, and
    document the guard's refusals. Call it before registering blueprints (operations
    registered earlier do not get the 401/403/429 responses)."""
    api.spec.components.security_scheme(
        SCHEME_NAME, {"type": "http", "scheme": "bearer", "description": description}
    )
    api.spec.options.setdefault("security", [{SCHEME_NAME: []}])
    api.spec.plugins.append(_GuardResponses())
