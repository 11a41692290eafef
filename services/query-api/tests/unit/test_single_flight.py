"""A miss storm on one id reads the database once, across processes (docs/architecture.md §5.5).

Two "processes" are two ``CoalescingReadModel``s (one per process in production) over one
counting read model, sharing one cache with refill leases (Redis is shared by every process).
The database read blocks until every request has arrived, so the requests really overlap.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.adapters.coalescing import CoalescingReadModel
from query_api.service_layer import handlers
from query_api.service_layer.ports import ContactReadModel

REQUESTS = 200


class CountingReadModel(ContactReadModel):
    """Wraps the fake database: counts ``get`` calls and holds each until ``release`` is set."""

    def __init__(self, inner: ContactReadModel) -> None:
        self.inner = inner
        self.reads = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def get(self, workspace, contact_id):
        with self._lock:
            self.reads += 1
        assert self.release.wait(10)
        return self.inner.get(workspace, contact_id)

    def list(self, workspace, request, limit):
        return self.inner.list(workspace, request, limit)

    def changed_since(self, seconds):
        return self.inner.changed_since(seconds)


def storm(database: CountingReadModel, cache, contact_id: str) -> list[handlers.ContactLookup]:
    processes = [CoalescingReadModel(database), CoalescingReadModel(database)]
    arrived = threading.Barrier(REQUESTS + 1)

    def request(n: int) -> handlers.ContactLookup:
        arrived.wait(10)
        return handlers.get_contact(WS, contact_id, contacts=processes[n % 2], cache=cache)

    with ThreadPoolExecutor(REQUESTS) as pool:
        futures = [pool.submit(request, n) for n in range(REQUESTS)]
        arrived.wait(10)
        threading.Event().wait(0.2)  # every request is now waiting on the lease or a flight
        database.release.set()
        return [f.result() for f in futures]


def test_a_miss_storm_across_two_processes_reads_the_database_once(contacts, cache, make_record):
    record = make_record(version=4)
    contacts.add(record)
    database = CountingReadModel(contacts)

    lookups = storm(database, cache, record.contact_id)

    assert database.reads == 1
    assert {(lookup.version, lookup.body) for lookup in lookups} == {
        (4, handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache).body)
    }
    assert sorted({lookup.cache for lookup in lookups}) == ["hit", "miss"]
    assert cache.leases == {}


def test_without_the_wait_each_process_reads_once(contacts, cache, make_record):
    """The control: with the cross-process wait off, the in-process single flight alone lets
    each process read twice (the first call's read, then one for every call that came during
    it: no call gets a read begun before it asked), so the count above measures the lease."""
    record = make_record(version=4)
    contacts.add(record)
    database = CountingReadModel(contacts)
    cache.wait_s = 0

    lookups = storm(database, cache, record.contact_id)

    assert database.reads == 4
    assert {lookup.version for lookup in lookups} == {4}


def test_waiters_read_the_database_themselves_when_the_lease_ends_without_an_entry(contacts, cache):
    """An id never stored is not cached: the lease holder finds nothing, and the others read
    the database as soon as it gives the lease back instead of waiting out their bound."""
    database = CountingReadModel(contacts)
    cache.wait_s = 30
    started = time.monotonic()

    lookups = storm(database, cache, "never-stored")

    assert time.monotonic() - started < 5
    assert {lookup.cache for lookup in lookups} == {"miss"}
    assert {lookup.body for lookup in lookups} == {None}


def test_a_waiter_falls_back_to_the_database_after_its_bound(contacts, cache, make_record):
    record = make_record(version=2)
    contacts.add(record)
    cache.wait_s = 0.05
    cache.leases[WS, record.contact_id] = "held by a request that died"

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert (lookup.cache, lookup.version) == ("miss", 2)
    assert contacts.reads == 1
    assert cache.leases == {(WS, record.contact_id): "held by a request that died"}


def test_redis_failing_while_waiting_is_a_bypass(contacts, cache, make_record):
    record = make_record(version=2)
    contacts.add(record)
    cache.leases[WS, record.contact_id] = "another request"

    def fails(_workspace, _contact_id):
        cache.down = True
        cache.check()

    cache.wait_for_refill = fails

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert (lookup.cache, lookup.version) == ("bypass", 2)
