"""End to end over HTTP through the real processes: the README's walk-through, and case C04."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from support.auth import api
from support.stack import Stack

ROSA = {
    "first_name": "Rosa",
    "last_name": "Example",
    "email": "Rosa@EXAMPLE.com",
    "phone": "+1 202 555 0100",
}


def accepted(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "pending"
    return body


def create(stack: Stack, fields: dict[str, Any]) -> str:
    body = accepted(api.post(f"{stack.command_url}/v1/contacts", json=fields, timeout=10))
    assert stack.wait_operation(body["operation_id"])["status"] == "applied"
    return str(body["id"])


def test_create_read_patch_delete(stack: Stack) -> None:
    answer = api.post(
        f"{stack.command_url}/v1/contacts",
        json={**ROSA, "email": f"rosa.{uuid.uuid4().hex[:8]}@EXAMPLE.com"},
        timeout=10,
    )
    body = accepted(answer)
    contact_url = f"{stack.query_url}/v1/contacts/{body['id']}"
    assert answer.headers["Location"] == contact_url
    assert answer.headers["Operation-Location"].endswith(f"/v1/operations/{body['operation_id']}")

    operation = stack.wait_operation(body["operation_id"])
    assert operation == {
        "operation_id": body["operation_id"],
        "contact_id": body["id"],
        "status": "applied",
        "reason": None,
        "version": 1,
        "result": None,
    }

    first = api.get(contact_url, timeout=5)
    assert first.status_code == 200
    assert first.headers["ETag"] == '"1"'
    assert first.headers["X-Cache"] in ("hit", "miss")
    contact = first.json()
    assert contact["email"].endswith("@example.com")
    assert contact["phone"] == "+12025550100"
    assert contact["phones"] == [{"value": "+12025550100", "type": "other", "primary": True}]
    assert api.get(contact_url, headers={"If-None-Match": '"1"'}, timeout=5).status_code == 304
    assert api.head(contact_url, timeout=5).headers["ETag"] == '"1"'

    patch = accepted(
        api.patch(
            f"{stack.command_url}/v1/contacts/{body['id']}",
            json={"company": "Acme"},
            headers={"Content-Type": "application/merge-patch+json", "If-Match": '"1"'},
            timeout=10,
        )
    )
    assert stack.wait_operation(patch["operation_id"])["version"] == 2
    patched = api.get(contact_url, timeout=5)
    assert (patched.json()["company"], patched.headers["ETag"]) == ("Acme", '"2"')

    delete = accepted(api.delete(f"{stack.command_url}/v1/contacts/{body['id']}", timeout=10))
    assert stack.wait_operation(delete["operation_id"])["status"] == "applied"
    gone = api.get(contact_url, timeout=5)
    assert gone.status_code == 404
    assert gone.headers["Content-Type"].startswith("application/problem+json")


def test_c04_null_empty_and_absent_in_partial_updates(stack: Stack) -> None:
    cid = create(stack, {**ROSA, "email": f"c04.{uuid.uuid4().hex[:8]}@example.com"})
    url = f"{stack.command_url}/v1/contacts/{cid}"

    def patch(body: dict[str, Any]) -> requests.Response:
        return api.patch(url, json=body, timeout=10)

    def read() -> dict[str, Any]:
        return dict(api.get(f"{stack.query_url}/v1/contacts/{cid}", timeout=5).json())

    assert stack.wait_operation(accepted(patch({"phones": []}))["operation_id"])["status"] == (
        "applied"
    )
    assert (read()["phones"], read()["phone"]) == ([], None)

    accepted_phone = accepted(patch({"phone": "+1 202 555 0123"}))
    stack.wait_operation(accepted_phone["operation_id"])
    stack.wait_operation(accepted(patch({"phone": None}))["operation_id"])
    assert read()["phones"] == []

    stack.wait_operation(accepted(patch({"last_name": None}))["operation_id"])
    after = read()
    assert (after["first_name"], after["last_name"]) == ("Rosa", None)
    assert after["email"] is not None  # absent keys never change stored values

    both = patch({"first_name": None, "last_name": None})
    assert both.status_code == 400
    assert {"first_name", "last_name"} <= set(both.json()["errors"])

    stack.wait_operation(accepted(patch({"last_name": "Example"}))["operation_id"])
    stack.wait_operation(accepted(patch({"last_name": ""}))["operation_id"])
    assert read()["last_name"] is None  # "" means null, the same rule everywhere

    version_before = read()["version"]
    assert patch({}).status_code == 400
    no_name = api.put(url, json={"email": "x@example.com"}, timeout=10)
    assert no_name.status_code == 400
    assert read()["version"] == version_before


def test_the_change_feed_follows_a_contact_through_the_worker(stack: Stack) -> None:
    feed = f"{stack.query_url}/v1/contacts/changes"
    token = api.get(feed, timeout=5).json()["next_token"]
    contact_id = create(stack, {"first_name": "Fe", "last_name": "Ed"})
    patch = accepted(
        api.patch(
            f"{stack.command_url}/v1/contacts/{contact_id}",
            json={"company": "Acme"},
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=10,
        )
    )
    assert stack.wait_operation(patch["operation_id"])["version"] == 2
    delete = accepted(api.delete(f"{stack.command_url}/v1/contacts/{contact_id}", timeout=10))
    assert stack.wait_operation(delete["operation_id"])["status"] == "applied"

    items: list[dict[str, Any]] = []
    for _ in range(200):  # a write transaction still running anywhere holds the feed back
        page = api.get(feed, params={"since": token, "limit": 1000}, timeout=5).json()
        items += [item for item in page["items"] if item["id"] == contact_id]
        token = page["next_token"]
        if len(items) >= 3:
            break
        time.sleep(0.05)

    assert [(item["version"], item["deleted"]) for item in items] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    # Read after the delete: no version is current any more.
    assert items[0]["contact"] is None
    assert items[1]["contact"] is None


def test_upserts_of_one_email_create_then_update_one_contact(stack: Stack) -> None:
    email = f"upsert.{uuid.uuid4().hex[:8]}@example.com"
    url = f"{stack.command_url}/v1/contacts/upsert"

    first = accepted(api.post(url, json={"first_name": "Ada", "email": email}, timeout=10))
    created = stack.wait_operation(first["operation_id"])
    second = accepted(
        api.post(
            url, json={"first_name": "Adah", "email": email.upper(), "company": "Acme"}, timeout=10
        )
    )
    updated = stack.wait_operation(second["operation_id"])

    assert (created["status"], created["result"], created["contact_id"]) == (
        "applied",
        "created",
        first["id"],
    )
    assert (updated["status"], updated["result"], updated["contact_id"]) == (
        "applied",
        "updated",
        first["id"],
    )
    contact = api.get(f"{stack.query_url}/v1/contacts/{first['id']}", timeout=5).json()
    assert (contact["first_name"], contact["company"], contact["version"]) == ("Adah", "Acme", 2)


def test_an_upsert_of_strasse_leaves_the_contact_of_strasse_with_sharp_s(stack: Stack) -> None:
    # Review finding: str.casefold() keyed straße@ as strasse@, so the second create was
    # rejected email_conflict and this upsert overwrote the first contact.
    suffix = uuid.uuid4().hex[:8]
    sharp, double = f"stra\u00dfe.{suffix}@example.com", f"strasse.{suffix}@example.com"
    first = create(stack, {"first_name": "Rosa", "email": sharp, "company": "Right Co"})
    second = create(stack, {"first_name": "Sam", "email": double})

    body = {"email": double, "first_name": "Double", "company": "Wrong Co"}
    answer = accepted(api.post(f"{stack.command_url}/v1/contacts/upsert", json=body, timeout=10))
    upserted = stack.wait_operation(answer["operation_id"])

    assert (upserted["status"], upserted["contact_id"]) == ("applied", second)
    kept = api.get(f"{stack.query_url}/v1/contacts/{first}", timeout=5).json()
    assert (kept["first_name"], kept["company"], kept["email"]) == ("Rosa", "Right Co", sharp)
    found = api.get(f"{stack.query_url}/v1/contacts", params={"email": double}, timeout=5).json()
    assert [item["id"] for item in found["items"]] == [second]


def test_a_nameless_upsert_updates_a_match_and_is_rejected_without_one(stack: Stack) -> None:
    # Issue 16: only an upsert that creates a contact needs a name; the worker decides.
    email = f"nameless.{uuid.uuid4().hex[:8]}@example.com"
    url = f"{stack.command_url}/v1/contacts/upsert"
    contact_id = create(stack, {"first_name": "Ada", "email": email})

    matched = accepted(api.post(url, json={"email": email, "company": "Acme"}, timeout=10))
    unmatched = accepted(api.post(url, json={"email": f"x{email}", "company": "Acme"}, timeout=10))

    updated = stack.wait_operation(matched["operation_id"])
    rejected = stack.wait_operation(unmatched["operation_id"])
    assert (updated["status"], updated["result"], updated["contact_id"]) == (
        "applied",
        "updated",
        contact_id,
    )
    assert (rejected["status"], rejected["reason"]) == ("rejected", "name_required")
    contact = api.get(f"{stack.query_url}/v1/contacts/{contact_id}", timeout=5).json()
    assert (contact["first_name"], contact["company"], contact["version"]) == ("Ada", "Acme", 2)
    missing = api.get(f"{stack.query_url}/v1/contacts/{unmatched['id']}", timeout=5)
    assert missing.status_code == 404


def test_a_patch_retried_with_its_idempotency_key_is_applied_once(stack: Stack) -> None:
    # The client lost the first answer and sends the same PATCH again, If-Match included: the
    # retry names the same operation, and the contact moves one version, not two (without the
    # key, the retry would end rejected with version_mismatch, or apply a second time).
    cid = create(stack, {**ROSA, "email": f"retry.{uuid.uuid4().hex[:8]}@example.com"})
    url = f"{stack.command_url}/v1/contacts/{cid}"
    headers = {"If-Match": '"1"', "Idempotency-Key": f"patch-{uuid.uuid4()}"}
    first = accepted(api.patch(url, json={"company": "Acme"}, headers=headers, timeout=10))
    assert stack.wait_operation(first["operation_id"])["version"] == 2
    retry = accepted(api.patch(url, json={"company": "Acme"}, headers=headers, timeout=10))
    assert retry["operation_id"] == first["operation_id"]
    operation = stack.wait_operation(retry["operation_id"])
    assert (operation["status"], operation["version"]) == ("applied", 2)
    # A later write shows the retry was never applied: it takes version 3.
    later = accepted(api.patch(url, json={"company": "Later"}, timeout=10))
    assert stack.wait_operation(later["operation_id"])["version"] == 3
    reused = api.patch(url, json={"company": "Other"}, headers=headers, timeout=10)
    assert reused.status_code == 422, reused.text


def test_erasing_another_contact_keeps_a_keys_binding_to_its_first_write(stack: Stack) -> None:
    # Found by the fresh-clone review: the key, refused (422) for contact Y, was indexed under
    # Y, so erasing Y deleted the record of X's write, and the same key with another body on X
    # then answered 202 and was dropped by the worker as a duplicate.
    x = create(stack, {**ROSA, "email": f"x.{uuid.uuid4().hex[:8]}@example.com"})
    y = create(stack, {**ROSA, "email": f"y.{uuid.uuid4().hex[:8]}@example.com"})
    headers = {"Idempotency-Key": f"bound-{uuid.uuid4()}"}

    def patch(cid: str, company: str) -> requests.Response:
        url = f"{stack.command_url}/v1/contacts/{cid}"
        return api.patch(url, json={"company": company}, headers=headers, timeout=10)

    first = accepted(patch(x, "A"))
    assert stack.wait_operation(first["operation_id"])["status"] == "applied"
    assert patch(y, "A").status_code == 422
    erased = accepted(api.delete(f"{stack.command_url}/v1/contacts/{y}", timeout=10))
    assert stack.wait_operation(erased["operation_id"])["status"] == "applied"
    assert patch(x, "B").status_code == 422
