"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints (DESIGN.md §6).

``/healthz`` answers ``200 {"status": "ok"}`` as long as the process serves requests; it never
touches a dependency, so a database outage does not get every pod restarted. ``/readyz`` runs
the given dependency checks concurrently, each bounded by ``timeout_s`` seconds, and answers
``200 {"status": "ok", "checks": {name: "ok"}}`` or a ``503`` problem with ``Retry-After`` and the
same ``checks`` member naming what failed (the exception class or ``timed out``; never the
message, which may hold URLs or credentials).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify

from contacts_http.problems import problem_response

#: A dependency check: returns when the dependency answers, raises when it does not.
Check = Callable[[], Any]


def run_checks(checks: Mapping[str, Check], *, timeout_s: float) -> dict[str, str]:
    """Run every check in its own daemon thread and wait at most ``timeout_s`` seconds in total.

    Returns name → ``"ok"``, ``"timed out"`` or the exception class name. A check that hangs is
    abandoned (its thread ends when its own socket timeout fires), never waited for.
    """
    results: dict[str, str] = {}
    lock = threading.Lock()

    def run(name: str, check: Check) -> None:
        try:
            check()
            outcome = "ok"
        except Exception as exc:
            outcome = type(exc).__name__
        with lock:
            results[name] = outcome

    threads = [
        threading.Thread(target=run, args=(name, check), name=f"readyz-{name}", daemon=True)
        for name, check in checks.items()
    ]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return {name: results.get(name, "timed out") for name in checks}


def health_blueprint(
    checks: Mapping[str, Check] | None = None,
    *,
    timeout_s: float = 1.0,
    retry_after_s: int = 5,
) -> Blueprint:
    """Return a blueprint serving ``GET /healthz`` and ``GET /readyz``.

    ``checks`` maps a dependency name to its check (see ``Check``); ``timeout_s`` bounds the
    whole readiness probe in seconds; ``retry_after_s`` is the ``Retry-After`` of a 503.
    """
    blueprint = Blueprint("health", __name__)
    readiness = dict(checks or {})

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/readyz")
    def readyz() -> Response:
        results = run_checks(readiness, timeout_s=timeout_s)
        failed = sorted(name for name, outcome in results.items() if outcome != "ok")
        if failed:
            return problem_response(
                503,
                f"Not ready: {', '.join(failed)} did not answer.",
                headers={"Retry-After": str(retry_after_s)},
                extensions={"checks": results},
            )
        return jsonify(status="ok", checks=results)

    return blueprint
