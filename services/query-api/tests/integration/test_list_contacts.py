"""``GET /v1/contacts`` against real PostgreSQL: keyset pages, ties, filters, search, cursors.

Every test lists under a tag of its own: the run's database is shared with other tests.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def tag() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def _walk(client, query: str) -> list[str]:
    """Follow ``Link: rel=next`` to the end; return the ids in order."""
    ids: list[str] = []
    url = f"/v1/contacts?{query}"
    for _ in range(100):
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        ids += [item["id"] for item in response.get_json()["items"]]
        link = response.headers.get("Link")
        if link is None:
            assert response.get_json()["next_cursor"] is None
            return ids
        url = link[1 : link.index(">")]
    raise AssertionError("more than 100 pages")


@pytest.fixture
def tied_contacts(seed, tag):
    """40 contacts: 5 creation times and 3 last names (two differing only in case, and none),
    so most sort keys are shared and only the id orders them."""
    rows = []
    last_names = ["Smith", "SMITH", None, "Jones"]
    for i in range(40):
        created = T0 + dt.timedelta(minutes=i % 5)
        last = last_names[i % 4]
        contact_id = seed.contact(created_at=created, last_name=last, tags=[tag])
        rows.append((contact_id, created, (last or "").lower()))
    return rows


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "last_name", "-last_name"])
@pytest.mark.parametrize("limit", [1, 7, 40, 100])
def test_pages_cover_every_contact_once_in_order(client, tied_contacts, tag, sort, limit):
    key = 1 if sort.endswith("created_at") else 2
    expected = sorted(tied_contacts, key=lambda r: (r[key], r[0]), reverse=sort.startswith("-"))

    ids = _walk(client, f"tag={tag}&sort={sort}&limit={limit}")

    assert ids == [r[0] for r in expected]


def test_a_contact_created_mid_walk_neither_duplicates_nor_hides_others(
    client, seed, tied_contacts, tag
):
    first = client.get(f"/v1/contacts?tag={tag}&limit=10").get_json()
    newcomer = seed.contact(created_at=T0 + dt.timedelta(hours=1), tags=[tag])

    rest = _walk(client, f"tag={tag}&limit=10&cursor={first['next_cursor']}")

    ids = [item["id"] for item in first["items"]] + rest
    assert len(ids) == len(set(ids)) == 41
    assert ids[-1] == newcomer


def test_default_page_is_20_by_creation_time(client, tied_contacts, tag):
    body = client.get(f"/v1/contacts?tag={tag}").get_json()

    assert len(body["items"]) == 20
    assert body["next_cursor"]
    created = [item["created_at"] for item in body["items"]]
    assert created == sorted(created)


def test_email_filter_matches_any_email_case_insensitively(client, seed, tag):
    wanted = seed.contact(
        tags=[tag],
        emails=[
            {"value": "primary@example.org", "primary": True},
            {"value": "Ada.Secondary@Example.ORG"},
        ],
    )
    seed.contact(tags=[tag], email="someone@example.org")

    for address in ("ADA.SECONDARY@example.org", "primary@EXAMPLE.org"):
        items = client.get(f"/v1/contacts?tag={tag}&email={address}").get_json()["items"]
        assert [i["id"] for i in items] == [wanted], address


def test_email_filter_and_search_keep_sharp_s_and_ss_apart(client, seed, tag):
    # Simple case folding (values.email_key): ẞ/ß fold to ß, never to "ss".
    sharp = seed.contact(tags=[tag], first_name="A", email="stra\u00dfe@example.org")
    double = seed.contact(tags=[tag], first_name="B", email="Strasse@example.org")

    def ids(**query: str) -> list[str]:
        response = client.get("/v1/contacts", query_string={"tag": tag, **query})
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(email="STRA\u1e9eE@example.org") == [sharp]
    assert ids(email="strasse@EXAMPLE.org") == [double]
    assert ids(q="STRA\u1e9e") == [sharp]
    assert ids(q="strass") == [double]


def test_tags_combine_with_and(client, seed, tag):
    both = seed.contact(tags=[tag, "blue"])
    seed.contact(tags=[tag])
    seed.contact(tags=["blue"])

    items = client.get(f"/v1/contacts?tag={tag}&tag=blue").get_json()["items"]

    assert [i["id"] for i in items] == [both]


def test_q_is_a_case_insensitive_prefix_of_first_last_or_email(client, seed, tag):
    by_first = seed.contact(tags=[tag], first_name="Zelda")
    by_last = seed.contact(tags=[tag], first_name="A", last_name="Zeller")
    by_email = seed.contact(tags=[tag], first_name="B", email="ZEd@example.org")
    seed.contact(tags=[tag], first_name="Ozel", last_name="Nozel", email="oz@zel.example")

    items = client.get(f"/v1/contacts?tag={tag}&q=ZE&sort=created_at").get_json()["items"]

    assert {i["id"] for i in items} == {by_first, by_last, by_email}


@pytest.mark.parametrize(
    ("q", "matches"),
    [
        ("100%", ["100%_sure"]),
        ("100%_", ["100%_sure"]),
        ("1_0", []),
        ("%", []),
        ("_", []),
        ("a\\b", ["a\\b"]),
        ("100", ["100%_sure", "100 pct"]),
    ],
)
def test_q_takes_like_wildcards_literally(client, seed, tag, q, matches):
    names = {
        seed.contact(tags=[tag], first_name=name): name
        for name in ("100%_sure", "100 pct", "a\\b", "axb")
    }

    response = client.get("/v1/contacts", query_string={"tag": tag, "q": q})

    assert sorted(names[i["id"]] for i in response.get_json()["items"]) == sorted(matches)


def test_q_and_filters_paginate_too(client, seed, tag):
    ids = {seed.contact(tags=[tag], first_name=f"Pat{i}") for i in range(9)}
    seed.contact(tags=[tag], first_name="Other")

    assert set(_walk(client, f"tag={tag}&q=pat&limit=2&sort=-last_name")) == ids


def test_non_ascii_search_and_sort(client, seed, tag):
    accented = seed.contact(tags=[tag], first_name="Émile", last_name="Ølsen")

    by_q = client.get("/v1/contacts", query_string={"tag": tag, "q": "émi"}).get_json()
    by_last = client.get("/v1/contacts", query_string={"tag": tag, "q": "ØLS"}).get_json()

    assert [i["id"] for i in by_q["items"]] == [accented]
    assert [i["id"] for i in by_last["items"]] == [accented]


def test_deleted_contacts_are_not_listed(client, seed, tag):
    seed.contact(tags=[tag], alive=False)
    live = seed.contact(tags=[tag])

    assert _walk(client, f"tag={tag}") == [live]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2],
        lambda c: c[:10] + ("A" if c[10] != "A" else "B") + c[11:],
        lambda c: c + "==",
        lambda c: c.upper(),
        lambda c: "x" + c,
    ],
)
def test_tampered_cursors_are_400_problems(client, tied_contacts, tag, tamper):
    next_cursor = client.get(f"/v1/contacts?tag={tag}&limit=5").get_json()["next_cursor"]

    response = client.get(f"/v1/contacts?tag={tag}&limit=5&cursor={tamper(next_cursor)}")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "cursor" in response.get_json()["errors"]


def test_unfiltered_walk_sees_our_contacts_in_order(client, tied_contacts, tag):
    mine = {r[0] for r in tied_contacts}

    walked = _walk(client, "limit=100&sort=-created_at")

    assert len(walked) == len(set(walked))
    ours = [i for i in walked if i in mine]
    expected = sorted(tied_contacts, key=lambda r: (r[1], r[0]), reverse=True)
    assert ours == [r[0] for r in expected]


def test_fields_applies_to_every_item_and_keeps_the_cursor_working(client, seed, tag):
    for i in range(3):
        seed.contact(first_name=f"F{i}", last_name="Sparse", tags=[tag], created_at=T0)

    first = client.get(f"/v1/contacts?tag={tag}&limit=2&fields=last_name,tags")
    body = first.get_json()
    second = client.get(
        f"/v1/contacts?tag={tag}&limit=2&fields=last_name&cursor={body['next_cursor']}"
    )

    assert (first.status_code, second.status_code) == (200, 200)
    items = body["items"] + second.get_json()["items"]
    assert len(items) == 3
    assert all(set(item) == {"id", "version", "last_name", "tags"} for item in body["items"])
    assert set(second.get_json()["items"][0]) == {"id", "version", "last_name"}
    assert {item["last_name"] for item in items} == {"Sparse"}
