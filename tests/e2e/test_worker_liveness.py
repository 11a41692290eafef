"""Cases C15 (losing the connection to SQS) and C16 (pickup latency, no busy polling).

The worker talks to SQS through a fault proxy, so the SQS server itself is never stopped.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.auth import api
from support.fault_proxy import FaultProxy
from support.processes import BIN, Service, command_api, free_port, http_ok, query_api, worker
from support.resources import isolated_queues, queue_env

WAIT_TIME_S = 2
TASK_TIME_LIMIT_S = 8


@dataclass
class ProxiedStack:
    command_url: str
    query_url: str
    env: dict[str, str]
    sqs: FaultProxy
    worker: Service

    def post_and_wait(self, timeout_s: float = 30) -> float:
        """POST a contact; return seconds until its operation is applied."""
        started = time.perf_counter()
        answer = api.post(
            f"{self.command_url}/v1/contacts", json={"first_name": "Live"}, timeout=10
        )
        assert answer.status_code == 202, answer.text
        url = f"{self.query_url}/v1/operations/{answer.json()['operation_id']}"
        while time.perf_counter() - started < timeout_s:
            status = api.get(url, timeout=5)
            if status.status_code == 200 and status.json()["status"] == "applied":
                return time.perf_counter() - started
            time.sleep(0.002)
        raise AssertionError(f"not applied within {timeout_s} s:\n{self.worker.tail()}")

    def alive(self) -> bool:
        probe = subprocess.run(
            [str(BIN / "contact-worker-admin"), "check-alive"],
            env={**os.environ, **self.env},
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0


@pytest.fixture
def proxied(
    stack_env: dict[str, str], sqs_client: Any, sqs_endpoint: str, run_id: str
) -> Iterator[ProxiedStack]:
    target = urlsplit(sqs_endpoint)
    sqs = FaultProxy((str(target.hostname), int(target.port or 80))).start()
    name = f"t{run_id}-l{uuid.uuid4().hex[:6]}"
    with isolated_queues(sqs_client, name) as urls:
        proxied_url = f"http://127.0.0.1:{sqs.port}"
        command_port, query_port = free_port(), free_port()
        env = {
            **stack_env,
            **queue_env(name, urls, sqs_url=proxied_url),
            "SQS_WAIT_TIME_S": str(WAIT_TIME_S),
            "TASK_TIME_LIMIT_S": str(TASK_TIME_LIMIT_S),
            "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
        }
        services = [
            command_api(command_port, env).start(),
            query_api(query_port, env).start(),
            worker(env, concurrency=2, supervised=True).start(),
        ]
        stack = ProxiedStack(
            f"http://127.0.0.1:{command_port}",
            f"http://127.0.0.1:{query_port}",
            env,
            sqs,
            services[2],
        )
        try:
            services[0].wait_until(lambda: http_ok(f"{stack.command_url}/readyz"), 60, "ready")
            services[1].wait_until(lambda: http_ok(f"{stack.query_url}/readyz"), 60, "ready")
            services[2].wait_for_log("ready.", 60)
            yield stack
        finally:
            for service in services:
                service.stop()
            sqs.stop()


def test_c16_pickup_latency_is_not_the_long_poll_and_idle_polling_is_bounded(
    proxied: ProxiedStack,
) -> None:
    proxied.post_and_wait()  # warm up connections
    samples = []
    for i in range(50):
        time.sleep((i % 5) * 0.4)  # pauses of 0-1.6 s: the worker is idle, long-polling
        samples.append(proxied.post_and_wait() * 1000)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    print(f"\nC16 POST -> applied (ms): p50 {cuts[49]:.1f} p95 {cuts[94]:.1f} p99 {cuts[98]:.1f}")
    # A message must not wait for the long poll to end (kombu #2413): with that defect a message
    # sent during an idle poll waits for its end, 0 to WAIT_TIME_S later (median ~WAIT_TIME_S/2,
    # 90th percentile ~0.9 x WAIT_TIME_S). Not the p99: one stall of a loaded machine is not it.
    assert cuts[49] < WAIT_TIME_S * 1000 / 4
    assert cuts[89] < WAIT_TIME_S * 1000 / 2

    before = proxied.sqs.http_requests
    time.sleep(10)
    receives = proxied.sqs.http_requests - before
    print(f"C16 idle: {receives} SQS requests in 10 s (long poll {WAIT_TIME_S} s)")
    assert receives <= 10 / WAIT_TIME_S + 3  # long polling, not a busy loop


def test_c15_worker_resumes_after_losing_sqs_and_liveness_tells_meanwhile(
    proxied: ProxiedStack,
) -> None:
    proxied.post_and_wait()
    assert proxied.alive()
    limit_s = WAIT_TIME_S + TASK_TIME_LIMIT_S + 15  # Settings.liveness_max_age_s

    proxied.sqs.set_mode("blackhole")  # connected, but nothing comes back: a stalled consumer
    started = time.monotonic()
    while proxied.alive() and time.monotonic() - started < limit_s + 30:
        time.sleep(1)
    detected_after = time.monotonic() - started
    assert not proxied.alive(), "liveness never noticed the worker stopped receiving"
    print(f"\nC15 liveness failed {detected_after:.0f} s into the SQS stall (limit {limit_s} s)")

    proxied.sqs.set_mode("refuse")
    time.sleep(10)
    proxied.sqs.set_mode("pass")
    recovered_in = proxied.post_and_wait(timeout_s=120)
    assert proxied.worker.alive(), proxied.worker.tail()  # the supervisor, as Kubernetes would
    assert proxied.alive()
    print(f"C15 after SQS came back, a new write applied in {recovered_in:.1f} s")
    if "consumer is stalled; exiting" in proxied.worker.log():
        print("C15 the watchdog had made the stalled worker exit; the supervisor restarted it")
