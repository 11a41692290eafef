"""Workspaces on real PostgreSQL and Redis (docs/architecture.md §10): every endpoint of the
query API reads its caller's workspace only. The same contact id and the same email live in two
workspaces as two contacts; a contact, operation or import of another workspace is answered
exactly as an unknown one (404: status, body and headers alike); a cursor or change token of
another workspace is a 400 like a malformed one; feeds and exports never mix.

The session's API key is in ``default``; ``other_workspace`` is a workspace of this session's
own with a key bound to it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from contacts_domain.imports import ImportReport
from contacts_domain.operations import OperationStatus
from contacts_infra.redis_client import create_redis
from contacts_infra.redis_keys import contact_key, import_key, operation_key
from query_api.adapters.circuit_breaker import NoBreaker
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_contact_cache import RedisReadThroughContactCache
from query_api.adapters.sql_read_model import SqlContactReadModel
from query_api.bootstrap import build_engine
from query_api.service_layer import cursor as cursor_module
from query_api.service_layer.handlers import repair_cache

#: Headers that differ between any two responses, whatever they answer.
#: (the rate-limit counters count the caller's own requests).
PER_RESPONSE = {"x-request-id", "date", "ratelimit-remaining", "ratelimit-reset", "ratelimit"}
WAIT_S = 30.0


def _same_answer(first: Any, second: Any) -> None:
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()
    assert _headers(first) == _headers(second)


def _headers(response: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k.lower() not in PER_RESPONSE)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_the_same_id_in_two_workspaces_is_two_contacts_in_two_cache_entries(
    client, seed, redis_client, prefix, other_workspace
):
    other, other_headers = other_workspace
    contact_id = seed.contact(first_name="Ada", version=2)
    seed.contact(contact_id, first_name="Grace", version=5, workspace=other)

    for cache in ("miss", "hit"):
        ours = client.get(f"/v1/contacts/{contact_id}")
        theirs = client.get(f"/v1/contacts/{contact_id}", headers=other_headers)
        assert (ours.get_json()["first_name"], ours.headers["ETag"]) == ("Ada", '"2"')
        assert (theirs.get_json()["first_name"], theirs.headers["ETag"]) == ("Grace", '"5"')
        assert ours.headers["X-Cache"] == theirs.headers["X-Cache"] == cache

    assert redis_client.hget(contact_key(prefix, "default", contact_id), "v") == b"2"
    assert redis_client.hget(contact_key(prefix, other, contact_id), "v") == b"5"


def test_a_contact_of_another_workspace_is_answered_as_an_unknown_one(
    client, seed, redis_client, prefix, other_workspace
):
    other, other_headers = other_workspace
    theirs = seed.contact(first_name="Hidden", workspace=other)
    url = f"/v1/contacts/{theirs}"
    assert client.get(url, headers=other_headers).status_code == 200  # cached in theirs

    for method in (client.get, client.head):
        foreign, unknown = method(url), method(f"/v1/contacts/{uuid.uuid4()}")
        _same_answer(foreign, unknown)
        assert foreign.status_code == 404
    assert not redis_client.exists(contact_key(prefix, "default", theirs))


def test_lists_searches_and_filters_read_the_callers_workspace_only(client, seed, other_workspace):
    other, other_headers = other_workspace
    tag = f"ws-{uuid.uuid4().hex[:8]}"
    email = f"same.{uuid.uuid4().hex[:8]}@example.org"
    ours = seed.contact(first_name="Wilhelmina", email=email, tags=[tag])
    theirs = seed.contact(first_name="Wilhelmina", email=email, tags=[tag], workspace=other)
    only_theirs = seed.contact(first_name="Wilbur", tags=[tag], workspace=other)

    for query in (f"tag={tag}", f"tag={tag}&q=wil", f"email={email}", f"tag={tag}&sort=-last_name"):
        assert _ids(client.get(f"/v1/contacts?{query}")) == [ours], query
    assert sorted(_ids(client.get(f"/v1/contacts?tag={tag}", headers=other_headers))) == sorted(
        [theirs, only_theirs]
    )
    assert _ids(client.get(f"/v1/contacts?email={email}", headers=other_headers)) == [theirs]
    assert _ids(client.get(f"/v1/contacts?tag={tag}&q=wilb")) == []


def test_a_cursor_of_another_workspace_is_a_400_exactly_like_garbage(client, seed, other_workspace):
    other, other_headers = other_workspace
    tag = f"ws-{uuid.uuid4().hex[:8]}"
    for workspace in ("default", other, "default", other):
        seed.contact(tags=[tag], workspace=workspace)
    cursor = client.get(f"/v1/contacts?limit=1&tag={tag}").get_json()["next_cursor"]
    theirs = client.get(f"/v1/contacts?limit=1&tag={tag}", headers=other_headers)
    their_cursor = theirs.get_json()["next_cursor"]

    foreign = client.get(f"/v1/contacts?limit=1&tag={tag}&cursor={cursor}", headers=other_headers)
    reversed_ = client.get(f"/v1/contacts?limit=1&tag={tag}&cursor={their_cursor}")
    other_filters = client.get(f"/v1/contacts?limit=1&tag=x{tag}&cursor={cursor}")

    garbage = client.get(f"/v1/contacts?limit=1&tag={tag}&cursor=bm90LWEtY3Vyc29y")

    assert foreign.status_code == reversed_.status_code == 400
    assert foreign.get_json()["errors"] == {"cursor": [cursor_module.INVALID]}
    _same_answer(foreign, other_filters)
    _same_answer(reversed_, garbage)
    assert client.get(f"/v1/contacts?limit=1&tag={tag}&cursor={cursor}").status_code == 200


def test_exports_of_two_workspaces_never_mix(client, seed, other_workspace):
    other, other_headers = other_workspace
    tag = f"ws-{uuid.uuid4().hex[:8]}"
    ours = {seed.contact(first_name=f"Ours{n}", tags=[tag]) for n in range(3)}
    theirs = {seed.contact(first_name=f"Theirs{n}", tags=[tag], workspace=other) for n in range(2)}

    mine = client.get(f"/v1/contacts/export?format=csv&tag={tag}").get_data(as_text=True)
    their_export = client.get(
        f"/v1/contacts/export?format=csv&tag={tag}", headers=other_headers
    ).get_data(as_text=True)

    assert (mine.count("Ours"), mine.count("Theirs")) == (3, 0)
    assert (their_export.count("Ours"), their_export.count("Theirs")) == (0, 2)
    assert len(ours | theirs) == 5


def _follow(client: Any, token: str, headers: dict[str, str], want: int) -> list[dict[str, Any]]:
    """Every item after ``token`` until at least ``want`` arrived (bounded by ``WAIT_S``)."""
    items: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        response = client.get(f"/v1/contacts/changes?since={token}", headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        token = body["next_token"]
        if len(items) >= want and not body["has_more"]:
            return items
        assert time.monotonic() < deadline, f"feed stalled; seen {items}"
        time.sleep(0.05)


def test_change_feeds_of_two_workspaces_never_mix(client, seed, writer_engine, other_workspace):
    other, other_headers = other_workspace
    ours_token = client.get("/v1/contacts/changes").get_json()["next_token"]
    theirs_token = client.get("/v1/contacts/changes", headers=other_headers).get_json()[
        "next_token"
    ]
    shared_id = str(uuid.uuid4())
    theirs = [seed.contact(shared_id, first_name="T0", workspace=other)]
    theirs.append(seed.contact(first_name="T1", workspace=other))
    ours = seed.contact(shared_id, first_name="O0")
    with writer_engine.begin() as conn:  # a new version of our contact only
        conn.execute(
            sa.text("UPDATE contacts SET version = 2 WHERE workspace = 'default' AND id = :id"),
            {"id": shared_id},
        )

    their_items = _follow(client, theirs_token, other_headers, want=2)
    our_items = _follow_ours(client, ours_token, ours)

    # Nothing else writes in the other workspace: its feed holds exactly its two creations.
    assert [(i["id"], i["version"]) for i in their_items] == [(theirs[0], 1), (theirs[1], 1)]
    assert their_items[0]["contact"]["first_name"] == "T0"
    assert [(i["id"], i["version"]) for i in our_items] == [(ours, 1), (ours, 2)]
    assert our_items[1]["contact"]["first_name"] == "O0"


def _follow_ours(client: Any, token: str, contact_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    items: list[dict[str, Any]] = []
    while len(items) < 2:
        assert time.monotonic() < deadline, f"feed stalled; seen {items}"
        body = client.get(f"/v1/contacts/changes?since={token}").get_json()
        items += [item for item in body["items"] if item["id"] == contact_id]
        token = body["next_token"]
        time.sleep(0.05)
    return items


def test_a_change_token_of_another_workspace_is_a_400_like_a_malformed_one(client, other_workspace):
    _, other_headers = other_workspace
    ours = client.get("/v1/contacts/changes").get_json()["next_token"]
    theirs = client.get("/v1/contacts/changes", headers=other_headers).get_json()["next_token"]

    for token, headers in ((ours, other_headers), (theirs, {})):
        foreign = client.get(f"/v1/contacts/changes?since={token}", headers=headers)
        malformed = client.get("/v1/contacts/changes?since=abc", headers=headers)
        assert foreign.status_code == 400
        assert foreign.get_json()["errors"] == {"since": ["The token is not valid."]}
        _same_answer(foreign, malformed)


@pytest.mark.parametrize("where", ["redis", "postgresql"])
def test_an_operation_of_another_workspace_is_answered_as_an_unknown_one(
    client, seed, redis_client, prefix, other_workspace, where
):
    other, other_headers = other_workspace
    operation_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
    if where == "redis":
        status = OperationStatus(operation_id, contact_id, "pending")
        key = operation_key(prefix, other, operation_id)
        redis_client.set(key, json.dumps(status.to_dict()), ex=60)
    else:
        seed.outcome(operation_id, contact_id, "applied", version=1, workspace=other)

    assert client.get(f"/v1/operations/{operation_id}", headers=other_headers).status_code == 200
    foreign = client.get(f"/v1/operations/{operation_id}")
    _same_answer(foreign, client.get(f"/v1/operations/{uuid.uuid4()}"))
    assert foreign.status_code == 404


def test_an_import_of_another_workspace_is_unknown_and_counts_are_per_workspace(
    client, seed, redis_client, prefix, writer_engine, other_workspace
):
    other, other_headers = other_workspace
    import_id = str(uuid.uuid4())
    report = ImportReport(
        import_id=import_id,
        format="csv",
        state="queued",
        received=3,
        accepted=3,
        invalid=0,
        failed=0,
        created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )
    redis_client.set(import_key(prefix, other, import_id), json.dumps(report.to_dict()), ex=60)
    with writer_engine.begin() as conn:  # one outcome in the other workspace, two in ours
        for workspace in (other, "default", "default"):
            conn.execute(
                sa.text(
                    "INSERT INTO processed_events (workspace, event_id, operation_id,"
                    " contact_id, event_type, sequence, status, version, import_id) VALUES"
                    " (:w, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),"
                    " 'contacts.contact.created.v1', '0', 'applied', 1, :i)"
                ),
                {"w": workspace, "i": import_id},
            )

    theirs = client.get(f"/v1/imports/{import_id}", headers=other_headers)
    foreign = client.get(f"/v1/imports/{import_id}")

    assert theirs.status_code == 200
    assert (theirs.get_json()["applied"], theirs.get_json()["pending"]) == (1, 2)
    _same_answer(foreign, client.get(f"/v1/imports/{uuid.uuid4()}"))
    assert foreign.status_code == 404


def test_the_cache_repair_refreshes_each_workspaces_entry(
    settings, seed, writer_engine, redis_client, prefix, other_workspace
):
    other, _ = other_workspace
    contact_id = seed.contact(first_name="Ada", version=3)
    seed.contact(contact_id, first_name="Grace", version=7, workspace=other)
    with writer_engine.begin() as conn:
        for workspace, version in (("default", 3), (other, 7)):
            conn.execute(
                sa.text(
                    "INSERT INTO processed_events (workspace, event_id, operation_id,"
                    " contact_id, event_type, sequence, status, version) VALUES"
                    " (:w, gen_random_uuid(), gen_random_uuid(), :c,"
                    " 'contacts.contact.patched.v1', '0', 'applied', :v)"
                ),
                {"w": workspace, "c": contact_id, "v": version},
            )
    for workspace in ("default", other):  # entries written before an outage
        redis_client.hset(contact_key(prefix, workspace, contact_id), mapping={"v": 1, "d": "{}"})
    engine = build_engine(settings)
    client = create_redis(settings, client_name="query-api")
    try:
        cache = RedisReadThroughContactCache(RedisCalls(client, NoBreaker()), prefix, 60)
        contacts = SqlContactReadModel(engine)
        changed = [(w, s.contact_id) for w, s in contacts.changed_since(60)]
        repair_cache(30.0, contacts=contacts, cache=cache, margin_s=5, max_lookback_s=60)
    finally:
        engine.dispose()
        client.close()

    assert {("default", contact_id), (other, contact_id)} <= set(changed)
    ours = redis_client.hgetall(contact_key(prefix, "default", contact_id))
    theirs = redis_client.hgetall(contact_key(prefix, other, contact_id))
    assert (ours[b"v"], json.loads(ours[b"d"])["first_name"]) == (b"3", "Ada")
    assert (theirs[b"v"], json.loads(theirs[b"d"])["first_name"]) == (b"7", "Grace")
