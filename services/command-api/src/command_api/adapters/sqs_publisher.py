"""The SQS publisher: sends ``contacts.apply_event`` Celery tasks with boto3's ``SendMessageBatch``.

docs/architecture.md §3 and docs/contracts.md: one positional argument (the CloudEvents envelope),
queue ``SQS_QUEUE_NAME`` (a FIFO queue, never created here), ``MessageGroupId`` =
``contacts_infra.messaging.message_group_id`` (the ordering key: workspace and contact id, or
workspace and email for an upsert), ``MessageDeduplicationId`` = event id (unique across
workspaces: ids derived from an ``Idempotency-Key`` or an import are derived from the workspace
too, ``service_layer.idempotency``); the envelope names the workspace.

The message is built once per event by ``contacts_infra.messaging.apply_event_message``, byte
for byte what Celery's ``send_task`` and kombu's SQS transport would send, without their
per-call producer pool, channel and encoding layers (measured: 270 → 28 µs of CPU per
message; bench/README.md). One boto3 client per process sends it.

Single sends (``publish``, one per POST/PATCH/DELETE) are coalesced (``send_coalescer``, issue
13 item 4): when no call is in flight the message goes out at once; the messages requested
while one is go together in the next ``SendMessageBatch`` call (at most ``BATCH_MAX_ENTRIES``
and ``BATCH_MAX_BODY_BYTES``), each with its own group and deduplication ids, and each request
gets its own entry's outcome. Botocore's per-call CPU (~0.9 ms) is then shared by up to 10
requests.

Time bound (``send_timeout_s``): botocore gets connect and read timeouts of half the bound each
and a single attempt, so a closed port fails in milliseconds and a server that accepts but never
answers fails after the read timeout (measured: 0.1 s and 1.05 s with a 2 s bound). On top of
that the send runs in a worker thread and the caller waits at most ``send_timeout_s`` in all
(time queued for a call included), which also bounds what botocore's timeouts do not (DNS
resolution, a server that trickles bytes). After such
a timeout the message may still arrive: the answer is a 503, never a 202 for an unsent command.

Batches (``publish_batch``): the messages go out with ``SendMessageBatch``, at most
``BATCH_MAX_ENTRIES`` messages and ``BATCH_MAX_BODY_BYTES`` of bodies per call (AWS SQS
quotas), each call bounded like one send. A call never holds two messages of one message group,
so a contact's messages are queued in order even when a call fails part-way; once a message of
a group failed, the later ones of that group are not sent. Calls whose message groups are
disjoint run at once, up to ``_SEND_THREADS`` (an import of 10,000 new contacts is 1,000 calls).
A call that fails as a whole (SQS unreachable or silent) fails every message not sent yet: a
dead queue costs one time bound, not one per call.

Size: ``message_size`` computes an upper bound of the ``MessageBody`` from the exact Celery body
(``contacts_infra.messaging.message_size_bound``), so an event is refused (``EventTooLarge``)
before it is sent.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config

from command_api.adapters.send_coalescer import SendCoalescer, answer_lost
from command_api.service_layer.errors import EventTooLarge
from contacts_domain import ContactEvent
from contacts_domain.ports import EARLIER_EVENT_FAILED, EventPublisher, PublishFailed
from contacts_infra.messaging import (
    ENVELOPE_MAX_BYTES,
    SQS_MESSAGE_MAX_BYTES,
    CeleryOrigin,
    apply_event_message,
    celery_body,
    message_group_id,
    message_size_bound,
)

__all__ = ["ENVELOPE_MAX_BYTES", "SqsEventPublisher", "SqsTarget", "message_size"]

#: Threads per process making the ``SendMessageBatch`` calls of coalesced single sends
#: (``publish``): at most this many calls at once; more requests wait their turn (and time out).
_SEND_THREADS: Final = 8
#: Threads per process that may be making ``SendMessageBatch`` calls at once (batches and
#: imports), apart from the single sends so an import does not starve them.
_BATCH_THREADS: Final = 8
#: Messages per ``SendMessageBatch`` call (AWS SQS quotas: "10 messages per batch").
BATCH_MAX_ENTRIES: Final = 10
#: Bytes of message bodies per ``SendMessageBatch`` call, with room for the entries' group and
#: deduplication ids (AWS: the sum of the batched messages' sizes is at most 256 KiB).
BATCH_MAX_BODY_BYTES: Final = SQS_MESSAGE_MAX_BYTES - 4096


def message_size(envelope: Mapping[str, Any]) -> int:
    """Return an upper bound, in bytes, of the SQS ``MessageBody`` carrying ``envelope``
    (``contacts_infra.messaging.message_size_bound`` of its exact Celery body)."""
    return message_size_bound(len(celery_body(envelope)))


@dataclass(frozen=True, slots=True)
class SqsTarget:
    """Where and how to send: the queue, its URL, the endpoint (``None`` = AWS), credentials
    (``None`` = boto3's default chain) and the bound on one send in seconds."""

    queue_name: str
    queue_url: str
    region: str
    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    send_timeout_s: float


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    group: str
    entry: dict[str, Any]
    size: int


@dataclass(slots=True)
class _PerProcess:
    pid: int
    client: Any
    sender: CeleryOrigin
    coalescer: SendCoalescer
    batch_executor: concurrent.futures.ThreadPoolExecutor


class SqsEventPublisher(EventPublisher):
    """Publishes events as Celery ``apply_event`` tasks; see the module docstring for the
    message and the bounds.

    Nothing connects at construction. The boto3 client and the send threads are made per
    process by ``warm`` (or on first use) and made again in a process forked after they were
    made, so the object survives gunicorn's fork; connections open on first use.
    """

    def __init__(self, target: SqsTarget) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._process: _PerProcess | None = None

    def message(self, event: ContactEvent) -> dict[str, Any]:
        """The ``SendMessage`` arguments of ``event`` (``QueueUrl`` included), built once.

        Raises ``EventTooLarge`` when the message would exceed SQS's 256 KiB.
        """
        body = celery_body(event.to_cloudevent())
        size = message_size_bound(len(body))
        if size > SQS_MESSAGE_MAX_BYTES:
            raise EventTooLarge(size, SQS_MESSAGE_MAX_BYTES)
        message = apply_event_message(
            body,
            queue_name=self._target.queue_name,
            group_id=message_group_id(event),
            deduplication_id=event.id,
            sender=self._per_process().sender,
        )
        return {"QueueUrl": self._target.queue_url, **message}

    def publish(self, event: ContactEvent) -> None:
        """Send ``event``; return once SQS accepted it. Concurrent calls share
        ``SendMessageBatch`` calls (``send_coalescer``: no wait when none is in flight).

        Raises ``EventTooLarge`` (nothing sent) when the message would exceed 256 KiB, and
        ``PublishFailed`` when SQS refused it or did not accept it within ``send_timeout_s``
        of this call (time waiting for a call included).
        """
        timeout_s = self._target.send_timeout_s
        deadline = time.monotonic() + timeout_s
        entry = self.message(event)
        del entry["QueueUrl"]
        future = self._per_process().coalescer.submit(entry, len(entry["MessageBody"]))
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            sent = not future.cancel()  # still waiting for a call: then never sent
            raise PublishFailed(
                f"SQS did not answer within {timeout_s} s.", may_be_queued=sent
            ) from None
        except concurrent.futures.CancelledError:
            raise PublishFailed("The sender is shutting down.") from None

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        """Send ``events`` with ``SendMessageBatch`` (see the module docstring) and report each:
        ``None`` once SQS accepted it, else ``EventTooLarge`` (not sent: over 256 KiB),
        ``PublishFailed`` (SQS refused it, did not answer within ``send_timeout_s``, or an
        earlier event of its message group was not sent). Never raises for one event.

        Calls go in rounds: a round holds at most one message per group, so its calls may run
        at once. The first call of a batch runs alone, so a dead queue costs one call.
        """
        results: list[Exception | None] = [None] * len(events)
        failed_groups: set[str] = set()
        pending = self._messages(events, results, failed_groups)
        probed = False
        while pending:
            calls, pending = _next_round(pending, failed_groups, results)
            if not probed and calls:
                calls, pending = calls[:1], [item for call in calls[1:] for item in call] + pending
                probed = True
            failure = self._send_round(calls, results, failed_groups)
            if failure is not None:
                for item in pending:
                    results[item.index] = failure
                break
        return results

    def _messages(
        self,
        events: Sequence[ContactEvent],
        results: list[Exception | None],
        failed_groups: set[str],
    ) -> list[_Pending]:
        """The batch entries of ``events``, in order; an event too large gets its
        ``EventTooLarge`` in ``results`` (and its group in ``failed_groups``)."""
        pending: list[_Pending] = []
        for index, event in enumerate(events):
            group = message_group_id(event)
            if group in failed_groups:
                results[index] = PublishFailed(EARLIER_EVENT_FAILED)
                continue
            try:
                message = self.message(event)
            except EventTooLarge as exc:
                results[index] = exc
                failed_groups.add(group)
                continue
            del message["QueueUrl"]
            message["Id"] = str(index)
            pending.append(_Pending(index, group, message, len(message["MessageBody"])))
        return pending

    def _send_round(
        self,
        calls: list[list[_Pending]],
        results: list[Exception | None],
        failed_groups: set[str],
    ) -> PublishFailed | None:
        """Make ``calls`` at once (``_BATCH_THREADS`` at a time) and record each entry's
        outcome. Returns the failure of a call that failed as a whole (its entries, and those
        of calls it kept from starting, get it too), else ``None``.

        Each call is waited for at most ``send_timeout_s`` after the previous one finished.
        """
        executor = self._per_process().batch_executor
        futures = [executor.submit(self._send_batch, call) for call in calls]
        failure: PublishFailed | None = None
        for call, future in zip(calls, futures, strict=True):
            if failure is not None and future.cancel():
                response: dict[str, Any] | PublishFailed = failure
            else:
                try:
                    response = future.result(timeout=self._target.send_timeout_s)
                except Exception as exc:
                    future.cancel()  # a call still waiting for a thread is then never made
                    response = _as_publish_failed(exc, self._target.send_timeout_s)
            if isinstance(response, PublishFailed):
                failure = failure or response
                for item in call:
                    results[item.index] = response
                    failed_groups.add(item.group)
                continue
            _record_entries(call, response, results, failed_groups)
        return failure

    def _send_entries(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """One ``SendMessageBatch`` call of coalesced single sends (``publish``); raises what
        boto3 raises when it failed as a whole."""
        return self._per_process().client.send_message_batch(  # type: ignore[no-any-return]
            QueueUrl=self._target.queue_url, Entries=entries
        )

    def _send_batch(self, batch: list[_Pending]) -> dict[str, Any]:
        """One ``SendMessageBatch`` call (botocore's timeouts bound it); raises what boto3
        raises when it failed as a whole."""
        return self._per_process().client.send_message_batch(  # type: ignore[no-any-return]
            QueueUrl=self._target.queue_url, Entries=[item.entry for item in batch]
        )

    def warm(self) -> None:
        """Build this process's boto3 client and send threads now, without connecting; a
        no-op when this process already has them.

        Building the client loads botocore's service models: ~0.1 s of CPU on an idle machine,
        over 1 s on a loaded one. The app factory calls it when it builds the app (in each
        gunicorn worker, or in the master before a ``--preload`` fork), and ``/readyz`` calls it
        before its timed checks, so no probe pays for it.
        """
        self._per_process()

    def check_ready(self) -> None:
        """Ask SQS for the queue's attributes (GetQueueAttributes); raises when it cannot.

        Builds this process's client first if ``warm`` did not (then the probe pays for it).
        """
        self._per_process().client.get_queue_attributes(
            QueueUrl=self._target.queue_url, AttributeNames=["QueueArn"]
        )

    def _per_process(self) -> _PerProcess:
        process = self._process
        if process is not None and process.pid == os.getpid():
            return process
        with self._lock:
            if self._process is None or self._process.pid != os.getpid():
                executor = concurrent.futures.ThreadPoolExecutor(
                    _SEND_THREADS, thread_name_prefix="sqs-send"
                )
                self._process = _PerProcess(
                    pid=os.getpid(),
                    client=self._make_sqs_client(),
                    sender=CeleryOrigin.of_this_process(),
                    coalescer=SendCoalescer(
                        self._send_entries,
                        executor,
                        max_calls=_SEND_THREADS,
                        max_entries=BATCH_MAX_ENTRIES,
                        max_body_bytes=BATCH_MAX_BODY_BYTES,
                    ),
                    batch_executor=concurrent.futures.ThreadPoolExecutor(
                        _BATCH_THREADS, thread_name_prefix="sqs-batch"
                    ),
                )
            return self._process

    def _make_sqs_client(self) -> Any:
        target = self._target
        half = target.send_timeout_s / 2
        session = boto3.session.Session(
            region_name=target.region,
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
        )
        config = Config(
            connect_timeout=half,
            read_timeout=half,
            retries={"total_max_attempts": 1},
            # The entries are ours, built by one function; botocore's check of every call's
            # parameters was ~0.2 ms of CPU per call (bench/README.md). SQS still checks them.
            parameter_validation=False,
            max_pool_connections=_SEND_THREADS + _BATCH_THREADS,
        )
        return session.client("sqs", endpoint_url=target.endpoint_url, config=config)


def _record_entries(
    call: list[_Pending],
    response: Mapping[str, Any],
    results: list[Exception | None],
    failed_groups: set[str],
) -> None:
    """Record a ``SendMessageBatch`` response: an entry not reported ``Successful`` failed
    (with SQS's ``Code``), and so does its group from then on."""
    succeeded = {entry.get("Id") for entry in response.get("Successful", ())}
    codes = {entry.get("Id"): entry.get("Code") for entry in response.get("Failed", ())}
    for item in call:
        if item.entry["Id"] not in succeeded:
            failed_groups.add(item.group)
            code = codes.get(item.entry["Id"]) or "not reported as sent"
            results[item.index] = PublishFailed(f"SQS refused the message: {code}.")


def _as_publish_failed(exc: BaseException, timeout_s: float) -> PublishFailed:
    if isinstance(exc, concurrent.futures.TimeoutError):
        return PublishFailed(f"SQS did not answer within {timeout_s} s.", may_be_queued=True)
    return PublishFailed(
        f"SQS refused the messages: {type(exc).__name__}.", may_be_queued=answer_lost(exc)
    )


def _next_round(
    pending: list[_Pending], failed_groups: set[str], results: list[Exception | None]
) -> tuple[list[list[_Pending]], list[_Pending]]:
    """Split ``pending`` into the next round of ``SendMessageBatch`` calls and the rest, in
    order.

    A round takes at most one message per group (once a group's message waits for a later
    round, so do its later messages), cut into calls of at most ``BATCH_MAX_ENTRIES`` messages
    and ``BATCH_MAX_BODY_BYTES`` of bodies (always at least one message: a single one fits SQS
    by ``message_size``'s bound). A message of a group that already failed is dropped here with
    ``PublishFailed(EARLIER_EVENT_FAILED)`` in ``results``.
    """
    calls: list[list[_Pending]] = []
    rest: list[_Pending] = []
    seen: set[str] = set()
    call: list[_Pending] = []
    size = 0
    for item in pending:
        if item.group in failed_groups:
            results[item.index] = PublishFailed(EARLIER_EVENT_FAILED)
            continue
        if item.group in seen:
            rest.append(item)
            continue
        seen.add(item.group)
        if call and (len(call) >= BATCH_MAX_ENTRIES or size + item.size > BATCH_MAX_BODY_BYTES):
            calls.append(call)
            call, size = [], 0
        call.append(item)
        size += item.size
    if call:
        calls.append(call)
    return calls, rest
