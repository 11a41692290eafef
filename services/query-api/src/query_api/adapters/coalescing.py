"""Single-flight reads: concurrent misses on one contact (workspace and id) read PostgreSQL once
per process at a time.

docs/architecture.md §5.5 asks that a miss storm on one key does not become one database read per
request.
Across processes the refill lease (``redis_contact_cache``) lets one request read while the
others wait for its cache entry; this layer covers what the lease does not: the threads of one
process that read the same id together (Redis down, or a wait past its bound) share reads
through ``single_flight.SingleFlight``, each answered by a read begun after it was asked (a
read under way may have taken its snapshot before a write the caller has already seen applied;
issue 16): a burst costs two reads per id, the running one and one for everyone who came
during it.

Identical concurrent pages (``list``: list, search and every page of an export) share reads
too, through ``single_flight.SingleFlight`` keyed by the workspace, the whole ``ListRequest``
and the rows read, each answered by a read begun after it was asked: a storm of one search
costs the database two searches (§5.7).
"""

from __future__ import annotations

from collections.abc import Iterator

from query_api.adapters.single_flight import SingleFlight
from query_api.service_layer.listing import ListRequest
from query_api.service_layer.ports import ContactReadModel
from query_api.service_layer.records import ContactRecord, Tombstone


class CoalescingReadModel(ContactReadModel):
    """Wraps a ``ContactReadModel`` so concurrent ``get`` calls for one contact (one workspace
    and id: the same id in two workspaces is two flights) and concurrent ``list`` calls for
    one page share reads, each begun after the call (``SingleFlight``). ``changed_since``
    passes through. ``list_wait_s`` is the longest one read may take (``SingleFlight``'s
    ``wait_s``; a page's bound, which covers a read by id too)."""

    def __init__(self, inner: ContactReadModel, *, list_wait_s: float = 10.0) -> None:
        self._inner = inner
        self._contacts: SingleFlight[tuple[str, str], ContactRecord | Tombstone | None]
        self._contacts = SingleFlight(list_wait_s)
        self._pages: SingleFlight[tuple[str, ListRequest, int], list[ContactRecord]]
        self._pages = SingleFlight(list_wait_s)

    @property
    def waiting(self) -> int:
        """How many ``get`` and ``list`` calls are waiting for a read right now
        (``SingleFlight.waiting``)."""
        return self._contacts.waiting + self._pages.waiting

    def get(self, workspace: str, contact_id: str) -> ContactRecord | Tombstone | None:
        """The inner ``get``, read once for the concurrent calls for one contact (workspace and
        id) made while the read before ended (``SingleFlight``). Raises what the read raised,
        and ``ReadModelUnavailable`` when a wait passes its bound."""
        key = (workspace, contact_id)
        return self._contacts.run(key, lambda: self._inner.get(workspace, contact_id))

    def list(self, workspace: str, request: ListRequest, limit: int) -> list[ContactRecord]:
        """The inner ``list``, read once for the concurrent calls with the same workspace,
        request and limit made while the read before ended (``SingleFlight``): the whole result
        of a page depends on nothing else (a ``fields`` mask is applied after the read, per
        request). Each caller gets a list of its own. Raises ``ReadModelUnavailable``, also
        when a wait passes its bound."""
        key = (workspace, request, limit)
        return list(self._pages.run(key, lambda: self._inner.list(workspace, request, limit)))

    def changed_since(self, seconds: float) -> Iterator[tuple[str, ContactRecord | Tombstone]]:
        return self._inner.changed_since(seconds)
