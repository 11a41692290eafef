"""gunicorn settings of the query API (a gunicorn config module; values are read at start-up).

Run::

    gunicorn -c python:query_api.entrypoints.gunicorn_conf 'query_api.entrypoints.app:create_app()'

Threaded workers (``gthread``): a request mostly waits on Redis or PostgreSQL, and threads of
one process share its pools and its single-flight reads. ``--preload`` is safe: nothing connects
at import or in ``create_app``, and the engine drops an inherited pool in a forked child
(``bootstrap.build_engine``) while redis-py's pool checks the process id. ``timeout`` kills a worker
that stops heartbeating; every dependency call is bounded well below it.

Environment: ``QUERY_API_BIND`` (``127.0.0.1:8002``), ``QUERY_API_WORKERS`` (2),
``QUERY_API_THREADS`` (4), ``QUERY_API_LOG_LEVEL`` (``info``).
"""

from __future__ import annotations

import os

from contacts_http import gunicorn_hooks

bind = os.environ.get("QUERY_API_BIND", "127.0.0.1:8002")
workers = int(os.environ.get("QUERY_API_WORKERS", "2"))
threads = int(os.environ.get("QUERY_API_THREADS", "4"))
# gthread whose loop reads each request whole, under deadlines, before a thread runs it (slow
# clients hold no thread; /healthz has its own), answering gunicorn's 414 and 431 as problems.
worker_class = "contacts_http.request_buffering.BufferingThreadWorker"
timeout = 30
graceful_timeout = 20
keepalive = 5
worker_tmp_dir = "/dev/shm"
# gunicorn >= 25 opens a control socket at one per-user path by default, which a second gunicorn
# on the host (the command API, a test run) would take over; we do not use gunicornc.
control_socket_disable = True
loglevel = os.environ.get("QUERY_API_LOG_LEVEL", "info")
accesslog = "-"
# Method, path without the query string (a search may be personal data), status, bytes,
# duration in microseconds, request id and cache outcome; every line JSON (gunicorn_hooks).
access_log_format = gunicorn_hooks.ACCESS_LOG_FORMAT
logger_class = gunicorn_hooks.AccessLogger
logconfig_dict = gunicorn_hooks.logconfig("query-api", loglevel)
# Prometheus multi-process mode: a private samples directory per server (gunicorn_hooks).
on_starting = gunicorn_hooks.on_starting("query-api")
child_exit = gunicorn_hooks.child_exit
on_exit = gunicorn_hooks.on_exit
