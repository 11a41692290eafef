"""The CloudEvents envelope and the hybrid logical clock."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace

import pytest

from contacts_domain import ContactEvent, HybridLogicalClock, MalformedEvent


def sample() -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind="patched",
        contact_id=str(uuid.uuid4()),
        sequence=HybridLogicalClock().next(),
        time=dt.datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"company": "Acme ☕"},
        expected_version=3,
        correlation_id="req-1",
    )


def test_envelope_round_trips_through_json() -> None:
    event = sample()
    envelope = json.loads(event.to_json())
    assert envelope["type"] == "contacts.contact.patched.v1"
    assert envelope["specversion"] == "1.0"
    assert envelope["time"] == "2026-11-29T10:00:00.123456Z"
    assert ContactEvent.from_json(event.to_json()) == event


@pytest.mark.parametrize(
    "change",
    [
        {"type": "contacts.contact.patched.v99"},
        {"type": "contacts.contact.merged.v1"},
        {"specversion": "0.3"},
        {"id": "not-a-uuid"},
        {"subject": None},
        {"sequence": "12"},
        {"time": "yesterday"},
        {"time": "2026-11-29T10:00:00"},
        {"expectedversion": "3"},
        {"expectedversion": True},
        {"data": [1, 2]},
    ],
)
def test_malformed_envelopes_are_refused(change: dict[str, object]) -> None:
    envelope = {**sample().to_cloudevent(), **change}
    with pytest.raises(MalformedEvent):
        ContactEvent.from_cloudevent(envelope)


@pytest.mark.parametrize("body", [b"hello", b"[]", b"{", "\ud800"])
def test_non_events_are_refused(body: bytes | str) -> None:
    with pytest.raises(MalformedEvent):
        ContactEvent.from_json(body)


def test_clock_is_strictly_increasing_even_when_wall_clock_goes_back() -> None:
    readings = iter([1_000, 1_000, 900, 2_000])
    clock = HybridLogicalClock(now_us=lambda: next(readings), node="a")
    sequences = [clock.next() for _ in range(4)]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 4


def test_clock_moves_past_observed_sequences() -> None:
    clock = HybridLogicalClock(now_us=lambda: 10, node="a")
    clock.observe(f"{500:016x}.b")
    assert clock.next() > f"{500:016x}.b"


def test_upserts_of_one_email_share_an_ordering_key_and_others_use_the_contact_id() -> None:
    from contacts_domain.ordering import ordering_key

    def upsert(email: str) -> ContactEvent:
        return ContactEvent(
            id=str(uuid.uuid4()),
            kind="upserted",
            contact_id=str(uuid.uuid4()),
            sequence="0000000000000001.a",
            time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            operation_id=str(uuid.uuid4()),
            data={"emails": [{"value": email, "type": "work", "primary": True}]},
        )

    a, b = upsert("Ada@Example.com"), upsert("ada@example.com")
    group = ordering_key(a)
    assert group == ordering_key(b)
    assert group.startswith("email-")
    assert len(group) <= 128
    assert "ada" not in group  # no personal data in the key (it becomes an SQS message attribute)
    assert ordering_key(upsert("other@example.com")) != group
    created = ContactEvent.from_cloudevent(
        {**a.to_cloudevent(), "type": "contacts.contact.created.v1"}
    )
    assert ordering_key(created) == f"default/{created.contact_id}"


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_trace_context_travels_as_the_cloudevents_traceparent_extension() -> None:
    event = replace(sample(), traceparent=TRACEPARENT)
    envelope = json.loads(event.to_json())
    assert envelope["traceparent"] == TRACEPARENT
    assert envelope["correlationid"] == "req-1"  # the request id
    assert ContactEvent.from_json(event.to_json()) == event


def test_events_without_trace_context_are_read_and_written_without_it() -> None:
    # Events written before the extension existed carry neither key: still readable.
    envelope = sample().to_cloudevent()
    assert "traceparent" not in envelope
    del envelope["correlationid"]
    event = ContactEvent.from_cloudevent(envelope)
    assert (event.traceparent, event.correlation_id) == (None, None)


@pytest.mark.parametrize("value", ["garbage", 42, TRACEPARENT.upper(), TRACEPARENT + "\n"])
def test_a_malformed_traceparent_is_dropped_not_fatal(value: object) -> None:
    envelope = {**sample().to_cloudevent(), "traceparent": value}
    assert ContactEvent.from_cloudevent(envelope).traceparent is None


def test_the_import_id_travels_as_the_importid_extension_only_when_set() -> None:
    import_id = str(uuid.uuid4())
    event = replace(sample(), import_id=import_id)
    envelope = json.loads(event.to_json())
    assert envelope["importid"] == import_id
    assert ContactEvent.from_json(event.to_json()) == event
    assert "importid" not in sample().to_cloudevent()


@pytest.mark.parametrize("value", ["not-a-uuid", 7, ""])
def test_a_malformed_importid_makes_the_event_malformed(value: object) -> None:
    envelope = {**sample().to_cloudevent(), "importid": value}
    with pytest.raises(MalformedEvent, match="importid"):
        ContactEvent.from_cloudevent(envelope)
