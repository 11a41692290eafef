"""A real gunicorn serving ``libs/contacts-http/tests/buffering_echo_app`` with
``BufferingThreadWorker``, for the tests of the worker (``test_request_buffering_answers``,
``test_request_buffering_responses``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from support.processes import ROOT

#: Where ``buffering_echo_app`` is.
APP_DIR = ROOT / "libs" / "contacts-http" / "tests"


@contextmanager
def echo_server(
    log: Path, *, threads: int, env: dict[str, str], merge_stdout: bool = False
) -> Iterator[int]:
    """gunicorn (1 process, ``threads`` threads, ``env`` over this process's environment) on a
    free port, its stderr (and stdout with ``merge_stdout``) in ``log``; yields the port once it
    accepts connections, and stops the server after. Raises ``AssertionError`` with the log
    when it exits before that."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class=contacts_http.request_buffering.BufferingThreadWorker",
        "--workers=1",
        f"--threads={threads}",
        f"--bind=127.0.0.1:{port}",
        "--no-control-socket",
        f"--pythonpath={APP_DIR}",
        "buffering_echo_app:app",
    ]
    with log.open("wb") as output:
        stdout: int | IO[bytes] = output if merge_stdout else subprocess.DEVNULL
        stderr: int | IO[bytes] = subprocess.STDOUT if merge_stdout else output
        server = subprocess.Popen(argv, env={**os.environ, **env}, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)
