"""The write endpoints on fakes: 202 shape, headers, media types, ids, errors, OpenAPI."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from command_api.service_layer.idempotency import derive_change_ids
from contacts_domain import DEFAULT_WORKSPACE, limits
from contacts_http import JSON_MAX_DEPTH, PROBLEM_JSON

CONTACT = "/v1/contacts"
EMPTY_BODY = "The request body is empty; send a JSON object."
JSON = "application/json"


def test_post_answers_202_with_ids_and_locations(client, publisher, operations, rosa) -> None:
    response = client.post(CONTACT, json=rosa, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    assert uuid.UUID(body["id"]).version == 4
    assert response.headers["Location"] == f"http://query.test/v1/contacts/{body['id']}"
    assert response.headers["Operation-Location"] == (
        f"http://query.test/v1/operations/{body['operation_id']}"
    )
    [event] = publisher.events
    assert event.kind == "created"
    assert event.contact_id == body["id"]
    assert event.operation_id == body["operation_id"]
    assert event.correlation_id == "req-42"
    assert event.data["emails"] == [{"value": "rosa@example.com", "type": "other", "primary": True}]
    assert event.data["phones"][0]["value"] == "+12025550100"
    assert operations.get(DEFAULT_WORKSPACE, body["operation_id"]).status == "pending"


def test_put_replaces_under_the_path_id(client, publisher, rosa) -> None:
    contact_id = str(uuid.uuid4())
    response = client.put(f"{CONTACT}/{contact_id}", json=rosa)
    assert response.status_code == 202
    assert response.get_json()["id"] == contact_id
    assert publisher.events[0].kind == "replaced"
    assert publisher.events[0].data["company"] is None


def test_uppercase_ids_are_normalized(client, publisher) -> None:
    contact_id = str(uuid.uuid4())
    response = client.delete(f"{CONTACT}/{contact_id.upper()}")
    assert response.status_code == 202
    assert publisher.events[0].contact_id == contact_id


def test_delete_sends_a_deleted_event(client, publisher) -> None:
    contact_id = str(uuid.uuid4())
    response = client.delete(f"{CONTACT}/{contact_id}")
    assert response.status_code == 202
    assert publisher.events[0].kind == "deleted"
    assert publisher.events[0].data == {}


def test_patch_accepts_merge_patch_media_type(client, publisher) -> None:
    response = client.patch(
        f"{CONTACT}/{uuid.uuid4()}",
        data='{"company": "ACME"}',
        content_type="application/merge-patch+json",
    )
    assert response.status_code == 202
    assert publisher.events[0].data == {"company": "ACME"}


@pytest.mark.parametrize("path", ["/v1/contacts/not-a-uuid", "/v1/contacts/1234"])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_malformed_ids_are_404(client, publisher, method, path) -> None:
    response = getattr(client, method)(path, json={"first_name": "A"})
    assert response.status_code == 404  # as the query API answers GET of such an id
    assert response.mimetype == PROBLEM_JSON
    # Not werkzeug's "The requested URL was not found on the server...".
    assert response.json["detail"].startswith("The id in the path is not a contact id")
    assert publisher.events == []


@pytest.mark.parametrize(
    "path", ["/v1/contacts/0b9f3c1e-5d7a-4c2b-9e1f-2a3b4c5d6e7f/more", "/v1/nothing/here"]
)
def test_other_unknown_paths_are_the_generic_404(client, path) -> None:
    response = client.patch(path, json={"first_name": "A"})
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert "contact id" not in response.json["detail"]


@pytest.mark.parametrize(
    ("content_type", "method"),
    [
        ("text/plain", "post"),
        ("application/x-www-form-urlencoded", "post"),
        ("application/merge-patch+json", "post"),
        ("application/merge-patch+json", "put"),
        ("text/plain", "patch"),
    ],
)
def test_wrong_media_type_is_415(client, publisher, content_type, method) -> None:
    path = CONTACT if method == "post" else f"{CONTACT}/{uuid.uuid4()}"
    response = getattr(client, method)(path, data='{"first_name": "A"}', content_type=content_type)
    assert response.status_code == 415
    assert response.mimetype == PROBLEM_JSON
    assert publisher.events == []


def test_missing_content_type_is_415(client, publisher) -> None:
    response = client.post(CONTACT, data=b'{"first_name": "A"}')
    assert response.status_code == 415
    assert response.headers["Accept-Post"] == "application/json"


@pytest.mark.parametrize("body", [b"{nope", b"", b'"text"', b"[]", b"null", b"3", b"\xff\xfe"])
def test_malformed_or_non_object_json_is_400(client, publisher, body) -> None:
    response = client.post(CONTACT, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["status"] == 400
    assert publisher.events == []


def test_unknown_fields_are_400_by_name(client, publisher) -> None:
    response = client.post(CONTACT, json={"first_name": "A", "nickname": "x"})
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"nickname": ["Unknown field."]}
    assert publisher.events == []


def test_domain_rule_errors_are_keyed_by_field_path(client, publisher) -> None:
    response = client.post(CONTACT, json={"first_name": "A", "emails": [{"value": "not-an-email"}]})
    assert response.status_code == 400
    body = response.get_json()
    assert body["type"] == "urn:contacts:problem:validation"
    assert list(body["errors"]) == ["emails.0.value"]
    assert publisher.events == []


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+1 202 555 0100 ext 5", "+12025550100;ext=5"),
        ("+1 202 555 0100;ext=12", "+12025550100;ext=12"),
        ("(202) 555-0100 x123", "+12025550100;ext=123"),
    ],
)
def test_a_phone_extension_is_accepted_and_the_event_carries_it(
    client, publisher, written, stored
) -> None:
    response = client.post(CONTACT, json={"first_name": "Ph", "phone": written})
    assert response.status_code == 202, response.get_json()
    [event] = publisher.events
    assert event.data["phones"] == [{"value": stored, "type": "other", "primary": True}]


def test_a_phone_whose_stored_form_is_too_long_is_400_naming_the_field(client, publisher) -> None:
    # 15 digits and a 20-digit extension: 38 characters written, 41 stored (limits.PHONE_MAX).
    body = {"first_name": "Ph", "phones": [{"value": "+498001234567890xt" + "1" * 20}]}
    response = client.post(CONTACT, json=body)
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["phones.0.value"]
    assert publisher.events == []


def test_schema_type_errors_are_keyed_by_field_path(client, publisher) -> None:
    response = client.post(CONTACT, json={"first_name": "A", "phones": [{"value": 5}]})
    assert response.status_code == 400
    assert "phones.0.value" in response.get_json()["errors"]


def test_publish_failure_is_503_with_retry_after(client, publisher, rosa) -> None:
    publisher.down = True
    response = client.post(CONTACT, json=rosa)
    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert int(response.headers["Retry-After"]) > 0
    assert "nothing was accepted" in response.get_json()["detail"]


def test_a_send_left_unanswered_is_a_503_that_does_not_say_nothing_was_accepted(
    client, publisher, rosa
) -> None:
    publisher.down = publisher.unanswered = True
    response = client.post(CONTACT, json=rosa)
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    assert "nothing was accepted" not in detail
    assert "may or may not have been queued" in detail
    assert "Idempotency-Key" in detail


def test_operation_store_down_still_answers_202(client, operations, publisher, rosa) -> None:
    operations.down = True
    response = client.post(CONTACT, json=rosa)
    assert response.status_code == 202
    assert len(publisher.events) == 1


def test_idempotent_post_answers_the_same_ids(client, publisher, rosa) -> None:
    headers = {"Idempotency-Key": "0f8c-retry-me"}
    first = client.post(CONTACT, json=rosa, headers=headers)
    second = client.post(CONTACT, json=rosa, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()
    assert first.headers["Location"] == second.headers["Location"]
    assert len({e.id for e in publisher.events}) == 1


def test_idempotency_key_with_another_body_is_422(client, publisher, rosa) -> None:
    headers = {"Idempotency-Key": "key-two"}
    assert client.post(CONTACT, json=rosa, headers=headers).status_code == 202
    response = client.post(CONTACT, json={**rosa, "company": "Other"}, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert len(publisher.events) == 1


def test_same_normalized_body_counts_as_the_same_request(client, publisher, rosa) -> None:
    headers = {"Idempotency-Key": "key-three"}
    first = client.post(CONTACT, json=rosa, headers=headers)
    spaced = {**rosa, "first_name": "  Rosa "}
    assert client.post(CONTACT, json=spaced, headers=headers).get_json() == first.get_json()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_keyed_retry_of_a_write_to_a_contact_answers_the_same_operation(
    client, publisher, idempotency, rosa, method
) -> None:
    contact_id = str(uuid.uuid4())
    body = {"put": rosa, "patch": {"company": "Acme"}, "delete": None}[method]
    send = getattr(client, method)
    headers = {"Idempotency-Key": f"retry-{method}", "If-Match": '"3"'}
    first = send(f"{CONTACT}/{contact_id}", json=body, headers=headers)
    second = send(f"{CONTACT}/{contact_id}", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()
    assert first.get_json()["id"] == contact_id
    # Published twice (the first send may have failed), under one event id: SQS and the
    # worker's inbox keep one.
    assert len(publisher.events) == 2
    assert len({e.id for e in publisher.events}) == 1
    assert {e.operation_id for e in publisher.events} == {first.get_json()["operation_id"]}
    # The record names the contact written, under which it is indexed for its erasure.
    [record] = idempotency.records.values()
    assert (record.contact_id, record.operation_id) == (
        contact_id,
        first.get_json()["operation_id"],
    )
    unkeyed = send(f"{CONTACT}/{contact_id}", json=body)
    assert unkeyed.get_json()["operation_id"] != first.get_json()["operation_id"]


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ({"company": "Other"}, {}),  # another body
        ({"company": "Acme"}, {"If-Match": '"4"'}),  # another expected version
        ({"company": "Acme"}, {"other_contact": "yes"}),  # another contact
    ],
)
def test_a_key_reused_for_another_write_to_a_contact_is_422(
    client, publisher, change, headers
) -> None:
    contact_id = str(uuid.uuid4())
    base = {"Idempotency-Key": "patch-once", "If-Match": '"3"'}
    assert (
        client.patch(f"{CONTACT}/{contact_id}", json={"company": "Acme"}, headers=base).status_code
        == 202
    )
    target = str(uuid.uuid4()) if headers.pop("other_contact", None) else contact_id
    response = client.patch(f"{CONTACT}/{target}", json=change, headers={**base, **headers})
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert len(publisher.events) == 1


def test_a_key_of_a_create_is_refused_for_a_patch(client, publisher, rosa) -> None:
    created = client.post(CONTACT, json=rosa, headers={"Idempotency-Key": "one-key"}).get_json()
    response = client.patch(
        f"{CONTACT}/{created['id']}",
        json={"company": "Acme"},
        headers={"Idempotency-Key": "one-key"},
    )
    assert response.status_code == 422
    assert len(publisher.events) == 1


def test_the_same_key_names_another_event_for_another_write_or_workspace() -> None:
    a = str(uuid.uuid4())
    ids = {
        derive_change_ids(ws, "k", write, a).event_id
        for ws in ("default", "acme")
        for write in ("fingerprint-1", "fingerprint-2")
    }
    assert len(ids) == 4
    same = derive_change_ids("acme", "k", "fingerprint-1", a)
    assert same == derive_change_ids("acme", "k", "fingerprint-1", a)
    assert same.contact_id == a


def test_a_key_whose_record_is_gone_and_another_body_is_a_new_event(
    client, publisher, idempotency
) -> None:
    # The record expired (24 h) or was never stored (Redis down): the other body must not
    # reuse the first write's event id, or the worker's inbox would drop it as a duplicate.
    url = f"{CONTACT}/{uuid.uuid4()}"
    headers = {"Idempotency-Key": "expired-key"}
    first = client.patch(url, json={"company": "One"}, headers=headers).get_json()
    idempotency.records.clear()
    second = client.patch(url, json={"company": "Two"}, headers=headers).get_json()
    assert second["operation_id"] != first["operation_id"]
    assert len({e.id for e in publisher.events}) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "é"])
def test_malformed_idempotency_key_is_400(client, publisher, rosa, key) -> None:
    response = client.post(CONTACT, json=rosa, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert publisher.events == []


def test_healthz_and_request_id(client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc"


def test_method_not_allowed_is_405_with_allow(client) -> None:
    response = client.get(CONTACT)
    assert response.status_code == 405
    assert response.mimetype == PROBLEM_JSON
    assert "POST" in response.headers["Allow"]


def test_openapi_document_describes_the_api(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    paths = spec["paths"]
    assert set(paths["/v1/contacts"]) >= {"post"}
    assert set(paths["/v1/contacts/{contact_id}"]) >= {"put", "patch", "delete"}
    patch = paths["/v1/contacts/{contact_id}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {
        "application/json",
        "application/merge-patch+json",
    }
    assert {"400", "412", "413", "415", "503"} <= set(patch["responses"])
    notes = spec["components"]["schemas"]["ContactWrite"]["properties"]["notes"]
    assert notes["maxLength"] == limits.NOTES_MAX
    bad_request = spec["components"]["responses"]["BAD_REQUEST"]
    assert PROBLEM_JSON in bad_request["content"]


def test_docs_are_served(client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


SOME_ID = "5b1f3a52-9a0e-4f5e-8f43-0c1c6b0e1d2a"
WRITES = [("post", CONTACT, JSON), ("put", f"{CONTACT}/{SOME_ID}", JSON)] + [
    ("patch", f"{CONTACT}/{SOME_ID}", media) for media in (JSON, "application/merge-patch+json")
]


@pytest.mark.parametrize(("method", "path", "media_type"), WRITES)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"first_name": "A", "\\ud800": "a"}', "\\ud800"),
        (
            b'{"first_name": "A", "addresses": [{"city": "Oslo", "\\udfff": 1}]}',
            "addresses.0.\\udfff",
        ),
        (
            b'{"first_name": "A", "emails": [{"value": "a@example.com", "\\udbff\\udbff": 1}]}',
            "emails.0.\\udbff\\udbff",
        ),
    ],
)
def test_unknown_field_named_by_an_unpaired_surrogate_is_400_naming_it(
    client, publisher, method, path, media_type, body, field
) -> None:
    response = client.open(path, method=method, data=body, content_type=media_type)
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    problem = json.loads(response.get_data().decode("utf-8"))
    assert problem["errors"] == {field: ["Unknown field."]}
    assert publisher.events == []


@pytest.mark.parametrize(("method", "path", "media_type"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"first_name": "A", "addresses": ' + "[" * 1000 + "]" * 1000 + "}",
        '{"first_name": "A", "emails": [{"value": ' + "[" * 1000 + "]" * 1000 + "}]}",
        '{"first_name": "A", "nickname": ' + "[" * 500 + "]" * 500 + "}",
        "[" * 100_000,
    ],
    ids=["bare-1000", "in-addresses-1000", "in-emails-1000", "unknown-field-500", "unclosed"],
)
def test_json_nested_too_deep_is_400_not_500(
    client, publisher, method, path, media_type, body
) -> None:
    response = client.open(path, method=method, data=body, content_type=media_type)
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["errors"] == {
        "_schema": [f"JSON nested deeper than {JSON_MAX_DEPTH} levels."]
    }
    assert publisher.events == []


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        (CONTACT, '{"first_name": "a", "email": "a@x.example", "email": "b@x.example"}', "email"),
        (CONTACT, '{"first_name": "a", "addresses": [{"city": "X", "city": "Y"}]}', "city"),
        ("/v1/contacts/batch", '{"operations": [], "operations": []}', "operations"),
    ],
)
def test_a_member_named_twice_is_a_400_naming_it_not_the_last_one_kept(
    client, publisher, path, body, key
) -> None:
    # Found by the fresh-clone review: the second "email" was stored, silently.
    response = client.post(path, data=body, content_type=JSON)
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["errors"] == {
        "_schema": [f"The member {key!r} appears twice in one object."]
    }
    assert publisher.events == []


def test_json_as_deep_as_the_limit_reaches_the_schema(client, publisher) -> None:
    body = '{"first_name": "A", "tags": ' + "[" * (JSON_MAX_DEPTH - 1)
    body += "]" * (JSON_MAX_DEPTH - 1) + "}"
    response = client.post(CONTACT, data=body, content_type=JSON)
    assert response.status_code == 400
    assert "tags.0" in response.get_json()["errors"]


@pytest.mark.parametrize("path", ["/v1/contacts", "/v1/contacts/upsert"])
def test_a_number_of_5000_digits_is_a_400_not_a_500(client, publisher, path) -> None:
    body = '{"first_name": "A", "email": "a@example.com", "notes": ' + "9" * 5000 + "}"

    response = client.post(path, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert publisher.events == []


@pytest.mark.parametrize("body", [b"", b" \r\n"], ids=["empty", "blank"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", CONTACT),
        ("put", f"{CONTACT}/00000000-0000-4000-8000-000000000001"),
        ("patch", f"{CONTACT}/00000000-0000-4000-8000-000000000001"),
        ("post", f"{CONTACT}/batch"),
        ("post", f"{CONTACT}/upsert"),
    ],
)
def test_an_empty_json_body_is_a_400_problem_naming_the_body(
    client, publisher, method, path, body
) -> None:
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["errors"] == {
        "_schema": ["The request body is empty; send a JSON object."]
    }
    assert publisher.events == []


@pytest.mark.parametrize("coding", ["gzip", "br", "identity, gzip", "x-unknown"])
def test_a_body_with_a_content_coding_is_a_415_problem(client, publisher, coding) -> None:
    body = gzip.compress(b'{"first_name": "Zip"}')
    response = client.post(
        CONTACT, data=body, content_type="application/json", headers={"Content-Encoding": coding}
    )
    assert response.status_code == 415
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["Accept-Encoding"] == "identity"
    assert "Content-Encoding" in response.get_json()["errors"]
    # The same type as every other 415 (it was the validation type; fresh-clone review).
    assert response.get_json()["type"] == "urn:contacts:problem:unsupported-media-type"
    assert publisher.events == []


def test_an_identity_content_coding_is_accepted(client, publisher) -> None:
    response = client.post(
        CONTACT, json={"first_name": "Plain"}, headers={"Content-Encoding": "identity"}
    )
    assert response.status_code == 202


def test_options_is_204_with_allow_and_no_body(client) -> None:
    response = client.options(CONTACT)
    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "location"),
    [
        ("post", f"{CONTACT}/", CONTACT),
        ("post", f"{CONTACT}/batch/", f"{CONTACT}/batch"),
        ("post", f"{CONTACT}/upsert/?match_on=email", f"{CONTACT}/upsert?match_on=email"),
        ("delete", f"{CONTACT}/00000000-0000-4000-8000-000000000001/", None),
    ],
)
def test_a_write_to_a_path_with_a_trailing_slash_is_308_to_the_route(
    client, publisher, method, path, location
) -> None:
    response = getattr(client, method)(path, json={"first_name": "Slash"}, headers={})
    assert response.status_code == 308
    assert response.headers["Location"] == (location or path.rstrip("/"))
    assert publisher.events == []


def test_an_unknown_path_with_a_trailing_slash_stays_404(client) -> None:
    response = client.post("/v1/nothing/", json={})
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


def test_openapi_document_states_the_rules_the_code_enforces(client) -> None:
    spec = client.get("/openapi.json").get_json()
    write = spec["components"]["schemas"]["ContactWrite"]
    assert {"not": {"required": ["email", "emails"]}} in write["allOf"]
    assert {"not": {"required": ["phone", "phones"]}} in write["allOf"]
    names = next(rule["anyOf"] for rule in write["allOf"] if "anyOf" in rule)
    assert [branch["required"] for branch in names] == [["first_name"], ["last_name"]]
    patch = spec["components"]["schemas"]["ContactPatch"]
    assert patch["minProperties"] == 1
    cleared = next(rule["not"] for rule in patch["allOf"] if "properties" in rule.get("not", {}))
    assert cleared["required"] == ["first_name", "last_name"]
    upsert = spec["components"]["schemas"]["ContactUpsert"]
    assert any(
        "anyOf" in rule and rule["anyOf"][0]["required"] == ["email"] for rule in upsert["allOf"]
    )
    address = spec["components"]["schemas"]["Address"]
    assert len(address["anyOf"]) == 5
    parameters = {
        parameter["name"]: parameter["schema"]
        for path in spec["paths"].values()
        for method, operation in path.items()
        if method != "parameters"
        for parameter in operation.get("parameters", [])
    }
    assert parameters["Idempotency-Key"]["pattern"] == "^[!-~]{1,255}$"
    contact = spec["paths"]["/v1/contacts/{contact_id}"]
    for method in ("put", "patch", "delete"):
        names = {p["name"] for p in contact[method].get("parameters", [])}
        assert {"Idempotency-Key", "If-Match"} <= names, method
        assert "422" in contact[method]["responses"], method
    assert parameters["If-Match"]["pattern"] == '^"[1-9][0-9]{0,17}"$'
    for path in spec["paths"].values():
        for method, operation in path.items():
            if method != "parameters":
                assert {"414", "431"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/contacts?dry_run=1"),
        ("post", "/v1/contacts/upsert?dry_run=1"),
        ("post", "/v1/contacts/batch?dry_run=1"),
        ("put", "/v1/contacts/00000000-0000-4000-8000-000000000001?dry_run=1"),
        ("patch", "/v1/contacts/00000000-0000-4000-8000-000000000001?dry_run=1"),
        ("delete", "/v1/contacts/00000000-0000-4000-8000-000000000001?dry_run=1"),
        ("post", "/v1/imports?dry_run=1"),
        ("post", "/v1/contacts/upsert?match_on=email&dry_run=1"),
    ],
)
def test_a_query_parameter_on_a_write_is_a_400_naming_it(client, publisher, method, path) -> None:
    # It was ignored: the write was queued whatever the client meant by it.
    response = getattr(client, method)(path, json={"first_name": "A"})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert list(response.get_json()["errors"]) == ["dry_run"]
    assert publisher.events == []


def test_the_upserts_match_on_is_taken_once(client, publisher) -> None:
    body = {"first_name": "A", "email": "a@example.com"}
    assert client.post("/v1/contacts/upsert?match_on=email", json=body).status_code == 202
    twice = client.post("/v1/contacts/upsert?match_on=email&match_on=phone", json=body)
    assert twice.status_code == 400
    assert list(twice.get_json()["errors"]) == ["match_on"]
