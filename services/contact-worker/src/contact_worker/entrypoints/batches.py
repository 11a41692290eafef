"""Several received events per pool job and per database transaction, on Celery (issue 13).

Celery runs one message per task: one transaction and one ``DeleteMessage`` per event, which
held the worker at a tenth of what SQS hands it. ``BatchDispatcher`` is the task's strategy
(Celery's hook that turns a received message into work, ``Task.Strategy``); in the worker's
main process it:

1. keeps the received messages in arrival order (``pending``) instead of sending each to the
   pool; a dispatch is scheduled on the event loop's next turn (``call_soon``), after every
   message of the same ``ReceiveMessage`` answer arrived, so an idle worker adds no delay;
2. sends at most one batch per pool process (``concurrency``) to the pool: up to
   ``WORKER_BATCH_SIZE`` messages, spread evenly over the free processes, never a message of a
   FIFO group (``<workspace>/<contact>`` or an upsert's email) that a running batch holds, and
   the messages of one group in their delivery order: a contact's events are never applied by
   two processes at once, and in order inside a batch;
3. when the batch returns (``run_batch`` in the pool process: one result per message), acks
   the applied messages together (``HeartbeatChannel.batched_acks``: ``DeleteMessageBatch``,
   sent only now, after the commit) and rejects the failed ones (the queue's backoff policy;
   SQS dead-letters after ``maxReceiveCount``). A lost pool process requeues its batch, a
   batch past the time limit is retried, as Celery does for one task; a batch past the soft
   time limit sends its verdicts and its pool process retires (``soft_limit``);
4. on SIGTERM (``release_pending``) hands every message it holds and has not started back to
   SQS at once (``ChangeMessageVisibility`` 0) and releases each one received afterwards, so
   another worker applies them now instead of after the visibility timeout (issue 16, item 5).

Delivery guarantees are Celery's with ``task_acks_late`` (docs/architecture.md §5.1): a message
is deleted only after its event's transaction committed; everything else is redelivered.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, WorkerLostError
from celery.utils.log import get_logger as celery_logger

from contact_worker.entrypoints import soft_limit
from contacts_telemetry.logs import get_logger

log = get_logger("contact_worker")
_celery_log = celery_logger(__name__)

#: What runs one batch in a pool process: the received items ``(envelope, receive count)`` in
#: delivery order in, one ``True`` (applied or rejected: ack) or ``False`` (failed: redeliver)
#: per item out. Never raises.
RunBatch = Callable[[list[tuple[Any, int | None]]], list[bool]]


@dataclass
class Received:
    """One received message held by the dispatcher: the kombu message, its envelope (the
    task's one argument), its FIFO group and how many times SQS has handed it out."""

    message: Any
    envelope: Any
    group: str
    receives: int | None


def run_batch(task: Any, items: list[tuple[Any, int | None]]) -> list[bool]:
    """The pool job: ``task.dependencies.run_batch(items)`` (``task`` is the registered task,
    pickled by name into the pool process, where it is the same app's).

    Raises ``soft_limit.PoolProcessRetired`` (with the verdicts; the process exits after billiard
    sends it) when the soft time limit interrupted the batch; the limit's exception itself
    fails every message of the batch (redelivered; the inbox absorbs what had committed)."""
    with soft_limit.watching() as watch:
        try:
            result: list[bool] = task.dependencies.run_batch(items)
        except SoftTimeLimitExceeded:
            result = [False] * len(items)
    if watch.fired:
        soft_limit.report(watch, events=len(items))
        raise soft_limit.PoolProcessRetired(result)
    return result


class BatchDispatcher:
    """The strategy of the batch task for one consumer (see the module doc).

    ``consumer``: Celery's worker consumer (its pool, event loop and connection errors);
    ``task``: the registered task, sent to the pool with each batch; ``batch_size``: most
    messages per batch; ``soft_timeout_s``/``timeout_s``: the time limits of one batch.
    """

    def __init__(
        self,
        task: Any,
        consumer: Any,
        *,
        batch_size: int,
        soft_timeout_s: float,
        timeout_s: float,
    ) -> None:
        self._task = task
        self._consumer = consumer
        self._pool = consumer.pool
        self._slots = max(1, int(getattr(consumer.pool, "limit", 1) or 1))
        self._batch_size = batch_size
        self._limits = {"soft_timeout": soft_timeout_s, "timeout": timeout_s}
        self._errors = consumer.connection_errors
        self.pending: list[Received] = []
        self._running_groups: list[set[str]] = []
        self._scheduled = False
        self.closing = False

    def __call__(self, message: Any, body: Any, *_: Any, **__: Any) -> None:
        """Celery's strategy call for one received message of the task (``ack``, ``reject``
        and ``callbacks`` are not used: the dispatcher acks and rejects the message itself)."""
        received = Received(
            message, _envelope(message, body), _group(message, body), _receives(message)
        )
        if self.closing:
            self._release([received])
            return
        self.pending.append(received)
        if not self._scheduled:
            self._scheduled = True
            self._consumer.call_soon(self.dispatch)

    def dispatch(self) -> None:
        """Send batches to the free pool processes (module doc, step 2)."""
        self._scheduled = False
        while not self.closing and self.pending and len(self._running_groups) < self._slots:
            batch = self._next_batch()
            if not batch:
                return
            self._start(batch)

    def _next_batch(self) -> list[Received]:
        held = set().union(*self._running_groups) if self._running_groups else set()
        ready = [r for r in self.pending if r.group not in held]
        free = self._slots - len(self._running_groups)
        size = min(self._batch_size, math.ceil(len(ready) / free)) if ready else 0
        batch = ready[:size]
        # Whole groups only where the cut falls inside one: the rest of that group waits for
        # this batch to finish (a group in a running batch is held).
        taken = {id(r) for r in batch}
        self.pending = [r for r in self.pending if id(r) not in taken]
        return batch

    def _start(self, batch: list[Received]) -> None:
        groups = {r.group for r in batch}
        self._running_groups.append(groups)
        log.info("batch received", events=len(batch))

        def on_return(verdicts: Any) -> None:
            self._finish(groups, batch, verdicts)

        def on_error(failure: Any) -> None:
            exc = getattr(failure, "exception", failure)
            exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback
            if isinstance(exc, soft_limit.PoolProcessRetired):  # its verdicts are the result
                log.warning("pool process retired after its batch", events=len(batch))
                self._finish(groups, batch, exc.verdicts)
                return
            log.warning("batch job failed", error=type(exc).__name__, events=len(batch))
            requeue = isinstance(exc, WorkerLostError)
            self._finish(groups, batch, [None] * len(batch), requeue=requeue)

        self._pool.apply_async(
            run_batch,
            args=(self._task, [(r.envelope, r.receives) for r in batch]),
            callback=on_return,
            error_callback=on_error,
            **self._limits,
        )

    def _finish(
        self, groups: set[str], batch: list[Received], verdicts: Any, *, requeue: bool = False
    ) -> None:
        """Ack the applied messages together, reject the others, then dispatch again."""
        with contextlib.suppress(ValueError):
            self._running_groups.remove(groups)
        if not isinstance(verdicts, list) or len(verdicts) != len(batch):
            verdicts = [None] * len(batch)
        done = [r for r, ok in zip(batch, verdicts, strict=True) if ok is True]
        failed = [r for r, ok in zip(batch, verdicts, strict=True) if ok is not True]
        if done:
            channel = done[0].message.channel
            batched = getattr(channel, "batched_acks", None)
            if batched is None:
                self._ack(done)
            else:
                with batched():
                    self._ack(done)
        for received in failed:
            received.message.reject_log_error(_celery_log, self._errors, requeue=requeue)
        self.dispatch()

    def _ack(self, done: list[Received]) -> None:
        for received in done:
            received.message.ack_log_error(_celery_log, self._errors)

    def release_pending(self) -> None:
        """SIGTERM: stop dispatching; hand back every held, unstarted message (module doc)."""
        self.closing = True
        held, self.pending = self.pending, []
        self._release(held)
        if held:
            log.info("released prefetched messages", messages=len(held))

    def _release(self, held: list[Received]) -> None:
        by_channel: dict[int, tuple[Any, list[Any]]] = {}
        for received in held:
            channel = received.message.channel
            by_channel.setdefault(id(channel), (channel, []))[1].append(
                received.message.delivery_tag
            )
        for channel, tags in by_channel.values():
            release = getattr(channel, "release", None)
            if release is not None:
                release(tags)


def _payload(message: Any, body: Any) -> Any:
    return body if body is not None else message.decode()


def _envelope(message: Any, body: Any) -> Any:
    """The task's one positional argument: Celery protocol 2 (``[args, kwargs, embed]``), or
    protocol 1 (``{"args": [...]}``); ``None`` when the body has no argument (then poison)."""
    payload = _payload(message, body)
    try:
        args = payload["args"] if isinstance(payload, dict) else payload[0]
        return args[0]
    except (KeyError, IndexError, TypeError):
        return None


def _group(message: Any, body: Any) -> str:
    """The message's FIFO group (SQS's ``MessageGroupId``); else the envelope's contact."""
    sqs_message = (message.delivery_info or {}).get("sqs_message") or {}
    group = (sqs_message.get("Attributes") or {}).get("MessageGroupId")
    if group:
        return str(group)
    envelope = _envelope(message, body)
    if isinstance(envelope, dict):
        return f"{envelope.get('workspace', 'default')}/{envelope.get('subject')}"
    return f"message:{message.delivery_tag}"


def _receives(message: Any) -> int | None:
    sqs_message = (message.delivery_info or {}).get("sqs_message") or {}
    raw = (sqs_message.get("Attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
