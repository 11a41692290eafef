"""``GET /v1/contacts/export`` against real PostgreSQL: every matching contact, across pages,
in a file that imports back (``contacts_exchange``) to the same normalized contacts."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from contacts_domain.contact import normalize_contact
from contacts_exchange import read_csv, read_vcards
from query_api.service_layer import export

PEOPLE: list[dict[str, Any]] = [
    {
        "first_name": "Zoë",
        "last_name": "Ångström; Jr., \\ the 2nd",
        "emails": [
            {"value": "zoe.{tag}@Example.com", "type": "work", "primary": True},
            {"value": "z.{tag}@home.example", "type": "home", "primary": False},
        ],
        "phones": [{"value": "+33 1 23 45 67 89", "type": "mobile", "primary": True}],
        "company": "Acme, Inc.",
        "job_title": "Engineer",
        "addresses": [
            {
                "type": "work",
                "street": "1 Rue X",
                "city": "Paris",
                "postal_code": "75001",
                "country": "FR",
            }
        ],
        "birthday": "1990-02-28",
        "notes": "line one\nline two: tab\there",
    },
    {"first_name": "名無し", "last_name": "権兵衛"},
    {"first_name": None, "last_name": "Only"},
]


def _normalized(data: dict[str, Any]) -> dict[str, Any]:
    fields = normalize_contact(data, partial=False, default_region="US")
    fields["tags"] = sorted(fields["tags"] or [])
    return fields


def _with_tag(people: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """``people`` with ``{tag}`` in their emails replaced (primary emails are unique)."""
    return [
        {
            **person,
            "emails": [
                {**entry, "value": entry["value"].format(tag=tag)}
                for entry in person.get("emails", [])
            ],
        }
        for person in people
    ]


@pytest.mark.parametrize(("format", "reader"), [("vcard", read_vcards), ("csv", read_csv)])
def test_an_export_imports_back_to_the_same_contacts(client, seed, monkeypatch, format, reader):
    monkeypatch.setattr(export, "PAGE_SIZE", 2)  # three pages for five contacts
    tag = f"export-{uuid.uuid4().hex[:8]}"
    people = [*_with_tag(PEOPLE, tag), {"first_name": "Four"}, {"first_name": "Five"}]
    for person in people:
        seed.contact(**person, tags=[tag])
    seed.contact(first_name="Other")  # not tagged: not exported

    response = client.get(f"/v1/contacts/export?format={format}&tag={tag}")

    assert response.status_code == 200
    records = list(reader(io.BytesIO(response.data)))
    assert [r.errors for r in records] == [[] for _ in people]
    got = sorted((_normalized(r.data) for r in records), key=repr)
    want = sorted((_normalized({**p, "tags": [tag]}) for p in people), key=repr)
    assert got == want


def test_a_csv_export_neutralizes_formulas_and_imports_back(client, seed):
    tag = f"formula-{uuid.uuid4().hex[:8]}"
    person = {
        "first_name": '=HYPERLINK("http://evil.example","x")',
        "last_name": "+cmd|' /C calc'!A0",
        "company": "@SUM(1+1)",
        "job_title": "-2+3",
        "notes": "'=already quoted",
        "emails": [{"value": f"-{tag}@example.com", "type": "home", "primary": True}],
        "phones": [{"value": "+12025550100", "type": "mobile", "primary": True}],
        "addresses": [{"type": "home", "street": "=1+1", "city": "@x", "country": "US"}],
    }
    seed.contact(**person, tags=[f"={tag}"])

    response = client.get(f"/v1/contacts/export?format=csv&tag=%3D{tag}")

    assert response.status_code == 200
    header, row = csv.reader(io.StringIO(response.data.decode("utf-8"), newline=""))
    cells = dict(zip(header, row, strict=True))
    assert cells["First Name"] == "'" + person["first_name"]
    assert cells["Last Name"] == "'" + person["last_name"]
    assert cells["Organization Name"] == "'@SUM(1+1)"
    assert cells["Organization Title"] == "'-2+3"
    assert cells["Notes"] == "''=already quoted"
    assert cells["Labels"] == f"'={tag}"
    assert cells["E-mail 1 - Value"] == f"'-{tag}@example.com"
    assert cells["Phone 1 - Value"] == "+12025550100"  # E.164: a number, not escaped
    assert (cells["Address 1 - Street"], cells["Address 1 - City"]) == ("'=1+1", "'@x")
    (record,) = read_csv(io.BytesIO(response.data))
    assert record.errors == []
    assert _normalized(record.data) == _normalized({**person, "tags": [f"={tag}"]})
