"""The benchmark's own service processes, beside (never instead of) the ``make up`` stack.

``make bench`` reuses the LocalStack SQS server, PostgreSQL and Redis of ``make up`` but runs
its own command API, query API and worker, with the command lines of ``deploy/local/up.sh`` and
the same settings (``.env.example`` / ``.env``), pointed at a database (``contacts_bench``),
queues (``contacts-bench-*.fifo``) and a Redis key prefix (``contacts-bench:``) of its own.
So a developer's data, queue and running services are never touched, and a write backlog of
one figure cannot bleed into the next. Every process is started in its own session and stopped
by its process group id, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from contacts_http.auth import format_api_key_hashes, hash_api_key, new_api_key
from contacts_http.auth import scopes as scope_names

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
RUN_DIR = ROOT / ".run" / "bench"

BENCH_DATABASE = "contacts_bench"
BENCH_PREFIX = "contacts-bench:"
BENCH_QUEUE = "contacts-bench-events.fifo"
BENCH_DLQ = "contacts-bench-events-dlq.fifo"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """``url`` (a SQLAlchemy or libpq URL) with its database name replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg2://`` URL as plain libpq ``postgresql://``."""
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


#: The API key of this benchmark run (the services get only its hash, with every scope).
BENCH_API_KEY = new_api_key()
AUTH_HEADER = f"Authorization: Bearer {BENCH_API_KEY}"


def api_session() -> requests.Session:
    """A ``requests`` session that sends this run's API key."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {BENCH_API_KEY}"
    return session


def bench_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The environment of the benchmark's services: ``base`` (the ``make up`` settings) with
    the database, queues, Redis prefix and worker heartbeat file replaced by the bench's."""
    env = dict(base)
    env["DATABASE_URL"] = with_database(env["DATABASE_URL"], BENCH_DATABASE)
    env["QUERY_DATABASE_URL"] = with_database(env["QUERY_DATABASE_URL"], BENCH_DATABASE)
    env["REDIS_PREFIX"] = BENCH_PREFIX
    env["SQS_QUEUE_NAME"] = BENCH_QUEUE
    env["SQS_DLQ_NAME"] = BENCH_DLQ
    env.pop("SQS_QUEUE_URL", None)
    env["WORKER_HEARTBEAT_FILE"] = str(RUN_DIR / "worker.heartbeat")
    env["AUTH_API_KEY_HASHES"] = format_api_key_hashes(
        {hash_api_key(BENCH_API_KEY): scope_names.ALL}
    )
    # The limiter stays on (its Redis round trip is part of every request's cost), with a
    # limit the load never reaches.
    env["RATE_LIMIT_DEFAULT"] = "10000000/minute"
    env["RATE_LIMIT_WORKSPACE_DEFAULT"] = "10000000/minute"
    return env


@dataclass
class Service:
    """One started process tree: ``argv`` run with ``env`` in a new session, output to
    ``RUN_DIR/<name>.log``. ``ready_url`` (if any) answers 200 once it serves."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str | None = None
    ready_log_line: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return RUN_DIR / f"{self.name}.log"

    def start(self) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=ROOT,
            )
        (RUN_DIR / f"{self.name}.pid").write_text(str(self.process.pid))

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the service answers (or logs its ready line); raises ``RuntimeError``
        with the log's tail if it exits or is not ready within ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                break
            if self._ready():
                return
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise RuntimeError(f"{self.name} did not become ready; log tail:\n{tail}")

    def _ready(self) -> bool:
        if self.ready_url is not None:
            try:
                return requests.get(self.ready_url, timeout=1).status_code == 200
            except requests.RequestException:
                return False
        if self.ready_log_line is not None:
            return self.ready_log_line in self.log_path.read_text(errors="replace")
        return True

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace_s`` seconds."""
        if self.process is None:
            return
        pid = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                self.process.wait()
        # Children of a stopped master (gunicorn workers, pool processes) share its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        (RUN_DIR / f"{self.name}.pid").unlink(missing_ok=True)
        self.process = None

    def pids(self) -> list[int]:
        """The master's pid followed by its descendants'."""
        if self.process is None:
            return []
        return process_tree(self.process.pid)


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return found


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (``VmRSS``), ``None`` if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time, in seconds, used so far by the live processes ``pids``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def command_line(pid: int) -> str:
    """The first 80 characters of ``pid``'s command line."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:80]


def gunicorn_query_api(name: str, env: Mapping[str, str], port: int, app: str) -> Service:
    """A gunicorn server with the query API's own config module (``gthread``, its workers and
    threads from ``QUERY_API_WORKERS``/``QUERY_API_THREADS``, as ``up.sh`` starts it) serving
    ``app`` on ``port``."""
    server_env = {
        **env,
        "QUERY_API_BIND": f"127.0.0.1:{port}",
        "QUERY_API_WORKERS": env.get("QUERY_API_WORKERS", env.get("GUNICORN_WORKERS", "2")),
        "PYTHONPATH": str(ROOT / "bench"),
    }
    argv = [str(BIN / "gunicorn"), "-c", "python:query_api.entrypoints.gunicorn_conf", app]
    return Service(name, argv, server_env, ready_url=f"http://127.0.0.1:{port}/readyz")


def command_api(env: Mapping[str, str], port: int) -> Service:
    """The command API as ``up.sh`` starts it, on ``port``."""
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        "python:command_api.entrypoints.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        env.get("COMMAND_API_WORKERS", "2"),
        "--worker-tmp-dir",
        "/dev/shm",
        "--timeout",
        "30",
        "--graceful-timeout",
        "10",
        "--no-control-socket",
        "--access-logfile",
        "-",
        "command_api.entrypoints.app:create_app()",
    ]
    return Service("command-api", argv, {**env}, ready_url=f"http://127.0.0.1:{port}/readyz")


def worker(env: Mapping[str, str]) -> Service:
    """The worker as ``up.sh`` starts it (prefork pool of ``WORKER_CONCURRENCY``)."""
    argv = [
        str(BIN / "contact-worker"),
        "--pool",
        "prefork",
        "--concurrency",
        env.get("WORKER_CONCURRENCY", "2"),
    ]
    return Service("worker", argv, {**env}, ready_log_line="ready.")


def admin(env: Mapping[str, str], *args: str) -> None:
    """Run ``contact-worker-admin ARGS`` with ``env``; raises on failure."""
    subprocess.run(
        [str(BIN / "contact-worker-admin"), *args],
        env=dict(env),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


if __name__ == "__main__":  # pragma: no cover - manual check
    print(process_tree(int(sys.argv[1])))
