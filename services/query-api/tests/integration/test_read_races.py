"""Reads raced against writes (docs/architecture.md §5.5): the cache never serves what the
database has overwritten.

The writer does what the contact worker does for a PATCH and a DELETE: commit the new version
in PostgreSQL, then write the cache through ``GUARDED_SET_LUA``; once that write returned, the
version is *applied* (the operation would report ``applied``). Reader threads meanwhile read
through the real app: cache misses (every round's contact starts in PostgreSQL only, so the
first reads take the refill lease, read PostgreSQL and refill while the writes land) and hot
reads (one contact read and patched every round, served from the cache). A read that starts
after a version was applied must answer that version or a newer one, and a 404 only once the
delete is being written.

The process's local contact cache is on (``QUERY_LOCAL_CACHE_SIZE``, with tracking up before
the first read): hot reads are served from it between two writes, and each write's
invalidation must reach it before a read that starts after the write was applied. Dropping the
invalidations (``LocalContactCache._invalidate_locked`` doing nothing) makes the test fail
with "served vN after vM was applied".
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from contacts_http.rate_limits import RateLimitSettings
from query_api.adapters.local_contact_cache import LocalContactCache

ROUNDS = 1000
READERS = 3


@dataclass
class Shared:
    """What the writer publishes to the readers: the round's contact, and per contact the
    newest applied version and whether its delete was written (or is being written)."""

    current: str = ""
    applied: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    violations: list[str] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=lambda: {"hit": 0, "miss": 0, "bypass": 0})


def _commit(writer_engine: sa.Engine, contact_id: str, version: int, *, delete: bool) -> None:
    """The worker's row write of a PATCH (a new first name) or a DELETE (a tombstone)."""
    if delete:
        statement = (
            "UPDATE contacts SET alive = false, version = :v, first_name = NULL,"
            " deleted_at = now() WHERE id = :id"
        )
    else:
        statement = "UPDATE contacts SET version = :v, first_name = :name WHERE id = :id"
    with writer_engine.begin() as conn:
        conn.execute(sa.text(statement), {"v": version, "id": contact_id, "name": f"v{version}"})


def _write(shared, writer_engine, worker_cache_write, contact_id, version, *, delete=False):
    if delete:
        shared.deleted.add(contact_id)  # before the commit: a 404 may come as soon as it lands
    _commit(writer_engine, contact_id, version, delete=delete)
    body = None if delete else f'{{"id":"{contact_id}","version":{version}}}'.encode()
    worker_cache_write(contact_id, version, body)
    shared.applied[contact_id] = version  # acknowledged: the operation is applied


def _read(shared: Shared, client, contact_id: str) -> None:
    floor = shared.applied.get(contact_id, 0)
    response = client.get(f"/v1/contacts/{contact_id}")
    shared.reads[response.headers.get("X-Cache", "bypass")] += 1
    if response.status_code == 404:
        if contact_id not in shared.deleted:
            shared.violations.append(f"{contact_id}: 404 before its delete was written")
        return
    if response.status_code != 200:
        shared.violations.append(f"{contact_id}: status {response.status_code}")
        return
    served = int(response.headers["ETag"].strip('"'))
    if served < floor:
        shared.violations.append(f"{contact_id}: served v{served} after v{floor} was applied")


def _reader(shared: Shared, app, hot: str) -> None:
    client = app.test_client()
    while not shared.done.is_set():
        _read(shared, client, shared.current)
        _read(shared, client, hot)


def test_reads_never_go_back_behind_an_applied_patch_or_delete(
    make_app, settings, seed, writer_engine, worker_cache_write
):
    # Rate limits stay on (their counting shares the cache read's script), out of reach.
    unlimited = RateLimitSettings(default="100000000/minute", workspace="100000000/minute")
    app = make_app(settings.model_copy(update={"rate_limits": unlimited, "local_cache_size": 1000}))
    local = app.extensions["query_api"].ports.cache
    assert isinstance(local, LocalContactCache)
    assert local.listener.wait_ready(10)
    shared = Shared()
    hot = seed.contact(version=1)
    worker_cache_write(hot, 1, b"{}")
    shared.applied[hot] = 1
    shared.current = seed.contact(version=1)
    readers = [
        threading.Thread(target=_reader, args=(shared, app, hot), daemon=True)
        for _ in range(READERS)
    ]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(ROUNDS):
            contact_id = str(uuid.uuid4())
            seed.contact(contact_id, version=1)  # in PostgreSQL only: the next reads miss
            shared.current = contact_id
            _write(shared, writer_engine, worker_cache_write, contact_id, 2)
            _write(shared, writer_engine, worker_cache_write, hot, round_ + 2)
            _write(shared, writer_engine, worker_cache_write, contact_id, 3, delete=True)
    finally:
        shared.done.set()
        for reader in readers:
            reader.join(30)

    assert shared.violations == []
    assert shared.reads["miss"] > 0
    assert shared.reads["hit"] > ROUNDS
    assert shared.reads["bypass"] == 0
    assert local.local_hits > ROUNDS  # the hot contact, between two of its writes
    final = app.test_client().get(f"/v1/contacts/{hot}")
    assert final.headers["ETag"] == f'"{ROUNDS + 1}"'
