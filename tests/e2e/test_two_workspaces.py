"""Issue 12, "Done when": two workspaces at once. The same email lives in both and an upsert in
one never touches the other; exports and change feeds never mix, also with a writer in each
workspace at the same time."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support.stack import Stack
from support.workspaces import Caller

pytestmark = pytest.mark.processes
#: Contacts each concurrent writer creates (bounded: CI time).
WRITES_PER_WORKSPACE = 40


def _write(stack: Stack, caller: Caller, method: str, path: str, body: Any, **kw: Any) -> Any:
    answer = caller.request(method, f"{stack.command_url}{path}", json=body, **kw)
    assert answer.status_code == 202, answer.text
    status = caller.wait_operation(stack.query_url, answer.json()["operation_id"])
    assert status["status"] == "applied", status
    return status


def _read(stack: Stack, caller: Caller, path: str, **params: str) -> Any:
    answer = caller.request("GET", f"{stack.query_url}{path}", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def test_the_same_email_in_two_workspaces_and_an_upsert_in_one(workspace_stack: Any) -> None:
    stack: Stack = workspace_stack.stack
    a = workspace_stack.callers.caller("api-key", "mix-a")
    b = workspace_stack.callers.caller("api-key", "mix-b")
    email = f"same-{secrets.token_hex(5)}@example.com"
    mine = _write(stack, a, "POST", "/v1/contacts", {"first_name": "Ann", "email": email})
    theirs = _write(stack, b, "POST", "/v1/contacts", {"first_name": "Bea", "email": email})
    before = _read(stack, b, f"/v1/contacts/{theirs['contact_id']}")

    upserted = _write(
        stack,
        a,
        "POST",
        "/v1/contacts/upsert",
        {"first_name": "Ann", "email": email, "company": "A-co"},
        params={"match_on": "email"},
    )

    assert upserted["contact_id"] == mine["contact_id"] != theirs["contact_id"]
    assert upserted["result"] == "updated"
    after = _read(stack, b, f"/v1/contacts/{theirs['contact_id']}")
    assert (after.headers["ETag"], after.json()) == (before.headers["ETag"], before.json())
    found = {
        c.workspace: [
            item["id"] for item in _read(stack, c, "/v1/contacts", email=email).json()["items"]
        ]
        for c in (a, b)
    }
    assert found == {a.workspace: [mine["contact_id"]], b.workspace: [theirs["contact_id"]]}
    assert _read(stack, a, f"/v1/contacts/{mine['contact_id']}").json()["company"] == "A-co"


def _feed(stack: Stack, caller: Caller, token: str) -> list[str]:
    """Every contact id of ``caller``'s change feed after ``token``, page by page."""
    ids: list[str] = []
    while True:
        page = _read(stack, caller, "/v1/contacts/changes", since=token, limit="50").json()
        ids += [item["id"] for item in page["items"]]
        token = page["next_token"]
        if not page["has_more"]:
            return ids


def test_feeds_and_exports_of_two_workspaces_never_mix_under_concurrent_writers(
    workspace_stack: Any,
) -> None:
    """A writer in each of two fresh workspaces (JWTs), 40 contacts each, at the same time;
    then each workspace's whole change feed and export hold all of its own contacts and none
    of the other's."""
    stack: Stack = workspace_stack.stack
    run = secrets.token_hex(3)
    callers = [workspace_stack.callers.caller("jwt", f"conc{side}{run}") for side in "ab"]
    tokens = [_read(stack, c, "/v1/contacts/changes").json()["next_token"] for c in callers]

    def writer(caller: Caller) -> dict[str, str]:
        names, operations = {}, []
        for n in range(WRITES_PER_WORKSPACE):
            name = f"W{caller.workspace.replace('-', '')}n{n}"
            body = {"first_name": name, "email": f"{n}@{run}.example.com"}
            answer = caller.request("POST", f"{stack.command_url}/v1/contacts", json=body)
            assert answer.status_code == 202, answer.text
            names[answer.json()["id"]] = name
            operations.append(answer.json()["operation_id"])
        for operation_id in operations:
            status = caller.wait_operation(stack.query_url, operation_id)
            assert status["status"] == "applied", status
        return names

    with ThreadPoolExecutor(max_workers=2) as pool:
        written = list(pool.map(writer, callers))

    for side, caller in enumerate(callers):
        own, other = written[side], written[1 - side]
        assert sorted(set(_feed(stack, caller, tokens[side]))) == sorted(own)
        export = _read(stack, caller, "/v1/contacts/export", format="csv").text
        assert all(name in export for name in own.values())
        assert not any(name in export for name in other.values())
        assert export.count("\n") == len(own) + 1  # the header and one line per contact
