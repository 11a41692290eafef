"""Use cases against fakes of our ports: cache-first reads, refill, pages, operation status."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from contacts_domain.operations import OperationStatus
from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.service_layer import cursor, handlers, representation
from query_api.service_layer.listing import ListRequest, Sort
from query_api.service_layer.ports import ReadModelUnavailable
from query_api.service_layer.records import CachedContact, Tombstone
from query_api.service_layer.token_key import TokenKey

KEY = TokenKey.of("")


def test_cache_hit_is_served_without_reading_the_database(contacts, cache):
    cache.entries["c1"] = CachedContact(3, b'{"id":"c1"}')

    lookup = handlers.get_contact(WS, "c1", contacts=contacts, cache=cache)

    assert lookup == handlers.ContactLookup("hit", 3, b'{"id":"c1"}')
    assert contacts.reads == 0


def test_cached_tombstone_is_not_found_without_reading_the_database(contacts, cache):
    cache.entries["c1"] = CachedContact(4, None)

    lookup = handlers.get_contact(WS, "c1", contacts=contacts, cache=cache)

    assert lookup == handlers.ContactLookup("hit")
    assert contacts.reads == 0


def test_miss_reads_the_database_and_refills_the_same_bytes(contacts, cache, make_record):
    record = make_record(version=2, last_name="Lovelace")
    contacts.add(record)

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert lookup.cache == "miss"
    assert lookup.version == 2
    assert json.loads(lookup.body) == representation.resource(record)
    assert cache.entries[record.contact_id] == CachedContact(2, lookup.body)


def test_miss_on_a_deleted_contact_refills_a_tombstone(contacts, cache):
    contacts.add(Tombstone("c1", 5))

    lookup = handlers.get_contact(WS, "c1", contacts=contacts, cache=cache)

    assert lookup == handlers.ContactLookup("miss")
    assert cache.refills == [(WS, "c1", 5, None)]


def test_unknown_id_is_not_cached(contacts, cache):
    lookup = handlers.get_contact(WS, "nobody", contacts=contacts, cache=cache)

    assert lookup == handlers.ContactLookup("miss")
    assert cache.refills == []


def test_refill_never_replaces_a_newer_cached_version(contacts, cache, make_record):
    record = make_record(version=2)
    contacts.add(record)
    original_get = cache.get

    def get_then_worker_writes_v3(workspace, contact_id):
        entry = original_get(workspace, contact_id)
        cache.entries[contact_id] = CachedContact(3, b"v3")
        return entry

    cache.get = get_then_worker_writes_v3

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert lookup.version == 2
    assert cache.entries[record.contact_id] == CachedContact(3, b"v3")


def test_redis_down_reads_the_database_and_skips_the_refill(contacts, cache, make_record):
    record = make_record(version=7)
    contacts.add(record)
    cache.down = True

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert (lookup.cache, lookup.version) == ("bypass", 7)
    assert cache.refills == []


def test_a_failed_refill_still_answers(contacts, cache, make_record):
    record = make_record()
    contacts.add(record)

    def refill_fails(*_args):
        cache.down = True
        cache.check()

    cache.refill = refill_fails

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)

    assert (lookup.cache, lookup.version) == ("miss", 1)


def test_database_down_on_a_miss_propagates(contacts, cache):
    contacts.down = True

    with pytest.raises(ReadModelUnavailable):
        handlers.get_contact(WS, "c1", contacts=contacts, cache=cache)


def test_pages_follow_each_other_without_repeats_or_gaps(contacts, make_record):
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(7):
        # Pairs of contacts share a creation time: the id must break the tie.
        contacts.add(make_record(created_at=t + dt.timedelta(seconds=i // 2)))
    seen: list[str] = []
    request = ListRequest(Sort("created_at"), limit=3)

    while True:
        page = handlers.list_contacts(WS, request, contacts=contacts, key=KEY)
        seen += [item["id"] for item in page.items]
        if page.next_cursor is None:
            break
        sort, after = cursor.decode(page.next_cursor, WS, request.filters, None, key=KEY)
        request = ListRequest(sort, request.filters, 3, after)

    expected = sorted(contacts.stored.values(), key=lambda r: (r.created_at, r.contact_id))
    assert seen == [r.contact_id for r in expected]


def test_an_exactly_full_last_page_has_no_next_cursor(contacts, make_record):
    for _ in range(3):
        contacts.add(make_record())

    page = handlers.list_contacts(WS, ListRequest(limit=3), contacts=contacts, key=KEY)

    assert len(page.items) == 3
    assert page.next_cursor is None


def _status(op: str, status: str, version: int | None = None) -> OperationStatus:
    return OperationStatus(op, "c1", status, None, version)  # type: ignore[arg-type]


def test_final_status_in_redis_is_the_answer(statuses, outcomes, contacts, cache):
    op = str(uuid.uuid4())
    statuses.statuses[op] = _status(op, "applied", 2)
    outcomes.down = True

    assert handlers.get_operation(
        WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
    ) == _status(op, "applied", 2)


def test_pending_in_redis_defers_to_a_recorded_outcome(statuses, outcomes, contacts, cache):
    op = str(uuid.uuid4())
    statuses.statuses[op] = _status(op, "pending")
    outcomes.outcomes[op] = _status(op, "applied", 4)

    assert (
        handlers.get_operation(
            WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
        ).status
        == "applied"
    )


def test_an_outcome_from_the_inbox_first_brings_the_contact_entry_up_to_date(
    statuses, outcomes, contacts, cache, make_record
):
    # The worker commits, then writes the entry, then the status: between the two, Redis still
    # says pending and holds the old entry. Answering "applied" from the inbox must not let the
    # next read return the version before it (read your writes).
    record = make_record(version=5)
    contacts.add(record)
    cache.entries[record.contact_id] = CachedContact(4, b'{"old": true}')
    op = str(uuid.uuid4())
    statuses.statuses[op] = OperationStatus(op, record.contact_id, "pending", None, None)
    outcomes.outcomes[op] = OperationStatus(op, record.contact_id, "applied", None, 5)

    status = handlers.get_operation(
        WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
    )

    assert status.status == "applied"
    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)
    assert (lookup.cache, lookup.version) == ("hit", 5)


def test_an_applied_delete_from_the_inbox_leaves_a_tombstone_entry(
    statuses, outcomes, contacts, cache, make_record
):
    record = make_record(version=2)
    contacts.add(Tombstone(record.contact_id, 3))
    cache.entries[record.contact_id] = CachedContact(2, b'{"alive": true}')
    op = str(uuid.uuid4())
    statuses.statuses[op] = OperationStatus(op, record.contact_id, "pending", None, None)
    outcomes.outcomes[op] = OperationStatus(op, record.contact_id, "applied", None, 3)

    handlers.get_operation(
        WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
    )

    lookup = handlers.get_contact(WS, record.contact_id, contacts=contacts, cache=cache)
    assert lookup == handlers.ContactLookup("hit")


def test_pending_without_outcome_stays_pending(statuses, outcomes, contacts, cache):
    op = str(uuid.uuid4())
    statuses.statuses[op] = _status(op, "pending")

    assert (
        handlers.get_operation(
            WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
        ).status
        == "pending"
    )


def test_unknown_operation_is_none(statuses, outcomes, contacts, cache):
    assert (
        handlers.get_operation(
            WS, "x", statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
        )
        is None
    )


def test_redis_down_answers_from_the_database(statuses, outcomes, contacts, cache):
    op = str(uuid.uuid4())
    statuses.down = True
    outcomes.outcomes[op] = _status(op, "rejected")

    assert (
        handlers.get_operation(
            WS, op, statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
        ).status
        == "rejected"
    )


def test_redis_down_and_no_outcome_is_unknown_not_absent(statuses, outcomes, contacts, cache):
    statuses.down = True

    with pytest.raises(handlers.OperationStatusUnknown):
        handlers.get_operation(
            WS, "x", statuses=statuses, outcomes=outcomes, contacts=contacts, cache=cache
        )


def test_repair_brings_entries_of_contacts_changed_during_an_outage_up_to_date(
    contacts, cache, make_record
):
    stale = make_record(version=3)
    deleted = Tombstone(str(uuid.uuid4()), 5)
    newer_in_cache = make_record(version=2)
    for stored in (stale, deleted, newer_in_cache):
        contacts.add(stored)
        contacts.changed.append((WS, stored.contact_id))
    cache.entries[stale.contact_id] = CachedContact(1, b"written before the outage")
    cache.entries[deleted.contact_id] = CachedContact(4, b"alive before the outage")
    cache.entries[newer_in_cache.contact_id] = CachedContact(9, b"the worker won meanwhile")

    written = handlers.repair_cache(
        12.0, contacts=contacts, cache=cache, margin_s=60, max_lookback_s=3660
    )

    assert written == 2
    assert contacts.lookbacks == [72.0]
    assert cache.entries[stale.contact_id] == CachedContact(
        3, representation.encode(representation.resource(stale))
    )
    assert cache.entries[deleted.contact_id] == CachedContact(5, None)
    assert cache.entries[newer_in_cache.contact_id].version == 9
    lookup = handlers.get_contact(WS, stale.contact_id, contacts=contacts, cache=cache)
    assert (lookup.cache, lookup.version) == ("hit", 3)


def test_repair_refills_in_batches_of_repair_batch(contacts, cache, make_record):
    """A long outage's repair makes one ``refill_many`` call (one Redis round trip) per
    ``REPAIR_BATCH`` contacts, not one per contact."""
    count = 2 * handlers.REPAIR_BATCH + 3
    for _ in range(count):
        stored = make_record(version=2)
        contacts.add(stored)
        contacts.changed.append((WS, stored.contact_id))
    batches: list[int] = []
    refill_many = cache.refill_many

    def counted(entries):
        batches.append(len(entries))
        return refill_many(entries)

    cache.refill_many = counted

    written = handlers.repair_cache(
        1.0, contacts=contacts, cache=cache, margin_s=60, max_lookback_s=3660
    )

    assert written == count
    assert batches == [handlers.REPAIR_BATCH, handlers.REPAIR_BATCH, 3]
    assert len(cache.entries) == count


@pytest.mark.parametrize(("healthy_ago", "lookback"), [(None, 3660.0), (7200.0, 3660.0)])
def test_repair_looks_back_at_most_one_cache_ttl_plus_the_margin(
    contacts, cache, healthy_ago, lookback
):
    handlers.repair_cache(
        healthy_ago, contacts=contacts, cache=cache, margin_s=60, max_lookback_s=3660
    )

    assert contacts.lookbacks == [lookback]


class Owed:
    """``OwedEntries`` of a set of ``(workspace, id)``."""

    def __init__(self, *entries: tuple[str, str]) -> None:
        self.entries = set(entries)

    def owes(self, workspace: str, contact_id: str) -> bool:
        return (workspace, contact_id) in self.entries


def test_an_owed_entry_is_read_from_the_database_not_from_the_stale_cache(
    contacts, cache, make_record
):
    # Case C18: the worker committed version 3, its cache write failed, and Redis still holds
    # version 2 until the worker's repair runs.
    record = make_record(version=3, first_name="Ada3")
    contacts.add(record)
    cache.entries[record.contact_id] = CachedContact(2, b'{"first_name":"Ada2"}')

    lookup = handlers.get_contact(
        WS, record.contact_id, contacts=contacts, cache=cache, owed=Owed((WS, record.contact_id))
    )

    assert (lookup.cache, lookup.version) == ("bypass", 3)
    assert json.loads(lookup.body)["first_name"] == "Ada3"
    assert cache.refills == []  # the worker's repair writes the entry, not a read
    assert cache.leases == {}


def test_an_owed_deleted_contact_is_not_found_though_the_cache_still_has_it(contacts, cache):
    contacts.add(Tombstone("c1", 2))
    cache.entries["c1"] = CachedContact(1, b'{"id":"c1"}')

    lookup = handlers.get_contact(WS, "c1", contacts=contacts, cache=cache, owed=Owed((WS, "c1")))

    assert lookup == handlers.ContactLookup("bypass")


def test_an_entry_owed_in_another_workspace_is_still_served_from_the_cache(contacts, cache):
    cache.entries["c1"] = CachedContact(3, b'{"id":"c1"}')

    lookup = handlers.get_contact(
        WS, "c1", contacts=contacts, cache=cache, owed=Owed(("other", "c1"))
    )

    assert lookup == handlers.ContactLookup("hit", 3, b'{"id":"c1"}')
    assert contacts.reads == 0
