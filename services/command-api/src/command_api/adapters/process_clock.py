"""One hybrid logical clock per process, surviving gunicorn's fork.

Two processes must never share an HLC node id: with ``--preload`` (or any fork after the app
was built) a clock made in the parent would be copied into every worker, and two workers could
then return the same sequence for one contact. The clock is therefore made on first use in each
process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from contacts_domain import HybridLogicalClock


class ProcessClock:
    """The ``SequenceClock`` port on this process's own ``HybridLogicalClock``: ``next`` and
    ``observe`` are the clock's, the clock made on first use in each process (module doc).

    ``factory`` makes a clock (tests inject one with a fixed node and time source).
    """

    def __init__(self, factory: Callable[[], HybridLogicalClock] = HybridLogicalClock) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._clock: HybridLogicalClock | None = None

    def next(self) -> str:
        """``HybridLogicalClock.next`` of this process's clock."""
        return self._own().next()

    def observe(self, sequence: str) -> None:
        """``HybridLogicalClock.observe`` of this process's clock. Raises ``ValueError`` for a
        malformed ``sequence``."""
        self._own().observe(sequence)

    def _own(self) -> HybridLogicalClock:
        with self._lock:
            if self._clock is None or self._pid != os.getpid():
                self._clock = self._factory()
                self._pid = os.getpid()
            return self._clock
