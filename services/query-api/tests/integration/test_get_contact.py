"""``GET /v1/contacts/{id}`` against real PostgreSQL and Redis: cache-first, refill, races."""

from __future__ import annotations

import json
import uuid

import pytest

from contacts_infra.redis_keys import contact_key
from query_api.adapters.sql_read_model import SqlContactReadModel
from query_api.bootstrap import build_engine


def test_miss_then_hit_serve_the_same_bytes_the_worker_caches(client, seed, redis_client, prefix):
    contact_id = seed.contact(
        version=4,
        first_name="Grace",
        last_name="Hopper",
        email="Grace@Navy.example",
        phone="+1 202 555 0100",
        tags=["navy", "cobol"],
        birthday="1906-12-09",
        addresses=[{"city": "Arlington", "country": "us"}],
    )

    miss = client.get(f"/v1/contacts/{contact_id}")
    hit = client.get(f"/v1/contacts/{contact_id}")

    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert miss.data == hit.data
    assert miss.headers["ETag"] == '"4"'
    body = miss.get_json()
    assert body["id"] == contact_id
    assert (body["email"], body["phone"]) == ("Grace@navy.example", "+12025550100")
    assert body["birthday"] == "1906-12-09"
    assert body["addresses"][0]["country"] == "US"
    entry = redis_client.hgetall(contact_key(prefix, "default", contact_id))
    assert entry == {b"v": b"4", b"d": miss.data}
    assert 0 < redis_client.ttl(contact_key(prefix, "default", contact_id)) <= 3600


def test_deleted_contact_is_404_and_cached_as_a_tombstone(client, seed, redis_client, prefix):
    contact_id = seed.contact(version=6, alive=False)

    first = client.get(f"/v1/contacts/{contact_id}")
    second = client.get(f"/v1/contacts/{contact_id}")

    assert (first.status_code, second.status_code) == (404, 404)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.mimetype == "application/problem+json"
    assert redis_client.hgetall(contact_key(prefix, "default", contact_id)) == {
        b"v": b"6",
        b"d": b"",
    }


def test_unknown_id_is_404_and_not_cached(client, redis_client, prefix):
    contact_id = str(uuid.uuid4())

    response = client.get(f"/v1/contacts/{contact_id}")

    assert response.status_code == 404
    assert not redis_client.exists(contact_key(prefix, "default", contact_id))


def test_cached_tombstone_wins_over_an_older_live_row(client, seed, worker_cache_write):
    contact_id = seed.contact(version=2)
    worker_cache_write(contact_id, 3, None)

    response = client.get(f"/v1/contacts/{contact_id}")

    assert response.status_code == 404
    assert response.headers["X-Cache"] == "hit"


@pytest.mark.parametrize("newer_body", [b'{"v":3}', None], ids=["newer-version", "tombstone"])
def test_refill_race_never_puts_back_an_older_version(
    make_app, settings, seed, redis_client, prefix, worker_cache_write, newer_body
):
    """The request reads v2 from PostgreSQL; before it refills, the worker commits v3 (or a
    delete) and writes the cache. The refill of v2 must lose."""
    contact_id = seed.contact(version=2)

    class WorkerWritesBetweenReadAndRefill(SqlContactReadModel):
        def get(self, workspace, cid):
            record = super().get(workspace, cid)
            worker_cache_write(cid, 3, newer_body)
            return record

    engine = build_engine(settings)
    client = make_app(settings, contacts=WorkerWritesBetweenReadAndRefill(engine)).test_client()

    raced = client.get(f"/v1/contacts/{contact_id}")
    after = client.get(f"/v1/contacts/{contact_id}")

    assert raced.status_code == 200
    assert raced.headers["ETag"] == '"2"'  # what PostgreSQL said when it was read
    assert redis_client.hgetall(contact_key(prefix, "default", contact_id)) == {
        b"v": b"3",
        b"d": newer_body or b"",
    }
    assert after.headers["X-Cache"] == "hit"
    assert after.status_code == (200 if newer_body else 404)
    engine.dispose()


def test_if_none_match_with_the_current_etag_is_304(client, seed):
    contact_id = seed.contact(version=9)

    response = client.get(f"/v1/contacts/{contact_id}", headers={"If-None-Match": 'W/"8", "9"'})

    assert response.status_code == 304
    assert response.headers["ETag"] == '"9"'


def test_head(client, seed):
    contact_id = seed.contact(version=1)

    response = client.head(f"/v1/contacts/{contact_id}")

    assert response.status_code == 200
    assert response.data == b""
    assert json.loads(client.get(f"/v1/contacts/{contact_id}").data)["id"] == contact_id


@pytest.mark.parametrize("warm", [False, True], ids=["miss", "hit"])
def test_fields_returns_only_the_members_named(client, seed, redis_client, prefix, warm):
    email = f"ada.{uuid.uuid4().hex[:8]}@l.example"  # primary emails are unique
    contact_id = seed.contact(version=3, first_name="Ada", last_name="Lovelace", email=email)
    full = client.get(f"/v1/contacts/{contact_id}")
    if not warm:
        redis_client.delete(contact_key(prefix, "default", contact_id))
    response = client.get(f"/v1/contacts/{contact_id}?fields=first_name, emails")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == ("hit" if warm else "miss")
    assert response.get_json() == {
        "id": contact_id,
        "version": 3,
        "first_name": "Ada",
        "emails": full.get_json()["emails"],
    }
    assert response.headers["ETag"] == full.headers["ETag"] == '"3"'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("first_name,ssn", "Unknown field(s) ssn"),
        (",", "Name at least one field"),
        ("", "Name at least one field"),
    ],
)
def test_an_unknown_or_empty_field_mask_is_a_400_naming_the_parameter(
    client, seed, fields, message
):
    contact_id = seed.contact(version=1, first_name="Ada")

    response = client.get(f"/v1/contacts/{contact_id}?fields={fields}")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    [error] = response.get_json()["errors"]["fields"]
    assert message in error
