"""SQS conventions: the message group of an event is its ordering key, within SQS's rules."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import uuid

from contacts_domain import ContactEvent
from contacts_domain.ordering import ordering_key
from contacts_infra.messaging import (
    CeleryOrigin,
    _kombu_envelope,
    _uuid4,
    apply_event_message,
    message_group_id,
)

#: SQS: "MessageGroupId ... can contain up to 128 alphanumeric characters and punctuation".
GROUP_ID = re.compile(r"^[!-~]{1,128}$")


def _event(kind: str, email: str) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,
        contact_id=str(uuid.uuid4()),
        sequence="0000000000000001.a",
        time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        operation_id=str(uuid.uuid4()),
        data={"emails": [{"value": email, "type": "work", "primary": True}]},
    )


def test_the_group_is_the_ordering_key_and_a_valid_sqs_group_id() -> None:
    for kind in ("upserted", "created"):
        event = _event(kind, "Ada@Example.com")
        assert message_group_id(event) == ordering_key(event)
        assert GROUP_ID.match(message_group_id(event))


def test_the_envelope_template_writes_what_json_dumps_writes() -> None:
    # The byte-for-byte comparison with a real send_task is the command API's
    # test_sqs_publisher; this one covers values JSON must escape.
    sender = CeleryOrigin("gen42@host-1", str(uuid.uuid4()))
    for group_id in ("default/" + str(uuid.uuid4()), 'wé"s\\/x', "email-" + "a" * 64):
        for body in (b"[]", '[[{"n": "é\\n\\"x\\""}], {}, {}]'.encode(), b"x" * 3000):
            ours = apply_event_message(
                body,
                queue_name="contacts.fifo",
                group_id=group_id,
                deduplication_id='d"1',
                sender=sender,
                task_id="t-1",
                delivery_tag="tag-1",
            )
            envelope = _kombu_envelope(
                "contacts.fifo",
                sender,
                body=base64.b64encode(body).decode("ascii"),
                task_id="t-1",
                group_id=group_id,
                deduplication_id='d"1',
                delivery_tag="tag-1",
            )
            expected = base64.b64encode(json.dumps(envelope).encode("ascii")).decode("ascii")
            assert ours["MessageBody"] == expected
            assert (ours["MessageGroupId"], ours["MessageDeduplicationId"]) == (group_id, 'd"1')


def test_new_task_ids_and_delivery_tags_are_random_uuid4s() -> None:
    ids = {_uuid4(os.urandom(16)) for _ in range(1_000)}
    assert len(ids) == 1_000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
