"""A gunicorn config file for case C21: the master touches every dependency before it forks.

With ``--preload`` the app is built in the master; ``when_ready`` then asks it for ``/readyz``
(PostgreSQL, Redis, SQS, whatever the API checks) and, when ``WARM_UP_PATH`` is set, for that
path too (e.g. a contact lookup, which reads through the read model's engine and the cache's
Redis pool). Only then does gunicorn fork its workers, which inherit whatever connections the
master opened: exactly the hazard of gunicorn #1953. Used with command-line flags for the rest.
"""

from __future__ import annotations

import os
from typing import Any


def when_ready(server: Any) -> None:
    """Called by gunicorn in the master after the app is loaded, before any worker is forked.
    Logs ``warm-up before fork: <path> <status>`` for each request made."""
    app = server.app.wsgi()
    paths = ["/readyz", *filter(None, [os.environ.get("WARM_UP_PATH")])]
    with app.test_client() as client:
        for path in paths:
            response = client.get(path)
            server.log.info("warm-up before fork: %s %s", path, response.status_code)
