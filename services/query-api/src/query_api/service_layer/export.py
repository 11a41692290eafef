"""Every visible contact matching a list's filters, one page at a time: what
``GET /v1/contacts/export`` streams (issue 3, item 4).

The walk is the list endpoint's keyset pagination in ``created_at`` order, ``PAGE_SIZE``
contacts per database round trip, so memory stays constant however many contacts there are and
every statement stays within the statement timeout. It is not a snapshot: a contact written
during the walk may appear in its old or new state, or (if created behind the walk's position)
not at all; the change feed, read from a token taken before the export, catches those up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from query_api.service_layer import representation
from query_api.service_layer.listing import ListFilters, ListRequest, Position, Sort
from query_api.service_layer.ports import ContactReadModel

#: Contacts per database round trip.
PAGE_SIZE: Final = 500


def export_resources(
    workspace: str,
    filters: ListFilters,
    *,
    contacts: ContactReadModel,
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the resource (``representation.resource``) of every visible contact of
    ``workspace`` matching ``filters``, oldest first, reading ``page_size`` (default
    ``PAGE_SIZE``) per round trip. The first page is read when the iterator is first
    advanced; raises ``ReadModelUnavailable`` at the page where the database stops
    answering."""
    page_size = page_size or PAGE_SIZE
    request = ListRequest(Sort.parse("created_at"), filters, page_size)
    while True:
        records = contacts.list(workspace, request, page_size)
        for record in records:
            yield representation.resource(record)
        if len(records) < page_size:
            return
        last = records[-1]
        request = ListRequest(
            request.sort, filters, page_size, Position(last.created_at, last.contact_id)
        )
