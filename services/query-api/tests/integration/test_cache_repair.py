"""After a Redis outage no stale entry is served (cases C18; docs/architecture.md §5.5), on real
Redis and
PostgreSQL with a fault proxy between the app and Redis.

The stale entry: the contact was cached at v1 before the outage; during it the worker committed
v2 and its cache write failed, and after ``SQS_MAX_RECEIVE_COUNT`` receives the message may sit
in the dead-letter queue, so nothing overwrites v1. The version guard cannot help (nobody writes
v2). The breaker's trial call first repairs the entries of every contact changed since Redis was
last healthy, so the first answer after the outage is already v2.

When the circuit closes is not what these tests judge, only that nothing stale is served
before or after: one CI run (stop 20) saw the circuit still open 2.3 s after Redis was back
(the cause was not found: no repair failure was logged, so presumably trial calls failed, each
costing ``RESET_S``). The tests now wait up to ``CLOSE_WITHIN_S`` for the cache to serve
again. The run's database is shared with the other packages' tests, and the repair refills
every contact changed in the outage plus ``cache_repair_margin_s`` (60 s by default), one
guarded write each (8,000 took 3 s here): the tests take a short margin of their own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import contact_key
from query_api.adapters.circuit_breaker import NoBreaker
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_contact_cache import RedisReadThroughContactCache
from query_api.adapters.sql_read_model import SqlContactReadModel
from query_api.bootstrap import build_engine
from query_api.service_layer.records import CachedContact, Tombstone
from support.fault_proxy import FaultProxy

RESET_S = 0.3
#: The repair's margin (s): enough to cover this test's own commits, made seconds before.
REPAIR_MARGIN_S = 5.0
#: The longest the circuit may take to close once Redis is back (s).
CLOSE_WITHIN_S = 15.0


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    url = redis.connection.parse_url("redis://127.0.0.1:6379/0")
    proxy = FaultProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379)))).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_client(make_app, settings, proxy):
    app = make_app(
        settings.model_copy(
            update={
                "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
                "redis_breaker_failures": 2,
                "redis_breaker_reset_s": RESET_S,
                "cache_repair_margin_s": REPAIR_MARGIN_S,
            }
        )
    )
    return app.test_client()


def worker_commits(seed, contact_id: str, version: int, **changes: object) -> None:
    """What the worker commits for an event: the row at ``version`` and its inbox record (the
    cache write that follows is the part the outage makes fail)."""
    assignments = ", ".join(f"{name} = :{name}" for name in changes)
    with seed.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE contacts SET version = :version, {assignments} WHERE id = :id"),
            {"id": contact_id, "version": version, **changes},
        )
    seed.outcome(str(uuid.uuid4()), contact_id, "applied", version=version)


@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
def test_c18_entries_that_went_stale_during_the_outage_are_never_served(
    proxied_client, seed, proxy, redis_client, prefix, fault
):
    client = proxied_client
    renamed = seed.contact(version=1, first_name="Before")
    deleted = seed.contact(version=1, first_name="Doomed")
    untouched = seed.contact(version=1, first_name="Quiet")
    for contact_id in (renamed, deleted, untouched):
        assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "miss"
        assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "hit"

    proxy.set_mode(fault)
    for _ in range(3):
        assert client.get(f"/v1/contacts/{untouched}").headers["X-Cache"] == "bypass"
    worker_commits(seed, renamed, 2, first_name="After")
    worker_commits(seed, deleted, 2, alive=False, first_name=None)
    during = client.get(f"/v1/contacts/{renamed}")
    assert (during.headers["X-Cache"], during.get_json()["first_name"]) == ("bypass", "After")
    assert client.get(f"/v1/contacts/{deleted}").status_code == 404
    proxy.set_mode("pass")

    # Redis is back and still holds what the outage left behind: v1 of both.
    assert redis_client.hget(contact_key(prefix, "default", renamed), "v") == b"1"
    assert redis_client.hget(contact_key(prefix, "default", deleted), "v") == b"1"
    served: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + CLOSE_WITHIN_S
    hits_after_close = 0
    while time.monotonic() < deadline and hits_after_close < 20:
        got = client.get(f"/v1/contacts/{renamed}")
        served.append((got.headers["X-Cache"], got.headers["ETag"], got.get_json()["first_name"]))
        assert client.get(f"/v1/contacts/{deleted}").status_code == 404
        hits_after_close += served[-1][0] == "hit"
        time.sleep(0.02)

    assert {(etag, name) for _, etag, name in served} == {('"2"', "After")}
    # The circuit closed, and the cache serves again (never before the repair: v2 above).
    assert served[-1][0] == "hit", [outcome for outcome, _, _ in served]
    assert redis_client.hgetall(contact_key(prefix, "default", renamed))[b"v"] == b"2"
    assert redis_client.hgetall(contact_key(prefix, "default", deleted)) == {b"v": b"2", b"d": b""}
    assert client.get(f"/v1/contacts/{untouched}").headers["X-Cache"] == "hit"


def test_the_circuit_stays_open_while_the_repair_cannot_read_postgresql(
    make_app, settings, seed, proxy, refused_port
):
    """With PostgreSQL down too, the repair fails: the cache is not trusted (the trial fails
    and the circuit opens again); PostgreSQL is needed to answer anyway (503)."""
    down = sa.make_url(settings.database_url).set(port=refused_port)
    client = make_app(
        settings.model_copy(
            update={
                "database_url": down.render_as_string(hide_password=False),
                "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
                "redis_breaker_failures": 1,
                "redis_breaker_reset_s": RESET_S,
            }
        )
    ).test_client()
    contact_id = str(uuid.uuid4())
    proxy.set_mode("refuse")
    assert client.get(f"/v1/contacts/{contact_id}").status_code == 503
    proxy.set_mode("pass")
    time.sleep(RESET_S)

    assert client.get(f"/v1/contacts/{contact_id}").status_code == 503
    assert client.get("/readyz").status_code == 503


def test_changed_since_reads_the_inbox_slice_by_slice_and_yields_each_contact_once(settings, seed):
    """A long look-back (a process that had not reached Redis for most of an hour) is read in
    five-minute slices; a contact changed in several slices comes once; older changes and
    rejected events are not read."""
    ages_min = {"recent": [1], "twice": [7, 22], "deleted": [13], "old": [120], "rejected": [2]}
    ids = {
        name: seed.contact(version=2, alive=name != "deleted", first_name=name) for name in ages_min
    }
    with seed.engine.begin() as conn:
        for name, ages in ages_min.items():
            for age in ages:
                conn.execute(
                    sa.text(
                        "INSERT INTO processed_events (event_id, operation_id, contact_id,"
                        " event_type, sequence, status, version, processed_at) VALUES"
                        " (:e, :o, :c, 'contacts.contact.patched.v1', '0', :s, 2,"
                        " now() - make_interval(mins => :age))"
                    ),
                    {
                        "e": str(uuid.uuid4()),
                        "o": str(uuid.uuid4()),
                        "c": ids[name],
                        "s": "rejected" if name == "rejected" else "applied",
                        "age": age,
                    },
                )
    engine = build_engine(settings)
    try:
        changed = list(SqlContactReadModel(engine).changed_since(30 * 60))
    finally:
        engine.dispose()

    # Other tests of the session write other workspaces meanwhile: judge only this test's rows.
    assert {ws for ws, c in changed if c.contact_id in ids.values()} == {"default"}
    mine = [c for _, c in changed if c.contact_id in ids.values()]
    assert sorted(c.contact_id for c in mine) == sorted(
        ids[name] for name in ("recent", "twice", "deleted")
    )
    assert [c for c in mine if c.contact_id == ids["deleted"]] == [Tombstone(ids["deleted"], 2)]


@pytest.fixture
def redis_cache(settings) -> Iterator[RedisReadThroughContactCache]:
    client = create_redis(settings, client_name="query-api")
    yield RedisReadThroughContactCache(RedisCalls(client, NoBreaker()), settings.redis_prefix, 60)
    client.close()


def test_refill_many_writes_each_entry_under_the_version_guard_in_one_pipeline(
    redis_cache, redis_client, prefix
):
    """The repair's batched refills (``refill_many``) follow ``refill``'s rule entry by entry,
    in each entry's own workspace."""
    newer, older, gone, other = (str(uuid.uuid4()) for _ in range(4))
    assert redis_cache.refill("acme", newer, 5, b'{"v":5}') is True
    assert redis_cache.refill("acme", older, 1, b'{"v":1}') is True

    written = redis_cache.refill_many(
        [
            ("acme", newer, 4, b'{"v":4}'),  # older than the entry: refused
            ("acme", older, 2, b'{"v":2}'),
            ("acme", gone, 3, None),  # a tombstone
            ("globex", other, 1, b'{"ws":"globex"}'),
        ]
    )

    assert written == 3
    assert redis_cache.get("acme", newer) == CachedContact(5, b'{"v":5}')
    assert redis_cache.get("acme", older) == CachedContact(2, b'{"v":2}')
    assert redis_cache.get("acme", gone) == CachedContact(3, None)
    assert redis_cache.get("globex", other) == CachedContact(1, b'{"ws":"globex"}')
    assert redis_cache.get("acme", other) is None
    assert redis_client.ttl(contact_key(prefix, "acme", older)) > 0
    assert redis_cache.refill_many([]) == 0
