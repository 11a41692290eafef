"""SQS conventions: the message group of an event is its ordering key, within SQS's rules."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from contacts_domain import ContactEvent
from contacts_domain.ordering import ordering_key
from contacts_infra.messaging import message_group_id

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
