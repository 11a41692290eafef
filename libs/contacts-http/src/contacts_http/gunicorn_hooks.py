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
- ``AccessLogger`` (``logger_class``): gunicorn's logger, writing the ``ACCESS_LOG_FORMAT``
  line from the five values it names.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gunicorn import glogging

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


class AccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, whose access line is ``access_message``: the ``ACCESS_LOG_FORMAT``
    line built from the five values it names, where gunicorn builds ~40 atoms per request
    (every request and response header, every WSGI environ key, the time in two formats, the
    user of a Basic ``Authorization``) and formats the line through a case-insensitive
    mapping. The same text (a test compares them); with ``json_formatter``'s own rendering of
    access lines, 47 → 14 µs per line in-process (issue 13:
    access logging was ~100 µs of a cache hit's ~600 under the server). The app's gunicorn
    config sets ``access_log_format = ACCESS_LOG_FORMAT`` too, for tools that read it.
    """

    def access(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: dt.timedelta
    ) -> None:
        """Log the access line of one request (gunicorn calls it after the response)."""
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(access_message(resp, environ, request_time))
        except Exception:
            self.error(traceback.format_exc())


def access_message(resp: Any, environ: Mapping[str, Any], request_time: dt.timedelta) -> str:
    """``ACCESS_LOG_FORMAT`` for one request: method, path, status code, bytes sent (``None``
    when unknown, as gunicorn writes it), duration in µs, and the response's ``X-Request-ID``
    and ``X-Cache`` (``-`` when absent; the last one when repeated)."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    wanted = _headers(resp.headers, ("x-request-id", "x-cache"))
    micros = request_time.seconds * 1_000_000 + request_time.microseconds
    return (
        f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {status}"
        f" {getattr(resp, 'sent', None)} {micros}us"
        f" request_id={wanted['x-request-id']} cache={wanted['x-cache']}"
    )


def _headers(headers: Iterable[tuple[str, str]] | Any, names: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = dict.fromkeys(names, "-")
    for name, value in headers.items() if hasattr(headers, "items") else headers:
        key = name.lower()
        if key in found:
            found[key] = value
    return found


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
