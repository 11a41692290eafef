"""gunicorn server hooks and log configuration shared by both APIs' gunicorn config modules.

A service's config module does::

    from contacts_http.gunicorn_hooks import child_exit, logconfig, on_exit, on_starting

    on_starting = on_starting("query-api")
    logconfig_dict = logconfig("query-api", loglevel)

- ``on_starting`` (master, before any worker forks): a private, empty directory for the
  Prometheus samples of this server (``PROMETHEUS_MULTIPROC_DIR``), unless the environment
  already names one (then it must be private to this server and empty: e.g. an ``emptyDir``).
- ``child_exit`` (master, after a worker exits): ``multiprocess.mark_process_dead``.
- ``on_exit`` (master, at shutdown): the directory is removed if this server created it.
- ``logconfig``: gunicorn's error and access logs, and every other logger, as JSON lines
  (``contacts_telemetry.logs.json_formatter``) on stderr; ``PAYLOAD_LOGGERS`` never at DEBUG.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from contacts_telemetry.logs import PAYLOAD_LOGGERS
from contacts_telemetry.metrics import (
    MULTIPROC_ENV,
    create_multiprocess_dir,
    mark_process_dead,
    remove_multiprocess_dir,
    use_multiprocess_dir,
)

#: The access log line: method, path *without* the query string (a search or filter value
#: may be personal data), status, bytes, duration in µs, request id. No bodies, no headers.
ACCESS_LOG_FORMAT = (
    "%(m)s %(U)s %(s)s %(B)s %(D)sus request_id=%({x-request-id}o)s cache=%({x-cache}o)s"
)
_CREATED: dict[str, str] = {}


def on_starting(service: str) -> Callable[[Any], None]:
    """Return gunicorn's ``on_starting`` hook for ``service`` (see module doc)."""

    def hook(_server: Any) -> None:
        given = os.environ.get(MULTIPROC_ENV)
        if given and os.path.isdir(given):
            use_multiprocess_dir(given)
        else:
            _CREATED["path"] = create_multiprocess_dir(service)

    return hook


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: drop the exited worker's live gauges."""
    mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """gunicorn's ``on_exit`` hook: remove the samples directory this server created."""
    path = _CREATED.pop("path", None)
    if path:
        remove_multiprocess_dir(path)


def logconfig(service: str, level: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: every logger as JSON lines on stderr at ``level``."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "contacts_telemetry.logs.json_formatter", "service": service},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            # Their DEBUG lines carry bodies (personal data): INFO at least.
            **{
                name: {"level": "INFO" if level == "DEBUG" else level, "propagate": True}
                for name in PAYLOAD_LOGGERS
            },
        },
    }
