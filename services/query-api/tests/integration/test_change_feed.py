"""``GET /v1/contacts/changes`` against real PostgreSQL: the worker's trigger writes the feed,
the query API reads it, and no change is skipped or repeated while transactions commit out of
order.

The database is shared with the run's other tests (and transaction ids are cluster-wide), so
each test follows only its own contacts, and waits for changes to become readable rather than
expecting them at once: a write transaction still running anywhere holds the feed's bound.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import sqlalchemy as sa

from query_api.service_layer.change_feed import decode_token, encode_token
from query_api.service_layer.records import FeedPosition
from query_api.service_layer.token_key import TokenKey

WAIT_S = 30.0
#: The default workspace's tokens carry no digest: any key reads them.
KEY = TokenKey.of("")


def _page(client: Any, token: str, limit: int = 1000) -> dict[str, Any]:
    response = client.get(f"/v1/contacts/changes?since={token}&limit={limit}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _start(client: Any) -> str:
    response = client.get("/v1/contacts/changes")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["items"] == []
    assert body["has_more"] is False
    return body["next_token"]


class Reader:
    """Follows the feed from a token, keeping the items of the contacts in ``ids``."""

    def __init__(self, client: Any, token: str, ids: Iterable[str] = ()) -> None:
        self.client, self.token, self.ids = client, token, set(ids)
        self.items: list[dict[str, Any]] = []

    def poll(self, limit: int = 1000) -> None:
        while True:
            body = _page(self.client, self.token, limit)
            self.items += [item for item in body["items"] if item["id"] in self.ids]
            self.token = body["next_token"]
            if not body["has_more"]:
                return

    def until(self, done: Callable[[list[dict[str, Any]]], bool], limit: int = 1000) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done(self.items):
            assert time.monotonic() < deadline, f"feed stalled; seen {self.items}"
            self.poll(limit)
            time.sleep(0.05)


def test_create_update_and_delete_each_appear_once_in_order(client, seed, writer_engine):
    reader = Reader(client, _start(client))
    contact_id = seed.contact(first_name="Ada", last_name="Feed")
    reader.ids.add(contact_id)
    with writer_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE contacts SET version = 2, first_name = 'Adah' WHERE id = :id"),
            {"id": contact_id},
        )
        conn.execute(  # no new version: not a change
            sa.text("UPDATE contacts SET notes = 'x' WHERE id = :id"), {"id": contact_id}
        )
    reader.until(lambda items: len(items) >= 2)
    with writer_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE contacts SET version = 3, alive = false WHERE id = :id"),
            {"id": contact_id},
        )
    reader.until(lambda items: len(items) >= 3)
    reader.poll()

    first, second, third = reader.items
    assert (first["version"], first["deleted"]) == (1, False)
    assert first["contact"] is None  # version 2 was written before the feed was read
    assert second["version"] == 2
    assert second["deleted"] is False
    assert third == {"id": contact_id, "version": 3, "deleted": True}


def test_an_item_carries_the_contact_while_its_version_is_current(client, seed):
    reader = Reader(client, _start(client))
    contact_id = seed.contact(first_name="Grace", last_name="Current", tags=["feed"])
    reader.ids.add(contact_id)

    reader.until(lambda items: len(items) == 1)

    [item] = reader.items
    assert item["contact"]["id"] == contact_id
    assert item["contact"]["first_name"] == "Grace"
    assert item["contact"]["tags"] == ["feed"]
    assert item["contact"]["version"] == item["version"] == 1


def test_a_change_committed_late_is_not_skipped(client, seed, writer_engine):
    # Transaction A writes first (lower transaction id) and commits last: a feed ordered by
    # position alone would have moved past A's row by the time it committed.
    reader = Reader(client, _start(client))
    early, late = str(uuid.uuid4()), str(uuid.uuid4())
    reader.ids |= {early, late}
    conn_a = writer_engine.connect()
    tx_a = conn_a.begin()
    try:
        seed.rows_in(conn_a, [seed.row_of(early, first_name="Early")])
        seed.contact(late, first_name="Late")
        reader.poll()
        assert reader.items == []  # B committed, but A, older, is still running
        tx_a.commit()
    finally:
        conn_a.close()

    reader.until(lambda items: len(items) == 2)

    assert [item["id"] for item in reader.items] == [early, late]


def test_concurrent_writers_every_change_exactly_once(client, seed, writer_engine):
    reader = Reader(client, _start(client))
    ids = [str(uuid.uuid4()) for _ in range(12)]
    reader.ids |= set(ids)
    versions = 6
    errors: list[BaseException] = []

    def writer(contact_id: str, rng: random.Random) -> None:
        try:
            for version in range(1, versions + 1):
                with writer_engine.begin() as conn:
                    if version == 1:
                        seed.rows_in(conn, [seed.row_of(contact_id, first_name="W")])
                    else:
                        conn.execute(
                            sa.text(
                                "UPDATE contacts SET version = :v, alive = :alive WHERE id = :id"
                            ),
                            {"v": version, "alive": version < versions, "id": contact_id},
                        )
                    time.sleep(rng.random() * 0.03)  # commit late, out of order
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(cid, random.Random(i))) for i, cid in enumerate(ids)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        reader.poll(limit=7)  # small pages: many tokens cross the writes
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert errors == []
    reader.until(lambda items: len(items) >= len(ids) * versions, limit=7)
    reader.poll()

    seen = [(item["id"], item["version"]) for item in reader.items]
    assert len(seen) == len(set(seen)), "a change was reported twice"
    assert sorted(seen) == sorted((cid, v) for cid in ids for v in range(1, versions + 1))
    for contact_id in ids:
        mine = [item for item in reader.items if item["id"] == contact_id]
        assert [item["version"] for item in mine] == list(range(1, versions + 1))
        assert mine[-1]["deleted"] is True


def test_the_first_call_starts_now(client, seed):
    before = seed.contact(first_name="Before")
    reader = Reader(client, _start(client), {before})
    after = seed.contact(first_name="After")
    reader.ids.add(after)

    reader.until(lambda items: any(item["id"] == after for item in items))

    assert [item["id"] for item in reader.items] == [after]


def test_a_token_behind_the_purge_horizon_is_410(client, writer_engine):
    # The horizon is put at "now" (the feed's end when the test starts), so a token at it is
    # never ahead of the feed's end, however long other transactions of the cluster (another
    # test process, say) hold that end back.
    at = decode_token(_start(client), "default", key=KEY)
    with writer_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO change_feed_horizon (txid, position) VALUES (CAST(:x AS xid8), :p)"
                " ON CONFLICT (singleton) DO UPDATE SET txid = EXCLUDED.txid,"
                " position = EXCLUDED.position"
            ),
            {"x": str(at.txid), "p": at.position},
        )
    token = encode_token("default", FeedPosition(at.txid - 1, at.position), key=KEY)
    at_horizon = encode_token("default", at, key=KEY)
    try:
        response = client.get(f"/v1/contacts/changes?since={token}")
        current = client.get(f"/v1/contacts/changes?since={at_horizon}")
    finally:
        with writer_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM change_feed_horizon"))

    assert response.status_code == 410
    assert response.mimetype == "application/problem+json"
    assert "purged" in response.get_json()["detail"]
    assert current.status_code == 200


def test_a_token_from_the_future_is_410_telling_the_client_to_resync(client):
    # What a client holds after the database was restored from a backup taken before its
    # token: a position past the feed's end. An empty 200 would leave it waiting for ever.
    at = decode_token(_start(client), "default", key=KEY)
    ahead = encode_token("default", FeedPosition(at.txid + 1_000_000, 0), key=KEY)

    response = client.get(f"/v1/contacts/changes?since={ahead}")

    assert response.status_code == 410
    assert response.mimetype == "application/problem+json"
    assert "list the contacts again" in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=%25%25", "since"),
        ("since=abc", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("until=1", "until"),
    ],
)
def test_bad_arguments_are_400_naming_the_parameter(client, query, field):
    response = client.get(f"/v1/contacts/changes?{query}")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
