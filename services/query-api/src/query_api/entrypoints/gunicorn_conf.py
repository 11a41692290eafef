"""gunicorn settings of the query API (a gunicorn config module; values are read at start-up).

Run::

    gunicorn -c python:query_api.entrypoints.gunicorn_conf 'query_api.entrypoints.app:create_app()'

Threaded workers (``gthread``): a request mostly waits on Redis or PostgreSQL, and threads of
one process share its pools and its single-flight reads. ``--preload`` is safe: nothing connects
at import or in ``create_app``, and the engine drops an inherited pool in a forked child
(``adapters.sql_engine``) while redis-py's pool checks the process id. ``timeout`` kills a worker
that stops heartbeating; every dependency call is bounded well below it.

Environment: ``QUERY_API_BIND`` (``127.0.0.1:8002``), ``QUERY_API_WORKERS`` (2),
``QUERY_API_THREADS`` (4), ``QUERY_API_LOG_LEVEL`` (``info``).
"""

from __future__ import annotations

import os

bind = os.environ.get("QUERY_API_BIND", "127.0.0.1:8002")
workers = int(os.environ.get("QUERY_API_WORKERS", "2"))
threads = int(os.environ.get("QUERY_API_THREADS", "4"))
# gthread, answering gunicorn's own 414 and 431 as problems like the app's errors.
worker_class = "contacts_http.gunicorn_workers.ProblemThreadWorker"
timeout = 30
graceful_timeout = 20
keepalive = 5
worker_tmp_dir = "/dev/shm"
# gunicorn >= 25 opens a control socket at one per-user path by default, which a second gunicorn
# on the host (the command API, a test run) would take over; we do not use gunicornc.
control_socket_disable = True
loglevel = os.environ.get("QUERY_API_LOG_LEVEL", "info")
accesslog = "-"
# Request id (echoed by the app), status, bytes, duration in microseconds, cache outcome.
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(B)s %(D)sus request_id=%({x-request-id}o)s cache=%({x-cache}o)s'
)
_level = loglevel.upper()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "contacts_http.RequestIdLogFilter"}},
    "formatters": {
        "app": {
            "format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"
        },
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "app": {
            "class": "logging.StreamHandler",
            "formatter": "app",
            "filters": ["request_id"],
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"level": _level, "handlers": ["app"]},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": ["app"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}
