"""Multi-process metrics across ``fork`` while another thread takes samples (CI case C13)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

#: Forks a child 150 times while a thread of the parent sets gauges without a pause; each
#: child takes one sample under a 2 s alarm. Prints how many children the alarm killed.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from prometheus_client import CollectorRegistry, Counter, Gauge
    from contacts_telemetry.metrics import use_multiprocess_dir

    use_multiprocess_dir(sys.argv[1])
    registry = CollectorRegistry()
    depth = Gauge("depth", "d", ["queue"], registry=registry, multiprocess_mode="livesum")
    done = Counter("done", "d", registry=registry)
    running = True

    def poll():
        i = 0
        while running:
            depth.labels("main").set(i)
            i += 1

    threading.Thread(target=poll, daemon=True).start()
    hung = 0
    for _ in range(150):
        pid = os.fork()
        if pid == 0:
            signal.alarm(2)
            done.inc()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        hung += os.WIFSIGNALED(status)
    running = False
    print(hung)
    """
)


def test_a_child_forked_while_a_thread_takes_a_sample_can_take_its_own(tmp_path: Path) -> None:
    # Without the lock held across the fork, about a third of the children hung for good.
    answer = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert answer.stdout.strip() == "0", answer.stdout + answer.stderr
