"""flask-smorest settings both APIs share: OpenAPI 3.1 at ``/openapi.json``
(docs/architecture.md §6). Swagger UI at ``/docs`` is ``contacts_http.docs``, served by the app
itself."""

from __future__ import annotations

from typing import Any


def openapi_config(title: str, description: str | None = None) -> dict[str, Any]:
    """Return the Flask config keys flask-smorest reads, for an API called ``title``.

    flask-smorest's own Swagger UI page is off (it loads its scripts from a CDN): register
    ``docs_blueprint`` for ``/docs``.
    """
    config: dict[str, Any] = {
        "API_TITLE": title,
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
    if description:
        config["API_SPEC_OPTIONS"] = {"info": {"description": description}}
    return config
