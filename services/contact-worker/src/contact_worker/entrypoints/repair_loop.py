"""The repair of owed cache entries in each pool process (``service_layer.cache_repair``).

Started by the ``worker_process_init`` signal, after the fork, so it uses the pool process's own
ports (``bootstrap.Runtime``). It costs nothing while nothing is owed: a pass runs when the
process starts (debts a process that died left behind), when this process records a debt, and
every ``SWEEP_S`` (a debt recorded by a process that died after recording it); once a pass
finds entries owed it runs again every ``cache_repair_interval_s`` until none is. A repair is
idempotent (guarded writes, a settle that keeps newer debts), so passes of two processes that
overlap only repeat work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from contact_worker.bootstrap import Runtime
from contact_worker.service_layer.cache_repair import REPAIR_BATCH
from contact_worker.settings import Settings
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")

#: Seconds between two passes while this process knows of no debt.
SWEEP_S: Final = 60.0


class RepairLoop:
    """Calls ``repair`` (one pass: returns how many entries were owed, at most ``batch``) in a
    daemon thread: once at start, then whenever ``wake`` is set (a debt was recorded) or
    ``sweep_s`` passed; while passes find entries owed or fail (Redis or PostgreSQL down), again
    every ``interval_s`` (at once while they come back full). A failing pass is logged once per
    outage, with the recovery."""

    def __init__(
        self,
        repair: Callable[[], int],
        interval_s: float,
        wake: threading.Event,
        *,
        batch: int = REPAIR_BATCH,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self._repair = repair
        self._interval_s = interval_s
        self._wake = wake
        self._batch = batch
        self._sweep_s = sweep_s
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
        self._wake.set()

    def run_once(self) -> int | None:
        """One pass; returns how many entries were owed, ``None`` when it failed."""
        try:
            owed = self._repair()
        except Exception as exc:
            if not self._failing:
                log.warning("owed cache entries not repaired yet", error=str(exc))
            self._failing = True
            return None
        if self._failing:
            log.info("owed cache entries repair working again")
        self._failing = False
        return owed

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a debt recorded during it wakes the next
            owed = self.run_once()
            if owed is not None and owed >= self._batch:
                continue
            if owed is None or owed > 0:
                self._stop.wait(self._interval_s)
            else:
                self._wake.wait(self._sweep_s)


def start_in_pool_process(*, runtime: Runtime, settings: Settings, **_: Any) -> None:
    """``worker_process_init`` receiver: start this pool process's ``RepairLoop`` (none when
    its ports record no debts, as fakes do)."""
    repairer = runtime.ports().cache_repairer
    if repairer is not None:
        RepairLoop(repairer.repair, settings.cache_repair_interval_s, repairer.recorded).start()
