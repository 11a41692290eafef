"""The real system as processes: both APIs under gunicorn and the Celery worker (prefork)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.processes import command_api, free_port, http_ok, query_api, worker
from support.stack import Stack, isolated_stack
from support.workspaces import WorkspaceCallers

#: Commands whose X-Request-ID starts with this are delayed in the worker (fault injection).
SLOW_PREFIX = "slow-"
SLOW_DELAY_S = 0.4


@pytest.fixture(scope="session")
def stack(stack_env: dict[str, str]) -> Iterator[Stack]:
    command_port, query_port = free_port(), free_port()
    env = {
        **stack_env,
        "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
        "WORKER_FAULT_DELAY_S": str(SLOW_DELAY_S),
        "WORKER_FAULT_DELAY_PREFIX": SLOW_PREFIX,
    }
    services = [
        command_api(command_port, env),
        query_api(query_port, env),
        worker(env, concurrency=4),
    ]
    for service in services:
        service.start()
    try:
        command_url = f"http://127.0.0.1:{command_port}"
        query_url = f"http://127.0.0.1:{query_port}"
        services[0].wait_until(lambda: http_ok(f"{command_url}/readyz"), 60, "readiness")
        services[1].wait_until(lambda: http_ok(f"{query_url}/readyz"), 60, "readiness")
        services[2].wait_for_log("ready.", 60)
        yield Stack(command_url, query_url, env, services)
    finally:
        for service in services:
            service.stop()


#: The workspaces of ``workspace_stack``'s callers (``support.workspaces``).
WORKSPACE_ROLES = ("iso-a", "iso-b", "mix-a", "mix-b")


@dataclass
class WorkspaceStack:
    """A running system whose APIs accept ``callers``' API keys and JWTs."""

    stack: Stack
    callers: WorkspaceCallers


@pytest.fixture(scope="session")
def workspace_stack(
    stack_env: dict[str, str], sqs_client: Any, run_id: str
) -> Iterator[WorkspaceStack]:
    """Both APIs and the worker on queues of their own, accepting an API key per workspace of
    ``WORKSPACE_ROLES`` and JWTs naming the workspace in ``org_id`` (docs/architecture.md §10)."""
    callers = WorkspaceCallers(run_id, WORKSPACE_ROLES).start()
    try:
        with isolated_stack(stack_env, sqs_client, f"w{run_id}", callers.env()) as stack:
            yield WorkspaceStack(stack, callers)
    finally:
        callers.stop()
