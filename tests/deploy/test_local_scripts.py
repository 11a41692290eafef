"""``make up``'s process handling (deploy/local/lib.sh), run alone in a temporary run directory:
a service is ready only when the process started for it serves its port, and a restart appends
to the service's log instead of erasing the crash before it."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from contacts_http.auth.settings import parse_api_key_hashes
from support.processes import ROOT, free_port

LIB = ROOT / "deploy" / "local" / "lib.sh"


def run_lib(
    run_dir: Path, script: str, timeout_s: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in bash with lib.sh sourced and ``run_dir`` as ``$run_dir`` (in ``cwd``)."""
    return subprocess.run(
        [
            "bash",
            "-c",
            f'set -euo pipefail; run_dir="$1"; source "$2"\n{script}',
            "-",
            run_dir,
            LIB,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=cwd,
    )


def stop(run_dir: Path, name: str) -> None:
    pid_file = run_dir / f"{name}.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def squatter() -> Iterator[int]:
    """Another program on a port, answering 200 to every GET (``/readyz`` included)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


HTTP_SERVER = f"{sys.executable} -m http.server --bind 127.0.0.1"


@pytest.mark.parametrize(
    "command",
    [HTTP_SERVER, "sleep 30"],
    ids=["exits-on-address-in-use", "alive-without-the-port"],
)
def test_make_up_fails_when_another_process_answers_on_the_services_port(
    tmp_path: Path, squatter: int, command: str
) -> None:
    port = squatter
    argv = f"{command} {port}" if command == HTTP_SERVER else command
    try:
        result = run_lib(
            tmp_path,
            f"start fake {argv}\nwait_ready fake http://127.0.0.1:{port}/readyz {port} 20\n"
            "echo READY",
        )
    finally:
        stop(tmp_path, "fake")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "READY" not in result.stdout
    assert "another process holds" in result.stderr
    assert f"see {tmp_path}/fake.log" in result.stderr


def test_make_up_is_ready_when_the_started_process_serves_the_port(tmp_path: Path) -> None:
    port = free_port()
    try:
        result = run_lib(
            tmp_path,
            f"start fake {HTTP_SERVER} {port}\n"
            f"wait_ready fake http://127.0.0.1:{port}/ {port} 20\necho READY",
        )
    finally:
        stop(tmp_path, "fake")
    assert result.returncode == 0, result.stderr
    assert "READY" in result.stdout


def test_make_up_fails_at_once_naming_the_log_when_the_process_exits(tmp_path: Path) -> None:
    port = free_port()
    result = run_lib(
        tmp_path,
        f"start fake sh -c 'echo Traceback: boom; exit 3'\n"
        f"wait_ready fake http://127.0.0.1:{port}/readyz {port} 20",
    )
    assert result.returncode == 1
    assert f"fake exited before it was ready; see {tmp_path}/fake.log" in result.stderr
    assert "Traceback: boom" in result.stderr


def test_make_up_names_each_log_where_it_is(tmp_path: Path) -> None:
    # Review: with CONTACTS_RUN_DIR elsewhere, make up still printed `.run/NAME.log`.
    (tmp_path / ".run").mkdir()
    script = "start fake sh -c 'exit 0'\nwhile running fake; do sleep 0.1; done"
    under = run_lib(tmp_path / ".run", script, cwd=tmp_path)
    elsewhere = run_lib(tmp_path / ".run", script, cwd=ROOT)
    assert "log .run/fake.log)" in under.stdout, under.stdout + under.stderr
    assert f"log {tmp_path}/.run/fake.log)" in elsewhere.stdout, elsewhere.stdout


def test_a_restart_appends_to_the_log_after_a_separator(tmp_path: Path) -> None:
    script = (
        "start fake sh -c 'echo Traceback: first crash; exit 1'\n"
        "while running fake; do sleep 0.1; done\n"
        "start fake sh -c 'echo second run'\n"
        "while running fake; do sleep 0.1; done\n"
        "echo SINCE; since_start fake"
    )
    result = run_lib(tmp_path, script)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "fake.log").read_text()
    assert log.index("Traceback: first crash") < log.index("second run")
    assert log.count("----- make up:") == 2
    since = result.stdout.split("SINCE\n", 1)[1]
    assert "second run" in since
    assert "first crash" not in since


def test_make_up_makes_one_development_key_and_gives_the_services_only_its_hash(
    tmp_path: Path,
) -> None:
    script = (
        f"unset AUTH_API_KEY_HASHES AUTH_DISABLED; dev_api_key {sys.executable}\n"
        'echo "$DEV_API_KEY"; echo "$AUTH_API_KEY_HASHES"'
    )
    first, second = run_lib(tmp_path, script), run_lib(tmp_path, script)
    assert first.returncode == 0, first.stderr
    key, entry = first.stdout.split()
    assert second.stdout == first.stdout, "the key is kept in the run directory and reused"
    assert (tmp_path / "dev-api-key").read_text().strip() == key
    assert (tmp_path / "dev-api-key").stat().st_mode & 0o077 == 0
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert entry == f"{digest}=contacts:import,contacts:read,contacts:write"
    assert key not in entry


def test_make_up_makes_no_key_when_keys_are_configured_or_auth_is_off(tmp_path: Path) -> None:
    for setting in ("AUTH_API_KEY_HASHES=x", "AUTH_DISABLED=true"):
        done = run_lib(tmp_path, f'{setting}; dev_api_key {sys.executable}; echo "[$DEV_API_KEY]"')
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
    assert not (tmp_path / "dev-api-key").exists()


def run_up(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``deploy/local/up.sh`` with ``settings`` as its ``.env`` (every port a free one) and a
    run directory of its own."""
    ports = {
        key: str(free_port())
        for key in ("COMMAND_API_PORT", "QUERY_API_PORT", "SQS_PORT", "WORKER_METRICS_PORT")
    }
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**ports, **settings}.items()))
    return subprocess.run(
        [str(ROOT / "deploy" / "local" / "up.sh")],
        env={
            **os.environ,
            "CONTACTS_ENV_FILE": str(env_file),
            "CONTACTS_RUN_DIR": str(tmp_path / "run"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("mode", ["auto", "never"])
def test_an_address_set_in_env_that_does_not_answer_is_an_error_not_a_fallback(
    tmp_path: Path, mode: str
) -> None:
    port = free_port()
    result = run_up(
        tmp_path,
        {
            "EMBEDDED_SERVERS": mode,
            "DATABASE_URL": f"postgresql+psycopg2://root@127.0.0.1:{port}/contacts",
        },
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"PostgreSQL does not answer at 127.0.0.1:{port} (DATABASE_URL" in result.stderr
    assert "Started embedded" not in result.stdout
    assert list((tmp_path / "run").glob("*.pid")) == [], "nothing may be started"


def test_embedded_servers_always_refuses_an_address_of_another_machine(tmp_path: Path) -> None:
    result = run_up(
        tmp_path,
        {
            "EMBEDDED_SERVERS": "always",
            "DATABASE_URL": f"postgresql+psycopg2://root@127.0.0.1:{free_port()}/contacts",
            "REDIS_URL": "redis://cache.example.com:6379/0",
        },
    )

    assert result.returncode == 1
    assert "starts Redis on this machine, but REDIS_URL names cache.example.com" in result.stderr
    assert list((tmp_path / "run").glob("*.pid")) == []


def test_an_unknown_embedded_servers_value_is_an_error(tmp_path: Path) -> None:
    result = run_up(tmp_path, {"EMBEDDED_SERVERS": "sometimes"})

    assert result.returncode == 1
    assert "EMBEDDED_SERVERS must be auto, always or never, not 'sometimes'" in result.stderr


def plan_for(run_dir: Path, mode: str, port: int, default_port: int) -> str:
    """What ``server_plan`` (deploy/local/embedded.sh) decides for PostgreSQL at 127.0.0.1:port
    when the default address is 127.0.0.1:default_port."""
    done = run_lib(
        run_dir,
        f'root="{ROOT}"; bin="{ROOT}/.venv/bin"; source "{ROOT}/deploy/local/embedded.sh"\n'
        f"EMBEDDED_SERVERS={mode}; server_plan postgres PostgreSQL DATABASE_URL 127.0.0.1 "
        f'{port} 127.0.0.1:{default_port}; echo "plan=$plan"',
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().rsplit("plan=", 1)[1]


def test_auto_starts_an_embedded_server_only_where_nothing_answers_at_the_default_address(
    tmp_path: Path, squatter: int
) -> None:
    silent = free_port()
    assert plan_for(tmp_path, "auto", silent, silent) == "embedded"
    assert plan_for(tmp_path, "auto", squatter, squatter) == "external"
    assert plan_for(tmp_path, "never", squatter, squatter) == "external"
    assert plan_for(tmp_path, "always", silent, squatter) == "embedded"


def test_always_refuses_an_address_another_server_answers_at(tmp_path: Path, squatter: int) -> None:
    done = run_lib(
        tmp_path,
        f'root="{ROOT}"; bin="{ROOT}/.venv/bin"; source "{ROOT}/deploy/local/embedded.sh"\n'
        f"EMBEDDED_SERVERS=always; server_plan redis Redis REDIS_URL 127.0.0.1 {squatter} x",
    )

    assert done.returncode == 1
    assert f"another server already answers at 127.0.0.1:{squatter} (REDIS_URL)" in done.stderr


def test_make_up_says_how_to_make_a_key_for_a_second_workspace(tmp_path: Path) -> None:
    script = (
        f"unset AUTH_API_KEY_HASHES AUTH_DISABLED; dev_api_key {sys.executable}\n"
        "second_workspace_help"
    )
    done = run_lib(tmp_path, script)
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    (command,) = [line for line in lines if "keygen new --workspace acme" in line]
    (setting,) = [line for line in lines if line.startswith("AUTH_API_KEY_HASHES=")]
    # Follow the instructions: run the command as printed, put its entry where the line says.
    made = subprocess.run(
        command.split(), cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    key, entry = made.stdout.split()
    value = setting.removeprefix("AUTH_API_KEY_HASHES=").strip("'")
    value = value.replace("<the entry printed for acme>", entry)
    workspaces = {e.digest: e.workspace for e in parse_api_key_hashes(value)}
    dev_key = (tmp_path / "dev-api-key").read_text().strip()
    assert workspaces == {
        hashlib.sha256(dev_key.encode()).hexdigest(): "default",
        hashlib.sha256(key.encode()).hexdigest(): "acme",
    }


def test_without_authentication_every_request_is_in_the_default_workspace(tmp_path: Path) -> None:
    done = run_lib(tmp_path, "AUTH_DISABLED=true; second_workspace_help")
    assert done.returncode == 0, done.stderr
    assert "none but default" in done.stdout
    assert "keygen" not in done.stdout


def test_make_up_refuses_one_rate_limit_routes_value_for_both_apis(tmp_path: Path) -> None:
    result = run_up(tmp_path, {"RATE_LIMIT_ROUTES": '\'{"contacts.get_contact": "5/minute"}\''})

    assert result.returncode == 1, result.stdout + result.stderr
    assert "set COMMAND_RATE_LIMIT_ROUTES and QUERY_RATE_LIMIT_ROUTES" in result.stderr
    assert list((tmp_path / "run").glob("*.pid")) == [], "nothing may be started"
