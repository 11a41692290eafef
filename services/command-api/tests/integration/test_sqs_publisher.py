"""The SQS publisher against a real SQS-compatible server, a closed port and a silent port."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

from command_api.adapters.sqs_publisher import (
    ENVELOPE_MAX_BYTES,
    SqsEventPublisher,
    SqsTarget,
    message_size,
)
from command_api.service_layer.errors import EventTooLarge
from command_api.settings import Settings
from contacts_domain import DEFAULT_WORKSPACE, ContactEvent
from contacts_domain.ports import EARLIER_EVENT_FAILED, PublishFailed
from contacts_infra.messaging import (
    APPLY_EVENT_TASK,
    SQS_MESSAGE_MAX_BYTES,
    CeleryOrigin,
    apply_event_message,
    celery_body,
    message_group_id,
)


def target(settings: Settings, **overrides) -> SqsTarget:
    values = {
        "queue_name": settings.sqs_queue_name,
        "queue_url": settings.sqs_queue_url,
        "region": settings.aws_region,
        "endpoint_url": settings.sqs_endpoint_url,
        "access_key_id": settings.aws_access_key_id,
        "secret_access_key": settings.aws_secret_access_key,
        "send_timeout_s": 2.0,
    }
    return SqsTarget(**{**values, **overrides})


def event(notes: str = "hello", contact_id: str | None = None) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created",
        contact_id=contact_id or str(uuid.uuid4()),
        sequence="0000000000000001.test",
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"first_name": "Rosa", "notes": notes},
        correlation_id="req-1",
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_published_event_lands_on_the_fifo_queue(command_settings, drain) -> None:
    published = event()
    SqsEventPublisher(target(command_settings)).publish(published)
    [message] = drain()
    assert message.task == APPLY_EVENT_TASK
    assert message.group_id == f"{DEFAULT_WORKSPACE}/{published.contact_id}"
    assert message.dedup_id == published.id
    assert message.args == [published.to_cloudevent()]
    assert message.kwargs == {}
    assert ContactEvent.from_cloudevent(message.envelope) == published


def celery_sent(settings: Settings, published: ContactEvent, sqs_client) -> dict:
    """The SQS message Celery 5 and kombu's SQS transport send for ``published``, as our
    publisher's options would have them (received back from the real queue)."""
    scheme, _, netloc = settings.sqs_endpoint_url.partition("://")
    celery = Celery("reference", set_as_current=False)
    celery.conf.update(
        broker_url=f"sqs://{netloc.rstrip('/')}",
        broker_transport_options={
            "region": settings.aws_region,
            "is_secure": scheme == "https",
            "predefined_queues": {
                settings.sqs_queue_name: {
                    "url": settings.sqs_queue_url,
                    "access_key_id": settings.aws_access_key_id,
                    "secret_access_key": settings.aws_secret_access_key,
                }
            },
        },
        task_serializer="json",
    )
    celery.send_task(
        APPLY_EVENT_TASK,
        args=[published.to_cloudevent()],
        queue=settings.sqs_queue_name,
        MessageGroupId=message_group_id(published),
        MessageDeduplicationId=published.id,
        argsrepr="",
        kwargsrepr="",
        retry=False,
    )
    [message] = sqs_client.receive_message(
        QueueUrl=settings.sqs_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    sqs_client.delete_message(
        QueueUrl=settings.sqs_queue_url, ReceiptHandle=message["ReceiptHandle"]
    )
    return message


@pytest.mark.parametrize("notes", ["hello", 'é\n\U0001f600 "quoted" \\ back'])
def test_the_message_is_byte_for_byte_what_celery_and_kombu_send(
    command_settings, sqs_client, drain, notes
) -> None:
    published = event(notes)
    reference = celery_sent(command_settings, published, sqs_client)
    kombu_envelope = json.loads(base64.b64decode(reference["Body"]))
    headers, properties = kombu_envelope["headers"], kombu_envelope["properties"]

    ours = apply_event_message(
        celery_body(published.to_cloudevent()),
        queue_name=command_settings.sqs_queue_name,
        group_id=message_group_id(published),
        deduplication_id=published.id,
        # What differs per message or per process is taken from Celery's: the rest must match.
        sender=CeleryOrigin(headers["origin"], properties["reply_to"]),
        task_id=headers["id"],
        delivery_tag=properties["delivery_tag"],
    )

    assert ours["MessageBody"] == reference["Body"]
    assert ours["MessageGroupId"] == reference["Attributes"]["MessageGroupId"]
    assert ours["MessageDeduplicationId"] == reference["Attributes"]["MessageDeduplicationId"]


def test_the_headers_hold_no_copy_of_the_arguments(command_settings, sqs_client, drain) -> None:
    # Issue 16: Celery's argsrepr put a repr of the contact in every message's headers, which a
    # dead-lettered message keeps for the dead-letter queue's retention.
    published = dataclasses.replace(
        event(), data={"first_name": "Zelda", "emails": [{"value": "zelda@example.org"}]}
    )
    SqsEventPublisher(target(command_settings)).publish(published)
    [raw] = sqs_client.receive_message(QueueUrl=command_settings.sqs_queue_url)["Messages"]
    sqs_client.delete_message(
        QueueUrl=command_settings.sqs_queue_url, ReceiptHandle=raw["ReceiptHandle"]
    )
    kombu_envelope = json.loads(base64.b64decode(raw["Body"]))
    outside_body = json.dumps({k: v for k, v in kombu_envelope.items() if k != "body"})
    for personal in ("Zelda", "zelda@example.org"):
        assert personal in base64.b64decode(kombu_envelope["body"]).decode()
        assert personal not in outside_body
    assert kombu_envelope["headers"]["argsrepr"] == ""
    assert kombu_envelope["headers"]["kwargsrepr"] == ""


def test_one_process_sends_with_one_sqs_client(command_settings, drain) -> None:
    # A client per send thread costs ~7 MiB of service models each.
    publisher = SqsEventPublisher(target(command_settings))
    publisher.warm()
    client = publisher._process.client
    publisher.publish(event())
    assert publisher.publish_batch([event(), event()]) == [None, None]
    assert publisher._process.client is client
    assert len(drain()) == 3


def test_the_same_event_twice_is_deduplicated_by_sqs(command_settings, drain) -> None:
    publisher = SqsEventPublisher(target(command_settings))
    published = event()
    publisher.publish(published)
    publisher.publish(published)
    assert len(drain()) == 1


@pytest.mark.parametrize("notes", ["a", "x" * 10_000, "\U0001f600" * 10_000, "é\n" * 5_000])
def test_message_size_bounds_the_real_message(command_settings, drain, notes) -> None:
    published = event(notes)
    SqsEventPublisher(target(command_settings)).publish(published)
    [message] = drain()
    bound = message_size(published.to_cloudevent())
    assert message.body_size <= bound
    # The margin is the envelope allowance only, base64-encoded: no hidden growth.
    assert bound - message.body_size <= 4 * ENVELOPE_MAX_BYTES // 3 + 4


def test_a_message_at_the_bound_is_accepted_by_sqs(command_settings, drain) -> None:
    notes = "x" * 140_000
    while message_size(event(notes).to_cloudevent()) > SQS_MESSAGE_MAX_BYTES:
        notes = notes[:-500]
    published = event(notes)
    SqsEventPublisher(target(command_settings)).publish(published)
    [message] = drain()
    assert message.envelope["data"]["notes"] == notes


def test_closed_port_fails_fast(command_settings, closed_port) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    publisher = SqsEventPublisher(
        target(command_settings, endpoint_url=endpoint, queue_url=f"{endpoint}/000000000000/q")
    )
    started = time.monotonic()
    with pytest.raises(PublishFailed) as failed:
        publisher.publish(event())
    assert time.monotonic() - started < 1.0
    assert failed.value.may_be_queued is False  # never sent: the 503 may say so


@pytest.mark.parametrize("timeout_s", [0.5, 2.0])
def test_silent_server_fails_within_the_send_timeout(
    command_settings, silent_port, timeout_s
) -> None:
    endpoint = f"http://127.0.0.1:{silent_port}"
    publisher = SqsEventPublisher(
        target(
            command_settings,
            endpoint_url=endpoint,
            queue_url=f"{endpoint}/000000000000/q",
            send_timeout_s=timeout_s,
        )
    )
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(PublishFailed) as failed:
            publisher.publish(event())
        assert time.monotonic() - started <= timeout_s + 1.0  # slack for a loaded machine
        assert failed.value.may_be_queued is True  # sent, never answered: outcome unknown


def test_readiness_check_asks_the_queue(command_settings, closed_port) -> None:
    SqsEventPublisher(target(command_settings)).check_ready()
    endpoint = f"http://127.0.0.1:{closed_port}"
    broken = SqsEventPublisher(
        target(command_settings, endpoint_url=endpoint, queue_url=f"{endpoint}/000000000000/q")
    )
    with pytest.raises(Exception, match="endpoint"):
        broken.check_ready()


class CountingPublisher(SqsEventPublisher):
    """Counts its SendMessageBatch calls and the messages in each."""

    def __init__(self, target: SqsTarget) -> None:
        super().__init__(target)
        self.calls: list[int] = []

    def _send_batch(self, batch):
        self.calls.append(len(batch))
        return super()._send_batch(batch)


def test_a_batch_lands_as_celery_messages_in_order_per_contact(command_settings, drain) -> None:
    contacts = [str(uuid.uuid4()) for _ in range(3)]
    events = [event(f"n{i}", contacts[i % 3]) for i in range(25)]
    single = event("n0")
    publisher = CountingPublisher(target(command_settings))

    assert publisher.publish_batch(events) == [None] * 25
    publisher.publish(single)

    messages = drain()
    by_id = {m.dedup_id: m for m in messages}
    assert set(by_id) == {e.id for e in events} | {single.id}
    for contact in contacts:
        received = [
            m.envelope["id"] for m in messages if m.group_id == f"{DEFAULT_WORKSPACE}/{contact}"
        ]
        assert received == [e.id for e in events if e.contact_id == contact]
    for published in events:
        message = by_id[published.id]
        assert message.task == APPLY_EVENT_TASK
        assert message.args == [published.to_cloudevent()]
        assert message.kwargs == {}
    # The same message format as a single send: only the ids and the data differ.
    assert by_id[events[0].id].body_size == by_id[single.id].body_size
    # At most one message per contact per call: three contacts, three messages per call.
    assert publisher.calls == [3] * 8 + [1]


def test_a_batch_of_distinct_contacts_takes_ten_messages_per_call(command_settings, drain) -> None:
    publisher = CountingPublisher(target(command_settings))
    assert publisher.publish_batch([event() for _ in range(23)]) == [None] * 23
    assert publisher.calls[0] == 10  # the first call alone: a dead queue costs one call
    assert sorted(publisher.calls) == [3, 10, 10]
    assert len(drain()) == 23


def test_a_batch_call_carries_at_most_256_kib_of_bodies(command_settings, drain) -> None:
    publisher = CountingPublisher(target(command_settings))
    big = [event("x" * 60_000) for _ in range(6)]  # ~107 KiB per message after base64 twice
    assert publisher.publish_batch(big) == [None] * 6
    assert sorted(publisher.calls) == [2, 2, 2]
    assert len(drain()) == 6


def test_a_too_large_event_holds_back_its_contact_and_only_its_contact(
    command_settings, drain
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    events = [event("ok", a), event("x" * 300_000, b), event("ok", b), event("ok", a)]
    results = SqsEventPublisher(target(command_settings)).publish_batch(events)
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "EventTooLarge",
        "PublishFailed",
        "NoneType",
    ]
    assert isinstance(results[1], EventTooLarge)
    assert str(results[2]) == EARLIER_EVENT_FAILED
    assert {m.dedup_id for m in drain()} == {events[0].id, events[3].id}


def test_a_batch_to_a_closed_port_fails_every_event_with_one_call(
    command_settings, closed_port
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    publisher = CountingPublisher(
        target(command_settings, endpoint_url=endpoint, queue_url=f"{endpoint}/000000000000/q.fifo")
    )
    results = publisher.publish_batch([event() for _ in range(25)])
    assert all(isinstance(r, PublishFailed) and not r.may_be_queued for r in results)
    assert len(publisher.calls) <= 1  # a dead queue is not asked once per call


def test_a_batch_to_a_missing_queue_fails_every_event(command_settings) -> None:
    missing = command_settings.sqs_queue_url.rsplit("/", 1)[0] + "/no-such-queue.fifo"
    publisher = SqsEventPublisher(target(command_settings, queue_url=missing))
    results = publisher.publish_batch([event(), event()])
    assert all(isinstance(r, PublishFailed) and not r.may_be_queued for r in results)


class PartlyRefusingPublisher(SqsEventPublisher):
    """SQS refuses the entries of ``refused`` message groups (``<workspace>/<contact id>``), as
    SendMessageBatch reports one entry's failure in ``Failed``; the others are really sent."""

    def __init__(self, target: SqsTarget, refused: set[str]) -> None:
        super().__init__(target)
        self.refused = refused

    def _send_batch(self, batch):
        sent = [item for item in batch if item.group not in self.refused]
        response = super()._send_batch(sent) if sent else {"Successful": []}
        failed = [
            {"Id": item.entry["Id"], "Code": "InternalError", "SenderFault": False}
            for item in batch
            if item.group in self.refused
        ]
        return {"Successful": response["Successful"], "Failed": failed}


def test_an_entry_sqs_refuses_is_reported_and_holds_back_its_contact(
    command_settings, drain
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    events = [event("1", a), event("2", b), event("3", a), event("4", b)]
    publisher = PartlyRefusingPublisher(
        target(command_settings), refused={f"{DEFAULT_WORKSPACE}/{b}"}
    )
    results = publisher.publish_batch(events)
    assert results[0] is None
    assert results[2] is None
    assert str(results[1]) == "SQS refused the message: InternalError."
    assert str(results[3]) == EARLIER_EVENT_FAILED
    assert [m.dedup_id for m in drain()] == [events[0].id, events[2].id]


class RendezvousPublisher(SqsEventPublisher):
    """Each SendMessageBatch call after the first waits for another call to start: calls that
    are not made at once break the barrier (its timeout only guards against a hang)."""

    def __init__(self, target: SqsTarget) -> None:
        super().__init__(target)
        self.barrier = threading.Barrier(2, timeout=30)
        self.first = True

    def _send_batch(self, batch):
        if self.first:
            self.first = False
        else:
            self.barrier.wait()
        return super()._send_batch(batch)


def test_calls_for_disjoint_message_groups_are_made_at_once(command_settings, drain) -> None:
    # Issue 13: an import's 1,000 calls went one after the other.
    publisher = RendezvousPublisher(target(command_settings))
    events = [event() for _ in range(30)]  # the first call alone, then two at once
    assert publisher.publish_batch(events) == [None] * 30
    assert not publisher.barrier.broken
    assert {m.dedup_id for m in drain()} == {e.id for e in events}


class GatedPublisher(SqsEventPublisher):
    """Records the deduplication ids of each coalesced ``SendMessageBatch`` call; the first
    call waits for ``release``. Entries of the ``refused`` groups are reported ``Failed`` (and
    not sent), as SQS reports an entry it refuses."""

    def __init__(self, target: SqsTarget, refused: frozenset[str] = frozenset()) -> None:
        super().__init__(target)
        self.calls: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.refused = refused

    def _send_entries(self, entries):
        self.calls.append([entry["MessageDeduplicationId"] for entry in entries])
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(30)
        sent = [entry for entry in entries if entry["MessageGroupId"] not in self.refused]
        response = super()._send_entries(sent) if sent else {"Successful": []}
        failed = [
            {"Id": entry["Id"], "Code": "InternalError", "SenderFault": False}
            for entry in entries
            if entry["MessageGroupId"] in self.refused
        ]
        return {"Successful": response["Successful"], "Failed": failed}


def publish_in_thread(
    publisher: SqsEventPublisher, published: ContactEvent, outcomes: dict
) -> threading.Thread:
    """Start ``publisher.publish(published)`` in a thread; its outcome (``None`` or the
    exception) lands in ``outcomes[published.id]``."""

    def run() -> None:
        try:
            publisher.publish(published)
            outcomes[published.id] = None
        except Exception as exc:
            outcomes[published.id] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def hold_first_call(publisher: GatedPublisher, first: ContactEvent, others, outcomes) -> None:
    """Publish ``first`` (its call held), then ``others`` at once; return when they all wait
    for that call, the call released, and every publish returned."""
    threads = [publish_in_thread(publisher, first, outcomes)]
    assert publisher.started.wait(30)
    threads += [publish_in_thread(publisher, e, outcomes) for e in others]
    coalescer = publisher._process.coalescer
    while len(coalescer._waiting) < len(others):  # a wait for a state, not a timed assertion
        time.sleep(0.005)
    publisher.release.set()
    for thread in threads:
        thread.join()


def test_publishes_during_a_call_share_the_next_call(command_settings, drain) -> None:
    # Issue 13 item 4: one SendMessageBatch carries the POSTs that arrived during a call.
    publisher = GatedPublisher(target(command_settings))
    contact = str(uuid.uuid4())
    first = event("first")
    others = [event(f"n{i}", contact if i < 2 else None) for i in range(9)]
    outcomes: dict = {}

    hold_first_call(publisher, first, others, outcomes)

    assert outcomes == {e.id: None for e in [first, *others]}
    assert publisher.calls[0] == [first.id]
    assert len(publisher.calls) == 2
    assert sorted(publisher.calls[1]) == sorted(e.id for e in others)
    messages = drain()
    assert sorted(m.dedup_id for m in messages) == sorted(e.id for e in [first, *others])
    for message in messages:
        published = next(e for e in [first, *others] if e.id == message.dedup_id)
        assert message.group_id == message_group_id(published)
        assert message.envelope["id"] == published.id


def test_a_refused_entry_fails_only_its_own_publish(command_settings, drain) -> None:
    refused = event("refused")
    publisher = GatedPublisher(
        target(command_settings), refused=frozenset({message_group_id(refused)})
    )
    first = event("first")
    others = [event("a"), refused, event("b")]
    outcomes: dict = {}

    hold_first_call(publisher, first, others, outcomes)

    assert len(publisher.calls) == 2
    assert isinstance(outcomes.pop(refused.id), PublishFailed)
    assert outcomes == {e.id: None for e in [first, others[0], others[2]]}
    assert sorted(m.dedup_id for m in drain()) == sorted(
        e.id for e in [first, others[0], others[2]]
    )


def test_an_idle_publish_goes_out_at_once(command_settings, drain) -> None:
    # No waiting for companions: each publish, alone, is a call of its own (a publisher that
    # held it back for more would not return before its call).
    publisher = GatedPublisher(target(command_settings))
    publisher.release.set()
    published = [event() for _ in range(3)]
    for one in published:
        publisher.publish(one)
        assert publisher.calls[-1] == [one.id]
    assert len(publisher.calls) == 3
    assert [m.dedup_id for m in drain()] == [e.id for e in published]


def test_a_silent_server_fails_every_waiting_publish_within_the_timeout(
    command_settings, silent_port
) -> None:
    endpoint = f"http://127.0.0.1:{silent_port}"
    publisher = SqsEventPublisher(
        target(
            command_settings,
            endpoint_url=endpoint,
            queue_url=f"{endpoint}/000000000000/q",
            send_timeout_s=0.5,
        )
    )
    outcomes: dict = {}
    published = [event() for _ in range(12)]
    started = time.monotonic()
    threads = [publish_in_thread(publisher, e, outcomes) for e in published]
    for thread in threads:
        thread.join()
    assert time.monotonic() - started <= 0.5 + 1.0  # slack for a loaded machine
    assert set(outcomes) == {e.id for e in published}
    assert all(isinstance(outcome, PublishFailed) for outcome in outcomes.values())
    # The publishes whose call was made may have been queued; those still waiting were not.
    assert any(outcome.may_be_queued for outcome in outcomes.values())


def test_a_publish_after_the_send_threads_stopped_fails_and_the_next_call_starts(
    command_settings, drain
) -> None:
    publisher = SqsEventPublisher(target(command_settings))
    publisher.warm()
    coalescer = publisher._process.coalescer
    coalescer._executor.shutdown()
    with pytest.raises(PublishFailed):
        publisher.publish(event())
    assert coalescer._calls == 0  # not stranded: a new executor would send again
    assert drain() == []
