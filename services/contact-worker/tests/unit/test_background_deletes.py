"""``sqs_heartbeat.BackgroundDeletes``: the acked messages' ``DeleteMessageBatch`` calls made
by a thread of their own, their deliveries settled on the event loop afterwards, in order."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Any

from contact_worker.adapters.sqs_heartbeat import BackgroundDeletes, delete_batch


class FakeHub:
    """The one hub method used: ``add_reader``; ``run_once`` plays one turn of the loop."""

    def __init__(self) -> None:
        self.readers: dict[int, Any] = {}

    def add_reader(self, fd: int, callback: Any) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        del self.readers[fd]

    def run_once(self, timeout_s: float = 5.0) -> None:
        ready, _, _ = select.select(list(self.readers), [], [], timeout_s)
        for fd in ready:
            self.readers[fd]()


class FakeSqs:
    """Answers ``DeleteMessageBatch`` from the loop thread's point of view: records the calls
    and the thread that made them; refuses the handles listed in ``refuse``."""

    def __init__(self, refuse: dict[str, str] | None = None, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()
        self.refuse = refuse or {}
        self.fail = fail

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:  # noqa: N803
        self.threads.add(threading.current_thread().name)
        self.calls.append([e["ReceiptHandle"] for e in Entries])
        if self.fail:
            raise ConnectionError("SQS unreachable")
        failed = [
            {"Id": e["Id"], "Code": self.refuse[e["ReceiptHandle"]]}
            for e in Entries
            if e["ReceiptHandle"] in self.refuse
        ]
        return {"Failed": failed}


def test_deletes_run_in_their_thread_and_settle_on_the_loop_in_order() -> None:
    hub, settled = FakeHub(), []
    deletes = BackgroundDeletes(hub, settled.append)
    sqs = FakeSqs()
    deletes.submit(sqs, "url", [(1, "h1"), (2, "h2")])
    deletes.submit(sqs, "url", [(3, "h3")])
    while sum(len(v) for v in settled) < 3:
        hub.run_once()
    assert settled == [[(1, True), (2, True)], [(3, True)]]
    assert sqs.calls == [["h1", "h2"], ["h3"]]
    assert sqs.threads == {"sqs-deletes"}


def test_finish_waits_for_the_calls_and_settles_in_the_caller() -> None:
    settled: list[Any] = []
    deletes = BackgroundDeletes(FakeHub(), settled.append)
    deletes.submit(FakeSqs(), "url", [(1, "h1")])
    deletes.finish(timeout_s=5.0)
    assert settled == [[(1, True)]]


def test_a_refused_entry_is_not_deleted_and_a_stale_handle_or_a_failed_call_is() -> None:
    refused = FakeSqs(refuse={"h2": "InternalError", "h3": "ReceiptHandleIsInvalid"})
    assert sorted(delete_batch(refused, "url", [(1, "h1"), (2, "h2"), (3, "h3")])) == [
        (1, True),
        (2, False),
        (3, True),
    ]
    assert delete_batch(FakeSqs(fail=True), "url", [(1, "h1")]) == [(1, True)]


def test_stop_settles_ends_the_thread_and_closes_the_pipe() -> None:
    # A channel closed by a reconnect must not leave its thread and two descriptors behind
    # (review of the merged worker work).
    hub, settled = FakeHub(), []
    before = [t.name for t in threading.enumerate()].count("sqs-deletes")
    deletes = BackgroundDeletes(hub, settled.append)
    pipe = {fd: os.fstat(fd).st_ino for fd in hub.readers}
    deletes.submit(FakeSqs(), "url", [(1, "h1")])
    deletes.stop(timeout_s=5.0)
    assert settled == [[(1, True)]]
    assert hub.readers == {}
    deadline = time.monotonic() + 5
    while [t.name for t in threading.enumerate()].count("sqs-deletes") > before:
        assert time.monotonic() < deadline, "the thread did not end"
        time.sleep(0.01)
    for fd, inode in pipe.items():
        with contextlib.suppress(OSError):  # closed, and not reused since
            assert os.fstat(fd).st_ino != inode, "the pipe is still open"
