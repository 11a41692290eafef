"""flask-smorest settings both APIs share: OpenAPI 3.1 at ``/openapi.json``, Swagger UI at
``/docs`` (docs/architecture.md §6)."""

from __future__ import annotations

from typing import Any


def openapi_config(title: str, description: str | None = None) -> dict[str, Any]:
    """Return the Flask config keys flask-smorest reads, for an API called ``title``.

    The Swagger UI page loads its scripts from the jsDelivr CDN in the reader's browser; the
    document itself is served by the app.
    """
    config: dict[str, Any] = {
        "API_TITLE": title,
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
    }
    if description:
        config["API_SPEC_OPTIONS"] = {"info": {"description": description}}
    return config
