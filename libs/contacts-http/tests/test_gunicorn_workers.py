"""``ProblemRefusals.handle_error`` logs a refusal without the log context of the request its
thread served before (fresh-clone review: a parse error's warning carried an earlier request's
``request_id`` and workspace)."""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.http.errors import InvalidRequestLine

from contacts_http.gunicorn_workers import ProblemThreadWorker
from contacts_telemetry.logs import bind_context, bound_context, clear_context


class RecordingLog:
    """The worker's logger: records the log context bound when each line is written."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def warning(self, *_args: Any) -> None:
        self.contexts.append(bound_context())

    exception = warning

    def access(self, *_args: Any) -> None:
        self.contexts.append(bound_context())


def test_a_refusal_is_logged_without_the_threads_earlier_request_context() -> None:
    worker = ProblemThreadWorker.__new__(ProblemThreadWorker)
    worker.log = RecordingLog()
    ours, theirs = socket.socketpair()
    try:
        bind_context(request_id="earlier-request", workspace="acme")
        worker.handle_error(None, ours, ("127.0.0.1", 1), InvalidRequestLine("GET *"))
        answer = theirs.recv(65536)
    finally:
        clear_context()
        ours.close()
        theirs.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert worker.log.contexts == [{}]
