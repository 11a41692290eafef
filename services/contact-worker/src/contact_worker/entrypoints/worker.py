"""``contact-worker``: start the Celery worker with settings from the environment."""

from __future__ import annotations

import logging
import os
import sys

from contact_worker.entrypoints.celery_app import create_celery
from contact_worker.settings import Settings


def main(argv: list[str] | None = None) -> None:
    """Run ``celery worker``; extra arguments (``-c 4 --pool prefork``) are passed through."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s",
    )
    settings = Settings.from_env(os.environ)
    app = create_celery(settings)
    args = sys.argv[1:] if argv is None else argv
    app.worker_main(["worker", "--loglevel", os.environ.get("LOG_LEVEL", "INFO"), *args])


if __name__ == "__main__":
    main()
