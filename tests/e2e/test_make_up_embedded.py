"""``make up`` with only Python: embedded PostgreSQL and Redis from pip wheels (issue 14, item 4).

``make up`` runs as a newcomer runs it, with ``EMBEDDED_SERVERS=always`` and every address on a
free local port (its own ``.env`` and run directory: ``CONTACTS_ENV_FILE``,
``CONTACTS_RUN_DIR``), so neither the machine's servers nor a developer's stack are touched. A
contact is created, applied and read through both APIs; ``make down`` must then stop the
embedded servers too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.processes import ROOT, free_port

pytestmark = pytest.mark.processes

UP_TIMEOUT_S = 420


def make(target: str, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), target],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_what_is_left(run_dir: Path) -> None:
    """After a failed ``make down``: no process of this test may outlive it."""
    for pid_file in run_dir.glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    ports = {
        name: free_port()
        for name in ("postgres", "redis", "command", "query", "sqs", "worker_metrics")
    }
    name = f"embedded{os.getpid()}"
    settings = {
        "EMBEDDED_SERVERS": "always",
        "DATABASE_URL": f"postgresql+psycopg2://root@127.0.0.1:{ports['postgres']}/contacts",
        "QUERY_DATABASE_URL": (
            f"postgresql+psycopg2://contacts_reader@127.0.0.1:{ports['postgres']}/contacts"
        ),
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "REDIS_PREFIX": f"{name}:",
        "COMMAND_API_PORT": str(ports["command"]),
        "QUERY_API_PORT": str(ports["query"]),
        "SQS_PORT": str(ports["sqs"]),
        "WORKER_METRICS_PORT": str(ports["worker_metrics"]),
        "SQS_QUEUE_NAME": f"{name}.fifo",
        "SQS_DLQ_NAME": f"{name}-dlq.fifo",
        "GUNICORN_WORKERS": "1",
        "WORKER_CONCURRENCY": "1",
    }
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    run_dir = tmp_path / "run"
    env = {"CONTACTS_ENV_FILE": str(env_file), "CONTACTS_RUN_DIR": str(run_dir)}
    try:
        yield env, ports
    finally:
        down = make("down", env, 120)
        if down.returncode != 0:
            kill_what_is_left(run_dir)


def test_make_up_starts_embedded_servers_serves_a_contact_and_make_down_stops_them(
    own_stack: tuple[dict[str, str], dict[str, int]],
) -> None:
    env, ports = own_stack
    run_dir = Path(env["CONTACTS_RUN_DIR"])

    up = make("up", env, UP_TIMEOUT_S)

    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    started = [line for line in up.stdout.splitlines() if line.startswith("Started embedded")]
    assert started == [
        f"Started embedded PostgreSQL at 127.0.0.1:{ports['postgres']} and Redis at "
        f"127.0.0.1:{ports['redis']} from pip wheels (EMBEDDED_SERVERS=always; data in .run/; "
        "make down stops them)"
    ]
    servers = {name: int((run_dir / f"{name}.pid").read_text()) for name in ("postgres", "redis")}
    assert (run_dir / "postgres" / "PG_VERSION").is_file()
    assert (run_dir / "redis").is_dir()

    key = (run_dir / "dev-api-key").read_text().strip()
    auth = {"Authorization": f"Bearer {key}"}
    command = f"http://127.0.0.1:{ports['command']}/v1"
    query = f"http://127.0.0.1:{ports['query']}/v1"
    created = requests.post(
        f"{command}/contacts",
        json={"first_name": "Rosa", "email": "rosa@example.com"},
        headers=auth,
        timeout=10,
    )
    assert created.status_code == 202, created.text
    operation = f"{query}/operations/{created.json()['operation_id']}"
    deadline = time.monotonic() + 30
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        status = requests.get(operation, headers=auth, timeout=5).json()["status"]
        time.sleep(0.1)
    assert status == "applied"
    contact = requests.get(f"{query}/contacts/{created.json()['id']}", headers=auth, timeout=5)
    assert contact.status_code == 200
    assert contact.json()["email"] == "rosa@example.com"

    down = make("down", env, 120)

    assert down.returncode == 0, down.stderr
    assert "stopped postgres" in down.stdout
    assert "stopped redis" in down.stdout
    for name, pid in servers.items():
        assert not alive(pid), f"{name} (pid {pid}) still runs after make down"
    assert not answers(ports["postgres"])
    assert not answers(ports["redis"])
