"""What both ends of the queue agree on: the Celery task the command API sends and the worker
registers, the SQS FIFO message group of an event, and SQS's size limit
(docs/architecture.md, "Event contract").
"""

from __future__ import annotations

from typing import Final

from contacts_domain.events import ContactEvent
from contacts_domain.ordering import ordering_key

#: Celery task name the command API sends and the worker registers.
APPLY_EVENT_TASK: Final = "contacts.apply_event"

#: SQS refuses a message larger than 256 KiB (AWS SQS quotas, "Message size").
SQS_MESSAGE_MAX_BYTES: Final = 256 * 1024


def message_group_id(event: ContactEvent) -> str:
    """The SQS FIFO ``MessageGroupId`` of ``event``: its ordering key
    (``contacts_domain.ordering.ordering_key``), since SQS delivers the messages of one group in
    order. It fits SQS's rule for group ids: at most 128 characters of letters, digits and
    punctuation (70 at most here)."""
    return ordering_key(event)
