"""The OpenAPI side of authentication and rate limits: the ``bearerAuth`` security scheme
(OpenAPI 3.1 §4.8.27, HTTP ``bearer``), required by every documented operation, the 401,
403 and 429 problem responses every operation may answer, and the optional
``X-Contacts-Workspace`` header of operators (docs/architecture.md §10)."""

from __future__ import annotations

from typing import Any, Final

import flask_smorest
from apispec import BasePlugin

from contacts_domain.workspaces import WORKSPACE_PATTERN
from contacts_http.auth.guard import WORKSPACE_HEADER
from contacts_http.auth.scopes import ADMIN

SCHEME_NAME: Final = "bearerAuth"
#: Status → the name flask-smorest gives the component response of that status.
GUARD_RESPONSES: Final = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "TOO_MANY_REQUESTS"}
#: The operator's header as an OpenAPI parameter object (OpenAPI 3.1 §4.8.12).
WORKSPACE_PARAMETER: Final[dict[str, Any]] = {
    "name": WORKSPACE_HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"Operators only (scope `{ADMIN}`): the workspace to act on; every such request is "
        "logged. Anyone else sending it is refused with 403. Without it the workspace is the "
        "one the caller's API key or JWT is bound to."
    ),
    "schema": {"type": "string", "pattern": WORKSPACE_PATTERN},
}


class _GuardResponses(BasePlugin):  # type: ignore[misc]
    """Adds 401/403/429 to every operation that does not document them itself, and the
    operator's optional ``X-Contacts-Workspace`` header to every operation."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, component in GUARD_RESPONSES.items():
                responses.setdefault(str(status), component)
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == WORKSPACE_HEADER for p in parameters):
                parameters.append(dict(WORKSPACE_PARAMETER))


def document_bearer_auth(api: flask_smorest.Api, description: str) -> None:
    """Declare the bearer scheme in ``api``'s document, require it on every operation, and
    document the guard's refusals. Call it before registering blueprints (operations
    registered earlier do not get the 401/403/429 responses)."""
    api.spec.components.security_scheme(
        SCHEME_NAME, {"type": "http", "scheme": "bearer", "description": description}
    )
    api.spec.options.setdefault("security", [{SCHEME_NAME: []}])
    api.spec.plugins.append(_GuardResponses())
