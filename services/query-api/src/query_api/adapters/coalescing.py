"""Single-flight reads: concurrent misses on one contact (workspace and id) read PostgreSQL once
per process.

docs/architecture.md §5.5 asks that a miss storm on one key does not become one database read per
request.
Across processes the refill lease (``redis_contact_cache``) lets one request read while the
others wait for its cache entry; this layer covers what the lease does not: the threads of one
process that read the same id together (Redis down, or a wait past its bound) wait for the
first one's read and share its result (or its exception).

Identical concurrent pages (``list``: list, search and every page of an export) share reads
too, through ``single_flight.SingleFlight`` keyed by the workspace, the whole ``ListRequest``
and the rows read, each answered by a read begun after it was asked: a storm of one search
costs the database two searches (§5.7).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from query_api.adapters.single_flight import SingleFlight
from query_api.service_layer.listing import ListRequest
from query_api.service_layer.ports import ContactReadModel
from query_api.service_layer.records import ContactRecord, Tombstone


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: ContactRecord | Tombstone | None = None
    error: BaseException | None = None


class CoalescingReadModel(ContactReadModel):
    """Wraps a ``ContactReadModel`` so concurrent ``get`` calls for one contact (one workspace
    and id: the same id in two workspaces is two flights) share one read, and concurrent
    ``list`` calls for one page share reads (``list``). ``changed_since`` passes through. The
    wait of a ``get`` is bounded by the inner read's own time bounds; ``list_wait_s`` is the
    longest one ``list`` read may take (``SingleFlight``'s ``wait_s``)."""

    def __init__(self, inner: ContactReadModel, *, list_wait_s: float = 10.0) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, str], _Flight] = {}
        self._pages: SingleFlight[tuple[str, ListRequest, int], list[ContactRecord]]
        self._pages = SingleFlight(list_wait_s)

    @property
    def waiting(self) -> int:
        """How many ``list`` calls are waiting for a read right now (``SingleFlight.waiting``)."""
        return self._pages.waiting

    def get(self, workspace: str, contact_id: str) -> ContactRecord | Tombstone | None:
        key = (workspace, contact_id)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        try:
            flight.result = self._inner.get(workspace, contact_id)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.result

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
