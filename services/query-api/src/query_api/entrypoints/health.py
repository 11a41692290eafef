"""``/healthz`` (liveness) and ``/readyz`` (readiness) of the query API.

``/healthz`` touches nothing. ``/readyz`` runs every check concurrently within ``timeout_s``
(``contacts_http.run_checks``). PostgreSQL is required: without it the API cannot answer, so the
pod is taken out of rotation (503 + ``Retry-After``). Redis is optional: reads fall back to
PostgreSQL without it, so an outage is reported as ``"status": "degraded"`` with 200; failing
readiness on a shared cache outage would take every replica out of rotation at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify

from contacts_http import problem_response, run_checks


def health_blueprint(
    required: Mapping[str, Callable[[], Any]],
    optional: Mapping[str, Callable[[], Any]],
    *,
    timeout_s: float,
    retry_after_s: int,
) -> Blueprint:
    """Return the blueprint of ``GET /healthz`` and ``GET /readyz``.

    ``/readyz`` bodies: ``{"status": "ok"|"degraded", "checks": {name: "ok" | "timed out" |
    <exception class>}}``, or a 503 problem with the same ``checks`` member.
    """
    blueprint = Blueprint("health", __name__)
    checks = {**required, **optional}

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/readyz")
    def readyz() -> Response:
        results = run_checks(checks, timeout_s=timeout_s)
        failed = sorted(name for name, outcome in results.items() if outcome != "ok")
        if any(name in required for name in failed):
            return problem_response(
                503,
                f"Not ready: {', '.join(failed)} did not answer.",
                headers={"Retry-After": str(retry_after_s)},
                extensions={"checks": results},
            )
        return jsonify(status="degraded" if failed else "ok", checks=results)

    return blueprint
