"""A batch interrupted by the soft time limit in a pool process (``entrypoints.soft_limit``)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from billiard.pool import soft_timeout_sighandler

from contact_worker.entrypoints import soft_limit
from contact_worker.entrypoints.batches import run_batch

_held = threading.Lock()


@pytest.fixture(autouse=True)
def _as_a_pool_process() -> Iterator[None]:
    """Billiard's soft limit handler, as billiard installs it after forking a pool process."""
    assert soft_limit.SOFT_LIMIT_SIGNAL is not None
    before = signal.signal(soft_limit.SOFT_LIMIT_SIGNAL, soft_timeout_sighandler)
    yield
    signal.signal(soft_limit.SOFT_LIMIT_SIGNAL, before)


def _task(run: Any) -> Any:
    return SimpleNamespace(dependencies=SimpleNamespace(run_batch=run))


def _wait_on_a_held_lock(items: list[Any]) -> list[bool]:
    """A batch that waits on a lock nobody releases; the soft limit's signal comes 0.2 s in,
    from another thread, as billiard's main process sends it."""
    assert soft_limit.SOFT_LIMIT_SIGNAL is not None
    threading.Timer(0.2, os.kill, (os.getpid(), soft_limit.SOFT_LIMIT_SIGNAL)).start()
    _held.acquire()
    try:
        _held.acquire(timeout=5)
    finally:
        _held.release()
    return [True] * len(items)


def test_a_batch_hitting_the_soft_limit_says_where_it_was_and_retires_its_process() -> None:
    items = [({"id": "e1"}, 1), ({"id": "e2"}, 1)]
    started = time.monotonic()
    with pytest.raises(soft_limit.PoolProcessRetired) as retired:
        run_batch(_task(_wait_on_a_held_lock), items)
    assert time.monotonic() - started < 2  # interrupted, not the lock's 5 s
    assert retired.value.verdicts == [False, False]  # every message redelivered
    assert isinstance(retired.value, SystemExit)  # billiard: the job's own exit, reported


def test_the_watch_records_the_interrupted_frame_and_every_thread() -> None:
    with soft_limit.watching() as watch, pytest.raises(SoftTimeLimitExceeded):
        _wait_on_a_held_lock([])
    assert watch.fired
    assert watch.stack[-1].endswith("in _wait_on_a_held_lock: _held.acquire(timeout=5)")
    assert "in test_the_watch_records_the_interrupted_frame_and_every_thread" in watch.stack[-2]
    assert threading.main_thread().name in watch.threads


def test_a_batch_within_the_limit_returns_its_verdicts_and_a_late_signal_is_dropped() -> None:
    assert run_batch(_task(lambda items: [True] * len(items)), [({}, 1)]) == [True]
    assert soft_limit.SOFT_LIMIT_SIGNAL is not None
    os.kill(os.getpid(), soft_limit.SOFT_LIMIT_SIGNAL)  # the batch ended as it was sent
    time.sleep(0.05)  # handled on the next bytecodes: nothing is raised


def test_outside_a_billiard_pool_process_nothing_is_watched() -> None:
    assert soft_limit.SOFT_LIMIT_SIGNAL is not None
    signal.signal(soft_limit.SOFT_LIMIT_SIGNAL, signal.SIG_IGN)  # e.g. the solo pool's
    with soft_limit.watching() as watch:
        assert signal.getsignal(soft_limit.SOFT_LIMIT_SIGNAL) is signal.SIG_IGN
    assert not watch.fired
