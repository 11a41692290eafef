"""The SQS publisher against a real SQS-compatible server, a closed port and a silent port."""

from __future__ import annotations

import datetime as dt
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from command_api.adapters.sqs_publisher import (
    ENVELOPE_MAX_BYTES,
    SqsEventPublisher,
    SqsTarget,
    message_size,
)
from command_api.settings import Settings
from contacts_domain import ContactEvent
from contacts_domain.limits import SQS_MESSAGE_MAX_BYTES
from contacts_domain.ports import PublishFailed
from contacts_domain.resource import APPLY_EVENT_TASK


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


def event(notes: str = "hello") -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="created",
        contact_id=str(uuid.uuid4()),
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
    assert message.group_id == published.contact_id
    assert message.dedup_id == published.id
    assert message.args == [published.to_cloudevent()]
    assert message.kwargs == {}
    assert ContactEvent.from_cloudevent(message.envelope) == published


def test_every_pooled_connection_sends_with_the_process_s_one_sqs_client(
    command_settings, drain
) -> None:
    # Eight clients (one per pooled connection) cost ~55 MiB of service models per process.
    publisher = SqsEventPublisher(target(command_settings))
    publisher.publish(event())
    assert len(drain()) == 1

    celery = publisher._celery
    producers = [celery.producer_pool.acquire(block=True) for _ in range(8)]
    try:
        clients = {id(p.channel.sqs(queue=command_settings.sqs_queue_name)) for p in producers}
    finally:
        for producer in producers:
            producer.release()
    assert clients == {id(publisher._sqs_client)}


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
    with pytest.raises(PublishFailed):
        publisher.publish(event())
    assert time.monotonic() - started < 1.0


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
        with pytest.raises(PublishFailed):
            publisher.publish(event())
        assert time.monotonic() - started <= timeout_s + 1.0  # slack for a loaded machine


def test_readiness_check_asks_the_queue(command_settings, closed_port) -> None:
    SqsEventPublisher(target(command_settings)).check_ready()
    endpoint = f"http://127.0.0.1:{closed_port}"
    broken = SqsEventPublisher(
        target(command_settings, endpoint_url=endpoint, queue_url=f"{endpoint}/000000000000/q")
    )
    with pytest.raises(Exception, match="endpoint"):
        broken.check_ready()
