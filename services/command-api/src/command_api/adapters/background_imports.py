"""Where an import's records are queued after its ``202``: threads of the command API process.

``ImportSlots`` bounds how many imports one process queues in the background at once
(``IMPORT_QUEUING_SLOTS``, 2): each holds its kept records on disk and two chunks of 250 events
in memory, and shares the process's SQS client and CPU with the requests. A request that finds
no free slot is answered 503 with ``Retry-After`` before its file is read
(``entrypoints.imports``), so the bound is back-pressure, not a queue of work that could grow
without limit.

The threads are those of a ``ThreadPoolExecutor`` made on first use, in the process that uses
it (never in a gunicorn master before it forks). Joining them at interpreter exit is too late:
by then no thread can be started for a send, and the import failed part-way. So a worker that
gunicorn stops (SIGTERM, its master gone) waits for them in its ``worker_exit`` hook
(``entrypoints.gunicorn_conf``, ``wait`` up to ``--graceful-timeout``), before the interpreter
shuts down; one killed before they end (SIGKILL, OOM) leaves their reports ``queuing`` without
a lease, which the query API answers as ``interrupted`` (docs/architecture.md §5.1).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class ImportSlots:
    """At most ``slots`` (≥ 1) background imports of this process at once.

    ``acquire`` takes a slot without waiting (``False`` when none is free); ``run`` runs a job
    on a thread of its own and gives its slot back when the job ends; ``release`` gives back a
    slot that no job will use. Thread-safe.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("at least one slot")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def acquire(self) -> bool:
        """Take a free slot; ``False`` at once when every slot is taken."""
        return self._free.acquire(blocking=False)

    def release(self) -> None:
        """Give back a slot taken by ``acquire`` that no job will use."""
        self._free.release()

    def run(self, job: Callable[[], object]) -> None:
        """Run ``job`` (in the caller's ``contextvars`` context: its request id stays on the
        log lines) on a background thread, then give its slot back. The job must not raise;
        if it does, the error is logged."""
        context = contextvars.copy_context()
        self._pool().submit(context.run, self._run_then_release, job)

    def _run_then_release(self, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:
            logger.exception("background import failed")
        finally:
            self._free.release()

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self.slots, thread_name_prefix="import-queue"
                )
            return self._executor

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds for every running job to end; return whether they
        did (tests, and a process that wants to stop cleanly)."""
        deadline = time.monotonic() + timeout_s
        taken = 0
        try:
            while taken < self.slots:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._free.acquire(timeout=remaining):
                    return False
                taken += 1
            return True
        finally:
            for _ in range(taken):
                self._free.release()
