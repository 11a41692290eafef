"""A process started with an invalid variable stops at once with one line naming it
(docs/architecture.md §9): the three services, started as their real entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

CASES = [
    pytest.param(
        [sys.executable, "-c", "from command_api.entrypoints.app import create_app; create_app()"],
        {"MAX_REQUEST_BYTES": "1MB"},
        "command-api: invalid settings: MAX_REQUEST_BYTES='1MB'",
        id="command-api",
    ),
    pytest.param(
        [sys.executable, "-c", "from query_api.entrypoints.app import create_app; create_app()"],
        {"QUERY_DB_POOL_SIZE": "0"},
        "query-api: invalid settings: QUERY_DB_POOL_SIZE='0': Input should be greater than 0",
        id="query-api",
    ),
    pytest.param(
        [str(BIN / "contact-worker"), "--pool", "solo"],
        {"SQS_MAX_RECEIVE_COUNT": "five"},
        "contact-worker: invalid settings: SQS_MAX_RECEIVE_COUNT='five'",
        id="worker",
    ),
    pytest.param(
        [str(BIN / "contact-worker-admin"), "migrate"],
        {"TASK_TIME_LIMIT_S": "120"},
        "contact-worker: invalid settings: Need DB_LOCK_TIMEOUT_MS < ",
        id="worker-admin",
    ),
]


@pytest.mark.parametrize(("command", "environ", "first_line"), CASES)
def test_an_invalid_variable_stops_the_process_with_one_line(
    command: list[str], environ: dict[str, str], first_line: str
) -> None:
    done = subprocess.run(
        command,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(first_line)
