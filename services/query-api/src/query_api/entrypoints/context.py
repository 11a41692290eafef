"""How routes reach the ports and settings the app factory wired (``app.extensions``)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from flask import current_app

from query_api.bootstrap import Ports
from query_api.service_layer.token_key import TokenKey
from query_api.settings import Settings

EXTENSION = "query_api"


@dataclass(frozen=True)
class AppContext:
    """The app's settings and ports; ``token_key``, which signs cursors and change tokens
    (``Settings.token_secret``); and ``stream_slots``: the semaphore of the streamed exports of
    this process (``settings.stream_slots``; ``entrypoints.export``). Made before gunicorn
    forks (``--preload``), with no export running, so each process has all of its own."""

    settings: Settings
    ports: Ports
    token_key: TokenKey
    stream_slots: threading.BoundedSemaphore


def current() -> AppContext:
    """The ``AppContext`` of the app serving the current request."""
    context: AppContext = current_app.extensions[EXTENSION]
    return context


def canonical_uuid(text: str) -> str | None:
    """Return ``text`` as a lower-case hyphenated UUID, or ``None`` unless it is one already
    (any case). Other spellings ``uuid.UUID`` accepts (braces, ``urn:uuid:``, no hyphens) are
    refused so one resource has one URL."""
    if len(text) != 36:
        return None
    try:
        value = str(uuid.UUID(text))
    except ValueError:
        return None
    return value if value == text.lower() else None
