"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints (docs/architecture.md §6).

``/healthz`` answers ``200 {"status": "ok"}`` as long as the process serves requests; it never
touches a dependency, so a database outage does not get every pod restarted. ``/readyz`` runs
the given dependency checks concurrently, each bounded by ``timeout_s`` seconds, and answers
``200 {"status": "ok", "checks": {name: "ok"}}`` or a ``503`` problem with ``Retry-After`` and the
same ``checks`` member naming what failed (the exception class or ``timed out``; never the
message, which may hold URLs or credentials).

One-time costs of a check (building a client: loading botocore's service models takes 0.1 s on
an idle machine and over a second on a loaded one) must not count against the probe's budget,
or the first probe of every new process fails. Build such clients when the process starts, and
pass the builder as a ``prepare`` step: ``/readyz`` runs it before starting its clock (a no-op
once built, it rebuilds only in a process that was forked after building).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
    prepare: Sequence[Callable[[], Any]] = (),
) -> Blueprint:
    """Return a blueprint serving ``GET /healthz`` and ``GET /readyz``.

    ``checks`` maps a dependency name to its check (see ``Check``); ``timeout_s`` bounds, in
    seconds, the checks of one readiness probe; ``retry_after_s`` is the ``Retry-After`` of a
    503. ``prepare`` are set-up steps of the checks that never touch the network (building this
    process's clients; no-ops once done): ``/readyz`` runs them in order before the checks, and
    their time does not count against ``timeout_s``. A step that raises makes the probe a 503
    whose ``checks`` name the exception class for every check (none ran).
    """
    blueprint = Blueprint("health", __name__)
    readiness = dict(checks or {})
    preparation = tuple(prepare)

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/readyz")
    def readyz() -> Response:
        try:
            for step in preparation:
                step()
        except Exception as exc:
            results = dict.fromkeys(readiness, type(exc).__name__)
        else:
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
