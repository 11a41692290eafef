"""A pool process whose batch outlives the soft time limit says where it was, then retires
(CI case C13; docs/architecture.md §8, "Soft time limit").

Billiard ends a batch at ``TASK_SOFT_TIME_LIMIT_S`` by sending its pool process ``SIGUSR1``,
whose handler raises ``SoftTimeLimitExceeded`` wherever the process is. Every PostgreSQL and
Redis wait of a batch is bounded well below that limit, so a batch that reaches it waits on
something else, most likely a lock, and an exception raised asynchronously may leave a lock
held (or the lock was already held for good: one inherited locked across the fork). Every
later batch of that process would then wait on it until its own soft limit, for as long as the
process lives. So, in the pool process:

1. ``watching`` wraps billiard's handler for the length of a batch: when the signal comes, it
   records the interrupted frame's stack and every thread's, then lets billiard's handler
   raise. A signal that comes when no batch runs (the batch ended as the main process sent it)
   is dropped: nothing is left to interrupt, and raising there would break billiard's own
   loop.
2. After the batch, ``run_batch`` (``entrypoints.batches``) logs ``batch past the soft time
   limit`` with those stacks and raises ``PoolProcessRetired`` carrying the batch's verdicts.
   It is a ``SystemExit``, which billiard treats as the job's own (billiard#427): it sends it
   to the main process as the job's result, then the process exits instead of taking another
   job, and the pool forks a fresh one. The main process reads the verdicts out of it, so the
   messages are acked or rejected exactly as if the batch had returned them.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from billiard.pool import soft_timeout_sighandler

from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")

#: Billiard's soft time limit signal (``billiard.pool.SIG_SOFT_TIMEOUT``); none on Windows.
SOFT_LIMIT_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)
#: Most frames kept per stack (innermost): enough to name a lock and who took it.
MAX_FRAMES = 40


class PoolProcessRetired(SystemExit):
    """Raised by a pool job whose batch hit the soft time limit, with the batch's verdicts
    (``verdicts``: one ``True``/``False`` per message, as ``run_batch`` returns them). Billiard
    reports it as the job's result, then the pool process exits (module doc, step 2)."""

    def __init__(self, verdicts: list[bool]) -> None:
        super().__init__(verdicts)
        self.verdicts = verdicts


@dataclass
class SoftLimitWatch:
    """What the soft time limit interrupted in one batch: ``stack`` (the interrupted frame's
    stack, outermost first, ``file:line in function: source`` each) and ``threads`` (thread
    name → stack of every thread of the process, the interrupted one included). Both empty
    while the limit has not been hit."""

    stack: list[str] = field(default_factory=list)
    threads: dict[str, list[str]] = field(default_factory=dict)
    fired: bool = False


_current: SoftLimitWatch | None = None


@contextmanager
def watching() -> Iterator[SoftLimitWatch]:
    """Watch the soft time limit for the ``with`` block (one batch). Only in a billiard pool
    process, where billiard's ``soft_timeout_sighandler`` handles the signal; elsewhere (the
    solo pool, where Celery's main process uses ``SIGUSR1`` to dump its stacks, or another
    thread) the watch stays empty."""
    global _current
    watch = SoftLimitWatch()
    if not _install():
        yield watch
        return
    _current = watch
    try:
        yield watch
    finally:
        _current = None


def _install() -> bool:
    """Put ``_on_soft_limit`` in front of billiard's handler (billiard installs its own again
    after each fork, so this runs at every batch); ``False`` where billiard's is not there."""
    if SOFT_LIMIT_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return False
    handler = signal.getsignal(SOFT_LIMIT_SIGNAL)
    if handler is soft_timeout_sighandler:
        signal.signal(SOFT_LIMIT_SIGNAL, _on_soft_limit)
        return True
    return handler is _on_soft_limit


def _on_soft_limit(signum: int, frame: FrameType | None) -> None:
    """The signal handler (module doc, step 1). Raises ``SoftTimeLimitExceeded`` (billiard's
    handler) when a batch runs; otherwise returns."""
    watch = _current
    if watch is None:
        return
    watch.fired = True
    watch.stack = _frames(frame)
    names = {t.ident: t.name for t in threading.enumerate()}
    watch.threads = {
        names.get(ident, str(ident)): _frames(top) for ident, top in sys._current_frames().items()
    }
    soft_timeout_sighandler(signum, frame)


def _frames(frame: FrameType | None) -> list[str]:
    """``frame``'s stack, outermost first, at most ``MAX_FRAMES`` innermost frames."""
    if frame is None:
        return []
    summary = traceback.extract_stack(frame, limit=MAX_FRAMES)
    return [f"{f.filename}:{f.lineno} in {f.name}: {f.line or ''}".rstrip() for f in summary]


def report(watch: SoftLimitWatch, *, events: int) -> None:
    """Log where the batch of ``events`` messages was when the soft limit interrupted it:
    ``interrupted_at`` (``watch.stack``; not ``stack``, which structlog renders itself) and
    ``threads``; file, line, function and source line only, never a value."""
    log.error(
        "batch past the soft time limit; the pool process retires",
        events=events,
        interrupted_at=watch.stack,
        threads=watch.threads,
    )
