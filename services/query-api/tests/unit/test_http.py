"""The HTTP contract of the query API, with fakes behind it (docs/architecture.md §6)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from contacts_domain.operations import OperationStatus
from query_api.service_layer import representation
from query_api.service_layer.records import CachedContact, Tombstone

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


@pytest.fixture
def stored(contacts, make_record):
    record = make_record(version=3, last_name="Lovelace", tags=["vip"])
    contacts.add(record)
    return record


def test_get_from_the_database_then_from_the_cache(client, stored):
    first = client.get(f"/v1/contacts/{stored.contact_id}")
    second = client.get(f"/v1/contacts/{stored.contact_id}")

    assert first.status_code == second.status_code == 200
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.data == second.data == representation.encode(representation.resource(stored))
    assert first.headers["ETag"] == second.headers["ETag"] == '"3"'
    assert first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.headers["X-Request-ID"]


def test_head_has_the_headers_and_no_body(client, stored):
    response = client.head(f"/v1/contacts/{stored.contact_id}")

    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["ETag"] == '"3"'
    assert int(response.headers["Content-Length"]) > 0


@pytest.mark.parametrize(
    "if_none_match",
    ['"3"', 'W/"3"', '"1", "3"', '"1",W/"3" , "9"', "*", ' "3" '],
)
def test_if_none_match_answers_304(client, stored, if_none_match):
    response = client.get(
        f"/v1/contacts/{stored.contact_id}", headers={"If-None-Match": if_none_match}
    )

    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == '"3"'
    assert response.headers["X-Cache"] in ("hit", "miss")


@pytest.mark.parametrize("if_none_match", ['"2"', 'W/"33"', '"1", "4"', "3", "garbage", '""'])
def test_if_none_match_that_does_not_match_answers_200(client, stored, if_none_match):
    response = client.get(
        f"/v1/contacts/{stored.contact_id}", headers={"If-None-Match": if_none_match}
    )

    assert response.status_code == 200


def test_if_none_match_star_on_an_absent_contact_is_still_404(client):
    response = client.get(f"/v1/contacts/{uuid.uuid4()}", headers={"If-None-Match": "*"})

    _assert_problem(response, 404)


def test_unknown_deleted_and_malformed_ids_look_alike(client, contacts, cache):
    deleted = str(uuid.uuid4())
    contacts.add(Tombstone(deleted, 4))
    cached_tombstone = str(uuid.uuid4())
    cache.entries[cached_tombstone] = CachedContact(2, None)

    bodies = [
        _assert_problem(client.get(f"/v1/contacts/{contact_id}"), 404)
        for contact_id in (
            uuid.uuid4(),
            deleted,
            cached_tombstone,
            "not-a-uuid",
            "{" + str(uuid.uuid4()) + "}",
            str(uuid.uuid4()).replace("-", ""),
            "%00",
            "x" * 500,
        )
    ]

    assert all(body == bodies[0] for body in bodies)


def test_uppercase_uuid_finds_the_contact(client, stored):
    response = client.get(f"/v1/contacts/{stored.contact_id.upper()}")

    assert response.status_code == 200
    assert response.get_json()["id"] == stored.contact_id


def test_redis_down_is_a_bypass(client, cache, stored):
    cache.down = True

    response = client.get(f"/v1/contacts/{stored.contact_id}")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "bypass"


def test_database_down_is_503_with_retry_after(client, contacts):
    contacts.down = True

    response = client.get(f"/v1/contacts/{uuid.uuid4()}")

    _assert_problem(response, 503)
    assert response.headers["Retry-After"] == "2"


def test_list_database_down_is_503(client, contacts):
    contacts.down = True

    _assert_problem(client.get("/v1/contacts"), 503)


def test_unknown_parameter_on_get_is_400(client, stored):
    body = _assert_problem(client.get(f"/v1/contacts/{stored.contact_id}?colour=blue"), 400)

    assert "colour" in body["errors"]


def test_list_pages_with_link_header(client, contacts, make_record):
    for _ in range(5):
        contacts.add(make_record(tags=["t"]))

    first = client.get("/v1/contacts?limit=2&tag=t&sort=-created_at")
    body = first.get_json()

    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-store"
    assert len(body["items"]) == 2
    link = first.headers["Link"]
    assert link.startswith("</v1/contacts?")
    assert link.endswith('>; rel="next"')
    for parameter in ("tag=t", "sort=-created_at", "limit=2"):
        assert parameter in link
    next_url = link[1 : link.index(">")]

    second = client.get(next_url).get_json()

    assert not {i["id"] for i in second["items"]} & {i["id"] for i in body["items"]}


def test_last_page_has_null_cursor_and_no_link(client, contacts, make_record):
    contacts.add(make_record())

    response = client.get("/v1/contacts")

    assert response.get_json()["next_cursor"] is None
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("sort=first_name", "sort"),
        ("sort=", "sort"),
        ("cursor=%%%", "cursor"),
        ("cursor=eyJ2IjoxfQ", "cursor"),
        ("cursor=", "cursor"),
        ("email=not-an-email", "email"),
        ("tag=", "tag.0"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=%E2%80%8B", "q"),  # U+200B ZERO WIDTH SPACE alone: as blank as a space
        ("q=%E2%A0%80%C2%A0", "q"),  # U+2800 BRAILLE PATTERN BLANK and a no-break space
        ("q=a%00b", "q"),
        ("tags=vip", "tags"),
        ("page=2", "page"),
        ("&".join(f"tag=t{i}" for i in range(51)), "tag"),
    ],
)
def test_bad_list_parameters_are_400_problems(client, query, field):
    body = _assert_problem(client.get(f"/v1/contacts?{query}"), 400)

    assert field in body["errors"], body


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/contacts?q=%ED%A0%80", "q"),  # a lone surrogate
        ("/v1/contacts?q=ab%FF", "q"),
        ("/v1/contacts?q=%C3", "q"),  # cut in the middle of a character
        ("/v1/contacts?email=a%C0%AE@example.org", "email"),  # an overlong form
        ("/v1/contacts?tag=ok&tag=%80", "tag"),
        ("/v1/contacts?limit=1&q=a%FEb+c", "q"),
        ("/v1/contacts?cursor=%FF", "cursor"),
        ("/v1/contacts/export?q=%ED%A0%80", "q"),
        ("/v1/contacts/changes?since=%FF", "since"),
        ("/v1/contacts/00000000-0000-4000-8000-000000000000?x=%FF", "x"),
        ("/v1/operations/00000000-0000-4000-8000-000000000000?x=%FF", "x"),
        ("/v1/contacts?%FF=1", "%FF"),
    ],
)
def test_a_parameter_that_is_not_utf8_is_a_400_naming_it(client, path, field):
    body = _assert_problem(client.get(path), 400)

    assert body["errors"][field] == ["Not valid UTF-8 once percent-decoded."], body


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/contacts?limit=1&limit=2", "limit"),
        ("/v1/contacts?q=ann&q=bob", "q"),
        ("/v1/contacts?sort=last_name&sort=-created_at", "sort"),
        ("/v1/contacts/export?format=vcard&format=csv", "format"),
        ("/v1/contacts/changes?limit=5&limit=6", "limit"),
    ],
)
def test_a_one_value_parameter_given_twice_is_a_400_naming_it(client, path, field):
    # webargs took the first value and dropped the other silently (limit=1&limit=2 → 1).
    body = _assert_problem(client.get(path), 400)

    assert list(body["errors"]) == [field], body


def test_a_list_parameter_takes_every_value(client, contacts, make_record):
    contacts.add(make_record(tags=["a", "b"]))
    contacts.add(make_record(tags=["a"]))

    response = client.get("/v1/contacts?tag=a&tag=b")

    assert response.status_code == 200
    assert [item["tags"] for item in response.get_json()["items"]] == [["a", "b"]]


def test_valid_utf8_parameters_still_search(client, contacts, make_record):
    contacts.add(make_record(last_name="Ørsted"))

    response = client.get("/v1/contacts?q=%C3%98rs")

    assert response.status_code == 200
    assert [item["last_name"] for item in response.get_json()["items"]] == ["Ørsted"]


def test_cursor_reused_with_other_filters_is_400(client, contacts, make_record):
    for _ in range(3):
        contacts.add(make_record(tags=["t"]))
    next_cursor = client.get("/v1/contacts?limit=1&tag=t").get_json()["next_cursor"]

    body = _assert_problem(client.get(f"/v1/contacts?limit=1&cursor={next_cursor}"), 400)

    assert "cursor" in body["errors"]


def test_cursor_reused_with_another_sort_is_400(client, contacts, make_record):
    for _ in range(3):
        contacts.add(make_record())
    next_cursor = client.get("/v1/contacts?limit=1").get_json()["next_cursor"]

    _assert_problem(client.get(f"/v1/contacts?sort=last_name&cursor={next_cursor}"), 400)
    assert client.get(f"/v1/contacts?sort=created_at&cursor={next_cursor}").status_code == 200


def test_email_filter_matches_case_insensitively(client, contacts, make_record):
    wanted = make_record(emails=[{"value": "Ada@Example.org", "type": "work", "primary": True}])
    contacts.add(wanted)
    contacts.add(make_record())

    items = client.get("/v1/contacts?email=ADA@example.ORG").get_json()["items"]

    assert [i["id"] for i in items] == [wanted.contact_id]


def test_operation_status(client, statuses):
    op = str(uuid.uuid4())
    statuses.statuses[op] = OperationStatus(op, str(uuid.uuid4()), "pending")

    response = client.get(f"/v1/operations/{op}")

    assert response.status_code == 200
    assert response.get_json() == statuses.statuses[op].to_dict()
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("operation_id", [str(uuid.uuid4()), "nope"], ids=["unknown", "malformed"])
def test_unknown_or_malformed_operation_is_404(client, operation_id):
    _assert_problem(client.get(f"/v1/operations/{operation_id}"), 404)


def test_operation_unknown_while_redis_is_down_is_503(client, statuses):
    statuses.down = True

    response = client.get(f"/v1/operations/{uuid.uuid4()}")

    _assert_problem(response, 503)
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_are_405_with_allow(client, stored, method):
    response = getattr(client, method)(f"/v1/contacts/{stored.contact_id}")

    _assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_healthz_touches_nothing(client, contacts, cache):
    contacts.down = cache.down = True

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_when_everything_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"postgresql": "ok", "redis": "ok"},
    }


def test_readyz_is_degraded_not_failed_without_redis(client, cache):
    cache.down = True

    body = client.get("/readyz").get_json()

    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "CacheUnavailable"


def test_readyz_fails_without_the_database(client, contacts):
    contacts.down = True

    response = client.get("/readyz")

    body = _assert_problem(response, 503)
    assert body["checks"]["postgresql"] == "ReadModelUnavailable"
    assert response.headers["Retry-After"]


def test_openapi_31_document_describes_the_endpoints(client):
    document = client.get("/openapi.json").get_json()

    assert document["openapi"].startswith("3.1")
    assert {"/v1/contacts", "/v1/contacts/{contact_id}", "/v1/operations/{operation_id}"} <= set(
        document["paths"]
    )
    parameters = {p["name"] for p in document["paths"]["/v1/contacts"]["get"]["parameters"]}
    assert {"limit", "sort", "cursor", "email", "tag", "q"} <= parameters
    assert client.get("/docs").status_code == 200


def test_no_500_for_odd_paths(client):
    for path in ["/v1/contacts/", "/v1/contacts/%FF", "/v1/operations/", "/v1"]:
        assert client.get(path).status_code in (404, 308), path
    assert json.loads(client.get("/v1/contacts/%FF").data)["status"] == 404


def test_openapi_document_states_the_rules_of_the_query_parameters(client):
    document = client.get("/openapi.json").get_json()
    listed = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/v1/contacts"]["get"]["parameters"]
    }
    for name in ("q", "email", "fields"):
        assert listed[name]["minLength"] == 1, name
    assert listed["tag"]["items"]["minLength"] == 1
    fields = re.compile(listed["fields"]["pattern"])
    assert fields.match("first_name, emails")
    assert not fields.match("nickname")
    assert not fields.match(",")
    q = re.compile(listed["q"]["pattern"])
    assert q.match(" Ada ")
    assert not q.match("   ")
    assert not q.match("A\x01")
    for path in document["paths"].values():
        for method, operation in path.items():
            if method != "parameters":
                assert {"414", "431"} <= set(operation["responses"])


def test_changes_document_410_for_a_token_ahead_of_the_feed(client):
    document = client.get("/openapi.json").get_json()
    responses = document["paths"]["/v1/contacts/changes"]["get"]["responses"]
    assert "restored from a backup" in responses["410"]["description"]
