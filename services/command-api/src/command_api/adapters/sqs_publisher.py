"""The SQS publisher: a Celery app used only as a producer of ``contacts.apply_event`` tasks.

docs/architecture.md §3 and docs/contracts.md: one positional argument (the CloudEvents envelope),
queue
``SQS_QUEUE_NAME`` (a FIFO queue known through ``predefined_queues``, never created here),
``MessageGroupId`` = ``contacts_infra.messaging.message_group_id`` (the ordering key: workspace
and contact id, or workspace and email for an upsert), ``MessageDeduplicationId`` = event id
(unique across workspaces: ids derived from an ``Idempotency-Key`` or an import are derived
from the workspace too, ``service_layer.idempotency``); the envelope names the workspace.

Time bound (``send_timeout_s``): botocore gets connect and read timeouts of half the bound each
and a single attempt, so a closed port fails in milliseconds and a server that accepts but never
answers fails after the read timeout (measured: 0.1 s and 1.05 s with a 2 s bound). On top of
that the send runs in a worker thread and the caller waits at most ``send_timeout_s``, which also
bounds what botocore's timeouts do not (DNS resolution, a server that trickles bytes). After such
a timeout the message may still arrive: the answer is a 503, never a 202 for an unsent command.

Batches (``publish_batch``): Celery builds each message as for ``publish``, but the send is
captured (``SendCapture``) instead of made, and the captured messages go out with
``SendMessageBatch``, at most ``BATCH_MAX_ENTRIES`` messages and ``SQS_MESSAGE_MAX_BYTES`` of
bodies per call (AWS SQS quotas), one call at a time, each bounded like one send. A call never
holds two messages of one message group, so a contact's messages are queued in order even when
a call fails part-way; once a message of a group failed, the later ones of that group are not
sent. A call that fails as a whole (SQS unreachable or silent) fails every message not sent yet:
a dead queue costs one time bound, not one per call.

Size: kombu's SQS transport base64-encodes the Celery body inside its JSON envelope and then,
with ``sqs_base64_encoding`` (default on), base64-encodes the whole envelope again.
``message_size`` computes that size from the exact Celery body plus a proven bound on the
envelope, so an event is refused (``EventTooLarge``) before it is sent.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from celery import Celery
from kombu.utils.json import dumps as kombu_json_dumps

from command_api.service_layer.errors import EventTooLarge
from contacts_domain import ContactEvent
from contacts_domain.ports import EARLIER_EVENT_FAILED, EventPublisher, PublishFailed
from contacts_infra.messaging import APPLY_EVENT_TASK, SQS_MESSAGE_MAX_BYTES, message_group_id

#: Upper bound, in bytes, of kombu's JSON envelope around the base64 Celery body: headers and
#: properties with ids, the task name, ``argsrepr`` and ``origin`` (``gen<pid>@<hostname>``,
#: a hostname is at most 253 bytes). Measured at ~920 bytes with a short hostname; the
#: integration suite checks real messages against it.
ENVELOPE_MAX_BYTES: Final = 2048
#: Celery protocol 2 body: ``[args, kwargs, embed]``.
_EMBED: Final = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: Threads per process that may be sending at once; more requests wait their turn (and time out).
_SEND_THREADS: Final = 8
#: Messages per ``SendMessageBatch`` call (AWS SQS quotas: "10 messages per batch").
BATCH_MAX_ENTRIES: Final = 10
#: Bytes of message bodies per ``SendMessageBatch`` call, with room for the entries' group and
#: deduplication ids (AWS: the sum of the batched messages' sizes is at most 256 KiB).
BATCH_MAX_BODY_BYTES: Final = SQS_MESSAGE_MAX_BYTES - 4096


def message_size(envelope: Mapping[str, Any]) -> int:
    """Return an upper bound, in bytes, of the SQS ``MessageBody`` carrying ``envelope``.

    The Celery body is serialized exactly as Celery does (kombu JSON, ASCII-escaped), then
    base64 (kombu ``body_encoding``) inside an envelope of at most ``ENVELOPE_MAX_BYTES``,
    then base64 again (kombu ``sqs_base64_encoding``).
    """
    body = kombu_json_dumps([[dict(envelope)], {}, _EMBED])
    inner = _base64_length(len(body.encode("utf-8")))
    return _base64_length(inner + ENVELOPE_MAX_BYTES)


def _base64_length(n: int) -> int:
    return 4 * math.ceil(n / 3)


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


class SendCapture:
    """The boto3 SQS client the Celery channels get: every call goes to ``client``, except
    ``send_message`` in a thread inside ``capturing()``, which records its keyword arguments
    (``QueueUrl``, ``MessageBody``, ``MessageGroupId``...) instead of sending them.

    This is how a batch gets messages byte for byte as Celery and kombu build them (headers,
    body encoding) without re-implementing their format. kombu ignores what ``send_message``
    returns.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, **kwargs: Any) -> Any:
        captured: list[dict[str, Any]] | None = getattr(self._local, "captured", None)
        if captured is None:
            return self._client.send_message(**kwargs)
        captured.append(kwargs)
        return {}

    @contextmanager
    def capturing(self) -> Iterator[list[dict[str, Any]]]:
        """Within the block, this thread's ``send_message`` calls are recorded in the list
        yielded, in call order, and nothing is sent."""
        self._local.captured = []
        try:
            yield self._local.captured
        finally:
            self._local.captured = None


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    group: str
    entry: dict[str, Any]
    size: int


class SqsEventPublisher(EventPublisher):
    """Publishes events with Celery's ``send_task``; see the module docstring for the bounds.

    Nothing connects at construction. The Celery app, the boto3 client of the readiness check
    and the send threads are made per process by ``warm`` (or on first use) and made again in
    a process forked after they were made, so the object survives gunicorn's fork; connections
    open on first use.
    """

    def __init__(self, target: SqsTarget) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._celery: Celery | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._sqs_client: Any = None
        self._capture: SendCapture | None = None

    def publish(self, event: ContactEvent) -> None:
        """Send ``event``; return once SQS accepted it.

        Raises ``EventTooLarge`` (nothing sent) when the message would exceed 256 KiB, and
        ``PublishFailed`` when SQS refused it or did not answer within ``send_timeout_s``.
        """
        envelope = event.to_cloudevent()
        size = message_size(envelope)
        if size > SQS_MESSAGE_MAX_BYTES:
            raise EventTooLarge(size, SQS_MESSAGE_MAX_BYTES)
        celery, executor = self._per_process()
        future = executor.submit(self._send, celery, event, envelope)
        try:
            future.result(timeout=self._target.send_timeout_s)
        except concurrent.futures.TimeoutError:
            raise PublishFailed(
                f"SQS did not answer within {self._target.send_timeout_s} s."
            ) from None
        except Exception as exc:
            raise PublishFailed(f"SQS refused the message: {type(exc).__name__}.") from exc

    def publish_batch(self, events: Sequence[ContactEvent]) -> list[Exception | None]:
        """Send ``events`` with ``SendMessageBatch`` (see the module docstring) and report each:
        ``None`` once SQS accepted it, else ``EventTooLarge`` (not sent: over 256 KiB),
        ``PublishFailed`` (SQS refused it, did not answer within ``send_timeout_s``, or an
        earlier event of its message group was not sent). Never raises for one event."""
        results: list[Exception | None] = [None] * len(events)
        failed_groups: set[str] = set()
        pending = self._captured_messages(events, results, failed_groups)
        while pending:
            batch, pending = _next_batch(pending, failed_groups, results)
            if not batch:
                continue
            try:
                response = self._send_batch(batch)
            except PublishFailed as exc:
                for item in (*batch, *pending):
                    results[item.index] = exc
                break
            succeeded = {entry.get("Id") for entry in response.get("Successful", ())}
            codes = {entry.get("Id"): entry.get("Code") for entry in response.get("Failed", ())}
            for item in batch:
                if item.entry["Id"] not in succeeded:
                    failed_groups.add(item.group)
                    code = codes.get(item.entry["Id"]) or "not reported as sent"
                    results[item.index] = PublishFailed(f"SQS refused the message: {code}.")
        return results

    def _captured_messages(
        self,
        events: Sequence[ContactEvent],
        results: list[Exception | None],
        failed_groups: set[str],
    ) -> list[_Pending]:
        """The SQS messages of ``events`` as Celery builds them, in order; an event too large
        gets its ``EventTooLarge`` in ``results`` (and its group in ``failed_groups``).

        Celery builds them in a send thread within ``send_timeout_s``: kombu may ask SQS about
        the queue on first use. When that fails, every event gets the ``PublishFailed``.
        """
        celery, executor = self._per_process()
        todo: list[tuple[int, str, ContactEvent, dict[str, Any]]] = []
        for index, event in enumerate(events):
            group = message_group_id(event)
            envelope = event.to_cloudevent()
            size = message_size(envelope)
            if group in failed_groups:
                results[index] = PublishFailed(EARLIER_EVENT_FAILED)
            elif size > SQS_MESSAGE_MAX_BYTES:
                results[index] = EventTooLarge(size, SQS_MESSAGE_MAX_BYTES)
                failed_groups.add(group)
            else:
                todo.append((index, group, event, envelope))
        future = executor.submit(self._capture_all, celery, [(e, env) for _, _, e, env in todo])
        try:
            messages = future.result(timeout=self._target.send_timeout_s)
        except Exception as exc:
            failure = _as_publish_failed(exc, self._target.send_timeout_s)
            for index, *_rest in todo:
                results[index] = failure
            return []
        pending: list[_Pending] = []
        for (index, group, _event, _envelope), message in zip(todo, messages, strict=True):
            entry = {key: value for key, value in message.items() if key != "QueueUrl"}
            entry["Id"] = str(index)
            pending.append(_Pending(index, group, entry, len(entry["MessageBody"].encode())))
        return pending

    def _capture_all(
        self, celery: Celery, events: list[tuple[ContactEvent, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        assert self._capture is not None
        with self._capture.capturing() as captured:
            for event, envelope in events:
                self._send(celery, event, envelope)
        return captured

    def _send_batch(self, batch: list[_Pending]) -> dict[str, Any]:
        """One ``SendMessageBatch`` call within ``send_timeout_s``; raises ``PublishFailed``
        when it failed as a whole."""
        _celery, executor = self._per_process()
        future = executor.submit(
            self._sqs_client.send_message_batch,
            QueueUrl=self._target.queue_url,
            Entries=[item.entry for item in batch],
        )
        try:
            return future.result(timeout=self._target.send_timeout_s)  # type: ignore[no-any-return]
        except Exception as exc:
            raise _as_publish_failed(exc, self._target.send_timeout_s) from exc

    def warm(self) -> None:
        """Build this process's Celery app, boto3 client and send threads now, without
        connecting; a no-op when this process already has them.

        Building them loads botocore's service models: ~0.1 s of CPU on an idle machine, over
        1 s on a loaded one. The app factory calls it when it builds the app (in each gunicorn
        worker, or in the master before a ``--preload`` fork), and ``/readyz`` calls it before
        its timed checks, so no probe pays for it.
        """
        self._per_process()

    def check_ready(self) -> None:
        """Ask SQS for the queue's attributes (GetQueueAttributes); raises when it cannot.

        Builds this process's clients first if ``warm`` did not (then the probe pays for it).
        """
        self._per_process()
        self._sqs_client.get_queue_attributes(
            QueueUrl=self._target.queue_url, AttributeNames=["QueueArn"]
        )

    def _send(self, celery: Celery, event: ContactEvent, envelope: dict[str, Any]) -> None:
        celery.send_task(
            APPLY_EVENT_TASK,
            args=[envelope],
            queue=self._target.queue_name,
            MessageGroupId=message_group_id(event),
            MessageDeduplicationId=event.id,
            # Celery would put a 1 KiB repr of the contact in the headers: size and PII.
            argsrepr=f"({event_type_of(envelope)} {event.id})",
            kwargsrepr="{}",
            retry=False,
        )

    def _per_process(self) -> tuple[Celery, concurrent.futures.ThreadPoolExecutor]:
        with self._lock:
            if self._pid != os.getpid() or self._celery is None or self._executor is None:
                self._sqs_client = self._make_sqs_client()
                self._capture = SendCapture(self._sqs_client)
                self._celery = self._make_celery(self._capture)
                self._warm_producers(self._celery)
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    _SEND_THREADS, thread_name_prefix="sqs-send"
                )
                self._pid = os.getpid()
            return self._celery, self._executor

    def _client_config(self) -> dict[str, Any]:
        half = self._target.send_timeout_s / 2
        return {
            "connect_timeout": half,
            "read_timeout": half,
            "retries": {"total_max_attempts": 1},
        }

    def _warm_producers(self, celery: Celery) -> None:
        """Give every pooled broker connection its channel now, without a request: built
        lazily, the first concurrent sends of a process each paid for one inside their
        ``send_timeout_s`` budget, which a loaded machine overran (503s). The channels share
        the process's one boto3 client, so this costs no service-model load per channel."""
        producers = []
        try:
            for _ in range(_SEND_THREADS):
                producers.append(celery.producer_pool.acquire(block=True))
                producers[-1].channel.sqs(queue=self._target.queue_name)
        except Exception:  # best effort: a send builds what is missing, and reports errors
            logging.getLogger(__name__).debug("Could not warm the SQS producers", exc_info=True)
        finally:
            for producer in producers:
                producer.release()

    def _make_celery(self, sqs_client: SendCapture) -> Celery:
        """A producer-only Celery app whose pooled connections all send with ``sqs_client``
        (``adapters.shared_client_sqs``)."""
        target = self._target
        queue: dict[str, Any] = {"url": target.queue_url}
        if target.access_key_id and target.secret_access_key:
            queue |= {
                "access_key_id": target.access_key_id,
                "secret_access_key": target.secret_access_key,
            }
        options: dict[str, Any] = {
            "region": target.region,
            "predefined_queues": {target.queue_name: queue},
            "client-config": self._client_config(),
            "shared_sqs_client": lambda: sqs_client,
        }
        broker = "sqs://"
        if target.endpoint_url:
            # kombu takes the endpoint from the broker URL's host (and is_secure for https).
            scheme, _, netloc = target.endpoint_url.partition("://")
            broker = f"sqs://{netloc.rstrip('/')}"
            options["is_secure"] = scheme == "https"
        celery = Celery("command-api", set_as_current=False)
        celery.conf.update(
            broker_url=broker,
            broker_transport="command_api.adapters.shared_client_sqs:Transport",
            broker_transport_options=options,
            broker_pool_limit=_SEND_THREADS,
            task_publish_retry=False,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            task_serializer="json",
            accept_content=["json"],
        )
        return celery

    def _make_sqs_client(self) -> Any:
        target = self._target
        session = boto3.session.Session(
            region_name=target.region,
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
        )
        return session.client(
            "sqs", endpoint_url=target.endpoint_url, config=Config(**self._client_config())
        )


def _as_publish_failed(exc: BaseException, timeout_s: float) -> PublishFailed:
    if isinstance(exc, concurrent.futures.TimeoutError):
        return PublishFailed(f"SQS did not answer within {timeout_s} s.")
    return PublishFailed(f"SQS refused the messages: {type(exc).__name__}.")


def _next_batch(
    pending: list[_Pending], failed_groups: set[str], results: list[Exception | None]
) -> tuple[list[_Pending], list[_Pending]]:
    """Split ``pending`` into the next ``SendMessageBatch`` call and the rest, in order.

    A call takes at most ``BATCH_MAX_ENTRIES`` messages and ``BATCH_MAX_BODY_BYTES`` of bodies
    (always at least one message: a single one fits SQS by ``message_size``'s bound), and at
    most one message per group: once a group's message waits for a later call, so do
    its later messages. A message of a group that already failed is dropped here with
    ``PublishFailed(EARLIER_EVENT_FAILED)`` in ``results``.
    """
    batch: list[_Pending] = []
    rest: list[_Pending] = []
    seen: set[str] = set()
    size = 0
    for item in pending:
        if item.group in failed_groups:
            results[item.index] = PublishFailed(EARLIER_EVENT_FAILED)
            continue
        fits = not batch or (
            len(batch) < BATCH_MAX_ENTRIES and size + item.size <= BATCH_MAX_BODY_BYTES
        )
        if item.group in seen or not fits:
            rest.append(item)
        else:
            batch.append(item)
            size += item.size
        seen.add(item.group)
    return batch, rest


def event_type_of(envelope: Mapping[str, Any]) -> str:
    """The CloudEvents ``type`` of ``envelope`` (for log-friendly task reprs)."""
    return str(envelope.get("type", "?"))
