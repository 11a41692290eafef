"""Per-contact ordering keys: a hybrid logical clock (HLC).

docs/architecture.md §5.3: each event carries a ``sequence`` so the worker can put a contact's
events in the
order the command API accepted them, whatever order SQS and Celery deliver them in. A sequence
is the HLC reading of the command API process that accepted the command, written as
``"<µs since epoch, 16 hex>.<node>"``.
Comparing two sequences as strings compares them as (time, node): fixed-width hex keeps the
lexicographic and numeric orders equal until the year 10889.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

SEQUENCE_PATTERN = r"^[0-9a-f]{16}\.[0-9a-z]{1,16}$"


class HybridLogicalClock:
    """A monotonic clock in microseconds that never goes backwards within a process.

    ``now_us`` returns the wall clock in µs (injected so tests can drive it); ``node`` tells two
    processes apart when they read the same microsecond. Thread-safe.
    """

    def __init__(self, now_us: Callable[[], int] | None = None, node: str | None = None) -> None:
        self._now_us = now_us or (lambda: time.time_ns() // 1000)
        self._node = node or secrets.token_hex(4)
        self._last = 0
        self._lock = threading.Lock()

    @property
    def node(self) -> str:
        return self._node

    def observe(self, sequence: str) -> None:
        """Move the clock past ``sequence`` (an HLC receive event).

        Later readings then sort after it.
        """
        micros = int(sequence.split(".", 1)[0], 16)
        with self._lock:
            self._last = max(self._last, micros)

    def next(self) -> str:
        """Return a sequence strictly greater than every one this clock returned or observed."""
        with self._lock:
            self._last = max(self._now_us(), self._last + 1)
            return f"{self._last:016x}.{self._node}"


def sequence_block(first: str, count: int) -> list[str]:
    """``count`` sequences from ``first`` (a sequence of this module), one µs apart on its
    node: ``first`` itself, then the next ``count - 1`` microseconds. The same list for the same
    ``first``, so an import retried from its stored first sequence gives each record the place
    it had. The caller's clock must return nothing below the last one afterwards (a clock that
    gave ``first`` does so after ``count - 1`` more readings). Raises ``ValueError`` for a
    malformed ``first``."""
    micros, node = first.split(".", 1)
    start = int(micros, 16)
    return [f"{start + offset:016x}.{node}" for offset in range(count)]
