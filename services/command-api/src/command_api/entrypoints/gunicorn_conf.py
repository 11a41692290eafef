"""gunicorn settings of the command API (a gunicorn config module; read at start-up).

Run::

    gunicorn -c python:command_api.entrypoints.gunicorn_conf --bind 127.0.0.1:8001 \\
        --workers 2 'command_api.entrypoints.app:create_app()'

Command-line options win over this module, so the bind address and workers stay where they
were (``make up``, the Dockerfile, the Helm chart). Threaded workers (``gthread``,
``COMMAND_API_THREADS`` per process): a request mostly waits on SQS, and with sync workers two
clients that send their request slowly (or never finish it) held both workers, so the API,
``/healthz`` included, stopped answering (fresh-clone review). The worker class reads every
request whole in its event loop, under deadlines, before a thread runs it, and serves
``/healthz`` on a thread of its own (``contacts_http.request_buffering``, issue 14).
The publisher, its send threads and the hybrid logical clock are thread-safe. What this
module adds besides: JSON log
lines for gunicorn's own loggers and the app's (``contacts_http.gunicorn_hooks.logconfig``; the
access line has the path without its query string), and Prometheus multi-process mode (a
private samples directory made by the master before it forks, a dead worker's gauges dropped in
``child_exit``, the directory removed in ``on_exit``).

The worker ``--timeout`` (30 s on every command line) bounds a stuck worker process, not a
request: a gthread worker's main thread reports to the arbiter about every second while requests
run in its other threads. The longest request is an import at the limits (10,000 cards, 10 MB):
about 11 s against LocalStack on this 2-core machine, and it answers 202 even under
``--timeout 5`` (``bench/imports.py``). ``--graceful-timeout`` (10 s) does cut such an import
short on shutdown; the client then retries with its ``Idempotency-Key``. An import's records
queued after its 202 are waited for in ``worker_exit`` (up to the graceful timeout).

Memory: each worker caps glibc's malloc arenas at ``MALLOC_ARENAS`` (``post_fork``), unless
``MALLOC_ARENA_MAX`` is set. By default glibc gives threads their own arenas (up to 8 per
CPU), and a 10,000-card import, built and sent by a dozen threads, left ~21 MiB of freed
memory spread over them that the process kept; with 2 arenas ~11 MiB (in-process, bench/README.md).

Environment: ``COMMAND_API_THREADS`` (4), ``COMMAND_API_LOG_LEVEL`` (``info``). The number
of worker processes is the command line's (``--workers``: ``COMMAND_API_WORKERS``, 2, in
``make up`` and the bench; ``WEB_CONCURRENCY`` in the image). One process with 8 threads
shares more ``SendMessageBatch`` calls but is bound by its GIL on a quiet machine (measured in
bench/README.md, "Command API POST").
"""

from __future__ import annotations

import os
from typing import Any

from contacts_http import gunicorn_hooks
from contacts_infra.malloc_arenas import cap_malloc_arenas

# gthread whose loop reads each request whole, under deadlines, before a thread runs it (slow
# clients hold no thread; /healthz has its own), answering gunicorn's 414 and 431 as problems.
worker_class = "contacts_http.request_buffering.BufferingThreadWorker"
threads = int(os.environ.get("COMMAND_API_THREADS", "4"))
loglevel = os.environ.get("COMMAND_API_LOG_LEVEL", "info")
accesslog = "-"
access_log_format = gunicorn_hooks.ACCESS_LOG_FORMAT
logger_class = gunicorn_hooks.AccessLogger
logconfig_dict = gunicorn_hooks.logconfig("command-api", loglevel)
on_starting = gunicorn_hooks.on_starting("command-api")
child_exit = gunicorn_hooks.child_exit
on_exit = gunicorn_hooks.on_exit


def post_fork(_server: Any, _worker: Any) -> None:
    """Cap this worker's glibc malloc arenas before its threads start
    (``contacts_infra.malloc_arenas``)."""
    cap_malloc_arenas()


def worker_exit(_server: Any, worker: Any) -> None:
    """Before a worker process exits (SIGTERM, its master gone, a restart), wait up to the
    graceful timeout for the imports it is still queuing after their 202 (``adapters.
    background_imports``). gunicorn calls this before the interpreter shuts down; past that
    point no thread can be started for a send, and a queuing import failed part-way on every
    deploy (fresh-clone review)."""
    from command_api.entrypoints.imports import EXTENSION  # the app is loaded by now

    app = getattr(worker, "wsgi", None)
    api = getattr(app, "extensions", {}).get(EXTENSION)
    if api is not None and not api.slots.wait(float(worker.cfg.graceful_timeout)):
        worker.log.warning("imports still queuing at exit; their reports will say interrupted")
