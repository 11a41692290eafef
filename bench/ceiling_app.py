"""The framework ceiling of ``make bench``: a trivial Flask app, not part of the product.

Served by gunicorn with the query API's own config module (same worker class, workers, threads,
timeouts and access log), it answers every ``GET`` with the same 400-byte JSON document, so its
req/s is what Flask plus gunicorn can do on this machine with no application work at all::

    QUERY_API_BIND=127.0.0.1:PORT PYTHONPATH=bench \\
        gunicorn -c python:query_api.entrypoints.gunicorn_conf 'ceiling_app:app'
"""

from __future__ import annotations

import json
from typing import Final

from flask import Flask, Response

#: Size of the constant document in bytes.
DOCUMENT_BYTES: Final = 400


def constant_document(size: int = DOCUMENT_BYTES) -> bytes:
    """A compact JSON object of exactly ``size`` bytes, shaped like a contact."""
    document = {"id": "00000000-0000-4000-8000-000000000000", "version": 1, "notes": ""}
    base = len(json.dumps(document, separators=(",", ":")).encode())
    document["notes"] = "x" * (size - base)
    body = json.dumps(document, separators=(",", ":")).encode()
    assert len(body) == size, len(body)
    return body


BODY: Final = constant_document()

app = Flask("ceiling_app")


@app.get("/v1/contacts/<contact_id>")
def constant(contact_id: str) -> Response:
    """The constant document, whatever the id."""
    return Response(BODY, status=200, mimetype="application/json")


@app.get("/readyz")
def ready() -> Response:
    """Always ready (nothing to depend on)."""
    return Response(b'{"status":"ready"}', status=200, mimetype="application/json")
