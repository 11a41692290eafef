"""What both ends of the queue agree on: the Celery task the command API sends and the worker
registers, the SQS FIFO message group of an event, SQS's size limit, and the SQS message
itself (docs/architecture.md, "Event contract"; docs/contracts.md).

The message is what Celery's ``send_task`` (protocol 2, JSON) and kombu's SQS transport
(``sqs_base64_encoding`` on) produce, built here in one step so a sender does not pay kombu's
per-call producer, channel and encoding layers. Its layers, outside in:

- ``MessageBody``: base64 of the kombu envelope (kombu ``sqs_base64_encoding``);
- the kombu envelope: JSON ``{"body", "content-encoding", "content-type", "headers",
  "properties"}`` with ``body`` = base64 of the Celery body (kombu ``body_encoding``);
- the Celery body: JSON ``[args, kwargs, embed]``, ``args`` = ``[CloudEvents envelope]``.

JSON is written as kombu writes it (``json.dumps`` defaults: ASCII, ``", "`` and ``": "``), keys
in the same order, so the bytes equal Celery's for the same ids
(``tests/test_messaging.py`` compares them with a real ``send_task``, and the worker's
integration tests consume these messages with real Celery).

The headers carry no copy of the arguments: ``argsrepr`` and ``kwargsrepr`` are empty (Celery
would otherwise write a 1 KiB ``repr`` of the contact, personal data that a dead-lettered
message keeps for the dead-letter queue's retention; issue 16).
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from contacts_domain.events import ContactEvent
from contacts_domain.ordering import ordering_key

#: Celery task name the command API sends and the worker registers.
APPLY_EVENT_TASK: Final = "contacts.apply_event"

#: SQS refuses a message larger than 256 KiB (AWS SQS quotas, "Message size").
SQS_MESSAGE_MAX_BYTES: Final = 256 * 1024

#: Upper bound, in bytes, of the kombu envelope around the base64 Celery body: headers and
#: properties with ids, the task name and ``origin`` (``gen<pid>@<hostname>``, a hostname is
#: at most 253 bytes). Measured at ~830 bytes with a short hostname; tests check real
#: messages against it.
ENVELOPE_MAX_BYTES: Final = 2048

#: Celery protocol 2 body, third element: no callbacks, errbacks, chain or chord.
_EMBED: Final = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def message_group_id(event: ContactEvent) -> str:
    """The SQS FIFO ``MessageGroupId`` of ``event``: its ordering key
    (``contacts_domain.ordering.ordering_key``), since SQS delivers the messages of one group in
    order. It fits SQS's rule for group ids: at most 128 characters of letters, digits and
    punctuation (70 at most here)."""
    return ordering_key(event)


def celery_body(envelope: Mapping[str, Any]) -> bytes:
    """The Celery protocol 2 body of an ``apply_event`` task with the one positional argument
    ``envelope`` (a JSON-ready CloudEvents dict): ASCII JSON bytes, as kombu serializes it."""
    return json.dumps([[envelope], {}, _EMBED]).encode("ascii")


def message_size_bound(body_length: int) -> int:
    """An upper bound, in bytes, of the SQS ``MessageBody`` carrying a Celery body of
    ``body_length`` bytes: base64 of (base64 of the body + ``ENVELOPE_MAX_BYTES``)."""
    return _base64_length(_base64_length(body_length) + ENVELOPE_MAX_BYTES)


def _base64_length(n: int) -> int:
    return 4 * math.ceil(n / 3)


@dataclass(frozen=True, slots=True)
class CeleryOrigin:
    """Who sends: Celery's ``origin`` header (``gen<pid>@<hostname>``) and the ``reply_to``
    property (an id of the sending app; nothing replies, as results are ignored). Make one per
    process with ``CeleryOrigin.of_this_process``."""

    origin: str
    reply_to: str

    @classmethod
    def of_this_process(cls) -> CeleryOrigin:
        """This process's origin, as Celery names it (``anon_nodename``), and a new reply id."""
        return cls(f"gen{os.getpid()}@{socket.gethostname()}", str(uuid.uuid4()))


def apply_event_message(
    body: bytes,
    *,
    queue_name: str,
    group_id: str,
    deduplication_id: str,
    sender: CeleryOrigin,
    task_id: str | None = None,
    delivery_tag: str | None = None,
) -> dict[str, str]:
    """The ``SendMessage`` arguments (without ``QueueUrl``) of the ``apply_event`` task whose
    Celery body is ``body`` (``celery_body``), on the FIFO queue ``queue_name``: ``MessageBody``,
    ``MessageGroupId`` and ``MessageDeduplicationId``.

    ``task_id`` and ``delivery_tag`` default to new uuid4s, as Celery and kombu make them.
    The kombu envelope's JSON is its template for ``queue_name`` and ``sender``
    (``_envelope_template``) with this message's values put in.
    """
    random = os.urandom(32)  # one call (it lets go of the GIL) for both ids
    task_id = task_id or _uuid4(random[:16])
    values = {
        # Base64 needs no JSON escape: the JSON string is the text in quotes.
        "body": '"' + base64.b64encode(body).decode("ascii") + '"',
        "task_id": json.dumps(task_id),
        "group_id": json.dumps(group_id),
        "deduplication_id": json.dumps(deduplication_id),
        "delivery_tag": json.dumps(delivery_tag or _uuid4(random[16:])),
    }
    literals, slots = _envelope_template(queue_name, sender)
    pieces = [literals[0]]
    for slot, literal in zip(slots, literals[1:], strict=True):
        pieces.append(values[slot])
        pieces.append(literal)
    return {
        "MessageGroupId": group_id,
        "MessageDeduplicationId": deduplication_id,
        "MessageBody": base64.b64encode("".join(pieces).encode("ascii")).decode("ascii"),
    }


def _uuid4(random: bytes) -> str:
    """``str(uuid.uuid4())`` of 16 bytes from ``os.urandom``, without the ``UUID`` object (2
    instead of 4.5 µs; two a message)."""
    octets = bytearray(random)
    octets[6] = octets[6] & 0x0F | 0x40  # version 4
    octets[8] = octets[8] & 0x3F | 0x80  # RFC 4122 variant
    h = octets.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: A per-message value in ``_envelope_template``'s JSON; no queue name, origin (``@`` once) or
#: uuid holds ``@@``.
_SLOT: Final = re.compile(r'"@@(\w+)@@"')


@functools.lru_cache(maxsize=16)
def _envelope_template(queue_name: str, sender: CeleryOrigin) -> tuple[list[str], list[str]]:
    """The kombu envelope's JSON for ``queue_name`` and ``sender`` cut around its per-message
    values: ``(literals, slots)``, the JSON being ``literals[0]``, then each slot's JSON string
    followed by the next literal. Made once per queue and sender (json.dumps of the ~30 keys
    was most of a message's ~90 µs of CPU on a loaded machine; the template's join ~15 µs);
    the values are JSON-encoded alone, exactly as json.dumps writes them inside the object."""
    marks = {
        name: f"@@{name}@@"
        for name in ("body", "task_id", "group_id", "deduplication_id", "delivery_tag")
    }
    text = json.dumps(_kombu_envelope(queue_name, sender, **marks))
    pieces = _SLOT.split(text)
    return pieces[0::2], pieces[1::2]


def _kombu_envelope(
    queue_name: str,
    sender: CeleryOrigin,
    *,
    body: str,
    task_id: str,
    group_id: str,
    deduplication_id: str,
    delivery_tag: str,
) -> dict[str, Any]:
    """kombu's SQS envelope of an ``apply_event`` task, its keys in kombu's order; ``body`` is
    the base64 of the Celery body."""
    headers: dict[str, Any] = {
        "lang": "py",
        "task": APPLY_EVENT_TASK,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "",
        "kwargsrepr": "",
        "origin": sender.origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties: dict[str, Any] = {
        "correlation_id": task_id,
        "reply_to": sender.reply_to,
        "MessageGroupId": group_id,
        "MessageDeduplicationId": deduplication_id,
        "argsrepr": "",
        "kwargsrepr": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue_name},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": delivery_tag,
    }
    return {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
