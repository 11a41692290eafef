"""``/healthz`` (liveness) and ``/readyz`` (readiness) of the query API.

``/healthz`` touches nothing. ``/readyz`` runs every check of the app's ports
(``bootstrap.Ports.required_checks`` and ``optional_checks``) concurrently within
``READINESS_TIMEOUT_S`` (``contacts_http.run_checks``). PostgreSQL is required: without it the
API cannot answer, so the pod is taken out of rotation (503 + ``Retry-After``). Redis is
optional: reads fall back to PostgreSQL without it, so an outage is reported as
``"status": "degraded"`` with 200; failing readiness on a shared cache outage would take every
replica out of rotation at once.
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, Response, jsonify

from contacts_http import problem_response, run_checks
from query_api.entrypoints.context import current

#: Bound, in seconds, on the whole ``/readyz`` probe.
READINESS_TIMEOUT_S: Final = 1.0


def health_blueprint() -> Blueprint:
    """Return the blueprint of ``GET /healthz`` and ``GET /readyz`` (a new one per app)."""
    blueprint = Blueprint("health", __name__)
    blueprint.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    blueprint.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    return blueprint


def healthz() -> Response:
    """Liveness: ``{"status": "ok"}``, whatever the dependencies say."""
    return jsonify(status="ok")


def readyz() -> Response:
    """Readiness: ``{"status": "ok"|"degraded", "checks": {name: "ok" | "timed out" |
    <exception class>}}``, or a 503 problem with the same ``checks`` member when a required
    check failed."""
    context = current()
    required = context.ports.required_checks
    results = run_checks(
        {**required, **context.ports.optional_checks}, timeout_s=READINESS_TIMEOUT_S
    )
    failed = sorted(name for name, outcome in results.items() if outcome != "ok")
    if any(name in required for name in failed):
        return problem_response(
            503,
            f"Not ready: {', '.join(failed)} did not answer.",
            headers={"Retry-After": str(context.settings.retry_after_s)},
            extensions={"checks": results},
        )
    return jsonify(status="degraded" if failed else "ok", checks=results)
