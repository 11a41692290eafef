"""A running system under test and what tests do with it over HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from support.auth import api
from support.processes import Service, http_ok


@dataclass
class Stack:
    command_url: str
    query_url: str
    env: dict[str, str]
    services: list[Service]

    def wait_operation(self, operation_id: str, timeout_s: float = 30) -> dict[str, Any]:
        """Poll ``GET /v1/operations/{id}`` until it is no longer pending; returns its body."""
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = api.get(f"{self.query_url}/v1/operations/{operation_id}", timeout=5)
            if answer.status_code == 200:
                body = answer.json()
                if body["status"] != "pending":
                    return body
            time.sleep(0.02)
        raise AssertionError(
            f"operation {operation_id} still {body or 'unknown'} after {timeout_s} s"
        )


@contextlib.contextmanager
def running_stack(
    env: dict[str, str],
    command: Service,
    query: Service,
    worker: Service,
    *,
    command_port: int,
    query_port: int,
) -> Iterator[Stack]:
    """Start the three services (made with ``env``), wait until both APIs are ready
    (``/readyz``, 60 s each) and the worker logs ``ready.``; stop all of them afterwards."""
    services = [command, query, worker]
    for service in services:
        service.start()
    try:
        command_url = f"http://127.0.0.1:{command_port}"
        query_url = f"http://127.0.0.1:{query_port}"
        command.wait_until(lambda: http_ok(f"{command_url}/readyz"), 60, "readiness")
        query.wait_until(lambda: http_ok(f"{query_url}/readyz"), 60, "readiness")
        worker.wait_for_log("ready.", 60)
        yield Stack(command_url, query_url, env, services)
    finally:
        for service in services:
            service.stop()
