"""A running system under test and what tests do with it over HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from support.auth import api
from support.processes import Service, command_api, free_port, http_ok, query_api, worker
from support.resources import isolated_queues, queue_env


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


@contextlib.contextmanager
def isolated_stack(
    stack_env: dict[str, str], sqs: Any, name: str, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Both APIs (gunicorn) and the worker (prefork, 2) on free ports and on FIFO queues of
    their own (``isolated_queues(sqs, name)``), with ``stack_env`` and then ``env`` (e.g. a
    Redis prefix or database of their own); everything is stopped and the queues deleted
    afterwards."""
    command_port, query_port = free_port(), free_port()
    with isolated_queues(sqs, name) as urls:
        full = {
            **stack_env,
            **queue_env(name, urls),
            "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
            **(env or {}),
        }
        with running_stack(
            full,
            command_api(command_port, full),
            query_api(query_port, full),
            worker(full, concurrency=2),
            command_port=command_port,
            query_port=query_port,
        ) as stack:
            yield stack
