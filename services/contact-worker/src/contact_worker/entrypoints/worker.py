"""``contact-worker``: start the Celery worker with settings from the environment.

The main process, before Celery forks its pool: JSON logs for every logger (Celery is told not
to set up logging), Prometheus multi-process mode in a private samples directory (removed at
exit), ``/metrics`` on ``WORKER_METRICS_ADDR:WORKER_METRICS_PORT`` (the aggregate of the main
process and every pool child) and the queue depth poller.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

import click
from celery import Celery
from celery.bin.celery import celery as celery_command
from celery.signals import setup_logging
from prometheus_client import start_http_server

from contact_worker import bootstrap
from contact_worker.entrypoints.celery_app import create_celery
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.settings import Settings
from contacts_infra.malloc_arenas import cap_malloc_arenas
from contacts_telemetry.logs import configure_logging, get_logger
from contacts_telemetry.metrics import (
    MULTIPROC_ENV,
    MetricsRegistry,
    create_multiprocess_dir,
    remove_multiprocess_dir,
    use_multiprocess_dir,
)

SERVICE = "contact-worker"
log = get_logger("contact_worker")


def main(argv: list[str] | None = None) -> None:
    """Run ``celery worker``; extra arguments (``-c 4 --pool prefork``) are passed through."""
    cap_malloc_arenas()  # before any thread starts; the pool processes inherit it
    settings = bootstrap.load_settings()
    configure_logging(SERVICE, level=settings.log_level)
    setup_logging.connect(_keep_our_logging, weak=False)
    _prepare_metrics_dir()
    metrics = WorkerMetrics(MetricsRegistry())
    app = create_celery(settings, metrics=metrics)
    serve_metrics(settings, metrics)
    args = sys.argv[1:] if argv is None else argv
    log.info("worker starting", queue=settings.queue_name, arguments=" ".join(args))
    # --quiet: no banner on stdout, so every line the worker writes is JSON.
    sys.exit(run_celery(app, ["--quiet", "worker", "--loglevel", settings.log_level, *args]))


def run_celery(app: Celery, argv: list[str]) -> int:
    """Run the ``celery`` command line on ``app``; returns its exit status.

    ``Celery.worker_main`` (and ``start``) drop the status that click returns when the worker
    stops on an "Unrecoverable error" (a missing queue, say), so the process exited 0 and its
    supervisor took it for a clean stop and never restarted it.
    """
    celery_command.params[0].default = app
    try:
        status = celery_command.main(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exit_:
        status = exit_.exit_code
    finally:
        celery_command.params[0].default = None
    return status if isinstance(status, int) else 0


def _keep_our_logging(**_: Any) -> None:
    """Celery's ``setup_logging`` receiver: with one connected Celery leaves logging alone."""


def _prepare_metrics_dir() -> None:
    given = os.environ.get(MULTIPROC_ENV)
    if given and os.path.isdir(given):
        use_multiprocess_dir(given)
        return
    path = create_multiprocess_dir(SERVICE)
    main_pid = os.getpid()

    def remove() -> None:
        if os.getpid() == main_pid:  # pool children run atexit handlers too
            remove_multiprocess_dir(path)

    atexit.register(remove)


def serve_metrics(settings: Settings, metrics: WorkerMetrics) -> None:
    """Serve ``/metrics`` from this (the main) process and start the queue depth poller.

    A port that cannot be bound is logged and skipped: the worker still applies events.
    """
    if settings.metrics_port == 0:
        return
    try:
        start_http_server(
            settings.metrics_port,
            addr=settings.metrics_addr,
            registry=metrics.registry.exposition_registry(),
        )
    except OSError as exc:
        log.error("metrics server not started", port=settings.metrics_port, error=str(exc))
        return
    bootstrap.queue_depth_poller(settings, metrics).start()


if __name__ == "__main__":
    main()
