"""Every read of the query API is its caller's workspace's (docs/architecture.md §10), against
fakes of the ports: the same contact id in two workspaces is two contacts; a contact,
operation or import of another workspace is answered exactly as an unknown one (404, same
body and headers); a cursor of another workspace is a 400 like a malformed one.

The session's API key is in ``default``; ``other_workspace`` gives a key bound to ``acme``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import pytest

from contacts_domain.imports import ImportReport
from contacts_domain.operations import OperationStatus
from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.service_layer.records import CachedContact, ImportOutcomes

#: Headers that differ between any two responses, whatever they answer.
PER_RESPONSE = {"X-Request-ID", "Date"}


INVALID_CURSOR = (
    "The cursor is not valid: send a next_cursor as this API returned it, with the filters of "
    "the request that returned it."
)


def _same_answer(first: Any, second: Any) -> None:
    """Two responses that reveal nothing to tell them apart: status, body and headers."""
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()
    assert _headers(first) == _headers(second)


def _headers(response: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k not in PER_RESPONSE)


def test_the_same_id_in_two_workspaces_is_two_contacts(
    client, contacts, cache, make_record, other_workspace
):
    acme, acme_headers = other_workspace
    contact_id = str(uuid.uuid4())
    contacts.add(make_record(contact_id, version=2, first_name="Ada"))
    contacts.add(make_record(contact_id, version=5, first_name="Grace"), workspace=acme)

    for _ in range(2):  # a miss, then a hit: each from its own workspace's cache entry
        ours = client.get(f"/v1/contacts/{contact_id}")
        theirs = client.get(f"/v1/contacts/{contact_id}", headers=acme_headers)
        assert (ours.get_json()["first_name"], ours.headers["ETag"]) == ("Ada", '"2"')
        assert (theirs.get_json()["first_name"], theirs.headers["ETag"]) == ("Grace", '"5"')

    assert {w: set(book) for w, book in cache.books.items()} == {
        WS: {contact_id},
        acme: {contact_id},
    }


def test_a_contact_of_another_workspace_is_answered_as_an_unknown_one(
    client, contacts, cache, make_record, other_workspace
):
    acme, acme_headers = other_workspace
    theirs = make_record(version=3)
    contacts.add(theirs, workspace=acme)
    cache.books[acme][theirs.contact_id] = CachedContact(3, b'{"id":"cached in acme"}')
    url = f"/v1/contacts/{theirs.contact_id}"

    assert client.get(url, headers=acme_headers).status_code == 200
    foreign = client.get(url)
    unknown = client.get(f"/v1/contacts/{uuid.uuid4()}")
    _same_answer(foreign, unknown)
    assert foreign.status_code == 404
    _same_answer(client.head(url), client.head(f"/v1/contacts/{uuid.uuid4()}"))
    _same_answer(
        client.get(url, headers={"If-None-Match": '"3"'}),
        client.get(f"/v1/contacts/{uuid.uuid4()}", headers={"If-None-Match": '"3"'}),
    )
    assert cache.refills == []  # nothing of acme was cached for the default workspace


def test_lists_searches_and_exports_show_only_the_callers_workspace(
    client, contacts, make_record, other_workspace
):
    acme, acme_headers = other_workspace
    ours = [make_record(first_name="Ada", tags=["t"]) for _ in range(3)]
    theirs = [make_record(first_name="Adele", tags=["t"]) for _ in range(2)]
    for record in ours:
        contacts.add(record)
    for record in theirs:
        contacts.add(record, workspace=acme)

    def ids(response: Any) -> set[str]:
        return {item["id"] for item in response.get_json()["items"]}

    assert ids(client.get("/v1/contacts?tag=t")) == {r.contact_id for r in ours}
    assert ids(client.get("/v1/contacts?q=ad", headers=acme_headers)) == {
        r.contact_id for r in theirs
    }
    assert client.get("/v1/contacts?q=adele").get_json()["items"] == []
    exported = client.get("/v1/contacts/export?format=csv", headers=acme_headers).get_data(
        as_text=True
    )
    assert exported.count("Adele") == 2
    assert "Ada," not in exported


@pytest.mark.parametrize("issued_to", ["default", "acme"])
@pytest.mark.parametrize("sort", ["", "&sort=last_name"], ids=["same-sort", "other-sort"])
def test_a_cursor_of_another_workspace_is_a_400_exactly_like_garbage(
    client, contacts, make_record, other_workspace, issued_to, sort
):
    acme, acme_headers = other_workspace
    for workspace in (WS, acme):
        for _ in range(3):
            contacts.add(make_record(tags=["t"]), workspace=workspace)
    issuer, reader = ({}, acme_headers) if issued_to == "default" else (acme_headers, {})
    cursor = client.get("/v1/contacts?limit=1&tag=t", headers=issuer).get_json()["next_cursor"]

    foreign = client.get(f"/v1/contacts?limit=1&tag=t{sort}&cursor={cursor}", headers=reader)
    garbage = client.get(
        f"/v1/contacts?limit=1&tag=t{sort}&cursor=bm90LWEtY3Vyc29y", headers=reader
    )
    other_filters = client.get(f"/v1/contacts?limit=1&tag=u{sort}&cursor={cursor}", headers=issuer)

    assert foreign.status_code == 400
    assert foreign.get_json()["errors"] == {"cursor": [INVALID_CURSOR]}
    _same_answer(foreign, garbage)
    _same_answer(foreign, other_filters)
    resumed = client.get(f"/v1/contacts?limit=1&tag=t&cursor={cursor}", headers=issuer)
    assert resumed.status_code == 200


def _status(op: str, status: str, version: int | None = None) -> OperationStatus:
    return OperationStatus(op, str(uuid.uuid4()), status, None, version)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["redis", "postgresql", "both"])
def test_an_operation_of_another_workspace_is_answered_as_an_unknown_one(
    client, statuses, outcomes, other_workspace, where
):
    acme, acme_headers = other_workspace
    op = str(uuid.uuid4())
    if where in ("redis", "both"):
        statuses.books[acme][op] = _status(op, "pending")
    if where in ("postgresql", "both"):
        outcomes.books[acme][op] = _status(op, "applied", 1)

    assert client.get(f"/v1/operations/{op}", headers=acme_headers).status_code == 200
    foreign = client.get(f"/v1/operations/{op}")
    _same_answer(foreign, client.get(f"/v1/operations/{uuid.uuid4()}"))
    assert foreign.status_code == 404


def test_an_import_of_another_workspace_is_answered_as_an_unknown_one(
    client, import_reports, import_outcomes, other_workspace
):
    acme, acme_headers = other_workspace
    import_id = str(uuid.uuid4())
    import_reports.books[acme][import_id] = ImportReport(
        import_id=import_id,
        format="csv",
        state="queued",
        received=2,
        accepted=2,
        invalid=0,
        failed=0,
        created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )
    import_outcomes.books[acme][import_id] = ImportOutcomes(applied=1)
    import_outcomes.books[WS][import_id] = ImportOutcomes(applied=7)  # never added to acme's

    theirs = client.get(f"/v1/imports/{import_id}", headers=acme_headers)
    foreign = client.get(f"/v1/imports/{import_id}")

    assert (theirs.status_code, theirs.get_json()["applied"]) == (200, 1)
    _same_answer(foreign, client.get(f"/v1/imports/{uuid.uuid4()}"))
    assert foreign.status_code == 404


@pytest.mark.parametrize(
    "w",
    # What tokens of "acme" carried before the keyed digest: sha256("acme")[:16].
    ["822b33ad87c148a0", hashlib.sha256(b"acme").hexdigest()[:32]],
    ids=["issued-before", "unkeyed-32"],
)
def test_a_change_token_with_an_unkeyed_workspace_digest_is_a_400_like_garbage(
    client, other_workspace, w
):
    acme, acme_headers = other_workspace
    assert acme == "acme"
    raw = json.dumps({"v": 1, "x": 77, "p": 1, "w": w}, separators=(",", ":")).encode()
    old = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    refused = client.get(f"/v1/contacts/changes?since={old}", headers=acme_headers)
    garbage = client.get("/v1/contacts/changes?since=abc", headers=acme_headers)

    assert refused.status_code == 400
    assert refused.get_json()["errors"] == {"since": ["The token is not valid."]}
    _same_answer(refused, garbage)
