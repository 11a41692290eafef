"""A watchdog in the worker's main process: a worker that stopped receiving exits non-zero.

Case C15: after SQS comes back from an outage, kombu's asynchronous receive loop can stay dead
while the process looks healthy. The heartbeat (``adapters.sqs_heartbeat``) goes stale then;
this thread notices and makes the worker exit with a failure code so its supervisor (Kubernetes,
or ``deploy/local/supervise.sh``) starts a fresh one. Unacknowledged messages come back after
their visibility timeout: nothing is lost. The liveness probe (``check-alive``) reads the same
heartbeat, so either mechanism alone restarts a stalled worker.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import signal
import threading
import time

log = logging.getLogger("contact_worker.watchdog")


def heartbeat_age_s(path: str) -> float | None:
    """Seconds since the heartbeat at ``path`` was set, or ``None`` when there is none."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def start_watchdog(heartbeat_file: str, max_age_s: float, *, period_s: float = 5.0) -> None:
    """Check the heartbeat every ``period_s`` seconds; past ``max_age_s`` seconds, kill the
    pool's processes and exit at once with status 1.

    Not a Celery shutdown: a stalled consumer's warm or cold shutdown was seen to hang in
    interpreter finalization, where this daemon thread no longer runs. Tasks in flight are
    abandoned; their messages were not acknowledged (late acks), so SQS delivers them again
    after the visibility timeout and the inbox makes any already committed one a no-op.
    """

    def watch() -> None:
        while True:
            time.sleep(period_s)
            age = heartbeat_age_s(heartbeat_file)
            if age is not None and age <= max_age_s:
                continue
            log.critical(
                "no SQS receive for %s s (limit %s s): the consumer is stalled; exiting",
                "ever" if age is None else f"{age:.0f}",
                max_age_s,
            )
            for child in _children(os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            os._exit(1)

    threading.Thread(target=watch, name="heartbeat-watchdog", daemon=True).start()


def _children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found: list[int] = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with contextlib.suppress(OSError), open(task) as listing:
            found.extend(int(p) for p in listing.read().split())
    return found
