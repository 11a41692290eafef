"""The worker process reports an unrecoverable stop with a failing exit status, so its
supervisor (``deploy/local/supervise.sh``, Kubernetes) restarts it instead of taking it for a
clean stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_worker_whose_queue_does_not_exist_exits_with_a_failure(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **stack_env,
        "SQS_QUEUE_NAME": "no-such-queue.fifo",
        "SQS_QUEUE_URL": stack_env["SQS_QUEUE_URL"].rsplit("/", 1)[0] + "/no-such-queue.fifo",
        "WORKER_METRICS_PORT": "0",
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    worker = Path(sys.executable).with_name("contact-worker")

    done = subprocess.run(
        [str(worker), "--pool", "solo"], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode != 0, done.stderr[-2000:]
    assert "Unrecoverable error" in done.stderr + done.stdout
