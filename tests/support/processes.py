"""Start and stop the real service processes (gunicorn, Celery, LocalStack) for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return requests.get(url, timeout=timeout_s).ok
    except requests.RequestException:
        return False


class Service:
    """One process started in its own process group, its output in a temporary log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        #: Where the service serves ``/metrics`` when it is not one of its HTTP routes (worker).
        self.metrics_url: str | None = None

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, check: object, timeout_s: float, what: str) -> None:
        """Poll ``check()`` until true; raises ``RuntimeError`` with the log tail otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited while waiting for {what}:\n{self.tail()}")
            if check():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: {what} not reached in {timeout_s} s:\n{self.tail()}")

    def wait_for_log(self, text: str, timeout_s: float = 60) -> None:
        self.wait_until(lambda: text in self.log(), timeout_s, f"log line {text!r}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def signal(self, sig: int, *, group: bool = True) -> None:
        if self.alive():
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``timeout_s``."""
        if self.process is None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=5)


def command_api(
    port: int, env: Mapping[str, str], *, workers: int = 2, name: str = "command-api"
) -> Service:
    """The command API under gunicorn, as ``make up`` runs it."""
    return Service(
        name,
        [
            str(BIN / "gunicorn"),
            *("-c", "python:command_api.entrypoints.gunicorn_conf"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "30"),
            *("--worker-tmp-dir", "/dev/shm", "--no-control-socket"),
            "command_api.entrypoints.app:create_app()",
        ],
        env,
    )


def query_api(port: int, env: Mapping[str, str]) -> Service:
    """The query API under gunicorn with its config module, as ``make up`` runs it."""
    return Service(
        "query-api",
        [
            str(BIN / "gunicorn"),
            *("-c", "python:query_api.entrypoints.gunicorn_conf"),
            "query_api.entrypoints.app:create_app()",
        ],
        {**env, "QUERY_API_BIND": f"127.0.0.1:{port}"},
    )


def worker(
    env: Mapping[str, str],
    *,
    concurrency: int = 2,
    name: str = "worker",
    supervised: bool = False,
) -> Service:
    """The Celery worker (prefork: one process per slot); ``supervised`` runs it under
    ``deploy/local/supervise.sh`` as ``make up`` does, so it is started again after a failure
    exit (then the service's pid is the supervisor's). Its ``/metrics`` listens on a free port
    unless ``env`` names one (``WORKER_METRICS_PORT``; the URL is in ``metrics_url``)."""
    env = {"WORKER_METRICS_PORT": str(free_port()), **env}
    command = [str(BIN / "contact-worker"), "--pool", "prefork", "--concurrency", str(concurrency)]
    if supervised:
        command = [str(ROOT / "deploy" / "local" / "supervise.sh"), *command]
    service = Service(name, command, env)
    service.metrics_url = f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics"
    return service


def sqs_server(port: int, data_dir: str) -> Service:
    """LocalStack's SQS from its own virtualenv, as ``make up`` runs it."""
    return Service(
        "localstack",
        [str(ROOT / "deploy" / "local" / "sqs-server.sh")],
        {"SQS_PORT": str(port), "SQS_DATA_DIR": data_dir},
    )
