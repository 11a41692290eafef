"""Batches end to end: each contact's operations apply in the order sent, whatever order the
worker takes them in; upserts of one email keep their order too."""

from __future__ import annotations

import uuid

from support.auth import api
from support.stack import Stack


def test_a_batch_applies_each_contacts_operations_in_order(stack: Stack) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    tag = uuid.uuid4().hex[:8]
    created = api.post(f"{stack.command_url}/v1/contacts", json={"first_name": "Dee"}, timeout=10)
    d = created.json()["id"]
    assert stack.wait_operation(created.json()["operation_id"])["status"] == "applied"
    operations = [
        {"op": "replace", "id": a, "data": {"first_name": "Ada", "email": f"ada.{tag}@ex.com"}},
        {"op": "replace", "id": b, "data": {"first_name": "Bo"}},
        {"op": "upsert", "data": {"first_name": "Cy", "email": f"cy.{tag}@ex.com"}},
        {"op": "patch", "id": a, "data": {"company": "First"}},
        {"op": "patch", "id": b, "data": {"last_name": "Gone"}},
        {"op": "patch", "id": a, "if_match": '"2"', "data": {"company": "Guess"}},
        {"op": "delete", "id": b},
        {"op": "upsert", "data": {"last_name": "Young", "email": f"CY.{tag}@ex.com"}},
        {"op": "patch", "id": a, "data": {"company": "Second", "job_title": "Engineer"}},
        {"op": "create", "data": {"last_name": "Invalid", "emails": [{"value": "nope"}]}},
        {"op": "patch", "id": d, "if_match": '"1"', "data": {"company": "Seen"}},
    ]
    answer = api.post(
        f"{stack.command_url}/v1/contacts/batch", json={"operations": operations}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    statuses = [r["status"] for r in results]
    assert statuses == ["accepted"] * 5 + ["invalid"] + ["accepted"] * 3 + ["invalid", "accepted"]
    assert set(results[5]["errors"]) == {"if_match"}  # a version the batch would only produce
    assert "data.emails.0.value" in results[9]["errors"]

    outcomes = {
        r["index"]: stack.wait_operation(r["operation_id"])
        for r in results
        if r["status"] == "accepted"
    }
    assert {(o["status"], o["reason"]) for o in outcomes.values()} == {("applied", None)}
    assert (outcomes[2]["result"], outcomes[7]["result"]) == ("created", "updated")
    assert outcomes[7]["contact_id"] == outcomes[2]["contact_id"]

    def read(contact_id: str) -> dict:
        answer = api.get(f"{stack.query_url}/v1/contacts/{contact_id}", timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    ada = read(a)
    assert (ada["first_name"], ada["company"], ada["job_title"]) == ("Ada", "Second", "Engineer")
    assert api.get(f"{stack.query_url}/v1/contacts/{b}", timeout=10).status_code == 404
    cy = read(outcomes[2]["contact_id"])
    assert (cy["first_name"], cy["last_name"]) == ("Cy", "Young")
    assert (read(d)["company"], outcomes[10]["version"]) == ("Seen", 2)
