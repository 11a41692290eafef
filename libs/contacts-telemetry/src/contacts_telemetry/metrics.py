"""Prometheus metrics in multi-process mode (prometheus-client), shared by every service.

gunicorn workers and Celery's prefork children are separate processes, so each writes its
samples to memory-mapped files in one directory per service instance
(``PROMETHEUS_MULTIPROC_DIR``), and ``/metrics`` aggregates the files of every process
(``MultiProcessCollector``). The directory must be private to one server and empty at start:
the server's master process creates it (``create_multiprocess_dir``) before it forks, and
removes a dead child's live gauges (``mark_process_dead``).

Without that variable (unit tests, the Flask test client) samples stay in the process.

Metric objects are created by each service's metrics class on a ``MetricsRegistry`` built at
its composition root and injected where samples are taken; no metric is a module global.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Latency buckets in seconds: 1 ms to 10 s (HTTP requests, SQS sends, tasks).
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Event age buckets in seconds: 10 ms to 1 h (a backlog or a redelivery after a retry).
AGE_BUCKETS: Final = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip


def create_multiprocess_dir(service: str) -> str:
    """Create a new empty private directory for ``service``'s samples, export it as
    ``PROMETHEUS_MULTIPROC_DIR`` to this process and the children it forks from now on, and
    return its path. Call it in the master process before any worker forks."""
    path = tempfile.mkdtemp(prefix=f"{service}-metrics-")
    use_multiprocess_dir(path)
    return path


def use_multiprocess_dir(path: str) -> None:
    """Make metrics created from now on in this process write to ``path`` (multi-process
    mode). prometheus-client chooses its value class when it is imported; it is chosen again
    here, so the import order does not matter as long as no metric exists yet. The new class's
    lock is held across every fork (``hold_across_fork``)."""
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()
    hold_across_fork(values.ValueClass)


def hold_across_fork(value_class: type) -> bool:
    """Make the process-wide lock of prometheus-client's multi-process ``value_class`` safe
    across ``fork``: taken before, released after in both processes. Returns ``False`` when
    ``value_class`` has no such lock (single-process mode).

    Every sample of every metric of the process takes that one ``threading.Lock``
    (prometheus-client presumes no threads in multi-process mode). A process forked while
    another of its threads held it (the worker's queue depth poller, its metrics server, a
    gunicorn master's thread) got it held for good: its first sample waited forever, and in a
    Celery pool process every batch then failed at the soft time limit (CI case C13; forked
    200 times beside a thread setting gauges, 67 children hung). The lock is a closure cell of
    the class's methods, the one place prometheus-client keeps it.
    """
    cells = getattr(getattr(value_class, "inc", None), "__closure__", None) or ()
    locks = [c.cell_contents for c in cells if isinstance(c.cell_contents, _LOCK_TYPE)]
    if not locks:
        return False
    lock = locks[0]
    os.register_at_fork(
        before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release
    )
    return True


_LOCK_TYPE: Final = type(threading.Lock())


def multiprocess_dir() -> str | None:
    """The directory of this server's samples, or ``None`` in single-process mode."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of the dead process ``pid`` (gunicorn ``child_exit``, Celery's
    ``worker_process_shutdown``); counters and histograms of the process are kept."""
    path = multiprocess_dir()
    if path:
        _mark_process_dead(pid, path)


def remove_multiprocess_dir(path: str) -> None:
    """Delete ``path`` and its files when the server stops (``on_exit``); missing is fine."""
    shutil.rmtree(path, ignore_errors=True)


class MetricsRegistry:
    """Where a service's metric objects are registered, and how they are exposed.

    ``registry`` is given to every metric the service creates. ``render()`` returns the text
    exposition of the whole server: in multi-process mode the aggregate of every process's
    files (a fresh registry per scrape, as prometheus-client documents), else ``registry``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

    def exposition_registry(self) -> CollectorRegistry:
        """The registry a scrape reads (see class doc)."""
        path = multiprocess_dir()
        if path is None:
            return self.registry
        aggregate = CollectorRegistry()
        MultiProcessCollector(aggregate, path=path)
        return aggregate

    def render(self) -> bytes:
        """The Prometheus text format of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.exposition_registry())
