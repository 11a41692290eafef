"""The OpenAPI documents of both APIs, built in-process without connecting to anything.

Schemathesis generates its test cases when pytest collects them, before any service runs, so
the fuzz tests take the documents from the apps' factories (which connect to nothing) and check
that the running services serve the very same documents.
"""

from __future__ import annotations

from typing import Any

from command_api.entrypoints.app import create_app as create_command_app
from command_api.settings import Settings as CommandSettings
from query_api.entrypoints.app import create_app as create_query_app
from query_api.settings import Settings as QuerySettings


def command_api_document() -> dict[str, Any]:
    """``/openapi.json`` of the command API (default settings)."""
    with create_command_app(CommandSettings()).test_client() as client:
        return dict(client.get("/openapi.json").get_json())


def query_api_document() -> dict[str, Any]:
    """``/openapi.json`` of the query API (default settings)."""
    app = create_query_app(QuerySettings())
    try:
        with app.test_client() as client:
            return dict(client.get("/openapi.json").get_json())
    finally:
        app.extensions["query_api"].ports.close()
