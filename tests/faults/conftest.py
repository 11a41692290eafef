"""The fault harness: a whole stack of its own per test, each dependency behind a fault proxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.fault_proxy import FaultProxy
from support.processes import Service, command_api, free_port, http_ok, query_api, worker
from support.resources import isolated_queues, queue_env

#: Time bounds of the harness: production's order, scaled so that a 30 s outage is survived by
#: the backoff (3+6+12+24 s before the fifth receive) and poison still dead-letters in a minute.
FAULT_ENV = {
    "SQS_VISIBILITY_TIMEOUT_S": "12",
    "SQS_MAX_RECEIVE_COUNT": "5",
    "RETRY_BACKOFF_S": "3,6,12,24,48",
    "SQS_WAIT_TIME_S": "5",
    "REDIS_SOCKET_TIMEOUT_S": "0.25",
    "REDIS_CONNECT_TIMEOUT_S": "0.25",
}


@dataclass
class FaultStack:
    command_url: str
    query_url: str
    env: dict[str, str]
    pg: FaultProxy
    redis: FaultProxy
    sqs: FaultProxy
    services: dict[str, Service]
    dlq_url: str

    def restart(self, name: str) -> Service:
        """Start a stopped service again with the same command line and environment."""
        old = self.services[name]
        old.stop()
        new = Service(name, old.argv, old.env).start()
        self.services[name] = new
        if name == "worker":
            new.wait_for_log("ready.", 60)
        return new


def _proxied(url: str, proxy: FaultProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture
def fault_stack(
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
    sqs_client: Any,
    sqs_endpoint: str,
    run_id: str,
) -> Iterator[FaultStack]:
    """A stack of its own behind fault proxies. A test may replace some of ``FAULT_ENV`` by
    parametrizing this fixture indirectly with a dict of settings."""
    settings = {**FAULT_ENV, **getattr(request, "param", {})}
    sqs_target = urlsplit(sqs_endpoint)
    pg = FaultProxy(("127.0.0.1", 5432)).start()
    redis = FaultProxy(("127.0.0.1", 6379)).start()
    sqs = FaultProxy((str(sqs_target.hostname), int(sqs_target.port or 80))).start()
    name = f"t{run_id}-f{uuid.uuid4().hex[:6]}"
    with isolated_queues(sqs_client, name, settings) as urls:
        sqs_url = f"http://127.0.0.1:{sqs.port}"
        env = {
            **stack_env,
            **settings,
            "DATABASE_URL": _proxied(stack_env["DATABASE_URL"], pg),
            "QUERY_DATABASE_URL": _proxied(stack_env["QUERY_DATABASE_URL"], pg),
            "REDIS_URL": _proxied(stack_env["REDIS_URL"], redis),
            **queue_env(name, urls, sqs_url=sqs_url),
        }
        command_port, query_port = free_port(), free_port()
        env["QUERY_API_BASE_URL"] = f"http://127.0.0.1:{query_port}"
        services = {
            "command-api": command_api(command_port, env).start(),
            "query-api": query_api(query_port, env).start(),
            "worker": worker(env, concurrency=2, supervised=True).start(),
        }
        stack = FaultStack(
            f"http://127.0.0.1:{command_port}",
            f"http://127.0.0.1:{query_port}",
            env,
            pg,
            redis,
            sqs,
            services,
            urls.dlq,
        )
        try:
            services["command-api"].wait_until(
                lambda: http_ok(f"{stack.command_url}/readyz"), 60, "readiness"
            )
            services["query-api"].wait_until(
                lambda: http_ok(f"{stack.query_url}/readyz"), 60, "readiness"
            )
            services["worker"].wait_for_log("ready.", 60)
            yield stack
        finally:
            for service in stack.services.values():
                service.stop()
            for proxy in (pg, redis, sqs):
                proxy.stop()
