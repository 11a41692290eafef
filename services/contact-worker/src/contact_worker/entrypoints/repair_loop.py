"""The repair of owed cache entries in each pool process (``service_layer.cache_repair``).

Started by the ``worker_process_init`` signal, after the fork, so it uses the pool process's own
ports (``bootstrap.Runtime``). Every pool process runs one: a repair is idempotent (guarded
writes, a settle that keeps newer debts), so two that overlap only repeat work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.cache_repair import REPAIR_BATCH
from contact_worker.settings import Settings
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")


class RepairLoop:
    """Calls ``repair`` (one pass: returns how many entries were owed, at most ``batch``) in a
    daemon thread: again at once while passes come back full, else every ``interval_s``
    seconds. A failed pass (Redis or PostgreSQL down) is logged once per outage, with the
    recovery, and tried again after ``interval_s``."""

    def __init__(
        self, repair: Callable[[], int], interval_s: float, batch: int = REPAIR_BATCH
    ) -> None:
        self._repair = repair
        self._interval_s = interval_s
        self._batch = batch
        self._stop = threading.Event()
        self._failing = False

    def start(self) -> threading.Thread:
        """Start the thread; returns it."""
        thread = threading.Thread(target=self._run, name="cache-repair", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the thread to stop after its current pass."""
        self._stop.set()

    def run_once(self) -> int:
        """One pass; returns how many entries were owed (0 after a failure)."""
        try:
            owed = self._repair()
        except Exception as exc:
            if not self._failing:
                log.warning("owed cache entries not repaired yet", error=str(exc))
            self._failing = True
            return 0
        if self._failing:
            log.info("owed cache entries repair working again")
        self._failing = False
        return owed

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.run_once() < self._batch:
                self._stop.wait(self._interval_s)


def start_in_pool_process(*, runtime: Runtime, settings: Settings, **_: Any) -> None:
    """``worker_process_init`` receiver: start this pool process's ``RepairLoop`` (none when
    its ports record no debts, as fakes do)."""
    repair = runtime.ports().repair_cache
    if repair is not None:
        RepairLoop(repair, settings.cache_repair_interval_s).start()
