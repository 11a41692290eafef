"""``POST /v1/contacts/batch`` on the fakes: per-item validation, one send in item order, the
answer's status (202/207/400/503), idempotency, body-level refusals and odd JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from command_api.entrypoints.app import create_app
from command_api.entrypoints.batch import CHAINED_IF_MATCH
from command_api.service_layer.batch import BatchOperation, InvalidOperation, accept_batch
from command_api.service_layer.handlers import Context
from command_api.service_layer.idempotency import derive_item_ids
from contacts_domain import DEFAULT_WORKSPACE, HybridLogicalClock
from contacts_http.rate_limits import RateLimitSettings
from support.auth import AUTH_HEADERS, authorized
from support.pii_scan import find

BATCH = "/v1/contacts/batch"
ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}
A = "6f2b3c1e-8d4a-4f5b-9c6d-7e8f9a0b1c2d"
B = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def post(client: FlaskClient, *operations: Any, **kwargs: Any) -> Any:
    return client.post(BATCH, json={"operations": list(operations)}, **kwargs)


def results(response: Any) -> list[dict[str, Any]]:
    return response.get_json()["results"]


# --- the happy path and per-contact order ---------------------------------------------------


def test_items_are_sent_in_one_call_in_item_order(client, publisher, operations) -> None:
    response = post(
        client,
        {"op": "replace", "id": A, "data": ROSA},
        {"op": "create", "data": {"first_name": "Ada"}},
        {"op": "patch", "id": A, "data": {"company": "Acme", "last_name": None}},
        {"op": "upsert", "data": {"first_name": "Bo", "email": "bo@example.com"}},
        {"op": "delete", "id": A},
        headers={"X-Request-ID": "req-batch-1"},
    )

    assert response.status_code == 202, response.get_json()
    answered = results(response)
    assert [r["index"] for r in answered] == [0, 1, 2, 3, 4]
    assert {r["status"] for r in answered} == {"accepted"}
    assert all(r["errors"] is None for r in answered)
    kinds = [(e.contact_id, e.kind) for e in publisher.events]
    assert kinds == [
        (A, "replaced"),
        (answered[1]["id"], "created"),
        (A, "patched"),
        (answered[3]["id"], "upserted"),
        (A, "deleted"),
    ]
    # One publish_batch call through the app's instrumented publisher (SendMessageBatch).
    assert publisher.batches == [[e.id for e in publisher.events]]
    sequences = [e.sequence for e in publisher.events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 5
    of_a = [e for e in publisher.events if e.contact_id == A]
    assert [e.expected_version for e in of_a] == [None, None, None]
    assert of_a[1].data == {"company": "Acme", "last_name": None}
    assert {e.correlation_id for e in publisher.events} == {"req-batch-1"}
    for result, event in zip(answered, publisher.events, strict=True):
        assert result["id"] == event.contact_id
        assert result["operation_id"] == event.operation_id
        assert operations.get(DEFAULT_WORKSPACE, event.operation_id).status == "pending"


def test_an_accepted_batch_survives_the_operation_store_being_down(
    client, publisher, operations
) -> None:
    operations.down = True
    response = post(client, {"op": "delete", "id": A}, {"op": "delete", "id": B})
    assert response.status_code == 202
    assert len(publisher.events) == 2


def test_the_valid_items_go_to_one_publish_batch_call(publisher, operations, idempotency) -> None:
    context = Context(
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        clock=HybridLogicalClock(node="test"),
        now=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    items = [
        BatchOperation("replace", A, {"first_name": "A"}),
        InvalidOperation({"id": ["Required for a patch."]}, digest="0" * 64),
        BatchOperation("create", None, {"first_name": "B"}),
        BatchOperation("delete", A, {}, expected_version=3),
    ]

    answered = accept_batch(items, context, workspace=DEFAULT_WORKSPACE, correlation_id="req-1")

    assert [r.status for r in answered] == ["accepted", "invalid", "accepted", "accepted"]
    assert publisher.batches == [[e.id for e in publisher.events]]
    assert [e.kind for e in publisher.events] == ["replaced", "created", "deleted"]
    assert publisher.events[2].expected_version == 3


# --- per-item validation ---------------------------------------------------------------------

BAD_ITEMS: list[tuple[Any, set[str]]] = [
    ({"op": "create", "id": A, "data": ROSA}, {"id"}),
    ({"op": "create"}, {"data"}),
    ({"op": "create", "data": None}, {"data"}),
    ({"op": "create", "data": {"company": "Acme"}}, {"data.first_name", "data.last_name"}),
    ({"op": "create", "data": ROSA, "if_match": '"1"'}, {"if_match"}),
    ({"op": "create", "data": ROSA, "match_on": "email"}, {"match_on"}),
    ({"op": "create", "data": {**ROSA, "nickname": "R"}}, {"data.nickname"}),
    ({"op": "create", "data": {**ROSA, "emails": []}}, {"data.email"}),
    ({"op": "create", "data": ROSA, "extra": 1}, {"extra"}),
    ({"op": "replace", "data": ROSA}, {"id"}),
    ({"op": "replace", "id": A}, {"data"}),
    ({"op": "replace", "id": A, "data": {"company": "Acme"}}, {"data.first_name"}),
    ({"op": "patch", "id": A, "data": {}}, {"data"}),
    ({"op": "patch", "id": "not-a-uuid", "data": {"company": "A"}}, {"id"}),
    ({"op": "patch", "id": A, "data": {"email": "not an email"}}, {"data.emails.0.value"}),
    ({"op": "patch", "id": A, "data": {"phone": "12"}}, {"data.phones.0.value"}),
    ({"op": "patch", "id": A, "data": {"first_name": None, "last_name": ""}}, {"data.first_name"}),
    ({"op": "patch", "id": A, "data": {"birthday": "2999-01-01"}}, {"data.birthday"}),
    ({"op": "patch", "id": A, "data": {"notes": "n" * 300_000}}, {"data.notes"}),
    ({"op": "delete"}, {"id"}),
    ({"op": "delete", "id": A, "data": {}}, {"data"}),
    ({"op": "delete", "id": A, "if_match": "3"}, {"if_match"}),
    ({"op": "delete", "id": A, "if_match": 'W/"3"'}, {"if_match"}),
    ({"op": "delete", "id": A, "if_match": '"0"'}, {"if_match"}),
    ({"op": "delete", "id": A, "if_match": "*"}, {"if_match"}),
    ({"op": "delete", "id": A, "if_match": '"1", "2"'}, {"if_match"}),
    ({"op": "upsert", "data": {"first_name": "A"}}, {"data.email"}),
    (
        {"op": "upsert", "data": {"email": "a@example.com", "first_name": None, "last_name": ""}},
        {"data.first_name", "data.last_name"},
    ),
    ({"op": "upsert", "data": ROSA, "match_on": "phone"}, {"match_on"}),
    ({"op": "upsert", "id": A, "data": ROSA}, {"id"}),
    ({"op": "merge", "id": A, "data": ROSA}, {"op"}),
    ({"id": A}, {"op"}),
    ({}, {"op"}),
    (5, {"_schema"}),
    ("create", {"_schema"}),
    (None, {"_schema"}),
    ([{"op": "create", "data": ROSA}], {"_schema"}),
]


@pytest.mark.parametrize(("item", "paths"), BAD_ITEMS)
def test_an_invalid_item_is_reported_and_the_others_go_through(
    client, publisher, item, paths
) -> None:
    response = post(client, {"op": "delete", "id": B}, item)

    assert response.status_code == 202, response.get_json()
    valid, invalid = results(response)
    assert valid["status"] == "accepted"
    assert invalid["status"] == "invalid"
    assert invalid["operation_id"] is None
    assert paths <= set(invalid["errors"]), invalid["errors"]
    assert [e.contact_id for e in publisher.events] == [B]


@pytest.mark.parametrize(("item", "paths"), BAD_ITEMS)
def test_a_batch_of_invalid_items_only_is_a_400_with_results(
    client, publisher, item, paths
) -> None:
    response = post(client, item, item)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert [r["status"] for r in problem["results"]] == ["invalid", "invalid"]
    assert {f"operations.1.{path}" for path in paths} <= set(problem["errors"])
    assert publisher.events == []
    assert publisher.events == []


def test_an_invalid_item_reports_the_id_it_named(client) -> None:
    response = post(client, {"op": "patch", "id": A.upper(), "data": {}})
    assert response.status_code == 400
    assert results(response)[0]["id"] == A


def test_an_invalid_item_of_a_contact_holds_back_nothing(client, publisher) -> None:
    response = post(
        client,
        {"op": "replace", "id": A, "data": ROSA},
        {"op": "patch", "id": A, "data": {"email": "nope"}},
        {"op": "delete", "id": A},
    )
    assert [r["status"] for r in results(response)] == ["accepted", "invalid", "accepted"]
    assert [e.kind for e in publisher.events] == ["replaced", "deleted"]


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        (
            {"op": "upsert", "id": A, "data": ROSA},
            {"id": ["Not allowed for an upsert: the server assigns the id."]},
        ),
        (
            {"op": "upsert", "if_match": '"1"', "data": ROSA},
            {"if_match": ["Not allowed for an upsert."]},
        ),
        ({"op": "upsert"}, {"data": ["Required for an upsert."]}),
        (
            {"op": "create", "id": A, "data": ROSA},
            {"id": ["Not allowed for a create: the server assigns the id."]},
        ),
        ({"op": "create"}, {"data": ["Required for a create."]}),
        ({"op": "replace", "data": ROSA}, {"id": ["Required for a replace."]}),
    ],
)
def test_what_an_op_needs_is_said_with_the_right_article(client, item, errors) -> None:
    response = post(client, item)

    assert response.status_code == 400
    assert results(response)[0]["errors"] == errors


SECRET = "Quorbelvantrexi"


@pytest.mark.parametrize(
    "item",
    [
        {"op": "create", "data": {"first_name": "A", "email": f"{SECRET}@quorbel_x.example.org"}},
        {"op": "create", "data": {"first_name": "A", "phone": f"+1 555 {SECRET}"}},
        {"op": "create", "data": {"first_name": f"{SECRET}\u0007"}},
        {"op": "create", "data": {"first_name": "A", "birthday": SECRET}},
        {"op": "create", "data": {"first_name": 42, "last_name": SECRET}},
        {"op": SECRET, "data": ROSA},
        {"op": "patch", "id": SECRET, "data": {"company": "A"}},
        {"op": "delete", "id": A, "if_match": SECRET},
        {"op": "upsert", "data": ROSA, "match_on": SECRET},
        {"op": "upsert", "data": {"first_name": "A", "email": SECRET}},
    ],
)
def test_a_refused_value_is_not_echoed(client, item) -> None:
    response = post(client, item)
    assert response.status_code == 400
    assert find(response.get_data(as_text=True), [SECRET]) == []


# --- odd JSON: never a 500 --------------------------------------------------------------------

ODD_VALUES = [
    0,
    -1,
    1.5,
    10**30,
    True,
    False,
    None,
    "",
    "\ud800",
    [],
    [[[]]],
    {},
    {"a": {"b": None}},
]


@pytest.mark.parametrize("slot", ["op", "id", "if_match", "data", "match_on"])
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_values_in_every_slot_make_the_item_invalid(client, publisher, slot, value) -> None:
    item = {"op": "patch", "id": A, "data": {"company": "Acme"}, slot: value}
    response = post(client, {"op": "delete", "id": B}, item)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert results(response)[1]["status"] == "invalid"
    assert [e.contact_id for e in publisher.events] == [B]


@pytest.mark.parametrize("field", ["first_name", "emails", "phones", "addresses", "tags", "email"])
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_values_in_contact_fields_never_fail_the_request(client, field, value) -> None:
    response = post(client, {"op": "patch", "id": A, "data": {"company": "A", field: value}})
    assert response.status_code in (202, 400), response.get_data(as_text=True)
    assert len(results(response)) == 1


@pytest.mark.parametrize(
    "body",
    [
        [],
        5,
        "operations",
        {},
        {"operations": None},
        {"operations": {}},
        {"operations": "create"},
        {"operations": []},
        {"operations": [{"op": "delete", "id": A}] * 101},
        {"operations": [{"op": "delete", "id": A}], "atomic": True},
    ],
    ids=repr,
)
def test_a_malformed_batch_is_a_400_and_sends_nothing(client, publisher, body) -> None:
    response = client.post(BATCH, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "results" not in response.get_json()
    assert publisher.events == []


@pytest.mark.parametrize(
    "data",
    [b"{", b"", b"null", b"\xff\xfe", b'{"operations": [' * 40 + b"]" * 40 + b"}", b"1" * 5000],
)
def test_a_body_that_is_not_json_is_a_400(client, publisher, data) -> None:
    response = client.post(BATCH, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert publisher.events == []


def test_the_largest_batch_is_accepted(client, publisher) -> None:
    response = post(client, *[{"op": "delete", "id": str(uuid.uuid4())} for _ in range(100)])
    assert response.status_code == 202
    assert len(publisher.events) == 100


def test_a_batch_needs_json(client, publisher) -> None:
    response = client.post(BATCH, data="operations", content_type="text/plain")
    assert response.status_code == 415
    assert response.headers["Accept-Post"] == "application/json"
    assert publisher.events == []


# --- queue failures: 207, 503, and events too large -------------------------------------------


def test_some_items_failing_to_queue_is_a_207_and_holds_back_their_contact(
    client, publisher, operations
) -> None:
    publisher.failing = {f"{DEFAULT_WORKSPACE}/{B}"}
    response = post(
        client,
        {"op": "replace", "id": A, "data": ROSA},
        {"op": "replace", "id": B, "data": ROSA},
        {"op": "patch", "id": A, "data": {"company": "Acme"}},
        {"op": "patch", "id": B, "data": {"company": "Acme"}},
        {"op": "delete", "id": A, "data": {}},
    )

    assert response.status_code == 207
    answered = results(response)
    assert [r["status"] for r in answered] == [
        "accepted",
        "failed",
        "accepted",
        "failed",
        "invalid",
    ]
    for failed in (answered[1], answered[3]):
        assert failed["id"] == B
        assert failed["operation_id"] is None
        assert set(failed["errors"]) == {"_queue"}
        assert "Retry this item" in failed["errors"]["_queue"][0]
    assert "earlier item" in answered[3]["errors"]["_queue"][0]
    assert [(e.contact_id, e.kind) for e in publisher.events] == [(A, "replaced"), (A, "patched")]
    assert {s.contact_id for s in operations.statuses.values()} == {A}


def test_nothing_queued_is_a_503_with_retry_after_and_results(client, publisher) -> None:
    publisher.down = True
    response = post(
        client, {"op": "delete", "id": A}, {"op": "delete", "id": "x"}, {"op": "delete", "id": B}
    )

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    problem = response.get_json()
    assert problem["type"] == "urn:contacts:problem:queue-unavailable"
    assert [r["status"] for r in problem["results"]] == ["failed", "invalid", "failed"]
    assert publisher.events == []


def test_an_event_too_large_for_sqs_makes_its_item_invalid(client, publisher) -> None:
    publisher.too_large = {f"{DEFAULT_WORKSPACE}/{A}"}
    response = post(
        client, {"op": "replace", "id": A, "data": ROSA}, {"op": "replace", "id": B, "data": ROSA}
    )
    assert response.status_code == 202
    too_large, fine = results(response)
    assert too_large["status"] == "invalid"
    assert set(too_large["errors"]) == {"data"}
    assert fine["status"] == "accepted"

    only = post(client, {"op": "replace", "id": A, "data": ROSA})
    assert only.status_code == 400
    assert results(only)[0]["status"] == "invalid"


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_a_replayed_batch_answers_and_sends_the_same_ids(client, publisher) -> None:
    operations = [
        {"op": "create", "data": ROSA},
        {"op": "patch", "id": A, "data": {"company": "Acme"}},
        {"op": "upsert", "data": {"first_name": "Bo", "email": "bo@example.com"}},
        {"op": "delete", "id": "nope"},
    ]
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}

    first = post(client, *operations, headers=key)
    again = post(client, *operations, headers=key)

    assert first.status_code == again.status_code == 202
    assert results(first) == results(again)
    assert [e.id for e in publisher.events[:3]] == [e.id for e in publisher.events[3:]]
    derived = [derive_item_ids(DEFAULT_WORKSPACE, key["Idempotency-Key"], i) for i in range(3)]
    assert [e.id for e in publisher.events[:3]] == [d.event_id for d in derived]
    assert [r["operation_id"] for r in results(first)[:3]] == [d.operation_id for d in derived]
    assert results(first)[0]["id"] == derived[0].contact_id
    assert results(first)[1]["id"] == A
    assert results(first)[2]["id"] == derived[2].contact_id


def test_a_failed_batch_replayed_with_its_key_sends_the_same_events(client, publisher) -> None:
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    publisher.down = True
    assert post(client, {"op": "create", "data": ROSA}, headers=key).status_code == 503
    publisher.down = False
    retried = post(client, {"op": "create", "data": ROSA}, headers=key)
    assert retried.status_code == 202
    assert [e.id for e in publisher.events] == [
        derive_item_ids(DEFAULT_WORKSPACE, key["Idempotency-Key"], 0).event_id
    ]


@pytest.mark.parametrize(
    "other",
    [
        [{"op": "create", "data": {**ROSA, "company": "X"}}],
        [{"op": "create", "data": ROSA}, {"op": "delete", "id": A}],
        [{"op": "create", "data": ROSA, "surplus": 1}, {"op": "delete", "id": A}],
        [{"op": "upsert", "data": ROSA}],
    ],
)
def test_the_same_key_with_another_batch_is_a_422(client, publisher, other) -> None:
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    assert post(client, {"op": "create", "data": ROSA}, headers=key).status_code == 202
    response = post(client, *other, headers=key)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert len(publisher.events) == 1


def test_a_key_of_a_single_create_cannot_be_reused_for_a_batch(client, publisher) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert client.post("/v1/contacts", json=ROSA, headers=key).status_code == 202
    assert post(client, {"op": "create", "data": ROSA}, headers=key).status_code == 422


def test_a_malformed_key_is_a_400(client, publisher) -> None:
    response = post(client, {"op": "delete", "id": A}, headers={"Idempotency-Key": "a b"})
    assert response.status_code == 400
    assert publisher.events == []


def test_the_idempotency_store_down_fails_open(client, publisher, idempotency) -> None:
    idempotency.down = True
    key = {"Idempotency-Key": "store-down"}
    response = post(client, {"op": "create", "data": ROSA}, headers=key)
    assert response.status_code == 202
    assert (
        results(response)[0]["id"] == derive_item_ids(DEFAULT_WORKSPACE, "store-down", 0).contact_id
    )


# --- size limits ----------------------------------------------------------------------------------


@pytest.fixture
def limited_app(settings, publisher, operations, idempotency):
    """``BATCH_MAX_BYTES`` of 4 MiB, four times ``MAX_REQUEST_BYTES``."""
    limited = settings.model_copy(
        update={
            "max_request_bytes": 1_048_576,
            "batch_max_bytes": 4_194_304,
            "rate_limits": RateLimitSettings(enabled=False),
        }
    )
    return authorized(
        create_app(
            limited,
            publisher=publisher,
            operations=operations,
            idempotency=idempotency,
            clock=HybridLogicalClock(node="test"),
            readiness_checks={},
        )
    )


def big_batch() -> bytes:
    """100 valid patches of about 13 KB each: more than 1 MiB in all."""
    data = {
        "notes": "n" * 5_000,
        "tags": [f"{i:02d}" + "t" * 48 for i in range(50)],
        "addresses": [{"street": "s" * 200, "city": "c" * 100, "region": "r" * 100}] * 5,
        "first_name": "f" * 100,
        "last_name": "l" * 100,
        "job_title": "j" * 200,
        "company": "c" * 200,
    }
    items = [{"op": "patch", "id": str(uuid.uuid4()), "data": data} for _ in range(100)]
    return json.dumps({"operations": items}).encode()


def test_the_batch_route_has_its_own_body_limit(limited_app, publisher) -> None:
    client = limited_app.test_client()
    body = big_batch()
    assert 1_048_576 < len(body) < 4_194_304
    response = client.post(BATCH, data=body, content_type="application/json")
    assert response.status_code == 202
    single = b'{"first_name": "A", "notes": "' + b"n" * 1_500_000 + b'"}'
    assert (
        client.post("/v1/contacts", data=single, content_type="application/json").status_code == 413
    )


def test_a_batch_over_batch_max_bytes_is_a_413(limited_app, publisher) -> None:
    body = b'{"operations": [' + b" " * 4_200_000 + b"]}"
    response = limited_app.test_client().post(BATCH, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert publisher.events == []


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [(BATCH, 4_200_000, 413), ("/v1/contacts", 1_100_000, 413), (BATCH, 1_100_000, 400)],
)
def test_streamed_bodies_are_held_to_their_route_s_limit(
    limited_app, publisher, path, size, status
) -> None:
    environ = EnvironBuilder(
        path=path,
        method="POST",
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked", **AUTH_HEADERS},
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(b'{"notes": "' + b"n" * size + b'"}')
    environ["wsgi.input_terminated"] = True
    app_iter, code, headers = run_wsgi_app(limited_app, environ)
    response = Response(b"".join(app_iter), status=code, headers=headers)
    assert response.status_code == status
    assert publisher.events == []


# --- the OpenAPI document and the rate-limit name ----------------------------------------------


def test_the_openapi_document_describes_the_batch(client) -> None:
    operation = client.get("/openapi.json").get_json()["paths"][BATCH]["post"]
    assert {"202", "207", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "NOT atomic" in operation["summary"]
    assert "order" in operation["description"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BatchRequest"
    )
    problem = operation["responses"]["503"]
    assert "application/problem+json" in problem["content"]
    assert "Retry-After" in problem["headers"]


def test_the_batch_has_a_rate_limit_name(settings, publisher, operations, idempotency) -> None:
    routes = (("contacts.Batch", "5/minute"),)
    limited = settings.model_copy(
        update={"rate_limits": settings.rate_limits.model_copy(update={"routes": routes})}
    )
    create_app(
        limited,
        publisher=publisher,
        operations=operations,
        idempotency=idempotency,
        readiness_checks={},
    )


def test_if_match_is_refused_after_another_write_of_the_same_contact(client, publisher) -> None:
    c = str(uuid.uuid4())
    response = post(
        client,
        {"op": "patch", "id": A, "if_match": '"3"', "data": {"company": "Acme"}},
        {"op": "patch", "id": A, "if_match": '"4"', "data": {"company": "Later"}},
        {"op": "patch", "id": c, "data": {"emails": "not a list"}},
        {"op": "delete", "id": c, "if_match": '"1"'},
        {"op": "patch", "id": A, "data": {"job_title": "Unconditional"}},
    )

    assert response.status_code == 202, response.get_json()
    answered = results(response)
    assert [r["status"] for r in answered] == [
        "accepted",
        "invalid",
        "invalid",  # invalid: it writes nothing, so the delete after it may be conditional
        "accepted",
        "accepted",
    ]
    assert answered[1]["errors"] == {"if_match": [CHAINED_IF_MATCH]}
    assert answered[1]["id"] == A
    assert [(e.contact_id, e.expected_version) for e in publisher.events] == [
        (A, 3),
        (c, 1),
        (A, None),
    ]
