"""The ordering rule's key: which events must be applied in the order they were accepted
(docs/architecture.md, "Consistency rules").

Events of one contact (a workspace and a contact id) are ordered by their ``sequence``; an
upsert names no contact (the worker finds it by email), so upserts are ordered with the other
upserts of the same primary email in the same workspace.
The transport keeps this order by delivering the events of one key in order (the SQS FIFO
message group, ``contacts_infra.messaging.message_group_id``).
"""

from __future__ import annotations

import hashlib

from contacts_domain.contact import primary_email_key
from contacts_domain.events import ContactEvent


def ordering_key(event: ContactEvent) -> str:
    """``<workspace>/<contact id>`` (at most 100 characters); for an upsert, ``email-`` and the
    SHA-256 hex of its workspace and primary email's canonical key (70 characters of
    ``[a-z0-9-]``): the same email in two workspaces is two keys."""
    if event.kind == "upserted":
        key = primary_email_key(event.data)
        if key is not None:
            text = f"{event.workspace}\n{key}"
            return "email-" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{event.workspace}/{event.contact_id}"
