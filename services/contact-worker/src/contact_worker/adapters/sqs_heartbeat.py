"""kombu's SQS transport, plus a heartbeat: proof that the worker still receives messages, and
a QoS that survives a lost pool child.

Case C15: after a lost broker connection, workers have kept their process and logs alive while
never polling again (kombu #931, celery #6210). A timer cannot tell that apart from health, so
the heartbeat is written where only a finished ``ReceiveMessage`` call leads: the callback of
each long poll, empty or not. ``contact-worker-admin check-alive`` (the liveness probe) fails
when the heartbeat is older than a poll plus the longest a task may keep every slot busy.

A prefork child killed mid-task (``WorkerLostError``): with ``task_reject_on_worker_lost``
Celery rejects its message with ``requeue=True``. kombu 5.7's ``SQS.QoS.reject`` first restores
the message (``Channel._restore`` pops ``delivery_info["sqs_message"]``, then makes the message
visible again after ``wait_time_seconds``) and then applies the queue's ``backoff_policy``,
which reads ``delivery_info["sqs_message"]``: ``KeyError``, raised in the consumer's event loop,
"Unrecoverable error", and the whole worker stops. ``RedeliveringQoS`` leaves a requeued
message to the restore alone (no backoff: a lost worker is not the message's failure; SQS still
counts the receive, so a message that keeps killing children reaches the dead-letter queue after
``maxReceiveCount``) and never lets the restore's own failure escape.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kombu.transport import SQS, virtual

log = logging.getLogger(__name__)


def beat(path: str) -> None:
    """Set the modification time of ``path`` to now, creating the file if needed."""
    try:
        os.utime(path)
    except FileNotFoundError:
        with open(path, "a"):
            pass


class RedeliveringQoS(SQS.QoS):
    """kombu's SQS QoS, except that a message rejected with ``requeue=True`` (a lost worker)
    is only restored: made visible again after ``wait_time_seconds`` seconds, with no backoff
    policy applied (see the module docstring for why kombu's order fails).

    Never raises for a requeue: when the restore fails (SQS unreachable, an expired receipt
    handle), the failure is logged and the delivery released all the same, so its prefetch slot
    is freed; SQS then redelivers the message once its visibility timeout expires.
    Rejections without requeue (a failed task) are kombu's, backoff included.
    """

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if not requeue:
            super().reject(delivery_tag, requeue=False)
            return
        try:
            virtual.QoS.reject(self, delivery_tag, requeue=True)
        except Exception:
            logging.getLogger(__name__).warning(
                "Could not make a lost task's message visible again; SQS redelivers it after "
                "its visibility timeout",
                exc_info=True,
            )
            self._quick_ack(delivery_tag)


class HeartbeatChannel(SQS.Channel):
    """An SQS channel that beats after every completed receive and redelivers the message of
    a lost worker without stopping (``RedeliveringQoS``).

    Acknowledgements made inside ``batched_acks()`` are deleted together, with
    ``DeleteMessageBatch`` (10 per call), when the block ends, instead of one blocking
    ``DeleteMessage`` each in the event loop (issue 13: the consumer spent about half its time
    there). The batch task acks only after its transaction committed, so this changes when the
    deletes are sent, never before what. In the worker (a channel with an event loop) the
    ``DeleteMessageBatch`` calls are made by a thread of their own (``BackgroundDeletes``), and
    their deliveries released on the event loop when SQS answered: blocking calls in the loop
    held its receives and dispatches for ~6 ms each (a third of the main process's time at
    ~570 events/s, issue 13). ``release`` hands received messages back to SQS at
    once (``ChangeMessageVisibility`` 0), for a worker that stops (issue 16, item 5).
    """

    #: SQS's most entries per ``DeleteMessageBatch``.
    DELETE_BATCH_MAX = 10

    QoS = RedeliveringQoS

    #: Pause, in seconds, after a failed receive before kombu polls again: without it a
    #: worker cut off from SQS polled ~90 times a second, and logged each one.
    FAILED_POLL_PAUSE_S = 0.5
    #: At most one warning per this many seconds for failed receives (the rest are counted).
    FAILED_POLL_LOG_EVERY_S = 30.0

    @contextlib.contextmanager
    def batched_acks(self) -> Iterator[None]:
        """Collect the ``basic_ack`` calls of the block; delete their messages when it ends."""
        previous = getattr(self, "_ack_buffer", None)
        buffer: list[Any] = []
        self._ack_buffer: list[Any] | None = buffer
        try:
            yield
        finally:
            self._ack_buffer = previous
            self._delete_acked(buffer)

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        buffer = getattr(self, "_ack_buffer", None)
        if buffer is None:
            super().basic_ack(delivery_tag, multiple)
            return
        buffer.append(delivery_tag)

    def _delete_acked(self, tags: list[Any]) -> None:
        """Delete the messages of ``tags`` (``DeleteMessageBatch``, grouped by queue), then
        release their deliveries. As kombu's ``basic_ack`` does for one message: an entry SQS
        refuses with a stale receipt handle is only released; any other refused entry is
        rejected (redelivered after its backoff); a call that fails as a whole is logged and
        its deliveries released (SQS redelivers what was not deleted after the visibility
        timeout, and the inbox makes that redelivery a no-op). With an event loop the calls are
        made by ``BackgroundDeletes`` and the deliveries released on the loop afterwards."""
        by_queue: dict[tuple[str | None, str], list[tuple[Any, str]]] = {}
        for tag in tags:
            try:
                info = self.qos.get(tag).delivery_info
                handle = info["sqs_message"]["ReceiptHandle"]
                url = info["sqs_queue"]
            except KeyError:
                virtual.Channel.basic_ack(self, tag)
                continue
            routing_key = info.get("routing_key")
            queue_name = self.canonical_queue_name(routing_key) if routing_key else None
            by_queue.setdefault((queue_name, url), []).append((tag, handle))
        deletes = self._background_deletes()
        for (queue_name, url), entries in by_queue.items():
            client = self.sqs(queue=queue_name)
            for start in range(0, len(entries), self.DELETE_BATCH_MAX):
                chunk = entries[start : start + self.DELETE_BATCH_MAX]
                if deletes is None:
                    self._settle(delete_batch(client, url, chunk))
                else:
                    deletes.submit(client, url, chunk)

    def _background_deletes(self) -> BackgroundDeletes | None:
        """This process's ``BackgroundDeletes`` (started on first use), or ``None`` without an
        event loop (the deletes are then made at once)."""
        hub = getattr(self, "hub", None)
        if hub is None:
            return None
        deletes: BackgroundDeletes | None = getattr(self, "_deletes", None)
        if deletes is None or deletes.pid != os.getpid():
            deletes = BackgroundDeletes(hub, self._settle)
            self._deletes = deletes
        return deletes

    def close(self) -> None:
        """Wait (at most 5 s) for the deletes still being sent and stop their thread, then close
        the channel."""
        deletes: BackgroundDeletes | None = getattr(self, "_deletes", None)
        if deletes is not None and deletes.pid == os.getpid():
            del self._deletes
            try:
                deletes.stop(timeout_s=5.0)
            except Exception:
                log.warning("acked messages not all released before closing", exc_info=True)
        super().close()

    def _settle(self, verdicts: list[tuple[Any, bool]]) -> None:
        """Release the deliveries of ``verdicts`` (``(tag, True)``: deleted or gone, ``(tag,
        False)``: refused by SQS, rejected so that it is redelivered after its backoff)."""
        for tag, deleted in verdicts:
            if deleted:
                virtual.Channel.basic_ack(self, tag)
            else:
                virtual.Channel.basic_reject(self, tag)

    def release(self, delivery_tags: list[Any]) -> None:
        """Make the received, unacked messages of ``delivery_tags`` visible again at once
        (``ChangeMessageVisibility`` 0, on a client of its own with short timeouts, so it may
        run while the event loop is inside another call) and forget their deliveries, which
        must never be acked or run afterwards. A failure is logged: such a message comes back
        after its visibility timeout instead."""
        for tag in delivery_tags:
            try:
                info = self.qos.get(tag).delivery_info
                queue = self.canonical_queue_name(info["routing_key"])
                client = self._new_release_client(self.sqs(queue=queue))
                client.change_message_visibility(
                    QueueUrl=info["sqs_queue"],
                    ReceiptHandle=info["sqs_message"]["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            except Exception:
                log.warning("could not release a prefetched message", exc_info=True)
            finally:
                self.qos.ack(tag)

    def _on_messages_ready(self, queue: Any, qname: str, messages: Any) -> int:
        if not isinstance(messages, dict):
            # After the connection to SQS comes back, kombu's async client can hand over an
            # unparsed error body (a list); kombu then raises in its timer and the worker stops
            # consuming for good (case C15). Treat it as an empty poll: the loop goes on, and
            # no heartbeat is written for it.
            self._failed_poll(qname, messages)
            return 0
        self._failed_polls = 0
        path = self.transport_options.get("heartbeat_file")
        if path:
            beat(path)
        return int(super()._on_messages_ready(queue, qname, messages))

    def _failed_poll(self, qname: str, messages: Any) -> None:
        """Count a failed receive, warn at most every ``FAILED_POLL_LOG_EVERY_S`` and pause
        ``FAILED_POLL_PAUSE_S`` (SQS is unreachable: nothing else in the loop can progress)."""
        self._failed_polls = getattr(self, "_failed_polls", 0) + 1
        now = time.monotonic()
        if now - getattr(self, "_failed_poll_logged_at", -math.inf) >= self.FAILED_POLL_LOG_EVERY_S:
            self._failed_poll_logged_at = now
            log.warning(
                "SQS receive on %s returned %s (%d failed receives in a row); polling again",
                qname,
                type(messages).__name__,
                self._failed_polls,
            )
        time.sleep(self.FAILED_POLL_PAUSE_S)


def delete_batch(client: Any, url: str, entries: list[tuple[Any, str]]) -> list[tuple[Any, bool]]:
    """``DeleteMessageBatch`` of ``entries`` (``(delivery tag, receipt handle)``, at most 10) on
    the queue ``url`` with the boto3 ``client``; returns ``(tag, deleted)`` per entry. Never
    raises: a stale receipt handle counts as deleted (the message is gone or redelivered
    anyway), another refused entry as not deleted, and a call that fails as a whole (logged)
    as deleted (SQS redelivers those after their visibility timeout; the inbox makes that a
    no-op)."""
    tags = {str(i): tag for i, (tag, _) in enumerate(entries)}
    try:
        answer = client.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": h} for i, (_, h) in enumerate(entries)],
        )
    except Exception:
        log.warning("DeleteMessageBatch failed; SQS redelivers these messages", exc_info=True)
        return [(tag, True) for tag in tags.values()]
    verdicts = []
    for failed in answer.get("Failed", []):
        tag = tags.pop(failed["Id"])
        if failed.get("Code") in ("ReceiptHandleIsInvalid", "InvalidParameterValue"):
            verdicts.append((tag, True))
        else:
            log.warning("SQS did not delete an acked message: %s", failed.get("Code"))
            verdicts.append((tag, False))
    verdicts.extend((tag, True) for tag in tags.values())
    return verdicts


class BackgroundDeletes:
    """A thread that makes ``DeleteMessageBatch`` calls (``delete_batch``) in the order
    submitted, and hands each call's verdicts to ``settle`` on the event loop ``hub``: the
    thread writes a byte to a pipe the hub reads, and the hub's reader runs ``settle`` (kombu's
    QoS is not thread-safe). Started in the process that builds it (``pid``)."""

    def __init__(self, hub: Any, settle: Callable[[list[tuple[Any, bool]]], None]) -> None:
        self.pid = os.getpid()
        self._settle = settle
        self._jobs: queue.SimpleQueue[tuple[Any, str, list[tuple[Any, str]]] | None] = (
            queue.SimpleQueue()
        )
        self._done: queue.SimpleQueue[list[tuple[Any, bool]]] = queue.SimpleQueue()
        self._outstanding = 0
        self._idle = threading.Condition()
        self._hub = hub
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        hub.add_reader(self._wake_r, self._on_done)
        self._thread = threading.Thread(target=self._run, name="sqs-deletes", daemon=True)
        self._thread.start()

    def submit(self, client: Any, url: str, entries: list[tuple[Any, str]]) -> None:
        """Queue one ``DeleteMessageBatch`` of ``entries`` (at most 10)."""
        with self._idle:
            self._outstanding += 1
        self._jobs.put((client, url, entries))

    def finish(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the calls submitted, then settle what they answered in
        the calling thread (the channel closes: its event loop may not run again). What is
        still unanswered then is redelivered by SQS later (the inbox makes it a no-op)."""
        with self._idle:
            self._idle.wait_for(lambda: self._outstanding == 0, timeout=timeout_s)
        self._on_done()

    def stop(self, timeout_s: float) -> None:
        """``finish``, then stop: the hub stops reading the pipe, and the thread ends after the
        calls queued before (closing the pipe then, so no late call writes to a closed or
        reused descriptor). A channel closes it, so a reconnecting worker keeps one thread."""
        self.finish(timeout_s)
        with contextlib.suppress(Exception):
            self._hub.remove_reader(self._wake_r)
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            client, url, entries = job
            self._done.put(delete_batch(client, url, entries))
            with self._idle:
                self._outstanding -= 1
                self._idle.notify_all()
            os.write(self._wake_w, b"d")
        os.close(self._wake_w)
        os.close(self._wake_r)

    def _on_done(self) -> None:
        """The hub's reader: settle every finished call (in the event loop's thread)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        while True:
            try:
                verdicts = self._done.get_nowait()
            except queue.Empty:
                return
            self._settle(verdicts)


class Transport(SQS.Transport):
    """Celery's ``broker_transport``: ``contact_worker.adapters.sqs_heartbeat:Transport``."""

    Channel = HeartbeatChannel
