"""Start the contact worker after its parent process touched PostgreSQL and Redis (case C21).

``python tests/support/warm_worker.py --pool prefork --concurrency 4``: builds the worker's
ports in the Celery parent, reads from PostgreSQL and pings Redis with them, prints
``warm-up before fork: ...``, then runs the worker, whose pool children are forked from this
process with those connections open (celery #1564). Arguments go to ``celery worker``.
"""

from __future__ import annotations

import os
import sys

from sqlalchemy import text

from contact_worker.bootstrap import Runtime
from contact_worker.entrypoints.celery_app import create_celery
from contact_worker.settings import Settings
from contacts_telemetry.logs import configure_logging


def main() -> None:
    configure_logging("contact-worker")  # JSON lines, as contact-worker's main() does
    settings = Settings.from_env(os.environ)
    runtime = Runtime(settings)
    ports = runtime.ports()
    if ports.engine is None or ports.redis is None:
        raise SystemExit("warm_worker needs the real ports (bootstrap.build_ports)")
    with ports.engine.connect() as conn:
        contacts = conn.execute(text("SELECT count(*) FROM contacts")).scalar_one()
    ports.redis.ping()
    print(f"warm-up before fork: PostgreSQL ({contacts} contacts) and Redis answered", flush=True)
    app = create_celery(settings, runtime)
    app.worker_main(["worker", "--loglevel", "INFO", *sys.argv[1:]])


if __name__ == "__main__":
    main()
